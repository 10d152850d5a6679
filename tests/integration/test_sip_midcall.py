"""Mid-call SIP through a whole in-process node, on real loopback sockets.

UPDATE as a media offer and a refresh (RFC 3311), reliable provisional
responses and PRACK both ways (RFC 3262), the session timer negotiation
(RFC 4028: 422, Session-Expires in both directions), DTMF by INFO both ways,
and transfer by REFER (RFC 3515): blind, attended with Replaces (RFC 3891),
to a number outside the transferrer's calling search space, and outside any
dialog. The node and the test UAs are ``sip_node_rig``'s (``run_node``,
``sipclient.SipClient``); every assertion is on a wire message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sip_node_rig as node
from sip_node_rig import A_PORT, B_PORT, Ctx, establish, media_port, place_call, run_node
from sipclient import SipClient, angle_uri, sdp, tag

from offhook.sip.message import SipMessage, SipRequest, SipResponse

C_PORT = 40020  # carol's RTP port
BASE_PLAN = node.plan


def exec_plan() -> dict[str, Any]:
    """sip_node_rig's plan, with carol's 1003 in a partition bob's CSS cannot reach."""
    plan = BASE_PLAN()
    plan["partitions"] = ["exec"]
    plan["calling_search_spaces"] = [{"name": "execs", "partitions": ["exec"]}]
    for device in plan["devices"]:
        if device["name"] == "carol":
            device["lines"][0]["partition"] = "exec"
        if device["name"] == "alice":
            device["css"] = "execs"
    return plan


def final_for(msgs: list[SipMessage], method: str) -> list[SipResponse]:
    return [m for m in msgs if isinstance(m, SipResponse) and m.cseq[1] == method]


async def answer_notifies(ua: SipClient, count: int) -> list[tuple[str, str]]:
    """The next ``count`` NOTIFYs (each answered 200): (sipfrag line, Subscription-State)."""
    out = []
    for _ in range(count):
        notify = await ua.recv_request("NOTIFY", timeout=5.0)
        assert notify.headers.get("Event", "").startswith("refer"), notify.headers.get("Event")
        assert notify.content_type() == "message/sipfrag"
        ua.answer(notify, 200, to_tag="")
        out.append((notify.body.decode().strip(), notify.headers.get("Subscription-State") or ""))
    return out


# --------------------------------------------------------------------------
# UPDATE


def test_update_mid_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        est = await establish(alice, bob, "1002")
        dialog = est.call.dialog
        assert dialog is not None
        # UPDATE with SDP: a media offer, relayed to bob (as re-INVITE), answered in its 200.
        alice.send_bytes(alice.in_dialog(dialog, "UPDATE", body=sdp(A_PORT + 2, version=2)))
        reinvite = await bob.recv_request("INVITE")
        assert media_port(reinvite.body) == A_PORT + 2
        bob.answer(reinvite, 200, to_tag=est.callee_tag, body=sdp(B_PORT + 2, version=2))
        await bob.recv_request("ACK")
        ok = await alice.recv_response("UPDATE")
        assert ok.status == 200 and media_port(ok.body) == B_PORT + 2
        assert ok.headers.get("Contact")
        assert (ok.headers.get("Session-Expires") or "").startswith("1800;refresher=")
        # UPDATE without SDP: a session refresh, 200 without SDP, nothing for bob.
        alice.send_bytes(
            alice.in_dialog(
                dialog, "UPDATE", headers=[("Session-Expires", "600"), ("Supported", "timer")]
            )
        )
        ok = await alice.recv_response("UPDATE")
        assert ok.status == 200 and not ok.body
        assert ok.headers.get("Session-Expires") == "600;refresher=uac"
        assert ok.headers.get("Require") == "timer"
        assert await bob.expect_nothing(lambda m: isinstance(m, SipRequest), wait=0.3) == []
        # The OPTIONS answer lists UPDATE, PRACK and REFER, and the option tags.
        opts = await node.options_ok(alice)
        allow = {m.strip() for m in (opts.headers.get("Allow") or "").split(",")}
        assert {"UPDATE", "PRACK", "REFER", "INFO"} <= allow
        assert opts.headers.get("Supported") == "100rel, timer, replaces"

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# 100rel / PRACK


