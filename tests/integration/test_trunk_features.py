"""SIP trunk supervision on a whole in-process node: OPTIONS pings, digest toward
a carrier, trunk registration.

Uses ``sip_node_rig.run_node`` (with its module-level ``plan`` swapped for the
plans built here) and the raw test UA of ``sipclient``. A trunk's far end is a
``Carrier``: a ``SipClient`` bound to another loopback address (127.0.0.2,
127.0.0.3), so every assertion is on a real wire message. SIP T1 is 50 ms in
these tests, so a ping that gets no answer times out (Timer F = 64*T1) in 3.2 s.

Every wait is bounded (``recv`` timeouts, ``run_node``'s scenario timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sip_node_rig as harness
from rich.console import Console
from sip_node_rig import Ctx, Result, run_node
from sipclient import Call, SipClient, header_param, is_request, sdp, tag

from offhook import app
from offhook.sip.auth import AuthStatus, Credentials, DigestAuthenticator, ha1
from offhook.sip.message import SipRequest, SipResponse
from support.ports import free_port

CARRIER_HOST = "127.0.0.2"
BACKUP_HOST = "127.0.0.3"
DIALED = "912125550100"
E164 = "+12125550100"
A_PORT = 40000
B_PORT = 40010
T1 = 0.05
PING = 0.5
ACCOUNT = ("acct", "carrier-Secret-1")
CARRIER_REALM = "carrier.test"
PLAIN_CHALLENGE = ("Proxy-Authenticate", f'Digest realm="{CARRIER_REALM}", nonce="n"')

PHONES = {"alice": ("alice-Secret-1", "1001")}


def trunk(name: str, host: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "protocol": "sip", "host": host, "port": port, "css": "inbound", **extra}


def dial_plan(trunks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "partitions": ["internal", "pstn"],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal", "pstn"]},
            {"name": "inbound", "partitions": ["internal"]},
        ],
        "devices": [
            {
                "name": name,
                "protocol": "sip",
                "password": pw,
                "css": "staff",
                "lines": [{"dn": dn, "partition": "internal"}],
            }
            for name, (pw, dn) in PHONES.items()
        ],
        "trunks": trunks,
        "route_groups": [
            {"name": "carriers", "distribution": "top-down", "members": [t["name"] for t in trunks]}
        ],
        "route_lists": [{"name": "pstn-out", "groups": ["carriers"]}],
        "route_patterns": [
            {
                "pattern": "9.1[2-9]XX[2-9]XXXXXX",
                "partition": "pstn",
                "route_list": "pstn-out",
                "called_transform": {"discard": "pre-dot", "prefix": "+"},
            }
        ],
    }


def run_plan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plan: dict[str, Any],
    scenario: Callable[[Ctx], Awaitable[None]],
) -> Result:
    monkeypatch.setattr(harness, "plan", lambda: plan)
    return run_node(tmp_path, monkeypatch, scenario, t1=T1)


@dataclass
class Carrier(SipClient):
    """A UDP test UA bound to ``bind_host:bind_port``: the far end of a trunk."""

    bind_host: str = CARRIER_HOST
    bind_port: int = 0

    async def start(self) -> Carrier:
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

    def reply(
        self, req: SipRequest, status: int, reason: str, extra: list[tuple[str, str]]
    ) -> None:
        """A response with extra headers (``SipClient.answer`` has none)."""
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in req.headers.get_all("Via")]
        to = req.headers.get("To") or ""
        if header_param(to, "tag") is None:
            to = f"{to};tag={tag()}"
        lines += [
            f"From: {req.headers.get('From')}",
            f"To: {to}",
            f"Call-ID: {req.call_id}",
            f"CSeq: {req.headers.get('CSeq')}",
        ]
        lines += [f"{n}: {v}" for n, v in extra]
        lines.append("Content-Length: 0")
        self.send_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())


async def carrier_at(ctx: Ctx, name: str, host: str, port: int) -> Carrier:
    far = Carrier(ctx.sip, name, bind_host=host, bind_port=port)
    await far.start()
    ctx.clients.append(far)
    return far


async def phone(ctx: Ctx, name: str) -> SipClient:
    return await ctx.ua(name, password=PHONES[name][0], register=True)


class Account:
    """The carrier's view of our account, for ``DigestAuthenticator.verify``."""

    def credentials(self, username: str) -> Credentials | None:
        if username != ACCOUNT[0]:
            return None
        return Credentials(
            username=username,
            device="offhook",
            ha1_md5=ha1(ACCOUNT[0], CARRIER_REALM, ACCOUNT[1], "MD5"),
            ha1_sha256=ha1(ACCOUNT[0], CARRIER_REALM, ACCOUNT[1], "SHA-256"),
        )


