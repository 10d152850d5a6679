"""A whole offhook node in-process, driven over real loopback UDP/TCP sockets.

Each test builds ``Settings`` (SQLite in ``tmp_path``, SIP and admin on free
loopback ports), loads a plan with ``offhook.db.plan.load_plan``, starts
``offhook.app.run(settings, ready)`` as a task inside ``asyncio.run`` and
stops it by setting the node's ``stopping`` event. ``run`` keeps its ``Node``
to itself, so the test swaps ``offhook.app.Node`` for a subclass that records
the instance (no change to app.py). The test UAs are ``sipclient.SipClient``:
raw messages out, ``parse_message`` on what comes back, so every assertion is
on a real wire message. CDRs are read with ``CdrRepository`` after the node
stopped (it flushes its queue on the way out).

Every wait is bounded (``SipClient.recv`` timeouts, ``asyncio.wait_for``
around the scenario and the shutdown).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sipclient import HOST, Call, SipClient, angle_uri, branch, header_param, is_request, sdp, tag

from offhook import app
from offhook.config import (
    AdminSettings,
    AuthSettings,
    DatabaseSettings,
    NodeSettings,
    SccpSettings,
    Settings,
    SipSettings,
    TftpSettings,
)
from offhook.db.cdr import CdrRepository, CdrRow
from offhook.db.engine import create_engine_for
from offhook.db.plan import load_plan
from offhook.sip.auth import parse_digest
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from support.ports import free_port

REALM = "offhook.test"
NODE_NAME = "itest"
SCENARIO_TIMEOUT = 30.0

# name -> (password, DN, display)
DEVICES: dict[str, tuple[str, str, str]] = {
    "alice": ("alice-Secret-1", "1001", "Alice Smith"),
    "bob": ("bob-Secret-1", "1002", "Bob Jones"),
    "carol": ("carol-Secret-1", "1003", "Carol"),
    "frank": ("frank-Secret-1", "1004", "Frank"),  # never registers
    "dave": ("dave-Secret-1", "2000", "Sales Dave"),  # dave and erin share 2000
    "erin": ("erin-Secret-1", "2000", "Sales Erin"),
}


def plan() -> dict[str, Any]:
    return {
        "devices": [
            {
                "name": name,
                "protocol": "sip",
                "password": pw,
                "lines": [{"dn": dn, "display": display}],
            }
            for name, (pw, dn, display) in DEVICES.items()
        ]
    }


class RecordingNode(app.Node):
    """``app.Node`` that remembers every instance, so the test can stop the node."""

    instances: list[app.Node] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingNode.instances.append(self)


@dataclass
class Ctx:
    """What a scenario gets: the node, its addresses and UA factories."""

    settings: Settings
    node: app.Node
    clients: list[SipClient] = field(default_factory=list)

    @property
    def sip(self) -> tuple[str, int]:
        return (HOST, self.node.sip_port)

    async def ua(
        self,
        name: str,
        *,
        transport: str = "udp",
        password: str | None = None,
        display: str | None = None,
        register: bool = False,
    ) -> SipClient:
        pw = password if password is not None else DEVICES.get(name, ("x",))[0]
        client = SipClient(self.sip, name, pw, realm=REALM, transport=transport, display=display)
        await client.start()
        self.clients.append(client)
        if register:
            _, ok = await client.register(expires=300)
            assert ok.status == 200, f"{name} did not register: {ok.status} {ok.reason}"
        return client

    async def status(self) -> dict[str, Any]:
        url = f"http://{HOST}:{self.node.admin_port}/status"

        def get() -> dict[str, Any]:
            with urllib.request.urlopen(url, timeout=3.0) as resp:
                data: dict[str, Any] = json.loads(resp.read())
            return data

        return await asyncio.to_thread(get)


@dataclass
class Result:
    settings: Settings

    def cdrs(self) -> list[CdrRow]:
        engine = create_engine_for(self.settings.database.url)
        try:
            return CdrRepository(engine).query()
        finally:
            engine.dispose()


def make_settings(tmp_path: Path, **sip: Any) -> Settings:
    return Settings(
        node=NodeSettings(name=NODE_NAME),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'offhook.db'}"),
        sip=SipSettings(
            listen=HOST,
            port=free_port(),
            allow=["127.0.0.0/8"],
            realm=REALM,
            **sip,
        ),
        admin=AdminSettings(listen=HOST, port=free_port()),
        auth=AuthSettings(secret="integration-test-secret"),
        # Every listener on a free loopback port: nodes side by side, no root needed.
        sccp=SccpSettings(listen=HOST, port=free_port(), allow=["127.0.0.0/8"]),
        tftp=TftpSettings(
            listen=HOST,
            port=free_port(),
            http_port=free_port(),
            allow=["127.0.0.0/8"],
            root=str(tmp_path / "tftproot"),
        ),
    )


def run_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[Ctx], Awaitable[None]],
    settings: Settings | None = None,
    **sip: Any,
) -> Result:
    """Load the plan, run a node, run ``scenario`` against it, stop the node.

    ``settings``: the node's own (default: ``make_settings`` with ``sip`` keys).
    """
    settings = settings or make_settings(tmp_path, **sip)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan(), sort_keys=False))
    load_plan(plan_path, settings.database.url, REALM)
    monkeypatch.setattr(RecordingNode, "instances", [])
    monkeypatch.setattr(app, "Node", RecordingNode)

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(app.run(settings, ready))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=15.0, return_when="FIRST_COMPLETED")
        if waiter not in done:
            waiter.cancel()
            if task.done():
                task.result()  # raises why the node did not start
            task.cancel()
            raise TimeoutError("node not ready in 15 s")
        node = RecordingNode.instances[-1]
        ctx = Ctx(settings, node)
        try:
            await asyncio.wait_for(scenario(ctx), SCENARIO_TIMEOUT)
        finally:
            for client in ctx.clients:
                await client.close()
            node.stopping.set()
            await asyncio.wait_for(task, 15.0)

    asyncio.run(main())
    return Result(settings)


def options(client: SipClient, call_id: str | None = None) -> bytes:
    return client.build(
        "OPTIONS",
        client.server_uri,
        from_=client.from_value(),
        to=f"<{client.server_uri}>",
        call_id=call_id or f"opt-{tag()}@{HOST}",
        cseq=1,
        extra=[("Accept", "application/sdp")],
    )


async def options_ok(client: SipClient, timeout: float = 2.0) -> SipResponse:
    call_id = f"opt-{tag()}@{HOST}"
    client.send_bytes(options(client, call_id))
    msg = await client.recv(lambda m: m.call_id == call_id, timeout)
    assert isinstance(msg, SipResponse) and msg.status == 200, msg
    return msg


def media_port(body: bytes) -> int:
    for line in body.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no m=audio in {body!r}")


def direction(body: bytes) -> str:
    for line in body.decode().splitlines():
        if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return line[2:]
    return "sendrecv"


def statuses(msgs: list[SipMessage]) -> list[int]:
    return [m.status for m in msgs if isinstance(m, SipResponse)]


# --------------------------------------------------------------------------
# transport: OPTIONS, malformed input, TCP framing and connection hygiene


def test_options_and_malformed_udp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        ua = await ctx.ua("probe")
        ok = await options_ok(ua)
        allow = {m.strip() for m in (ok.headers.get("Allow") or "").split(",")}
        assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"} <= allow
        assert ok.to_tag  # RFC 3261 §8.2.6.2

        # Answered without a transaction (RFC 3261 §8.2.7): nothing kept, and a
        # retransmission gets the same answer, To tag included.
        again = options(ua, "opt-retransmitted@test")
        answers = []
        for _ in range(3):
            ua.send_bytes(again)
            answers.append(await ua.recv(lambda m: m.call_id == "opt-retransmitted@test", 2.0))
        assert {getattr(a, "to_tag", None) for a in answers} == {answers[0].to_tag}
        for method, status in (("MESSAGE", 405), ("FOO", 501), ("SUBSCRIBE", 489)):
            ua.send_bytes(
                ua.build(
                    method,
                    ua.server_uri,
                    from_=ua.from_value(),
                    to=f"<{ua.server_uri}>",
                    call_id=f"{method}@test",
                    cseq=1,
                )
            )
            got = await ua.recv(lambda m, c=f"{method}@test": m.call_id == c, 2.0)
            assert isinstance(got, SipResponse) and got.status == status, got
        counters = (await ctx.status())["counters"]
        assert counters["transactions"] == 0, counters
        assert counters["sip"]["stateless_answers"] >= 6, counters

        # Unparseable header line, but Via/Call-ID/CSeq readable: 400 back.
        bad = options(ua, "bad-1@test").replace(
            b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nthis line has no colon\r\n"
        )
        ua.send_bytes(bad)
        resp = await ua.recv(lambda m: m.call_id == "bad-1@test", 2.0)
        assert isinstance(resp, SipResponse) and resp.status == 400
        assert resp.cseq == (1, "OPTIONS")
        assert header_param(resp.top_via, "branch") == header_param(
            bad.decode().split("Via: ", 1)[1].split("\r\n", 1)[0], "branch"
        )

        # Garbage: no answer at all, and the node still serves afterwards.
        ua.send_bytes(b"\x00\xff garbage \x16\x03\x01 not sip at all\r\n\r\n")
        ua.send_bytes(b"INVITE\r\n\r\n")
        assert await ua.expect_nothing(wait=0.5) == []
        await options_ok(ua)

    run_node(tmp_path, monkeypatch, scenario)


def test_oversize_datagram_answered_513(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        ua = await ctx.ua("probe")
        big = options(ua, "big@test").replace(
            b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nX-Pad: " + b"a" * 5000 + b"\r\n"
        )
        assert len(big) > 4096
        ua.send_bytes(big)
        # RFC 3261 §21.5.14: 513 Message Too Large, nothing else.
        got = await ua.expect_nothing(wait=0.5)
        assert [getattr(m, "status", None) for m in got] == [513], got
        await options_ok(ua)
        status = await ctx.status()
        assert status["counters"]["rejections"], status["counters"]

    run_node(tmp_path, monkeypatch, scenario, max_message=4096)


def test_tcp_framing_and_connection_hygiene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        # One message split byte by byte.
        slow = await ctx.ua("slow", transport="tcp")
        data = options(slow, "bytewise@test")
        for i in range(len(data)):
            slow.send_bytes(data[i : i + 1])
            await asyncio.sleep(0.001)
        resp = await slow.recv(lambda m: m.call_id == "bytewise@test", 3.0)
        assert isinstance(resp, SipResponse) and resp.status == 200

        # Two messages in one segment: two answers, in order.
        pair = await ctx.ua("pair", transport="tcp")
        pair.send_bytes(options(pair, "first@test") + options(pair, "second@test"))
        first = await pair.recv(lambda m: m.call_id == "first@test", 2.0)
        second = await pair.recv(lambda m: m.call_id == "second@test", 2.0)
        assert isinstance(first, SipResponse) and first.status == 200
        assert isinstance(second, SipResponse) and second.status == 200

        # A bad Content-Length closes that connection only.
        bystander = await ctx.ua("bystander", transport="tcp")
        await options_ok(bystander)
        broken = await ctx.ua("broken", transport="tcp")
        broken.send_bytes(
            options(broken, "badlen@test").replace(b"Content-Length: 0", b"Content-Length: abc")
        )
        assert await broken.wait_closed(3.0), "connection with a bad Content-Length kept open"
        huge = await ctx.ua("huge", transport="tcp")
        huge.send_bytes(
            options(huge, "hugelen@test").replace(
                b"Content-Length: 0", b"Content-Length: 99999999999"
            )
        )
        assert await huge.wait_closed(3.0), "connection with a huge Content-Length kept open"
        await options_ok(bystander)
        await options_ok(pair)

        # RFC 5626 §4.4.1: a CRLFCRLF ping gets a CRLF pong, the connection stays.
        bystander.send_bytes(b"\r\n\r\n")
        for _ in range(20):
            if bystander.pongs:
                break
            await asyncio.sleep(0.05)
        assert bystander.pongs == 1
        await options_ok(bystander)

        # A half-closed connection is closed by the server.
        half = await ctx.ua("half", transport="tcp")
        await options_ok(half)
        half.half_close()
        assert await half.wait_closed(3.0), "half-closed connection kept open"
        await options_ok(bystander)

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# REGISTER


def _challenge_shape(resp: SipResponse) -> tuple[Any, ...]:
    value = resp.headers.get("WWW-Authenticate")
    scheme, params = parse_digest(value) if value else ("", {})
    return (
        resp.status,
        resp.reason,
        sorted(n.lower() for n, _ in resp.headers if n.lower() not in ("date",)),
        scheme,
        sorted(params),
        params.get("realm"),
        params.get("algorithm"),
        params.get("qop"),
        params.get("opaque"),
    )


def test_register_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice")
        challenge, ok = await alice.register(expires=300)
        assert challenge.status == 401
        assert (challenge.headers.get("WWW-Authenticate") or "").startswith("Digest ")
        assert ok.status == 200
        contacts = ok.headers.get_all("Contact")
        assert len(contacts) == 1
        assert angle_uri(contacts[0]) == alice.contact_uri
        assert header_param(contacts[0], "expires") in {"300", "299"}

        status = await ctx.status()
        regs = [r for r in status["registrations"] if r["device"] == "alice"]
        assert len(regs) == 1, status["registrations"]
        assert angle_uri(regs[0]["contact"]) == alice.contact_uri
        assert regs[0]["source"] == f"{HOST}:{alice.port}"
        assert regs[0]["transport"] == "udp"
        assert 0 < regs[0]["expires_in"] <= 300

        # Wrong password and unknown user: challenged alike, then the same 403.
        wrong = await ctx.ua("bob", password="not-the-password")
        first, bad_pw = await wrong.register()
        nobody = await ctx.ua("nobody", password="whatever")
        first_nobody, unknown = await nobody.register()
        assert bad_pw.status == 403 and unknown.status == 403
        assert _challenge_shape(bad_pw) == _challenge_shape(unknown)
        assert _challenge_shape(first) == _challenge_shape(first_nobody)
        assert first.status == 401

        # AOR by DN (To: 1002 registered with bob's credentials).
        bob = await ctx.ua("bob")
        _, ok = await bob.register(aor="1002")
        assert ok.status == 200, (ok.status, ok.reason)
        status = await ctx.status()
        bob_regs = [r for r in status["registrations"] if r["device"] == "bob"]
        assert len(bob_regs) == 1 and "1002" in bob_regs[0]["aor"], bob_regs

        # Longer than max_expires (3600) is shortened, not refused.
        _, long = await bob.register(expires=99999, aor="1002")
        assert long.status == 200
        assert [header_param(c, "expires") for c in long.headers.get_all("Contact")] in (
            ["3600"],
            ["3599"],
        )

        # 423 below min_expires, with Min-Expires.
        _, brief = await bob.register(expires=10, aor="1002")
        assert brief.status == 423
        assert brief.headers.get("Min-Expires") == "60"

        # Unregister (Expires: 0): 200 without that contact, binding gone.
        _, gone = await alice.register(expires=0)
        assert gone.status == 200
        assert all(angle_uri(c) != alice.contact_uri for c in gone.headers.get_all("Contact"))
        status = await ctx.status()
        assert not [r for r in status["registrations"] if r["device"] == "alice"]

        # Contact: * removes every binding of the AOR.
        carol = await ctx.ua("carol", register=True)
        other = f"<sip:carol@{HOST}:{carol.port + 1}>"
        _, two = await carol.register(contact=other)
        assert two.status == 200 and len(two.headers.get_all("Contact")) == 2
        _, star = await carol.register(expires=0, contact="*")
        assert star.status == 200
        assert star.headers.get_all("Contact") == []
        status = await ctx.status()
        assert not [r for r in status["registrations"] if r["device"] == "carol"]

    run_node(tmp_path, monkeypatch, scenario)


def test_unauthenticated_invite_never_routed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        bob = await ctx.ua("bob", register=True)
        # No credentials at all, from a UA that never registered.
        intruder = await ctx.ua("intruder")
        call = await intruder.call("1002", body=sdp(40000), authenticate=False)
        resp = await call.final()
        assert resp.status == 407
        assert (resp.headers.get("Proxy-Authenticate") or "").startswith("Digest ")
        call.ack_failure(resp)
        # A known device name with the wrong password.
        liar = await ctx.ua("alice", password="wrong-password")
        call = await liar.call("1002", body=sdp(40002))
        resp = await call.final()
        assert resp.status == 403
        call.ack_failure(resp)
        # An unknown user answering the challenge.
        nobody = await ctx.ua("nobody", password="x")
        call = await nobody.call("1002", body=sdp(40004))
        resp = await call.final()
        assert resp.status == 403
        call.ack_failure(resp)
        assert await bob.expect_nothing(is_request("INVITE"), wait=0.8) == []
        assert (await ctx.status())["calls"].get("calls", []) == []

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# calls between registered test UAs

A_PORT = 40000  # the caller's RTP port in its SDP
B_PORT = 40010  # the callee's


async def place_call(
    caller: SipClient, callee: SipClient, dn: str, body: bytes | None = None
) -> tuple[Call, SipRequest]:
    """Caller INVITEs ``dn`` (answering the 407); return the call and the callee's INVITE."""
    call = await caller.call(dn, body=sdp(A_PORT) if body is None else body)
    invite = await callee.recv_request("INVITE")
    return call, invite


