"""SIP on a dual-stack node (issue 14): IPv4 and IPv6 phones on one ``listen = "::"``.

A whole node in-process (as sip_node_rig.py runs it) on ``"::"`` (one
dual-stack socket) or ``"::1"``, driven by ``sipclient.SipClient`` bound to
``127.0.0.1`` or ``::1``. Every assertion is on a real wire message or on
what the node's status endpoint reports:

- an OPTIONS with ``;rport`` is answered 200 over both families (it was 400:
  the node refused the ``received=::ffff:127.0.0.1`` it had written), with
  ``received`` bare and in plain IPv4 for an IPv4 phone;
- registrations keep one address form: an IPv4 phone on the dual-stack
  socket is ``127.0.0.1`` in ``offhook status``, never ``::ffff:127.0.0.1``;
- each side of a call sees the node in its own family (Via, Contact, SDP);
  an IPv6 phone calling an IPv4 phone gets media through the node's bridge,
  and RTP sent by each reaches the other; within one family media stays
  phone to phone;
- the allow-list admits and refuses the right sources on both stacks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sip_node_rig import (
    DEVICES,
    REALM,
    Ctx,
    media_port,
    options,
    run_node,
)
from sipclient import SipClient, angle_uri, header_param, sdp, tag

from offhook.config import (
    AdminSettings,
    AuthSettings,
    DatabaseSettings,
    MediaSettings,
    NodeSettings,
    SccpSettings,
    Settings,
    SipSettings,
    TftpSettings,
)
from offhook.sip.message import SipResponse
from support.ports import RELAY_PORTS, free_port

V4, V6 = "127.0.0.1", "::1"


def settings_for(
    tmp_path: Path, listen: str | list[str], allow: list[str] | None = None
) -> Settings:
    return Settings(
        node=NodeSettings(name="dual"),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'offhook.db'}"),
        sip=SipSettings(
            listen=listen,
            port=free_port(),
            allow=allow or ["127.0.0.0/8", "::1/128"],
            realm=REALM,
            external_host=[V4, V6],
        ),
        admin=AdminSettings(listen=V4, port=free_port()),
        auth=AuthSettings(secret="dual-stack-test-secret"),
        sccp=SccpSettings(enabled=False, listen=V4, port=free_port()),
        tftp=TftpSettings(enabled=False, listen=V4, port=free_port(), http_port=free_port()),
        media=MediaSettings(rtp_ports=RELAY_PORTS),
    )


def run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[Ctx], Awaitable[None]],
    listen: str | list[str] = "::",
    allow: list[str] | None = None,
) -> None:
    run_node(tmp_path, monkeypatch, scenario, settings=settings_for(tmp_path, listen, allow))


async def ua(ctx: Ctx, name: str, local: str, register: bool = True) -> SipClient:
    server = (local, ctx.node.sip_port)
    client = SipClient(server, name, DEVICES[name][0], realm=REALM, local=local)
    await client.start()
    ctx.clients.append(client)
    if register:
        _, ok = await client.register(expires=300)
        assert ok.status == 200, f"{name} did not register over {local}: {ok.status} {ok.reason}"
    return client


async def options_answer(client: SipClient) -> SipResponse:
    call_id = f"opt-{tag()}@test"
    client.send_bytes(options(client, call_id))
    msg = await client.recv(lambda m: m.call_id == call_id, 2.0)
    assert isinstance(msg, SipResponse)
    return msg


def top_via(msg: Any) -> str:
    return str(msg.headers.get_all("Via")[0])


def connection(body: bytes) -> str:
    for line in body.decode().splitlines():
        if line.startswith("c="):
            return line
    raise AssertionError(f"no c= line in {body!r}")


@pytest.mark.parametrize("listen", ["::", ["0.0.0.0", "::"]])
def test_options_with_rport_on_both_families(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listen: str | list[str]
) -> None:
    async def scenario(ctx: Ctx) -> None:
        for local in (V4, V6):
            client = await ua(ctx, "alice", local, register=False)
            ok = await options_answer(client)
            assert ok.status == 200, (local, ok.status, ok.reason)
            via = top_via(ok)
            assert header_param(via, "received") == local  # bare, plain IPv4 for IPv4
            assert header_param(via, "rport") == str(client.port)
        status = await ctx.status()
        assert status["sip"]["advertised"] == {"ipv4": V4, "ipv6": V6}

    run(tmp_path, monkeypatch, scenario, listen=listen)


def test_options_on_an_ipv6_only_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        client = await ua(ctx, "alice", V6, register=False)
        ok = await options_answer(client)
        assert ok.status == 200 and header_param(top_via(ok), "received") == V6
        alice = await ua(ctx, "bob", V6)  # registers over IPv6
        assert alice.port

    run(tmp_path, monkeypatch, scenario, listen="::1", allow=["::1/128"])


def test_registrations_keep_one_address_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ua(ctx, "alice", V6)
        bob = await ua(ctx, "bob", V4)
        status = await ctx.status()
        sources = {r["device"]: r["source"] for r in status["registrations"]}
        assert sources == {"alice": f"[{V6}]:{alice.port}", "bob": f"{V4}:{bob.port}"}
        assert "::ffff:" not in str(status)

    run(tmp_path, monkeypatch, scenario)


async def _media_sockets(local: str) -> tuple[socket.socket, int]:
    family = socket.AF_INET6 if ":" in local else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((local, 0))
    sock.setblocking(False)
    return sock, int(sock.getsockname()[1])


async def _recv_rtp(sock: socket.socket, timeout: float = 3.0) -> bytes:
    loop = asyncio.get_running_loop()
    data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), timeout)
    return data


def _rtp(seq: int) -> bytes:
    # RTP version 2, PCMU, a sequence number, a timestamp, an SSRC, 160 bytes of silence
    return bytes([0x80, 0x00]) + seq.to_bytes(2, "big") + bytes(8) + b"\xff" * 160


@pytest.mark.parametrize(("caller_at", "callee_at"), [(V6, V4), (V4, V6), (V6, V6)])
def test_call_between_families(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caller_at: str, callee_at: str
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ua(ctx, "alice", caller_at)
        bob = await ua(ctx, "bob", callee_at)
        a_rtp, a_port = await _media_sockets(caller_at)
        b_rtp, b_port = await _media_sockets(callee_at)
        try:
            call = await alice.call("1002", body=sdp(a_port, host=caller_at))
            invite = await bob.recv_request("INVITE")
            # Bob sees the node in his own family: Via, Contact and SDP.
            bob_kind = "IP6" if ":" in callee_at else "IP4"
            bracket = f"[{callee_at}]" if ":" in callee_at else callee_at
            assert f" {bracket}:{ctx.node.sip_port};" in top_via(invite)
            assert f"@{bracket}:{ctx.node.sip_port}" in angle_uri(
                invite.headers.get("Contact") or ""
            )
            assert connection(invite.body) == f"c=IN {bob_kind} {callee_at}"
            cross = caller_at != callee_at
            # Across families the node anchors the media; within one, it stays direct.
            assert (media_port(invite.body) != a_port) is cross
            to_tag = tag()
            bob.answer(invite, 200, to_tag=to_tag, body=sdp(b_port, host=callee_at))
            ok = await call.final()
            assert ok.status == 200
            alice_kind = "IP6" if ":" in caller_at else "IP4"
            assert connection(ok.body) == f"c=IN {alice_kind} {caller_at}"
            assert (media_port(ok.body) != b_port) is cross
            call.ack(ok)
            await bob.recv_request("ACK")
            # RTP each way reaches the other phone (through the bridge when cross).
            to_bob = (caller_at, media_port(ok.body))
            to_alice = (callee_at, media_port(invite.body))
            for seq in range(3):
                a_rtp.sendto(_rtp(seq), to_bob)
                b_rtp.sendto(_rtp(100 + seq), to_alice)
            got_b = await _recv_rtp(b_rtp)
            got_a = await _recv_rtp(a_rtp)
            assert got_b[2:4] == (0).to_bytes(2, "big") and got_a[2:4] == (100).to_bytes(2, "big")
            status = await ctx.status()
            bridge = status.get("media_bridge") or {"streams": 0}
            assert bridge["streams"] == (1 if cross else 0)
            assert call.dialog is not None
            alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
            bye = await bob.recv_request("BYE")
            bob.answer(bye, 200, to_tag=to_tag)
            assert (await alice.recv_response("BYE")).status == 200
            await asyncio.sleep(0.2)
            bridge = (await ctx.status()).get("media_bridge") or {"streams": 0}
            assert bridge["streams"] == 0  # the relay's sockets are gone with the call
        finally:
            a_rtp.close()
            b_rtp.close()

    run(tmp_path, monkeypatch, scenario)


@pytest.mark.parametrize(
    ("allow", "admitted", "refused"),
    [(["::1/128"], V6, V4), (["127.0.0.0/8"], V4, V6)],
)
def test_allow_list_on_both_stacks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    allow: list[str],
    admitted: str,
    refused: str,
) -> None:
    async def scenario(ctx: Ctx) -> None:
        inside = await ua(ctx, "alice", admitted, register=False)
        assert (await options_answer(inside)).status == 200
        outside = await ua(ctx, "bob", refused, register=False)
        outside.send_bytes(options(outside))
        assert await outside.expect_nothing(wait=0.5) == []
        status = await ctx.status()
        assert status["counters"]["rejections"]["sip"]["acl"] >= 1

    run(tmp_path, monkeypatch, scenario, allow=allow)
