"""Calls between registered test UAs on a whole in-process node (``sip_node_rig``):
basic call and BYE from either side with its CDRs, busy/unknown/unregistered
numbers, shared-line forking and both phones answering at once, CANCEL (while
ringing and before any provisional), hold and re-INVITE glare (491), delayed
offer, 2xx retransmission until ACK, Timer B 408, calls over TCP, INVITE
retransmissions and stray in-dialog requests, and BYEs crossing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sip_node_rig import (
    A_PORT,
    B_PORT,
    NODE_NAME,
    Ctx,
    direction,
    establish,
    media_port,
    options_ok,
    place_call,
    run_node,
    statuses,
)
from sipclient import HOST, angle_uri, branch, is_request, sdp, tag

from offhook.sip.message import SipRequest


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