@dataclass
class Established:
    call: Call
    invite: SipRequest  # the INVITE the callee got
    callee_tag: str
    ok: SipResponse  # the 200 the caller got

    def callee_dialog(self, callee: SipClient) -> Any:
        return callee.uas_dialog(self.invite, self.callee_tag)


async def establish(caller: SipClient, callee: SipClient, dn: str) -> Established:
    call, invite = await place_call(caller, callee, dn)
    to_tag = tag()
    callee.answer(invite, 180, to_tag=to_tag)
    await call.provisional(180)
    callee.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
    ok = await call.final()
    assert ok.status == 200, (ok.status, ok.reason)
    call.ack(ok)
    await callee.recv_request("ACK")
    return Established(call, invite, to_tag, ok)


def test_basic_call_bye_either_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True, display="Mallory Spoofed")
        bob = await ctx.ua("bob", register=True)

        call, invite = await place_call(alice, bob, "1002")
        # The INVITE goes to bob's registered contact, with alice's offer.
        assert invite.uri == bob.contact_uri
        assert invite.content_type() == "application/sdp"
        assert media_port(invite.body) == A_PORT
        assert f"c=IN IP4 {HOST}" in invite.body.decode()
        # Calling party number and name: alice's DN and display from the plan.
        from_ = invite.headers.get("From") or ""
        assert angle_uri(from_).startswith("sip:1001@"), from_
        assert from_.startswith('"Alice Smith" '), from_
        assert angle_uri(invite.headers.get("To") or "").startswith("sip:1002@")

        to_tag = tag()
        bob.answer(invite, 180, to_tag=to_tag)
        ringing = await call.provisional(180)
        assert ringing.to_tag
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
        ok = await call.final()
        assert ok.status == 200
        assert ok.content_type() == "application/sdp"
        assert media_port(ok.body) == B_PORT
        assert ok.headers.get("Contact")
        call.ack(ok)
        ack = await bob.recv_request("ACK")
        assert ack.call_id == invite.call_id
        assert ack.cseq == (invite.cseq[0], "ACK")
        calls = (await ctx.status())["calls"].get("calls", [])
        assert len(calls) == 1, calls

        # BYE from the caller.
        assert call.dialog is not None
        alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
        bye = await bob.recv_request("BYE")
        bob.answer(bye, 200, to_tag=to_tag)
        bye_ok = await alice.recv_response("BYE")
        assert bye_ok.status == 200

        # Second call; BYE from the callee this time.
        est = await establish(alice, bob, "1002")
        dialog = est.callee_dialog(bob)
        bob.send_bytes(bob.in_dialog(dialog, "BYE"))
        bye = await alice.recv_request("BYE")
        assert bye.call_id == est.call.call_id
        alice.answer(bye, 200, to_tag=est.call.from_tag)
        assert (await bob.recv_response("BYE")).status == 200
        await asyncio.sleep(0.4)  # let the CDR writer run once
        assert (await ctx.status())["calls"].get("calls", []) == []

    result = run_node(tmp_path, monkeypatch, scenario)
    rows = result.cdrs()
    assert len(rows) == 2, rows
    for row in rows:
        assert (row.calling, row.called) == ("1001", "1002")
        assert (row.calling_device, row.called_device) == ("alice", "bob")
        assert row.cause == 16
        assert row.answer is not None
        assert row.node == NODE_NAME