def test_reliable_provisionals_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call = await alice.call("1002", body=sdp(A_PORT), headers=[("Require", "100rel")])
        invite = await bob.recv_request("INVITE")
        assert "100rel" in (invite.headers.get("Supported") or "")
        # bob answers reliably with early media: offhook PRACKs it.
        to_tag = tag()
        bob.answer(
            invite,
            183,
            to_tag=to_tag,
            body=sdp(B_PORT),
            headers=[("Require", "100rel"), ("RSeq", "41")],
        )
        prack = await bob.recv_request("PRACK")
        assert prack.headers.get("RAck") == f"41 {invite.cseq[0]} INVITE"
        assert prack.to_tag == to_tag
        bob.answer(prack, 200, to_tag=to_tag)
        # alice required 100rel: her 183 comes reliably, retransmitted until her PRACK.
        early = await call.provisional(183)
        rseq = early.headers.get("RSeq")
        assert early.headers.get("Require") == "100rel" and rseq
        assert media_port(early.body) == B_PORT
        again = await call.provisional(183, timeout=2.0)  # T1 = 0.5 s: retransmitted
        assert again.headers.get("RSeq") == rseq
        early_dialog = call.established(early)
        alice.send_bytes(
            alice.in_dialog(early_dialog, "PRACK", headers=[("RAck", f"{rseq} {call.cseq} INVITE")])
        )
        assert (await alice.recv_response("PRACK")).status == 200
        # A PRACK for nothing: 481.
        alice.send_bytes(
            alice.in_dialog(early_dialog, "PRACK", headers=[("RAck", f"{rseq} {call.cseq} INVITE")])
        )
        assert (await alice.recv_response("PRACK")).status == 481
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
        ok = await call.final()
        assert ok.status == 200 and media_port(ok.body) == B_PORT
        call.ack(ok)
        await bob.recv_request("ACK")

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# session timers


def test_session_timer_negotiation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        short = [("Session-Expires", "60"), ("Supported", "timer")]
        call = await alice.call("1002", body=sdp(A_PORT), headers=short)
        brief = await call.final()
        assert brief.status == 422 and brief.headers.get("Min-SE") == "90"
        call.ack_failure(brief)
        asked = [("Session-Expires", "90;refresher=uac"), ("Min-SE", "90"), ("Supported", "timer")]
        call, invite = await place_call(alice, bob, "1002", body=sdp(A_PORT))
        assert invite.headers.get("Session-Expires") == "1800"
        assert invite.headers.get("Min-SE") == "90"
        bob.answer(invite, 486, to_tag=tag())
        final = await call.final()
        call.ack_failure(final)
        await bob.recv_request("ACK")
        call = await alice.call("1002", body=sdp(A_PORT), headers=asked)
        invite = await bob.recv_request("INVITE")
        to_tag = tag()
        theirs = [("Session-Expires", "1800;refresher=uas"), ("Require", "timer")]
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT), headers=theirs)
        ok = await call.final()
        assert ok.headers.get("Session-Expires") == "90;refresher=uac"
        assert ok.headers.get("Require") == "timer"
        call.ack(ok)
        await bob.recv_request("ACK")

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# DTMF INFO


def test_dtmf_info_relayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        est = await establish(alice, bob, "1002")
        dialog = est.call.dialog
        assert dialog is not None
        for digit in "5#":
            alice.send_bytes(
                alice.in_dialog(
                    dialog,
                    "INFO",
                    body=f"Signal={digit}\r\nDuration=160\r\n".encode(),
                    content_type="application/dtmf-relay",
                )
            )
            assert (await alice.recv_response("INFO")).status == 200
        first = await bob.recv_request("INFO")
        assert first.content_type() == "application/dtmf-relay"
        assert first.body.startswith(b"Signal=5\r\n")
        # One INFO at a time: the second only after the first is answered.
        assert await bob.expect_nothing(lambda m: isinstance(m, SipRequest), wait=0.3) == []
        bob.answer(first, 200, to_tag=est.callee_tag)
        second = await bob.recv_request("INFO")
        assert second.body.startswith(b"Signal=#\r\n")
        bob.answer(second, 200, to_tag=est.callee_tag)
        # An INFO of another kind is answered 200 and goes nowhere.
        alice.send_bytes(
            alice.in_dialog(
                dialog, "INFO", body=b"<x/>", content_type="application/media_control+xml"
            )
        )
        assert (await alice.recv_response("INFO")).status == 200
        assert await bob.expect_nothing(lambda m: isinstance(m, SipRequest), wait=0.3) == []

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# REFER


