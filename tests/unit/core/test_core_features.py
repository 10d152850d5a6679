"""Hold with music, blind and attended transfer, Replaces: call control's feature tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from core_harness import FakeDriver, Harness, media

from offhook.core.causes import Cause
from offhook.core.events import PartyInfo, Setup, Tone, TransferState
from offhook.core.leg import LegState
from offhook.core.media import INACTIVE, RECVONLY, SENDONLY, SENDRECV


class RecordingMedia:
    """The media server port as call control sees it: replies are given by the test."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.replies: dict[str, Callable[[tuple[str, int] | None], None]] = {}
        self.devices: dict[str, tuple[str, str]] = {}

    def open(
        self,
        handle: str,
        family: int,
        reply: Callable[[tuple[str, int] | None], None],
        *,
        device: str = "",
        bridge: str = "",
    ) -> None:
        self.calls.append(("open", handle, family))
        self.devices[handle] = (device, bridge)
        self.replies[handle] = reply

    def connect(self, handle, address, port, codec, pt, dtmf_pt, direction) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(("connect", handle, address, port, codec, pt, dtmf_pt, direction))

    def play(self, handle: str, source: str, loop: bool = True) -> None:
        self.calls.append(("play", handle, source))

    def stop_play(self, handle: str) -> None:
        self.calls.append(("stop_play", handle))

    def join(self, handle: str, bridge: str) -> None:
        self.calls.append(("join", handle, bridge))

    def dtmf(self, handle: str, digits: str) -> None:
        self.calls.append(("dtmf", handle, digits))

    def release(self, handle: str) -> None:
        self.calls.append(("release", handle))

    def named(self, what: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == what]

    def reply(self, local: tuple[str, int] | None, handle: str | None = None) -> str:
        handle = handle or list(self.replies)[-1]
        self.replies.pop(handle)(local)
        return handle


def phones(h: Harness, css: str = "") -> None:
    h.device("alice", "1001")
    h.device("bob", "1002", css=css)
    h.device("carol", "1003")
    for name in ("alice", "bob", "carol"):
        h.register(name)


def connect(h: Harness, caller: str, number: str, callee: str) -> tuple[FakeDriver, FakeDriver]:
    _, ad = h.call(caller, number)
    b, bd = h.out(f"sip:{callee}@10.0.0.9")
    h.engine.on_connect(b, media(f"10.0.0.{number[-1]}"))
    h.factory.drivers.pop(f"sip:{callee}@10.0.0.9")
    h.factory.legs.pop(f"sip:{callee}@10.0.0.9")
    return ad, bd


@pytest.fixture
def ms(h: Harness) -> RecordingMedia:
    port = RecordingMedia()
    h.engine.media = port
    return port


def hold_with_music(h: Harness, ms: RecordingMedia) -> tuple[FakeDriver, FakeDriver, str]:
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert ad.leg is not None and bd.leg is not None
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", direction=SENDONLY))
    answer = bd.last("media_answer")[1]
    assert answer.streams[0].direction == INACTIVE
    handle = ms.reply(("192.0.2.50", 20000))
    offer = ad.last("update_media")[1]
    assert (offer.streams[0].address, offer.streams[0].port) == ("192.0.2.50", 20000)
    assert offer.streams[0].direction == SENDONLY
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    return ad, bd, handle


def test_hold_plays_music_to_the_held_party_and_resume_reconnects(
    h: Harness, ms: RecordingMedia
) -> None:
    ad, bd, handle = hold_with_music(h, ms)
    assert ms.named("connect")[-1][2:5] == ("10.0.0.1", 4000, "PCMU")
    assert ms.named("play") == [("play", handle, "moh:default")]
    assert ms.devices[handle] == ("alice", "")  # the held party's media resource list
    assert bd.leg is not None and ad.leg is not None
    resume = media("10.0.0.2", port=5002)
    h.engine.on_media_offer(bd.leg, resume)
    assert ms.named("release") == [("release", handle)]
    assert ad.last("update_media")[1] == resume
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert bd.last("media_answer") == ("media_answer", media("10.0.0.1"), None)
    assert ad.leg.state is LegState.CONNECTED


