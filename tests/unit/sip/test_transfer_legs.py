"""The SIP side of transfer on a real SipEndpoint (``sip_rig``): REFER (RFC 3515) with its
NOTIFYs, blind and attended (Replaces in Refer-To), and INVITE with Replaces (RFC 3891)."""

from __future__ import annotations

from sip_rig import (
    CALLEE,
    NODE,
    PHONE,
    Peer,
    Rig,
    answer_in,
    call_in,
    call_out,
    requests,
    responses,
    sdp,
)

from offhook.core.events import TransferState
from offhook.core.leg import Leg
from offhook.sip.message import SipRequest


def connected(rig: Rig) -> tuple[Peer, Leg]:
    peer = Peer(PHONE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    rig.take()
    return peer, leg


def refer_to(target: str) -> list[tuple[str, str]]:
    return [("Refer-To", target), ("Referred-By", f"<sip:phone@{PHONE[0]}>")]


def notifies(rig: Rig, peer: Peer) -> list[SipRequest]:
    """The NOTIFYs offhook sent, each answered 200 by the peer."""
    out = requests(rig.take(), "NOTIFY")
    for n in out:
        rig.feed(peer.answer(n, 200))
    return out


def frag(notify: SipRequest) -> tuple[str, str]:
    return notify.body.decode().strip(), notify.headers.get("Subscription-State") or ""


def test_blind_transfer_notifies_progress() -> None:
    rig = Rig()
    peer, leg = connected(rig)
    rig.feed(peer.request("REFER", headers=refer_to(f"<sip:1003@{NODE[0]}>")))
    msgs = rig.take()
    (accepted,) = responses(msgs, "REFER")
    assert accepted.status == 202
    (trying,) = requests(msgs, "NOTIFY")
    assert trying.headers.get("Event") == "refer"
    assert trying.content_type() == "message/sipfrag"
    assert frag(trying) == ("SIP/2.0 100 Trying", "active;expires=120")
    assert trying.headers.get("Contact")
    assert trying.to_tag == peer.tag and trying.call_id == peer.call_id  # in the dialog
    rig.feed(peer.answer(trying, 200))
    assert rig.engine.named("transfer") == [(leg, "1003")]
    assert leg.driver is not None
    leg.driver.transfer_progress(TransferState.TRYING, None)  # nothing new: no NOTIFY
    leg.driver.transfer_progress(TransferState.RINGING, None)
    leg.driver.transfer_progress(TransferState.DONE, None)
    sent = notifies(rig, peer)
    assert [frag(n) for n in sent] == [
        ("SIP/2.0 180 Ringing", "active;expires=120"),
        ("SIP/2.0 200 OK", "terminated;reason=noresource"),
    ]
    leg.driver.release(16)  # the engine releases the transferor
    msgs = rig.take()
    assert requests(msgs, "NOTIFY") == []
    assert len(requests(msgs, "BYE")) == 1


def test_blind_transfer_failure_and_release_order() -> None:
    rig = Rig()
    peer, leg = connected(rig)
    rig.feed(peer.request("REFER", headers=refer_to("<sip:9999@h>")))
    notifies(rig, peer)
    assert leg.driver is not None
    leg.driver.transfer_progress(TransferState.FAILED, 1)  # unallocated number
    (failed,) = notifies(rig, peer)
    assert frag(failed) == ("SIP/2.0 404 Not Found", "terminated;reason=noresource")
    # A new REFER after the first ended is fine; released while it is active:
    # the last NOTIFY goes before the BYE.
    rig.feed(peer.request("REFER", headers=refer_to("<sip:1004@h>")))
    msgs = rig.take()
    assert [r.status for r in responses(msgs, "REFER")] == [202]
    (second,) = requests(msgs, "NOTIFY")
    assert second.headers.get("Event") == f"refer;id={peer.cseq}"  # the 2nd REFER's CSeq
    rig.feed(peer.request("REFER", headers=refer_to("<sip:1005@h>")))
    assert [r.status for r in responses(rig.take(), "REFER")] == [491]  # one at a time
    leg.driver.release(16)
    msgs = [m for m in rig.take() if isinstance(m, SipRequest)]
    assert [m.method for m in msgs][:2] == ["NOTIFY", "BYE"]
    assert frag(msgs[0]) == ("SIP/2.0 200 OK", "terminated;reason=noresource")


def test_refer_refusals() -> None:
    rig = Rig()
    peer, _ = connected(rig)
    rig.feed(peer.request("REFER"))  # no Refer-To
    rig.feed(peer.request("REFER", headers=[("Refer-To", "<sip:1@h>"), ("Refer-To", "<sip:2@h>")]))
    rig.feed(peer.request("REFER", headers=refer_to("<mailto:x@h>")))
    rig.feed(peer.request("REFER", headers=refer_to("<sip:h.example.com>")))  # no number
    assert [r.status for r in responses(rig.take(), "REFER")] == [400, 400, 400, 400]
    assert rig.engine.named("transfer") == []
    # Outside a dialog: 403, and nothing happens.
    stranger = Peer(PHONE)
    rig.feed(stranger.request("REFER", headers=refer_to("<sip:1003@h>"), to_tag=""))
    assert [r.status for r in responses(rig.take(), "REFER")] == [403]
    # In a dialog that does not exist: 481.
    rig.feed(stranger.request("REFER", headers=refer_to("<sip:1003@h>"), to_tag="nope"))
    assert [r.status for r in responses(rig.take(), "REFER")] == [481]
    assert rig.engine.calls[-1][0] != "transfer"


def test_refer_before_answer_is_403() -> None:
    rig = Rig()
    peer = Peer(PHONE)
    leg = call_in(rig, peer)
    assert leg.driver is not None
    leg.driver.alert(None)
    ringing = next(r for r in responses(rig.take(), "INVITE") if r.status == 180)
    peer.remote_tag = ringing.to_tag or ""
    rig.feed(peer.request("REFER", headers=refer_to("<sip:1003@h>")))
    assert [r.status for r in responses(rig.take(), "REFER")] == [403]


def test_refer_sub_false_sends_no_notify() -> None:
    rig = Rig()
    peer, leg = connected(rig)
    rig.feed(peer.request("REFER", headers=[*refer_to("<sip:1003@h>"), ("Refer-Sub", "false")]))
    msgs = rig.take()
    (accepted,) = responses(msgs, "REFER")
    assert accepted.status == 202 and accepted.headers.get("Refer-Sub") == "false"
    assert requests(msgs, "NOTIFY") == []
    assert leg.driver is not None
    leg.driver.transfer_progress(TransferState.DONE, None)
    assert requests(rig.take(), "NOTIFY") == []
    assert rig.engine.named("transfer") == [(leg, "1003")]


def replaces_of(peer: Peer, swap: bool = False) -> str:
    """The Refer-To value an attended transfer names ``peer``'s dialog with (device view)."""
    to_tag, from_tag = peer.remote_tag, peer.tag  # to-tag: offhook's side of that call
    if swap:
        to_tag, from_tag = from_tag, to_tag
    value = f"{peer.call_id};to-tag={to_tag};from-tag={from_tag}"
    escaped = value.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")
    return f"<sip:1003@{NODE[0]}?Replaces={escaped}>"


def test_attended_transfer_joins_the_two_calls() -> None:
    for swap in (False, True):
        rig = Rig()
        first, leg1 = connected(rig)
        consult, leg2 = connected(rig)  # the same device's second call with offhook
        rig.feed(first.request("REFER", headers=refer_to(replaces_of(consult, swap))))
        msgs = rig.take()
        assert [r.status for r in responses(msgs, "REFER")] == [202]
        assert rig.engine.named("transfer_to") == [(leg1, leg2)]
        assert rig.engine.named("transfer") == []
        assert leg1.driver is not None and leg2.driver is not None
        leg1.driver.transfer_progress(TransferState.DONE, None)
        leg1.driver.release(16)
        leg2.driver.release(16)
        msgs = rig.take()
        methods = [m.method for m in msgs if isinstance(m, SipRequest)]
        assert methods.index("NOTIFY") < methods.index("BYE")
        assert len(requests(msgs, "BYE")) == 2


def test_attended_transfer_to_an_unknown_or_foreign_dialog_fails() -> None:
    rig = Rig()
    first, _leg1 = connected(rig)
    ghost = Peer(PHONE, remote_tag="gone")
    rig.feed(first.request("REFER", headers=refer_to(replaces_of(ghost))))
    sent = notifies(rig, first)
    assert [frag(n)[0] for n in sent] == [
        "SIP/2.0 100 Trying",
        "SIP/2.0 481 Call/Transaction Does Not Exist",
    ]
    assert frag(sent[-1])[1] == "terminated;reason=noresource"
    # A call of another device (offhook's call out to "callee") is not this device's.
    callee = Peer(CALLEE)
    _, _, invite = call_out(rig, callee)
    rig.feed(callee.answer(invite, 200, body=sdp()), CALLEE)
    rig.take()
    # That dialog as its device sees it: to-tag offhook's (our From tag), from-tag its own.
    foreign = Peer(CALLEE, call_id=invite.call_id, tag=callee.tag, remote_tag=invite.from_tag or "")
    rig.feed(first.request("REFER", headers=refer_to(replaces_of(foreign))))
    assert [frag(n)[0] for n in notifies(rig, first)][-1].startswith("SIP/2.0 481")
    assert rig.engine.named("transfer_to") == []


# --- INVITE with Replaces (RFC 3891 §3) ----------------------------------------------------


def replaces_header(call_id: str, ours: str, theirs: str, extra: str = "") -> list[tuple[str, str]]:
    return [("Replaces", f"{call_id};to-tag={ours};from-tag={theirs}{extra}")]


def final_status(rig: Rig) -> int:
    finals = [r.status for r in responses(rig.take(), "INVITE") if r.status >= 200]
    assert len(finals) == 1, finals
    return finals[0]


def test_invite_with_replaces_takes_over_a_confirmed_dialog() -> None:
    rig = Rig()
    old, old_leg = connected(rig)
    newcomer = Peer(PHONE)
    leg = call_in(rig, newcomer, replaces_header(old.call_id, old.remote_tag, old.tag))
    (replace,) = rig.engine.named("replace")
    assert replace[0] is leg and replace[1] is old_leg
    assert replace[2].called == "1002"
    assert rig.engine.named("setup") == [rig.engine.named("setup")[0]]  # only the first call


def test_invite_with_replaces_refused() -> None:
    rig = Rig()
    old, _ = connected(rig)
    cases = [
        (replaces_header("nope@h", "a", "b"), 481),
        (replaces_header(old.call_id, old.remote_tag, old.tag, ";early-only"), 486),
        ([("Replaces", "garbage")], 400),
        ([*replaces_header(old.call_id, old.remote_tag, old.tag)] * 2, 400),
    ]
    for headers, status in cases:
        rig.feed(Peer(PHONE).invite(sdp(), headers))
        assert final_status(rig) == status, headers
    # A dialog already ended: 603 Declined.
    rig.feed(old.request("BYE"))
    rig.take()
    rig.feed(Peer(PHONE).invite(sdp(), replaces_header(old.call_id, old.remote_tag, old.tag)))
    assert final_status(rig) == 603
    assert rig.engine.named("replace") == []


def test_invite_with_replaces_of_an_early_dialog() -> None:
    rig = Rig()
    # Our own early dialog (offhook rings "callee"): may be replaced (call pickup).
    callee = Peer(CALLEE)
    _, out_leg, invite = call_out(rig, callee)
    rig.feed(callee.answer(invite, 180), CALLEE)
    rig.take()
    ours = replaces_header(invite.call_id, invite.from_tag or "", callee.tag)
    leg = call_in(rig, Peer(PHONE), ours)
    assert rig.engine.named("replace")[-1][:2] == (leg, out_leg)
    # The caller's own early dialog (offhook is its UAS): 481.
    ringing_peer = Peer(PHONE)
    ringing = call_in(rig, ringing_peer)
    assert ringing.driver is not None
    ringing.driver.alert(None)
    resp = next(r for r in responses(rig.take(), "INVITE") if r.status == 180)
    rig.feed(Peer(PHONE).invite(sdp(), replaces_header(ringing_peer.call_id, resp.to_tag or "",
                                                       ringing_peer.tag)))  # fmt: skip
    assert final_status(rig) == 481