def test_blind_transfer_by_refer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        carol = await ctx.ua("carol", register=True)
        est = await establish(alice, bob, "1002")
        b_dialog = est.callee_dialog(bob)
        bob.send_bytes(
            bob.in_dialog(
                b_dialog, "REFER", headers=[("Refer-To", f"<sip:1003@{bob.server_host}>")]
            )
        )
        accepted = await bob.recv_response("REFER")
        assert accepted.status == 202
        assert await answer_notifies(bob, 1) == [("SIP/2.0 100 Trying", "active;expires=120")]
        invite = await carol.recv_request("INVITE")
        # carol sees the transferee (alice) calling, with alice's media.
        assert angle_uri(invite.headers.get("From") or "").startswith("sip:1001@")
        assert media_port(invite.body) == A_PORT
        c_tag = tag()
        carol.answer(invite, 180, to_tag=c_tag)
        assert await answer_notifies(bob, 1) == [("SIP/2.0 180 Ringing", "active;expires=120")]
        carol.answer(invite, 200, to_tag=c_tag, body=sdp(C_PORT))
        await carol.recv_request("ACK")
        assert await answer_notifies(bob, 1) == [("SIP/2.0 200 OK", "terminated;reason=noresource")]
        bye = await bob.recv_request("BYE")
        bob.answer(bye, 200, to_tag=est.callee_tag)
        # alice now talks to carol: offered carol's media.
        reinvite = await alice.recv_request("INVITE")
        assert media_port(reinvite.body) == C_PORT
        alice.answer(reinvite, 200, to_tag=est.call.from_tag, body=sdp(A_PORT))
        await alice.recv_request("ACK")
        # alice hangs up: carol gets the BYE.
        assert est.call.dialog is not None
        alice.send_bytes(alice.in_dialog(est.call.dialog, "BYE"))
        c_bye = await carol.recv_request("BYE")
        assert c_bye.call_id == invite.call_id
        carol.answer(c_bye, 200, to_tag=c_tag)

    run_node(tmp_path, monkeypatch, scenario)


def test_refer_outside_the_css_fails_and_nothing_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node, "plan", exec_plan)

    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        carol = await ctx.ua("carol", register=True)
        est = await establish(alice, bob, "1002")
        b_dialog = est.callee_dialog(bob)
        # bob's CSS does not reach carol's 1003 (alice's would): the transfer fails.
        bob.send_bytes(
            bob.in_dialog(
                b_dialog, "REFER", headers=[("Refer-To", f"<sip:1003@{bob.server_host}>")]
            )
        )
        assert (await bob.recv_response("REFER")).status == 202
        frags = await answer_notifies(bob, 2)
        assert frags[0] == ("SIP/2.0 100 Trying", "active;expires=120")
        assert frags[1] == ("SIP/2.0 404 Not Found", "terminated;reason=noresource")
        assert await carol.expect_nothing(wait=0.5) == []
        assert await alice.expect_nothing(lambda m: isinstance(m, SipRequest), wait=0.1) == []
        # The call goes on: bob hangs up, alice gets the BYE.
        bob.send_bytes(bob.in_dialog(b_dialog, "BYE"))
        bye = await alice.recv_request("BYE")
        alice.answer(bye, 200, to_tag=est.call.from_tag)
        # A REFER outside any dialog: 403, nothing else.
        bob.send_bytes(
            bob.build(
                "REFER",
                f"sip:1001@{bob.server_host}",
                from_=bob.from_value(),
                to="<sip:1001@offhook>",
                call_id=f"refer-{tag()}",
                cseq=1,
                extra=[("Refer-To", "<sip:1001@h>")],
            )
        )
        refused = await bob.recv_response("REFER")
        assert refused.status == 403
        assert await alice.expect_nothing(lambda m: isinstance(m, SipRequest), wait=0.3) == []

    run_node(tmp_path, monkeypatch, scenario)