def q850(resp: SipResponse) -> int | None:
    for value in resp.headers.get_all("Reason"):
        if value.lower().startswith("q.850"):
            cause = header_param(value, "cause")
            return int(cause) if cause is not None else None
    return None


async def trunk_state(ctx: Ctx, name: str) -> dict[str, Any]:
    status = await ctx.status()
    rows = {row["name"]: row for row in status["trunks"]}
    row: dict[str, Any] = rows[name]
    return row


async def wait_state(ctx: Ctx, name: str, state: str, timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = await trunk_state(ctx, name)
        if row["state"] == state:
            return row
        assert loop.time() < deadline, f"trunk {name} still {row} after {timeout} s"
        await asyncio.sleep(0.1)


async def answer_options(far: Carrier, answering: dict[str, int]) -> None:
    """Answer every OPTIONS with ``answering['status']`` (0: stay silent)."""
    while True:
        try:
            req = await far.recv(is_request("OPTIONS"), timeout=60.0)
        except TimeoutError:
            continue
        assert isinstance(req, SipRequest)
        answering["seen"] = answering.get("seen", 0) + 1
        status = answering["status"]
        if status:
            far.answer(req, status, to_tag=tag(), reason="Whatever")


async def connect_and_hang_up(
    alice: SipClient, call: Call, far: Carrier, invite: SipRequest
) -> None:
    far_tag = tag()
    far.answer(invite, 200, to_tag=far_tag, body=sdp(B_PORT))
    ok = await call.final()
    assert ok.status == 200, (ok.status, ok.reason)
    call.ack(ok)
    ack = await far.recv_request("ACK")
    assert ack.call_id == invite.call_id
    assert call.dialog is not None
    alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
    bye = await far.recv_request("BYE")
    far.answer(bye, 200, to_tag=far_tag)
    assert (await alice.recv_response("BYE")).status == 200


# --------------------------------------------------------------------------
# OPTIONS pings: a trunk that stops answering is skipped at once


def test_trunk_that_stops_answering_options_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier_port, backup_port = free_port(), free_port()
    printed: list[str] = []

    async def scenario(ctx: Ctx) -> None:
        carrier = await carrier_at(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await carrier_at(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")
        rows = {r["name"]: r for r in (await ctx.status())["trunks"]}
        assert rows["carrier"]["state"] == "unknown"  # not pinged yet: used
        assert rows["backup"]["state"] == "unmonitored"  # options_ping 0
        assert (rows["carrier"]["host"], rows["carrier"]["port"]) == (CARRIER_HOST, carrier_port)

        # The first ping: a real OPTIONS to the trunk's address, answered 407
        # (a carrier challenging OPTIONS is alive: up).
        ping = await carrier.recv_request("OPTIONS", timeout=3.0)
        assert ping.uri == f"sip:{CARRIER_HOST}:{carrier_port}"
        assert ping.cseq[1] == "OPTIONS" and ping.from_tag
        carrier.reply(ping, 407, "Proxy Authentication Required", [PLAIN_CHALLENGE])
        row = await wait_state(ctx, "carrier", "up", 2.0)
        assert row["last_result"] == "407" and row["last_change"]
        answering = {"status": 200}
        responder = asyncio.create_task(answer_options(carrier, answering))
        try:
            # Up: calls go to the carrier (which says the number is unknown: no failover).
            call = await alice.call(DIALED, body=sdp(A_PORT))
            invite = await carrier.recv_request("INVITE")
            assert invite.uri == f"sip:{E164}@{CARRIER_HOST}:{carrier_port}"
            carrier.answer(invite, 404, to_tag=tag())
            final = await call.final()
            call.ack_failure(final)
            assert final.status == 404
            assert await backup.expect_nothing(is_request("INVITE"), wait=0.2) == []

            # The carrier stops answering: Timer F marks it down.
            answering["status"] = 0
            row = await wait_state(ctx, "carrier", "down", 64 * T1 + 3 * PING + 2.0)
            assert row["last_result"] == "timeout"
            seen = answering.get("seen", 0)

            # Down: the call goes to the backup at once, no INVITE to the carrier.
            loop = asyncio.get_running_loop()
            started = loop.time()
            call = await alice.call(DIALED, body=sdp(A_PORT))
            invite = await backup.recv_request("INVITE", timeout=1.0)
            assert loop.time() - started < 1.0
            assert invite.uri == f"sip:{E164}@{BACKUP_HOST}:{backup_port}"
            await connect_and_hang_up(alice, call, backup, invite)
            assert [m for m in carrier.inbox if is_request("INVITE")(m)] == []
            # pings go on while it is down
            for _ in range(40):
                if answering.get("seen", 0) > seen:
                    break
                await asyncio.sleep(0.05)
            assert answering.get("seen", 0) > seen

            # `offhook status` shows the trunks
            out = io.StringIO()
            monkeypatch.setattr("rich.console.Console", lambda: Console(file=out, width=200))
            assert await asyncio.to_thread(app.print_status, ctx.settings, False) == 0
            printed.append(out.getvalue())

            # It answers again: up, and used again.
            answering["status"] = 200
            await wait_state(ctx, "carrier", "up", 2 * PING + 64 * T1 + 1.0)
            call = await alice.call(DIALED, body=sdp(A_PORT))
            invite = await carrier.recv_request("INVITE")
            carrier.answer(invite, 486, to_tag=tag())
            final = await call.final()
            call.ack_failure(final)
            assert final.status == 486
        finally:
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder

    plan = dial_plan(
        [
            trunk("carrier", CARRIER_HOST, carrier_port, options_ping=PING),
            trunk("backup", BACKUP_HOST, backup_port, options_ping=0),
        ]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    text = printed[0]
    assert "Trunks (2)" in text
    assert f"{CARRIER_HOST}:{carrier_port}/udp" in text
    assert "down" in text and "unmonitored" in text
    assert sorted((r.called_device, r.cause) for r in rows) == [
        ("backup", 16),
        ("carrier", 1),
        ("carrier", 17),
    ], rows


def test_every_trunk_down_fails_with_network_out_of_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier_port = free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await carrier_at(ctx, "carrier", CARRIER_HOST, carrier_port)
        alice = await phone(ctx, "alice")
        await carrier.recv_request("OPTIONS", timeout=3.0)  # never answered
        await wait_state(ctx, "carrier", "down", 64 * T1 + PING + 2.0)
        call = await alice.call(DIALED, body=sdp(A_PORT))
        final = await call.final()
        call.ack_failure(final)
        assert q850(final) == 38, (final.status, final.headers.get_all("Reason"))
        assert [m for m in carrier.inbox if is_request("INVITE")(m)] == []

    plan = dial_plan([trunk("carrier", CARRIER_HOST, carrier_port, options_ping=PING)])
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert [r.cause for r in rows] == [38], rows


# --------------------------------------------------------------------------
# Digest toward a carrier (RFC 3261 §22.2)


def test_carrier_challenge_is_answered_with_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier_port = free_port()
    auth = DigestAuthenticator(b"carrier-side-secret-0123456789", CARRIER_REALM)

    async def scenario(ctx: Ctx) -> None:
        carrier = await carrier_at(ctx, "carrier", CARRIER_HOST, carrier_port)
        alice = await phone(ctx, "alice")
        loop = asyncio.get_running_loop()

        # 1. challenged once, answered with correct digest: the call connects
        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        assert first.headers.get("Proxy-Authorization") is None
        carrier.reply(first, 407, "Proxy Authentication Required",
                      auth.challenge(loop.time(), proxy=True))  # fmt: skip
        ack = await carrier.recv_request("ACK")  # the transaction layer ACKs the 407
        assert ack.cseq == (first.cseq[0], "ACK")
        assert ack.top_via == first.top_via
        second = await carrier.recv_request("INVITE")
        assert second.call_id == first.call_id
        assert second.from_tag == first.from_tag
        assert second.cseq == (first.cseq[0] + 1, "INVITE")
        assert header_param(second.top_via, "branch") != header_param(first.top_via, "branch")
        assert second.uri == first.uri and second.body == first.body
        result = auth.verify(second, Account(), loop.time(), proxy=True)
        assert result.status is AuthStatus.OK, result
        await connect_and_hang_up(alice, call, carrier, second)

        # 2. challenged again after answering: the leg fails with cause 21
        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        carrier.reply(first, 401, "Unauthorized", [
            (("WWW-Authenticate", v)) for _, v in auth.challenge(loop.time())
        ])  # fmt: skip
        second = await carrier.recv_request("INVITE")
        assert second.headers.get("Authorization") is not None  # 401 -> Authorization
        assert auth.verify(second, Account(), loop.time()).status is AuthStatus.OK
        carrier.reply(second, 401, "Unauthorized", [
            (("WWW-Authenticate", v)) for _, v in auth.challenge(loop.time())
        ])  # fmt: skip
        final = await call.final()
        call.ack_failure(final)
        assert (final.status, q850(final)) == (403, 21)
        assert await carrier.expect_nothing(is_request("INVITE"), wait=0.3) == []

    plan = dial_plan(
        [
            trunk(
                "carrier",
                CARRIER_HOST,
                carrier_port,
                options_ping=0,
                username=ACCOUNT[0],
                password=ACCOUNT[1],
            )
        ]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert sorted(r.cause for r in rows) == [16, 21], rows


def test_trunk_without_credentials_fails_on_challenge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier_port = free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await carrier_at(ctx, "carrier", CARRIER_HOST, carrier_port)
        alice = await phone(ctx, "alice")
        call = await alice.call(DIALED, body=sdp(A_PORT))
        invite = await carrier.recv_request("INVITE")
        carrier.reply(invite, 407, "Proxy Authentication Required", [PLAIN_CHALLENGE])
        final = await call.final()
        call.ack_failure(final)
        assert q850(final) == 21
        assert await carrier.expect_nothing(is_request("INVITE"), wait=0.3) == []

    plan = dial_plan([trunk("carrier", CARRIER_HOST, carrier_port, options_ping=0)])
    run_plan(tmp_path, monkeypatch, plan, scenario)


# --------------------------------------------------------------------------
# Trunk registration


def test_trunk_registers_with_digest_and_refreshes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier_port = free_port()
    auth = DigestAuthenticator(b"carrier-side-secret-0123456789", CARRIER_REALM)

    async def scenario(ctx: Ctx) -> None:
        carrier = await carrier_at(ctx, "carrier", CARRIER_HOST, carrier_port)
        loop = asyncio.get_running_loop()
        call_ids = set()
        for round_ in range(2):
            first = await carrier.recv_request("REGISTER", timeout=3.0)
            assert first.uri == f"sip:{CARRIER_HOST}:{carrier_port}"
            assert f"sip:{ACCOUNT[0]}@{CARRIER_HOST}" in (first.headers.get("To") or "")
            carrier.reply(first, 401, "Unauthorized", [
                ("WWW-Authenticate", v) for _, v in auth.challenge(loop.time())
            ])  # fmt: skip
            second = await carrier.recv_request("REGISTER")
            assert second.cseq[0] == first.cseq[0] + 1
            assert auth.verify(second, Account(), loop.time()).status is AuthStatus.OK
            contact = second.headers.get("Contact") or ""
            call_ids.add(second.call_id)
            # grant 2 s: the node refreshes after 1 s
            carrier.reply(second, 200, "OK", [("Contact", f"{contact};expires=2")])
            if round_ == 0:
                row = await wait_state(ctx, "carrier", "unmonitored", 1.0)
                for _ in range(20):
                    if row["registration"] == "registered":
                        break
                    await asyncio.sleep(0.05)
                    row = await trunk_state(ctx, "carrier")
                assert row["registration"] == "registered", row
        assert len(call_ids) == 1  # refreshes keep the Call-ID (RFC 3261 §10.2.4)

    plan = dial_plan(
        [
            trunk(
                "carrier",
                CARRIER_HOST,
                carrier_port,
                options_ping=0,
                register=True,
                username=ACCOUNT[0],
                password=ACCOUNT[1],
            )
        ]
    )
    run_plan(tmp_path, monkeypatch, plan, scenario)