def test_hold_refresh_is_answered_again_without_new_music(h: Harness, ms: RecordingMedia) -> None:
    _, bd, _ = hold_with_music(h, ms)
    assert bd.leg is not None
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", direction=INACTIVE))
    assert bd.last("media_answer")[1].streams[0].direction == INACTIVE
    assert len(ms.named("open")) == 1


def test_resume_before_the_music_is_answered_waits_for_it(h: Harness, ms: RecordingMedia) -> None:
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert ad.leg is not None and bd.leg is not None
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", direction=SENDONLY))
    ms.reply(("192.0.2.50", 20000))
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", port=5004))  # resume, music in flight
    assert ad.names().count("update_media") == 1
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    assert ad.last("update_media")[1] == media("10.0.0.2", port=5004)
    assert len(ms.named("release")) == 1


def test_media_server_loss_clears_the_held_call(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, handle = hold_with_music(h, ms)
    h.engine.on_resource_lost(handle, Cause.NETWORK_OUT_OF_ORDER)
    assert ad.released_with() == [Cause.NETWORK_OUT_OF_ORDER]
    assert bd.released_with() == [Cause.NETWORK_OUT_OF_ORDER]
    assert h.record().cause == Cause.NETWORK_OUT_OF_ORDER


def test_no_music_endpoint_holds_in_silence(h: Harness, ms: RecordingMedia) -> None:
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert bd.leg is not None and ad.leg is not None
    hold = media("10.0.0.2", direction=SENDONLY)
    h.engine.on_media_offer(bd.leg, hold)
    handle = list(ms.replies)[-1]
    h.engine.on_resource_lost(handle, Cause.NETWORK_OUT_OF_ORDER)  # reported before the reply
    ms.reply(None)  # the media server is down, or refused (max_streams)
    assert ad.released_with() == [] and bd.released_with() == []
    assert ad.last("update_media")[1] == hold
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    resume = media("10.0.0.2")
    h.engine.on_media_offer(bd.leg, resume)
    assert ad.last("update_media")[1] == resume


def test_hold_without_media_server_is_relayed(h: Harness) -> None:
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert bd.leg is not None
    hold = media("10.0.0.2", direction=SENDONLY)
    h.engine.on_media_offer(bd.leg, hold)
    assert ad.last("update_media")[1] == hold


def test_blind_transfer_joins_transferee_and_target(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)
    assert ad.leg is not None and bd.leg is not None
    h.engine.transfer(bd.leg, "1003")
    assert bd.last("transfer_progress") == ("transfer_progress", TransferState.TRYING, None)
    c, cd = h.out("sip:carol@10.0.0.9")
    setup = cd.calls[0][1]
    assert setup.called == "1003" and setup.calling.number == "alice"
    assert setup.media.streams[0].address == "10.0.0.1"
    assert setup.media.streams[0].direction == SENDRECV
    h.engine.on_alerting(c)
    assert bd.last("transfer_progress")[1] is TransferState.RINGING
    h.engine.on_connect(c, media("10.0.0.3"))
    assert bd.last("transfer_progress")[1] is TransferState.DONE
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.released_with() == []
    assert ad.last("update_media")[1].streams[0].address == "10.0.0.3"
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert "update_media" not in cd.names()  # carol already sends to alice
    assert len(ms.named("release")) == 1  # the music stopped
    first = h.record()
    assert first.extra and dict(first.extra)["transferred_to"]
    h.engine.on_release(c)
    second = h.records()[-1]
    assert dict(second.extra)["transferred_by"] == "bob"
    assert dict(second.extra)["transfer_of"] == first.call_id
    assert (second.last_redirecting, second.redirect_reason) == ("1002", "transfer")
    assert second.calling_device == "alice"
    assert ad.released_with() == [Cause.NORMAL_CLEARING]


def test_blind_transfer_to_a_busy_target_leaves_the_call(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)
    assert bd.leg is not None
    h.engine.transfer(bd.leg, "1003")
    c, _ = h.out("sip:carol@10.0.0.9")
    h.engine.on_release(c, Cause.USER_BUSY)
    assert bd.last("transfer_progress")[1:] == (TransferState.FAILED, Cause.USER_BUSY)
    assert bd.released_with() == [] and ad.released_with() == []


def test_blind_transfer_outside_the_css_fails(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)
    assert bd.leg is not None
    h.engine.transfer(bd.leg, "9999")
    assert bd.last("transfer_progress")[1:] == (TransferState.FAILED, Cause.UNALLOCATED_NUMBER)
    assert ad.released_with() == []


def test_transferrer_hanging_up_early_hands_the_call_over(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)
    assert bd.leg is not None and ad.leg is not None
    h.engine.transfer(bd.leg, "1003")
    c, cd = h.out("sip:carol@10.0.0.9")
    h.engine.on_release(bd.leg)  # bob hangs up while carol rings
    assert ad.released_with() == []
    h.engine.on_connect(c, media("10.0.0.3"))
    assert ad.last("update_media")[1].streams[0].address == "10.0.0.3"
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", port=4010))
    assert cd.last("update_media")[1].streams[0].port == 4010


def test_transferee_hanging_up_cancels_the_transfer(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)
    assert bd.leg is not None and ad.leg is not None
    h.engine.transfer(bd.leg, "1003")
    _, cd = h.out("sip:carol@10.0.0.9")
    h.engine.on_release(ad.leg)
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    assert bd.released_with() == [Cause.NORMAL_CLEARING]


def test_attended_transfer(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)  # alice <-> bob, alice held
    consult, xd = h.call("bob", "1003")
    c, cd = h.out("sip:carol@10.0.0.9")
    h.engine.on_connect(c, media("10.0.0.3"))
    assert bd.leg is not None and ad.leg is not None
    h.engine.transfer_to(bd.leg, consult)
    assert bd.last("transfer_progress")[1] is TransferState.DONE
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert xd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.last("update_media")[1].streams[0].address == "10.0.0.3"
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert cd.last("update_media")[1].streams[0].address == "10.0.0.1"
    h.engine.on_media_answer(c, media("10.0.0.3"))
    h.engine.on_release(c)
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    assert len(h.records()) == 2


def test_attended_transfer_while_the_target_rings(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _ = hold_with_music(h, ms)
    consult, xd = h.call("bob", "1003")
    c, cd = h.out("sip:carol@10.0.0.9")
    h.engine.on_alerting(c)
    assert bd.leg is not None and ad.leg is not None
    h.engine.transfer_to(bd.leg, consult)
    assert xd.released_with() == [Cause.NORMAL_CLEARING]
    h.engine.on_connect(c, media("10.0.0.3"))
    assert ad.last("update_media")[1].streams[0].address == "10.0.0.3"
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", port=4010))
    # carol answered bob's offer: she is told where alice is
    assert cd.last("update_media")[1].streams[0].port == 4010


def test_replaces_takes_the_place_of_a_connected_leg(h: Harness) -> None:
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert bd.leg is not None and ad.leg is not None
    nd = FakeDriver("carol")
    new = h.engine.inbound_leg(nd, "carol")
    nd.leg = new
    h.engine.replace(new, bd.leg, Setup(PartyInfo("1003"), "", media("10.0.0.3")))
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.last("update_media")[1] == media("10.0.0.3")
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert nd.last("answer")[1] == media("10.0.0.1")
    h.engine.on_release(new)
    assert ad.released_with() == [Cause.NORMAL_CLEARING]


def test_replaces_of_an_unknown_state_is_refused(h: Harness) -> None:
    phones(h)
    _, _ = h.call("alice", "1002")
    b, _ = h.out("sip:bob@10.0.0.9")
    nd = FakeDriver("carol")
    new = h.engine.inbound_leg(nd, "carol")
    h.engine.replace(new, b, Setup(PartyInfo("1003"), "", media("10.0.0.3")))
    assert nd.released_with() == [Cause.INVALID_CALL_REFERENCE]


# ---------------------------------------------------------------- conferences
def meetme_plan(h: Harness, pin: str = "") -> None:
    from offhook.core.dialplan.model import DialPlanSpec, DirectoryNumber, MeetMe

    phones(h)
    h.spec = DialPlanSpec(
        directory_numbers=tuple(
            DirectoryNumber(dn, "", (name,)) for dn, name in (("1001", "alice"), ("1002", "bob"))
        ),
        meetme=(MeetMe("5000", pin=pin, max_parties=2),),
    )


def join_meetme(h: Harness, ms: RecordingMedia, who: str, port: int) -> tuple[FakeDriver, str]:
    _, d = h.call(who, "5000")
    handle = ms.reply(("192.0.2.50", port))
    answer = d.last("answer")[1]
    assert (answer.streams[0].address, answer.streams[0].port) == ("192.0.2.50", port)
    return d, handle


def test_meetme_callers_are_answered_by_bridge_ports(h: Harness, ms: RecordingMedia) -> None:
    meetme_plan(h)
    ad, ah = join_meetme(h, ms, "alice", 20000)
    bd, bh = join_meetme(h, ms, "bob", 20002)
    assert ms.named("join") == [("join", ah, "meetme-5000"), ("join", bh, "meetme-5000")]
    assert ms.devices[bh] == ("bob", "meetme-5000")
    assert ms.named("connect")[0][2:5] == ("10.0.0.1", 4000, "PCMU")
    _, cd = h.call("carol", "5000")  # max_parties 2
    assert cd.released_with() == [Cause.USER_BUSY]
    assert ad.leg is not None
    h.engine.on_release(ad.leg)
    assert ("release", ah) in ms.calls
    assert bd.released_with() == []  # a meet-me conference lives on with one party
    assert h.records()[-1].called_device == "conference"


def test_meetme_pin(h: Harness, ms: RecordingMedia) -> None:
    meetme_plan(h, pin="42")
    ad, ah = join_meetme(h, ms, "alice", 20000)
    assert ms.named("play") == [("play", ah, "announce:enter-pin")]
    assert not ms.named("join")
    assert ad.leg is not None
    h.engine.on_digits(ad.leg, "41")  # wrong: prompted again
    assert len(ms.named("play")) == 2
    h.engine.on_resource_digits(ah, "4")  # RFC 4733 digits come from the media server
    h.engine.on_resource_digits(ah, "2")
    assert ms.named("join") == [("join", ah, "meetme-5000")]


def test_meetme_wrong_pin_three_times_clears(h: Harness, ms: RecordingMedia) -> None:
    meetme_plan(h, pin="42")
    ad, _ = join_meetme(h, ms, "alice", 20000)
    assert ad.leg is not None
    for _ in range(3):
        h.engine.on_digits(ad.leg, "9#")
    assert ad.released_with() == [Cause.CALL_REJECTED]


def adhoc_three(h: Harness, ms: RecordingMedia) -> tuple[FakeDriver, FakeDriver, Any, FakeDriver]:
    ad, bd, _ = hold_with_music(h, ms)  # alice <-> bob, bob holds alice
    consult, xd = h.call("bob", "1003")
    c, cd = h.out("sip:carol@10.0.0.9")
    h.engine.on_connect(c, media("10.0.0.3"))
    assert bd.leg is not None
    h.engine.conference(bd.leg, consult)
    assert xd.released_with() == [Cause.NORMAL_CLEARING]
    opened = [c[1] for c in ms.named("open")][1:]  # after the music's
    assert len(opened) == 3
    for i, handle in enumerate(opened):
        ms.reply(("192.0.2.50", 21000 + 2 * i), handle)
    for d in (ad, bd, cd):
        offer = d.last("update_media")[1]
        assert offer.streams[0].address == "192.0.2.50"
        assert d.leg is not None
        h.engine.on_media_answer(d.leg, media(f"10.0.0.{d.name[-1:]}", port=4100))
    joins = ms.named("join")
    assert len(joins) == 3 and {j[2] for j in joins} == {joins[0][2]}
    return ad, bd, c, cd


def test_adhoc_conference_joins_three_parties(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, c, cd = adhoc_three(h, ms)
    # the music on hold stopped, the consultation leg went
    assert len(ms.named("release")) == 1
    h.engine.on_release(c)  # carol leaves: alice and bob stay
    assert cd.released_with() == []
    assert ad.released_with() == [] and bd.released_with() == []
    assert len(ms.named("release")) == 2


def test_adhoc_conference_ends_with_one_party_left(h: Harness, ms: RecordingMedia) -> None:
    ad, bd, _, cd = adhoc_three(h, ms)
    assert ad.leg is not None and bd.leg is not None
    h.engine.on_release(ad.leg)
    h.engine.on_release(bd.leg)
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    assert len(ms.named("release")) == 4  # music + three ports
    assert not h.engine.conferences
    assert all(r.extra and dict(r.extra).get("conference") for r in h.records()[-2:])


def test_hold_reversion_reminds_the_holder(h: Harness, ms: RecordingMedia) -> None:
    h.engine.hold_reversion = 30.0
    _, bd, _ = hold_with_music(h, ms)
    due = h.engine.next_timer()
    assert due is not None and due > h.clock.monotonic()
    h.clock.advance(30.0)
    h.engine.handle_timer(h.clock.monotonic())
    assert bd.calls.count(("play_tone", Tone.CALL_WAITING)) == 1
    h.clock.advance(30.0)
    h.engine.handle_timer(h.clock.monotonic())
    assert bd.calls.count(("play_tone", Tone.CALL_WAITING)) == 2
    assert bd.leg is not None
    h.engine.on_media_offer(bd.leg, media("10.0.0.2"))  # resumed: no more reminders
    assert h.engine.next_timer() is None


# ---------------------------------------------------------------- announcements
def trunk_plan(h: Harness) -> None:
    from offhook.core.dialplan.model import DialPlanSpec, DirectoryNumber, Trunk

    phones(h)
    h.device("carrier")  # calls over the trunk arrive as its device
    h.spec = DialPlanSpec(
        directory_numbers=(DirectoryNumber("1002", "", ("bob",)),),
        trunks=(Trunk("carrier", "sip", "192.0.2.10"),),
    )
    h.engine.inband_progress = True


def test_trunk_caller_hears_why_its_call_failed(h: Harness, ms: RecordingMedia) -> None:
    trunk_plan(h)
    _, cd = h.call("carrier", "7777")  # not a number here: cause 1
    assert cd.released_with() == []
    handle = ms.reply(("192.0.2.50", 22000))
    early = cd.last("progress")[1]
    assert (early.streams[0].address, early.streams[0].port) == ("192.0.2.50", 22000)
    assert ("play", handle, "announce:not-in-service") in ms.calls
    h.engine.on_resource_done(handle)
    assert cd.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert h.record().cause == Cause.UNALLOCATED_NUMBER


def test_announcement_is_cut_after_its_longest(h: Harness, ms: RecordingMedia) -> None:
    trunk_plan(h)
    _, cd = h.call("carrier", "1002")
    b, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_release(b, Cause.USER_BUSY)
    ms.reply(("192.0.2.50", 22000))
    assert ("play", ms.named("open")[-1][1], "tone:busy") in ms.calls
    h.clock.advance(30.0)
    h.engine.handle_timer(h.clock.monotonic())
    assert cd.released_with() == [Cause.USER_BUSY]


def test_phones_get_failures_at_once(h: Harness, ms: RecordingMedia) -> None:
    trunk_plan(h)
    _, ad = h.call("alice", "7777")
    assert ad.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert not ms.calls


def test_adhoc_conference_adds_a_fourth_party(h: Harness, ms: RecordingMedia) -> None:
    h.device("dave", "1004")
    h.register("dave")
    ad, bd, _, cd = adhoc_three(h, ms)
    assert bd.leg is not None
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", port=4100, direction=SENDONLY))
    assert bd.last("media_answer")[1] is not None  # the bridge port answered the hold
    consult, xd = h.call("bob", "1004")
    d, dd = h.out("sip:dave@10.0.0.9")
    h.engine.on_connect(d, media("10.0.0.4"))
    h.engine.conference(bd.leg, consult)
    assert xd.released_with() == [Cause.NORMAL_CLEARING]
    ms.reply(("192.0.2.50", 21010))
    assert d is not None
    h.engine.on_media_answer(d, media("10.0.0.4", port=4100))
    joins = ms.named("join")
    assert len(joins) == 4 and len({j[2] for j in joins}) == 1
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", port=4100))  # bob back in
    assert bd.last("media_answer")[1].streams[0].address == "192.0.2.50"
    assert all(x.released_with() == [] for x in (ad, bd, cd, dd))


def test_adhoc_conference_dropped_when_its_controller_leaves(
    h: Harness, ms: RecordingMedia
) -> None:
    h.engine.adhoc_drop = "controller-leaves"
    ad, bd, _, cd = adhoc_three(h, ms)
    assert bd.leg is not None
    h.engine.on_release(bd.leg)  # bob set it up
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    assert not h.engine.conferences


def test_trunk_caller_hears_ringback_then_the_called_phone(h: Harness, ms: RecordingMedia) -> None:
    trunk_plan(h)
    h.engine.inband_ringback = True
    _, cd = h.call("carrier", "1002")
    b, bd = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)  # bob rings, no early media of his own
    handle = ms.reply(("192.0.2.50", 22000))
    assert ("play", handle, "tone:ringback") in ms.calls
    early = cd.last("progress")[1]
    assert early.streams[0].address == "192.0.2.50"
    assert cd.names().count("alert") == 1
    h.engine.on_connect(b, media("10.0.0.2"))
    assert ("release", handle) in ms.calls
    assert cd.last("answer")[1] == media("10.0.0.2")
    # the caller's dialog answered with the ringback's address: re-offered bob's
    assert cd.last("update_media")[1].streams[0].address == "10.0.0.2"
    assert cd.leg is not None
    h.engine.on_media_answer(cd.leg, media("10.0.0.1"))
    assert "update_media" not in bd.names()  # bob already sends to the caller
    h.engine.on_release(cd.leg)
    assert h.record().called_device == "bob"


def test_ringback_failing_keeps_the_call_ringing(h: Harness, ms: RecordingMedia) -> None:
    trunk_plan(h)
    h.engine.inband_ringback = True
    _, cd = h.call("carrier", "1002")
    b, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    ms.reply(None)  # no media server endpoint
    assert cd.released_with() == []
    h.engine.on_release(b, Cause.USER_BUSY)
    ms.reply(("192.0.2.50", 22002))  # the busy tone's endpoint
    assert ms.named("play")[-1][2] == "tone:busy"


def test_trunk_caller_gets_the_failure_at_once_without_inband_progress(
    h: Harness, ms: RecordingMedia
) -> None:
    trunk_plan(h)
    h.engine.inband_progress = False
    _, cd = h.call("carrier", "7777")
    assert cd.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert not ms.calls
