"""What overload control remembers per call on the SIP endpoint (``core.overload.CallMemory``
used by ``SipEndpoint._shed``), with a hand-driven clock: a retransmission of a shed INVITE
gets the stored 503 without being asked about again (so it cannot take another call's
admission), and a later INVITE of a call admitted before (the one answering a digest
challenge: same Call-ID, next CSeq) is admitted without asking, so partial shedding
completes the share of calls it admits instead of that share squared."""

from __future__ import annotations

from typing import Any
from unittest import mock

from sip_rig import PHONE, Peer, Rig, responses, sdp
from test_shedding import PHONE2, overload, shed_503

from offhook.core.overload import OverloadControl, OverloadPolicy
from offhook.sip.message import SipRequest, SipResponse, make_response


def statuses(rig: Rig) -> list[int]:
    return [r.status for r in responses(rig.take(), "INVITE")]


def test_a_retransmitted_shed_invite_is_answered_from_memory_without_asking() -> None:
    rig = Rig()
    control = overload(rig, load=1000.0, min_admit=0.5)  # one call in two: shed, admit, ...
    first = Peer(PHONE)
    data = first.invite(sdp())
    rig.feed(data)
    refused = shed_503(rig.take(), "INVITE")
    assert control.shed["invite"] == 1
    rig.feed(data)  # the retransmission: without the memory it would be the one admitted
    (again,) = [m for m in rig.take() if isinstance(m, SipResponse)]
    assert again.status == 503 and again.to_tag == refused.to_tag
    assert control.shed["invite"] == 1 and control.memory.resent == 1
    assert rig.engine.named("setup") == []
    rig.feed(Peer(PHONE).invite(sdp()))  # the next new call takes the admission
    assert 503 not in statuses(rig)
    assert len(rig.engine.named("setup")) == 1


def test_a_later_invite_of_an_admitted_call_is_admitted_without_asking() -> None:
    rig = Rig()
    control = overload(rig, load=1000.0, min_admit=0.5)
    rig.feed(Peer(PHONE).invite(sdp()))  # shed (the credit starts at half a call)
    assert statuses(rig) == [503]
    peer = Peer(PHONE)
    rig.feed(peer.invite(sdp()))  # admitted
    assert 503 not in statuses(rig)
    asked = dict(control.admitted), dict(control.shed)
    # As after a challenge: the same Call-ID, the next CSeq, credentials (not read here).
    again = peer.request(
        "INVITE", body=sdp(), cseq=2, to_tag="", uri=f"sip:1002@{PHONE[0]}",
        headers=[("Proxy-Authorization", 'Digest username="x", nonce="n"')],
    )  # fmt: skip
    rig.feed(again)
    assert 503 not in statuses(rig)
    assert (dict(control.admitted), dict(control.shed)) == asked  # not asked again
    assert control.memory.followed == 1
    rig.feed(Peer(PHONE).invite(sdp()))  # the credit was not spent: the next one is shed
    assert statuses(rig) == [503]


def test_exempt_calls_are_not_remembered() -> None:
    rig = Rig()
    control = overload(rig, exempt=frozenset({"1002"}))  # Peer.invite calls 1002
    rig.feed(Peer(PHONE).invite(sdp()))
    assert 503 not in statuses(rig)
    assert len(control.memory) == 0


def test_a_new_request_of_a_shed_call_is_asked_about_again() -> None:
    rig = Rig()
    control = overload(rig)  # shedding everything
    peer = Peer(PHONE)
    rig.feed(peer.invite(sdp()))
    assert statuses(rig) == [503]
    rig.feed(peer.request("INVITE", body=sdp(), cseq=2, to_tag="", uri=f"sip:1002@{PHONE[0]}"))
    assert statuses(rig) == [503]
    assert control.shed["invite"] == 2 and control.memory.resent == 0


def test_a_call_challenged_before_the_overload_is_not_shed_when_it_answers() -> None:
    rig = Rig()
    control = OverloadControl(OverloadPolicy(window=0.5), rig.clock.monotonic())
    rig.ep.overload = control  # attached, not overloaded
    peer = Peer(PHONE2)  # not a trunk: its calls are challenged

    def challenge(req: SipRequest, addr: Any, *, record: bool = True) -> tuple[Any, str]:
        return make_response(req, 407, to_tag="t407"), ""

    with mock.patch.object(rig.ep.intake, "digest", side_effect=challenge):
        rig.feed(peer.invite(sdp()), PHONE2)
        assert statuses(rig) == [407]
        now = rig.clock.monotonic()
        for i in range(10):  # now shedding everything
            control.observe(now + 0.5 * (i + 1), {"injected": 10.0})
        assert control.overloaded and control.admit_ratio == 0
        rig.feed(
            peer.request("INVITE", body=sdp(), cseq=2, to_tag="", uri=f"sip:1002@{PHONE[0]}"),
            PHONE2,
        )
        assert statuses(rig) == [407]  # asked for credentials again, not shed
        assert control.shed["invite"] == 0
        assert control.memory.followed == 1
        rig.feed(Peer(PHONE2).invite(sdp()), PHONE2)  # a new call is shed
        assert statuses(rig) == [503]