def test_busy_unknown_unregistered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)

        call, invite = await place_call(alice, bob, "1002")
        bob.answer(invite, 486, to_tag=tag())
        final = await call.final()
        assert final.status == 486
        call.ack_failure(final)
        ack = await bob.recv_request("ACK")  # the node ACKs bob's 486 (§17.1.1.3)
        assert ack.cseq == (invite.cseq[0], "ACK")

        call = await alice.call("9999", body=sdp(A_PORT))
        final = await call.final()
        assert final.status == 404
        call.ack_failure(final)

        call = await alice.call("1004", body=sdp(A_PORT))  # frank never registered
        final = await call.final()
        assert final.status == 480
        call.ack_failure(final)
        assert await bob.expect_nothing(is_request("INVITE"), wait=0.3) == []

    rows = run_node(tmp_path, monkeypatch, scenario).cdrs()
    by_called = {r.called: r for r in rows}
    assert set(by_called) == {"1002", "9999", "1004"}, rows
    assert by_called["1002"].cause == 17
    assert by_called["9999"].cause == 1
    assert by_called["1004"].cause == 20
    assert all(r.answer is None for r in rows)


def test_shared_line_fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        dave = await ctx.ua("dave", register=True)
        erin = await ctx.ua("erin", register=True)

        call = await alice.call("2000", body=sdp(A_PORT))
        inv_d = await dave.recv_request("INVITE")
        inv_e = await erin.recv_request("INVITE")
        assert inv_d.uri == dave.contact_uri and inv_e.uri == erin.contact_uri
        assert media_port(inv_d.body) == media_port(inv_e.body) == A_PORT
        tag_d, tag_e = tag(), tag()
        dave.answer(inv_d, 180, to_tag=tag_d)
        erin.answer(inv_e, 180, to_tag=tag_e)
        await call.provisional(180)
        dave.answer(inv_d, 200, to_tag=tag_d, body=sdp(B_PORT))
        ok = await call.final()
        assert ok.status == 200 and media_port(ok.body) == B_PORT
        call.ack(ok)
        await dave.recv_request("ACK")

        cancel = await erin.recv_request("CANCEL")
        assert cancel.call_id == inv_e.call_id
        assert cancel.cseq == (inv_e.cseq[0], "CANCEL")
        assert cancel.branch == inv_e.branch
        reason = cancel.headers.get("Reason") or ""
        assert reason.startswith("SIP;cause=200"), reason
        erin.answer(cancel, 200, to_tag=tag_e)
        erin.answer(inv_e, 487, to_tag=tag_e)
        ack = await erin.recv_request("ACK")
        assert ack.cseq == (inv_e.cseq[0], "ACK")
        assert await erin.expect_nothing(wait=0.3) == []

        assert call.dialog is not None
        alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
        bye = await dave.recv_request("BYE")
        dave.answer(bye, 200, to_tag=tag_d)
        assert (await alice.recv_response("BYE")).status == 200
        assert [m for m in erin.inbox if isinstance(m, SipRequest) and m.method == "BYE"] == []

    rows = run_node(tmp_path, monkeypatch, scenario).cdrs()
    assert len(rows) == 1, rows
    assert rows[0].called_device == "dave" and rows[0].cause == 16