def test_attended_transfer_by_refer_with_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        carol = await ctx.ua("carol", register=True)
        first = await establish(alice, bob, "1002")  # alice -> bob
        consult = await establish(bob, carol, "1003")  # bob -> carol, the consultation
        assert consult.call.dialog is not None
        # Replaces from bob's view of the consultation: to-tag offhook's, from-tag his own.
        replaces = (
            f"{consult.call.call_id};to-tag={consult.ok.to_tag};from-tag={consult.call.from_tag}"
        )
        escaped = replaces.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")
        b_dialog = first.callee_dialog(bob)
        bob.send_bytes(
            bob.in_dialog(
                b_dialog,
                "REFER",
                headers=[("Refer-To", f"<sip:1003@{bob.server_host}?Replaces={escaped}>")],
            )
        )
        assert (await bob.recv_response("REFER")).status == 202
        frags = await answer_notifies(bob, 2)
        assert frags == [
            ("SIP/2.0 100 Trying", "active;expires=120"),
            ("SIP/2.0 200 OK", "terminated;reason=noresource"),
        ]
        byes = [await bob.recv_request("BYE"), await bob.recv_request("BYE")]
        assert {b.call_id for b in byes} == {first.invite.call_id, consult.call.call_id}
        for b in byes:
            bob.answer(b, 200, to_tag="")
        # alice and carol are joined: each is offered the other's media.
        to_alice = await alice.recv_request("INVITE")
        assert media_port(to_alice.body) == B_PORT  # carol's answer port in establish()
        alice.answer(to_alice, 200, to_tag=first.call.from_tag, body=sdp(A_PORT))
        await alice.recv_request("ACK")
        to_carol = await carol.recv_request("INVITE")
        assert media_port(to_carol.body) == A_PORT
        carol.answer(to_carol, 200, to_tag=consult.callee_tag, body=sdp(C_PORT))
        await carol.recv_request("ACK")
        assert first.call.dialog is not None
        alice.send_bytes(alice.in_dialog(first.call.dialog, "BYE"))
        c_bye = await carol.recv_request("BYE")
        carol.answer(c_bye, 200, to_tag=consult.callee_tag)

    run_node(tmp_path, monkeypatch, scenario)


# --------------------------------------------------------------------------
# INVITE with Replaces (RFC 3891)


def test_invite_with_replaces_takes_over_a_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        carol = await ctx.ua("carol", register=True)
        est = await establish(alice, bob, "1002")
        # No such dialog: 481, nothing else happens.
        ghost = [("Replaces", "nope@h;to-tag=1;from-tag=2")]
        call = await carol.call("1002", body=sdp(C_PORT), headers=ghost)
        final = await call.final()
        assert final.status == 481
        call.ack_failure(final)
        # carol takes alice's place in her call with bob (RFC 3891: to-tag is offhook's).
        replaces = f"{est.call.call_id};to-tag={est.ok.to_tag};from-tag={est.call.from_tag}"
        call = await carol.call("1002", body=sdp(C_PORT), headers=[("Replaces", replaces)])
        to_bob = await bob.recv_request("INVITE")
        assert to_bob.to_tag == est.callee_tag and media_port(to_bob.body) == C_PORT
        bob.answer(to_bob, 200, to_tag=est.callee_tag, body=sdp(B_PORT + 2))
        await bob.recv_request("ACK")
        ok = await call.final()
        assert ok.status == 200 and media_port(ok.body) == B_PORT + 2
        call.ack(ok)
        bye = await alice.recv_request("BYE")
        assert bye.call_id == est.call.call_id
        alice.answer(bye, 200, to_tag=est.call.from_tag)
        # bob hangs up: carol gets the BYE.
        b_dialog = est.callee_dialog(bob)
        bob.send_bytes(bob.in_dialog(b_dialog, "BYE"))
        c_bye = await carol.recv_request("BYE")
        assert c_bye.call_id == call.call_id
        carol.answer(c_bye, 200, to_tag=call.from_tag)

    run_node(tmp_path, monkeypatch, scenario)
