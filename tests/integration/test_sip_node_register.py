"""Registrar and digest authentication on a whole in-process node (``sip_node_rig``):
REGISTER challenge and bindings as /status shows them, wrong password and unknown
user indistinguishable, AOR by DN, Expires clamped to max_expires and 423 below
min_expires, unregister and ``Contact: *``; INVITEs without valid credentials
never routed; SHA-256 digest (RFC 8760) offered first and used for REGISTER and
INVITE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sip_node_rig import (
    B_PORT,
    Ctx,
    place_call,
    run_node,
)
from sipclient import HOST, angle_uri, header_param, is_request, sdp, tag

from offhook.sip.auth import parse_digest
from offhook.sip.message import SipResponse

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