def test_caller_cancels_while_ringing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call, invite = await place_call(alice, bob, "1002")
        to_tag = tag()
        bob.answer(invite, 180, to_tag=to_tag)
        await call.provisional(180)

        call.cancel()
        cancel_ok = await alice.recv_response("CANCEL")
        assert cancel_ok.status == 200
        terminated = await call.final()
        assert terminated.status == 487
        call.ack_failure(terminated)

        cancel = await bob.recv_request("CANCEL")
        assert cancel.branch == invite.branch
        bob.answer(cancel, 200, to_tag=to_tag)
        bob.answer(invite, 487, to_tag=to_tag)
        await bob.recv_request("ACK")
        # Our ACK ended the INVITE server transaction: no 487 retransmission (Timer G).
        late = await alice.expect_nothing(lambda m: m.call_id == call.call_id, wait=1.2)
        assert late == [], statuses(late)

    rows = run_node(tmp_path, monkeypatch, scenario).cdrs()
    assert len(rows) == 1 and rows[0].answer is None, rows
    assert rows[0].cause == 16, rows


def test_hold_reinvite_relayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold is call control's (core.features.hold): the holder's sendonly offer is
    answered inactive by offhook, the held phone is offered a sendonly stream
    (music on hold from the media server, or the holder's own offer without
    one); resume sends the holder's offer to the held phone again."""

    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        est = await establish(alice, bob, "1002")
        assert est.call.dialog is not None

        hold = est.call.dialog
        alice.send_bytes(alice.in_dialog(hold, "INVITE", body=sdp(A_PORT, "sendonly", version=2)))
        ok = await alice.recv_response("INVITE")
        assert ok.status == 200 and ok.cseq == (hold.cseq, "INVITE")
        assert direction(ok.body) == "inactive"
        alice.send_bytes(alice.in_dialog(hold, "ACK", cseq=hold.cseq))
        moh = await bob.recv_request("INVITE")
        assert moh.to_tag == est.callee_tag  # in bob's dialog
        assert direction(moh.body) == "sendonly"
        bob.answer(moh, 200, to_tag=est.callee_tag, body=sdp(B_PORT, "recvonly", version=2))
        await bob.recv_request("ACK")
        # Resume: alice's offer goes to bob, bob's answer back to alice.
        alice.send_bytes(alice.in_dialog(hold, "INVITE", body=sdp(A_PORT, version=3)))
        resume = await bob.recv_request("INVITE")
        assert direction(resume.body) == "sendrecv" and media_port(resume.body) == A_PORT
        bob.answer(resume, 200, to_tag=est.callee_tag, body=sdp(B_PORT, version=3))
        await bob.recv_request("ACK")
        ok = await alice.recv_response("INVITE")
        assert ok.status == 200 and media_port(ok.body) == B_PORT
        assert direction(ok.body) == "sendrecv"
        alice.send_bytes(alice.in_dialog(hold, "ACK", cseq=hold.cseq))

    run_node(tmp_path, monkeypatch, scenario)


