"""Toll fraud basics against a real ``offhook serve``: who may place a call, and how many.

Toll fraud is someone else's calls on your trunks. The basics, each shown
here over the wire (raw SIP user agents from ``integration/sipclient.py`` on
loopback addresses, the node a subprocess):

1. A call from an unauthenticated source is never routed: an INVITE
   without credentials, with a wrong password, for an unknown user, or
   dressed as a trunk's call (a caller number, no credentials), gets the same 407,
   and the called phone never sees an INVITE, nor does a call record appear.
2. Trunks accept only their own addresses: ``carrier`` (no
   ``inbound_addresses``) only its exact host and port; ``gateway`` any port
   of its ``inbound_addresses`` network. The same INVITE from another port
   or host is challenged like any device's.
3. Per-trunk concurrent calls: ``carrier`` has ``max_calls: 1``; a second
   call in while one is up is refused (503), and the phone does not ring.
4. Per-device concurrent calls: alice (``max_calls: 1``) cannot place a
   second call while one is up (486, Q.850 17), and carol (``max_calls: 1``)
   cannot be called a second time while on a call; the refused callee
   never rings.

Every wait is bounded (``recv`` timeouts; the scenario under ``wait_for``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from integration.sipclient import Call, SipClient, is_request, sdp, tag
from offhook.sip.auth import parse_digest
from offhook.sip.message import SipRequest, SipResponse
from support.ports import HOST, free_port
from support.server import OffhookServer

PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "bob-Secret-2",
    "carol": "carol-Secret-3",
    "dave": "dave-Secret-4",
}
DNS = {"alice": "1001", "bob": "1002", "carol": "1003", "dave": "1004"}
MAX_CALLS = {"alice": 1, "bob": 4, "carol": 1, "dave": 4}
CARRIER_HOST = "127.0.0.5"
GATEWAY_NET = "127.0.7.0/24"
GATEWAY_HOST = "127.0.7.9"
STRANGER_HOST = "127.0.0.9"
SCENARIO_TIMEOUT = 60.0


def plan(carrier_port: int) -> dict[str, Any]:
    return {
        "devices": [
            {
                "name": name,
                "protocol": "sip",
                "password": PASSWORDS[name],
                "max_calls": MAX_CALLS[name],
                "lines": [{"dn": DNS[name], "display": name.capitalize()}],
            }
            for name in DNS
        ],
        "trunks": [
            {
                "name": "carrier",
                "protocol": "sip",
                "host": CARRIER_HOST,
                "port": carrier_port,
                "max_calls": 1,
                "options_ping": 0,
            },
            {
                "name": "gateway",
                "protocol": "sip",
                "host": "127.0.7.1",
                "port": 5060,
                "inbound_addresses": [GATEWAY_NET],
                "options_ping": 0,
            },
        ],
    }


class Bound(SipClient):
    """A UDP test UA on a chosen loopback address and port (a trunk's far end, a stranger)."""

    bind_host: str = HOST
    bind_port: int = 0

    async def start(self) -> Bound:
        loop = asyncio.get_running_loop()
        owner = self

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                owner._received(data)

        self._udp, _ = await loop.create_datagram_endpoint(
            _Proto, local_addr=(self.bind_host, self.bind_port)
        )
        self.port = self._udp.get_extra_info("sockname")[1]
        return self

    @property
    def host_port(self) -> str:
        return f"{self.bind_host}:{self.port}"


class Scene:
    def __init__(self, server: OffhookServer) -> None:
        self.server = server
        self.sip = (HOST, server.sip_port)
        self.clients: list[SipClient] = []
        self.media = 41000

    def port(self) -> int:
        self.media += 2
        return self.media

    async def ua(
        self, user: str, password: str = "", *, host: str = HOST, port: int = 0
    ) -> SipClient:
        client = Bound(self.sip, user, password, realm=self.server.realm)
        client.bind_host, client.bind_port = host, port
        await client.start()
        self.clients.append(client)
        return client

    async def phone(self, name: str) -> SipClient:
        client = await self.ua(name, PASSWORDS[name])
        _, ok = await client.register(expires=300)
        assert ok.status == 200, (name, ok.status, ok.reason)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def shape(resp: SipResponse) -> tuple[Any, ...]:
    challenge = resp.headers.get("Proxy-Authenticate")
    params = parse_digest(challenge)[1] if challenge else {}
    return (
        resp.status,
        resp.reason,
        tuple(n.lower() for n, _ in resp.headers),
        tuple(sorted((k, v) for k, v in params.items() if k != "nonce")),
    )


async def challenged(call: Call) -> SipResponse:
    final = await call.final()
    call.ack_failure(final)
    assert final.status == 407, (final.status, final.reason)
    return final


async def forbidden(call: Call) -> SipResponse:
    """A wrong answer to the challenge: refused, not challenged again."""
    final = await call.final()
    call.ack_failure(final)
    assert final.status == 403, (final.status, final.reason)
    return final


async def refused(call: Call, status: int) -> SipResponse:
    final = await call.final()
    call.ack_failure(final)
    assert final.status == status, (final.status, final.reason)
    return final


async def ring_and_answer(call: Call, callee: SipClient) -> tuple[SipRequest, str]:
    invite = await callee.recv_request("INVITE")
    callee_tag = tag()
    callee.answer(invite, 200, to_tag=callee_tag, body=sdp(42000))
    ok = await call.final()
    assert ok.status == 200, (ok.status, ok.reason)
    call.ack(ok)
    await callee.recv_request("ACK")
    return invite, callee_tag


async def hang_up(caller: SipClient, call: Call, callee: SipClient, callee_tag: str) -> None:
    assert call.dialog is not None
    caller.send_bytes(caller.in_dialog(call.dialog, "BYE"))
    bye = await callee.recv_request("BYE")
    callee.answer(bye, 200, to_tag=callee_tag)
    assert (await caller.recv_response("BYE")).status == 200


async def no_invite(ua: SipClient, wait: float = 0.5) -> None:
    assert await ua.expect_nothing(is_request("INVITE"), wait=wait) == []


async def scenario(scene: Scene, carrier_port: int) -> None:
    bob = await scene.phone("bob")

    # 1. Unauthenticated sources are never routed.
    intruder = await scene.ua("intruder", host=STRANGER_HOST)
    await challenged(await intruder.call(DNS["bob"], body=sdp(scene.port()), authenticate=False))
    liar = await scene.ua("alice", "wrong-password", host=STRANGER_HOST)
    wrong = await forbidden(await liar.call(DNS["bob"], body=sdp(scene.port())))
    nobody = await scene.ua("mallory", "whatever", host=STRANGER_HOST)
    unknown = await forbidden(await nobody.call(DNS["bob"], body=sdp(scene.port())))
    assert shape(wrong) == shape(unknown)
    # A device that registered once is no exception: its source is not trusted.
    again = await scene.ua("bob", "wrong-password")
    await forbidden(await again.call(DNS["bob"], body=sdp(scene.port())))
    # Pretending to be the carrier (a carrier's caller number) from elsewhere: challenged.
    spoof = await scene.ua("+15550100", host=STRANGER_HOST)
    spoof.display = "Carrier"
    call = await spoof.call(DNS["bob"], body=sdp(scene.port()), authenticate=False)
    await challenged(call)
    await no_invite(bob)
    assert scene.server.cdr_rows() == []

    # 2. Trunks accept only their own addresses.
    carrier = await scene.ua("+15550100", host=CARRIER_HOST, port=carrier_port)
    call = await carrier.call(DNS["bob"], body=sdp(scene.port()), authenticate=False)
    invite = await bob.recv_request("INVITE")
    bob.answer(invite, 486, to_tag=tag())
    await bob.recv_request("ACK")
    await refused(call, 486)  # routed: bob rang, and was busy
    other_port = await scene.ua("+15550100", host=CARRIER_HOST)
    assert other_port.port != carrier_port
    await challenged(await other_port.call(DNS["bob"], body=sdp(scene.port()), authenticate=False))
    gateway = await scene.ua("+15550200", host=GATEWAY_HOST)
    call = await gateway.call(DNS["bob"], body=sdp(scene.port()), authenticate=False)
    invite = await bob.recv_request("INVITE")
    bob.answer(invite, 486, to_tag=tag())
    await bob.recv_request("ACK")
    await refused(call, 486)
    outside = await scene.ua("+15550200", host="127.0.6.9")
    await challenged(await outside.call(DNS["bob"], body=sdp(scene.port()), authenticate=False))
    await no_invite(bob)

    # 3. The carrier's max_calls (1): a second call in while one is up is refused.
    first = await carrier.call(DNS["bob"], body=sdp(scene.port()), authenticate=False)
    _, bob_tag = await ring_and_answer(first, bob)
    second = await carrier.call(DNS["bob"], body=sdp(scene.port()), authenticate=False)
    await refused(second, 503)
    await no_invite(bob)
    await hang_up(carrier, first, bob, bob_tag)

    # 4. Devices' max_calls (alice 1, carol 1), calling and called.
    alice = await scene.phone("alice")
    carol = await scene.phone("carol")
    dave = await scene.phone("dave")
    up = await alice.call(DNS["bob"], body=sdp(scene.port()))
    _, up_tag = await ring_and_answer(up, bob)
    await refused(await alice.call(DNS["dave"], body=sdp(scene.port())), 486)
    await no_invite(dave)
    busy = await dave.call(DNS["carol"], body=sdp(scene.port()))
    _, carol_tag = await ring_and_answer(busy, carol)
    await refused(await bob.call(DNS["carol"], body=sdp(scene.port())), 486)
    await no_invite(carol)
    await hang_up(alice, up, bob, up_tag)
    await hang_up(dave, busy, carol, carol_tag)
    # Below the limits again: alice calls carol.
    call = await alice.call(DNS["carol"], body=sdp(scene.port()))
    _, carol_tag = await ring_and_answer(call, carol)
    await hang_up(alice, call, carol, carol_tag)


def test_toll_fraud_basics(tmp_path: Path) -> None:
    carrier_port = free_port()
    with OffhookServer(tmp_path, plan(carrier_port)) as server:

        async def main() -> None:
            scene = Scene(server)
            try:
                await asyncio.wait_for(scenario(scene, carrier_port), SCENARIO_TIMEOUT)
            finally:
                await scene.close()

        asyncio.run(main())
        rows = server.wait_cdr(count=8)
        got = sorted((r["calling"], r["called"], r["cause"]) for r in rows)
        print(got)
    assert got == sorted(
        [
            ("+15550100", "1002", "17"),  # carrier -> bob, busy
            ("+15550200", "1002", "17"),  # gateway -> bob, busy
            ("+15550100", "1002", "16"),  # carrier -> bob, answered
            ("1001", "1002", "16"),
            ("1001", "1004", "17"),  # alice at her limit
            ("1004", "1003", "16"),
            ("1002", "1003", "17"),  # carol at her limit
            ("1001", "1003", "16"),
        ]
    ), got