def test_reinvite_glare_491(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        est = await establish(alice, bob, "1002")
        assert est.call.dialog is not None
        a_dialog = est.call.dialog
        b_dialog = est.callee_dialog(bob)

        # New media offers (not holds: those are answered by call control itself).
        alice.send_bytes(alice.in_dialog(a_dialog, "INVITE", body=sdp(A_PORT + 2, None, 1, 2)))
        from_alice = await bob.recv_request("INVITE")
        assert media_port(from_alice.body) == A_PORT + 2
        # bob offers at the same time: glare on bob's leg.
        glare_branch = branch()
        bob.send_bytes(
            bob.in_dialog(
                b_dialog, "INVITE", body=sdp(B_PORT + 2, None, 1, 2), branch_=glare_branch
            )
        )
        pending = await bob.recv_response("INVITE")
        assert pending.status == 491, (pending.status, pending.reason)
        assert pending.cseq == (b_dialog.cseq, "INVITE")
        # ACK the 491 in its transaction (RFC 3261 §17.1.1.3: same branch)
        bob.send_bytes(bob.in_dialog(b_dialog, "ACK", cseq=b_dialog.cseq, branch_=glare_branch))
        # The first offer completes normally.
        bob.answer(from_alice, 200, to_tag=est.callee_tag, body=sdp(B_PORT + 4, None, 1, 2))
        await bob.recv_request("ACK")
        ok = await alice.recv_response("INVITE")
        assert ok.status == 200 and media_port(ok.body) == B_PORT + 4
        alice.send_bytes(alice.in_dialog(a_dialog, "ACK", cseq=a_dialog.cseq))
        # bob retries afterwards and succeeds (RFC 3261 §14.1).
        bob.send_bytes(bob.in_dialog(b_dialog, "INVITE", body=sdp(B_PORT + 6, None, 1, 3)))
        to_alice = await alice.recv_request("INVITE")
        assert media_port(to_alice.body) == B_PORT + 6
        alice.answer(to_alice, 200, to_tag=est.call.from_tag, body=sdp(A_PORT + 4, None, 1, 3))
        await alice.recv_request("ACK")
        ok = await bob.recv_response("INVITE")
        assert ok.status == 200 and media_port(ok.body) == A_PORT + 4

    run_node(tmp_path, monkeypatch, scenario)


def test_delayed_offer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call, invite = await place_call(alice, bob, "1002", body=b"")
        assert invite.body == b""
        to_tag = tag()
        bob.answer(invite, 180, to_tag=to_tag)
        await call.provisional(180)
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))  # the offer
        ok = await call.final()
        assert ok.status == 200 and media_port(ok.body) == B_PORT
        call.ack(ok, body=sdp(A_PORT))  # the answer
        ack = await bob.recv_request("ACK")
        assert ack.content_type() == "application/sdp"
        assert media_port(ack.body) == A_PORT

    run_node(tmp_path, monkeypatch, scenario)


def test_2xx_retransmitted_until_ack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call, invite = await place_call(alice, bob, "1002")
        to_tag = tag()
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
        first = await call.final()
        assert first.status == 200
        await asyncio.sleep(1.1)  # T1 = 0.5: one retransmission by now (§13.3.1.4)
        again = [m for m in alice.inbox if m.call_id == call.call_id]
        assert statuses(again) and set(statuses(again)) == {200}, statuses(again)
        assert all(m.to_tag == first.to_tag for m in again)
        alice.inbox.clear()
        call.ack(first)
        await bob.recv_request("ACK")
        late = await alice.expect_nothing(lambda m: m.call_id == call.call_id, wait=1.2)
        assert late == [], statuses(late)

    run_node(tmp_path, monkeypatch, scenario)


def test_timer_b_408(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call, _ = await place_call(alice, bob, "1002")
        # bob never answers; Timer B = 64*T1 = 3.2 s.
        final = await call.final(timeout=8.0)
        assert final.status == 408, (final.status, final.reason)
        call.ack_failure(final)
        resent = [m for m in bob.inbox if isinstance(m, SipRequest) and m.method == "INVITE"]
        assert resent, "Timer A: the INVITE to bob was never retransmitted"

    rows = run_node(tmp_path, monkeypatch, scenario, t1=0.05).cdrs()
    assert len(rows) == 1 and rows[0].answer is None, rows
    assert rows[0].cause == 102, rows  # Q.850 recovery on timer expiry


def test_call_over_tcp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", transport="tcp", register=True)
        bob = await ctx.ua("bob", transport="tcp", register=True)
        status = await ctx.status()
        assert {r["transport"] for r in status["registrations"]} == {"tcp"}
        # bob's INVITE arrives on the connection bob registered over.
        est = await establish(alice, bob, "1002")
        assert est.invite.top_via.startswith("SIP/2.0/TCP ")
        assert est.call.dialog is not None
        alice.send_bytes(alice.in_dialog(est.call.dialog, "BYE"))
        bye = await bob.recv_request("BYE")
        bob.answer(bye, 200, to_tag=est.callee_tag)
        assert (await alice.recv_response("BYE")).status == 200

    rows = run_node(tmp_path, monkeypatch, scenario).cdrs()
    assert len(rows) == 1 and rows[0].cause == 16, rows


def test_invite_retransmission_and_stray_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call, invite = await place_call(alice, bob, "1002")
        alice.send_bytes(call.invite_bytes())  # the same INVITE again (same branch)
        alice.send_bytes(call.invite_bytes())
        to_tag = tag()
        bob.answer(invite, 180, to_tag=to_tag)
        await asyncio.sleep(0.3)
        invites = [m for m in bob.inbox if isinstance(m, SipRequest) and m.method == "INVITE"]
        assert {m.call_id for m in invites} <= {invite.call_id}, "a retransmission forked a call"
        assert len((await ctx.status())["calls"]["calls"]) == 1
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
        ok = await call.final()
        call.ack(ok)
        await bob.recv_request("ACK")

        # A BYE for a dialog that does not exist: 481, the call stays up.
        stray = alice.build(
            "BYE",
            f"sip:offhook@{HOST}:{ctx.node.sip_port}",
            from_=alice.from_value(),
            to=f"<sip:1002@{HOST}>;tag=nosuchtag",
            call_id=call.call_id,
            cseq=5,
            contact=None,
        )
        alice.send_bytes(stray)
        resp = await alice.recv_response("BYE")
        assert resp.status == 481
        assert len((await ctx.status())["calls"]["calls"]) == 1
        assert await bob.expect_nothing(is_request("BYE"), wait=0.3) == []

    run_node(tmp_path, monkeypatch, scenario)


def test_cancel_before_callee_provisional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call, invite = await place_call(alice, bob, "1002")
        call.cancel()  # bob has sent nothing yet
        assert (await alice.recv_response("CANCEL")).status == 200
        terminated = await call.final()
        assert terminated.status == 487
        call.ack_failure(terminated)
        # RFC 3261 §9.1: the node may CANCEL bob only after a provisional.
        to_tag = tag()
        bob.answer(invite, 180, to_tag=to_tag)
        cancel = await bob.recv_request("CANCEL")
        assert cancel.branch == invite.branch
        bob.answer(cancel, 200, to_tag=to_tag)
        bob.answer(invite, 487, to_tag=to_tag)
        await bob.recv_request("ACK")
        await asyncio.sleep(0.2)
        assert (await ctx.status())["calls"]["calls"] == []

    rows = run_node(tmp_path, monkeypatch, scenario).cdrs()
    assert len(rows) == 1 and rows[0].answer is None, rows


@pytest.mark.parametrize(
    "ring_first",
    [
        pytest.param(True, id="after-180"),
        pytest.param(False, id="no-provisional"),
    ],
)
def test_shared_line_both_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ring_first: bool
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        dave = await ctx.ua("dave", register=True)
        erin = await ctx.ua("erin", register=True)
        call = await alice.call("2000", body=sdp(A_PORT))
        inv_d = await dave.recv_request("INVITE")
        inv_e = await erin.recv_request("INVITE")
        tag_d, tag_e = tag(), tag()
        if ring_first:
            dave.answer(inv_d, 180, to_tag=tag_d)
            erin.answer(inv_e, 180, to_tag=tag_e)
            await call.provisional(180)
            await asyncio.sleep(0.1)
        # Both pick up at once: one wins, the other is ACKed and hung up.
        dave.answer(inv_d, 200, to_tag=tag_d, body=sdp(B_PORT))
        erin.answer(inv_e, 200, to_tag=tag_e, body=sdp(B_PORT + 2))
        ok = await call.final()
        assert ok.status == 200
        call.ack(ok)
        winner, loser, loser_tag = (
            (dave, erin, tag_e) if media_port(ok.body) == B_PORT else (erin, dave, tag_d)
        )
        await winner.recv_request("ACK")
        await loser.recv_request("ACK")
        bye = await loser.recv_request("BYE")
        loser.answer(bye, 200, to_tag=loser_tag)
        assert await winner.expect_nothing(is_request("BYE"), wait=0.3) == []
        late = await alice.expect_nothing(lambda m: m.call_id == call.call_id, wait=0.1)
        assert statuses(late) in ([], [200]), statuses(late)
        assert len((await ctx.status())["calls"]["calls"]) == 1

    run_node(tmp_path, monkeypatch, scenario)


def test_bye_from_both_sides_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        est = await establish(alice, bob, "1002")
        assert est.call.dialog is not None
        alice.send_bytes(alice.in_dialog(est.call.dialog, "BYE"))
        bob.send_bytes(bob.in_dialog(est.callee_dialog(bob), "BYE"))
        # Each side's BYE is answered (200, or 481 once the dialog is gone).
        assert (await alice.recv_response("BYE")).status in (200, 481)
        assert (await bob.recv_response("BYE")).status in (200, 481)
        for ua, to_tag in ((alice, est.call.from_tag), (bob, est.callee_tag)):
            for m in [m for m in ua.inbox if isinstance(m, SipRequest) and m.method == "BYE"]:
                ua.answer(m, 200, to_tag=to_tag)
        await asyncio.sleep(0.3)
        assert (await ctx.status())["calls"]["calls"] == []
        await options_ok(alice)

    rows = run_node(tmp_path, monkeypatch, scenario).cdrs()
    assert len(rows) == 1 and rows[0].cause == 16, rows


def test_sha256_digest_for_register_and_invite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 8760: with SHA-256 offered first, a UA that takes it registers and calls."""

    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice")
        challenge, ok = await alice.register()
        offered = challenge.headers.get_all("WWW-Authenticate")
        assert [parse_digest(v)[1].get("algorithm") for v in offered] == ["SHA-256", "MD5"]
        assert ok.status == 200
        bob = await ctx.ua("bob", register=True)
        call, invite = await place_call(alice, bob, "1002")
        assert call.auth is not None and "algorithm=SHA-256" in call.auth
        to_tag = tag()
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
        ok = await call.final()
        assert ok.status == 200
        call.ack(ok)
        await bob.recv_request("ACK")
        assert call.dialog is not None
        alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
        bye = await bob.recv_request("BYE")
        bob.answer(bye, 200, to_tag=to_tag)
        assert (await alice.recv_response("BYE")).status == 200

    rows = run_node(tmp_path, monkeypatch, scenario, digest_algorithms=["SHA-256", "MD5"]).cdrs()
    assert [r.cause for r in rows] == [16]
