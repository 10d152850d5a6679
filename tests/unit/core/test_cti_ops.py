"""CTI commands on established and ringing calls (answer, hang up, hold and resume,
transfers, conference, redirect, park, DTMF), their refusals, and the bus events
published for them and for the same things done on the phones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from core_harness import FakeDriver, FakeFactory, Harness, media
from test_core_features import RecordingMedia, connect, hold_with_music, phones

from offhook.common.location import Binding
from offhook.core.causes import Cause
from offhook.core.cti_ops import CtiRefused
from offhook.core.events import RedirectReason
from offhook.core.features import park
from offhook.core.leg import Leg, LegState
from offhook.core.media import INACTIVE, RECVONLY, SENDONLY, SENDRECV
from offhook.core.ports import LegDriver, RemoteAction
from offhook.core.records import (
    CallConferenced,
    CallHeld,
    CallResumed,
    CallTransferred,
    DigitsReceived,
)


class RemoteDriver(FakeDriver):
    """A device that does what an application asks (``remote``), when ``able``."""

    able = True

    def remote(self, action: RemoteAction) -> bool:
        self._rec("remote", action)
        return self.able


class RemoteFactory(FakeFactory):
    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        driver = RemoteDriver(binding.contact)
        driver.leg = leg
        self.drivers[binding.contact] = driver
        self.legs[binding.contact] = leg
        return driver


@pytest.fixture
def ms(h: Harness) -> RecordingMedia:
    port = RecordingMedia()
    h.engine.media = port
    return port


def the_call(h: Harness, leg: Leg | None) -> str:
    assert leg is not None and leg.call is not None
    return leg.call.id


def talking(h: Harness) -> tuple[str, FakeDriver, FakeDriver]:
    """alice called bob, who answered: the call id and both drivers."""
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    return the_call(h, ad.leg), ad, bd


@contextmanager
def refused(cause: int, reason: str) -> Iterator[Any]:
    """The command in the block is refused with ``cause``, its message starting ``reason``."""
    with pytest.raises(CtiRefused, match=f"^{reason}") as info:
        yield info
    assert info.value.cause == cause


@pytest.fixture
def rh() -> Harness:
    """A harness whose phones do what an application asks (``RemoteDriver``)."""
    return Harness(factory=RemoteFactory())


# ---------------------------------------------------------------- lookups
def test_commands_on_no_call_or_another_device_are_refused(h: Harness) -> None:
    call_id, _, _ = talking(h)
    with refused(Cause.INVALID_CALL_REFERENCE, "no such call") as info:
        h.engine.cti_hangup("alice", "nope")
    assert info.value.cause == Cause.INVALID_CALL_REFERENCE
    for command in (h.engine.cti_hangup, h.engine.cti_hold, h.engine.cti_park):
        with refused(Cause.INVALID_CALL_REFERENCE, "wrong device") as info:
            command("carol", call_id)
        assert info.value.cause == Cause.INVALID_CALL_REFERENCE


# ---------------------------------------------------------------- answer, hang up
def test_answer_asks_the_ringing_device(rh: Harness) -> None:
    h = rh
    phones(h)
    _, ad = h.call("alice", "1002")
    b, bd = h.out("sip:bob@10.0.0.9")
    call_id = the_call(h, ad.leg)
    with refused(Cause.INVALID_CALL_REFERENCE, "wrong device"):
        h.engine.cti_answer("carol", call_id)
    h.engine.cti_answer("bob", call_id)
    assert bd.last("remote") == ("remote", RemoteAction.ANSWER)
    h.engine.on_connect(b, media("10.0.0.2"))
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state") as info:
        h.engine.cti_answer("bob", call_id)
    assert info.value.cause == Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE


def test_answer_is_refused_when_the_device_cannot(h: Harness) -> None:
    phones(h)
    _, ad = h.call("alice", "1002")
    with refused(Cause.SERVICE_NOT_IMPLEMENTED, "device cannot answer remotely") as info:
        h.engine.cti_answer("bob", the_call(h, ad.leg))
    assert info.value.cause == Cause.SERVICE_NOT_IMPLEMENTED
    assert ad.leg is not None and ad.leg.state is LegState.SETUP


def test_hang_up_releases_the_device_as_if_it_hung_up(h: Harness) -> None:
    call_id, ad, bd = talking(h)
    h.engine.cti_hangup("bob", call_id)
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    assert h.record().cause == Cause.NORMAL_CLEARING


def test_hang_up_of_the_caller_cancels_the_forks(h: Harness) -> None:
    phones(h)
    _, ad = h.call("alice", "1002")
    _, bd = h.out("sip:bob@10.0.0.9")
    h.engine.cti_hangup("alice", the_call(h, ad.leg))
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    assert bd.released_with() == [Cause.NORMAL_CLEARING]


# ---------------------------------------------------------------- hold, resume
def test_network_hold_plays_music_and_resume_joins_again(h: Harness, ms: RecordingMedia) -> None:
    call_id, ad, bd = talking(h)
    assert ad.leg is not None and bd.leg is not None
    h.engine.cti_hold("bob", call_id)
    offer = bd.last("update_media")[1].streams[0]  # bob's device: nothing to send or hear
    assert (offer.address, offer.direction) == ("10.0.0.1", INACTIVE)
    h.engine.on_media_answer(bd.leg, media("10.0.0.2", direction=INACTIVE))
    handle = ms.reply(("192.0.2.50", 20000))
    music = ad.last("update_media")[1].streams[0]
    assert (music.address, music.direction) == ("192.0.2.50", SENDONLY)
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    assert ("play", handle, "moh:default") in ms.calls
    held = h.of(CallHeld)
    assert [(e.call_id, e.device, e.held_device, e.by) for e in held] == [
        (call_id, "bob", "alice", "cti")
    ]
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_hold("bob", call_id)
    h.engine.cti_resume("bob", call_id)
    assert ("release", handle) in ms.calls
    back = bd.last("update_media")[1]
    assert back == media("10.0.0.1")  # alice's address, sendrecv
    h.engine.on_media_answer(bd.leg, media("10.0.0.2", port=5002))
    assert ad.last("update_media")[1] == media("10.0.0.2", port=5002)
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    resumed = h.of(CallResumed)
    assert [(e.call_id, e.device, e.by) for e in resumed] == [(call_id, "bob", "cti")]
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_resume("bob", call_id)


def test_resume_waits_for_the_music_offer(h: Harness, ms: RecordingMedia) -> None:
    call_id, ad, bd = talking(h)
    assert ad.leg is not None and bd.leg is not None
    h.engine.cti_hold("bob", call_id)
    h.engine.on_media_answer(bd.leg, media("10.0.0.2", direction=INACTIVE))
    handle = ms.reply(("192.0.2.50", 20000))
    h.engine.cti_resume("bob", call_id)  # the music's offer to alice is unanswered
    assert ("release", handle) not in ms.calls
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    assert ("release", handle) in ms.calls
    assert bd.last("update_media")[1] == media("10.0.0.1")


def test_network_hold_without_a_media_server_is_silence(h: Harness) -> None:
    call_id, ad, bd = talking(h)
    assert ad.leg is not None and bd.leg is not None
    h.engine.cti_hold("bob", call_id)
    assert bd.last("update_media")[1].streams[0].direction == INACTIVE
    silence = ad.last("update_media")[1].streams[0]  # no music: alice hears nothing
    assert (silence.address, silence.direction) == ("10.0.0.2", INACTIVE)
    h.engine.on_media_answer(bd.leg, media("10.0.0.2", direction=INACTIVE))
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=INACTIVE))
    assert [e.by for e in h.of(CallHeld)] == ["cti"]
    h.engine.cti_resume("bob", call_id)
    assert bd.last("update_media")[1].streams[0].direction == SENDRECV
    assert [e.by for e in h.of(CallResumed)] == ["cti"]


def test_hold_asks_a_device_that_can(rh: Harness) -> None:
    h = rh
    ms = RecordingMedia()
    h.engine.media = ms
    call_id, ad, _ = talking(h)
    assert ad.leg is not None
    driver = h.engine.call(call_id).b_leg.driver  # type: ignore[union-attr]
    assert isinstance(driver, RemoteDriver) and driver.leg is not None
    h.engine.cti_hold("bob", call_id)
    assert driver.last("remote") == ("remote", RemoteAction.HOLD)
    assert "update_media" not in driver.names()  # the phone holds by itself
    h.engine.on_media_offer(driver.leg, media("10.0.0.2", direction=SENDONLY))  # its hold
    ms.reply(("192.0.2.50", 20000))
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    h.engine.cti_resume("bob", call_id)
    assert driver.last("remote") == ("remote", RemoteAction.RESUME)
    h.engine.on_media_offer(driver.leg, media("10.0.0.2"))  # its resume
    assert [e.by for e in h.of(CallHeld)] == ["cti"]
    assert [e.by for e in h.of(CallResumed)] == ["cti"]


def test_a_phone_holding_by_itself_is_published_as_the_device(
    h: Harness, ms: RecordingMedia
) -> None:
    _, bd, _ = hold_with_music(h, ms)  # bob holds alice from his phone
    assert bd.leg is not None
    held = h.of(CallHeld)
    assert [(e.device, e.held_device, e.by) for e in held] == [("bob", "alice", "device")]
    h.engine.on_media_offer(bd.leg, media("10.0.0.2"))
    assert [(e.device, e.by) for e in h.of(CallResumed)] == [("bob", "device")]


def test_a_phone_holding_without_a_media_server_is_published(h: Harness) -> None:
    _, ad, bd = talking(h)
    assert bd.leg is not None and ad.leg is not None
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", direction=SENDONLY))
    assert ad.last("update_media")[1].streams[0].direction == SENDONLY  # relayed as it was
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    h.engine.on_media_offer(bd.leg, media("10.0.0.2", direction=SENDONLY))  # a refresh
    assert len(h.of(CallHeld)) == 1
    h.engine.on_media_answer(ad.leg, media("10.0.0.1", direction=RECVONLY))
    h.engine.on_media_offer(bd.leg, media("10.0.0.2"))
    assert [e.by for e in h.of(CallResumed)] == ["device"]


def test_hold_of_a_ringing_call_is_refused(h: Harness) -> None:
    phones(h)
    _, ad = h.call("alice", "1002")
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_hold("alice", the_call(h, ad.leg))
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_resume("alice", the_call(h, ad.leg))


# ---------------------------------------------------------------- transfers
def test_blind_transfer(h: Harness, ms: RecordingMedia) -> None:
    call_id, ad, bd = talking(h)
    with refused(Cause.INVALID_NUMBER_FORMAT, "invalid number"):
        h.engine.cti_transfer("bob", call_id, "")
    h.engine.cti_transfer("bob", call_id, "1003")
    c, _ = h.out("sip:carol@10.0.0.9")
    assert not h.of(CallTransferred)  # carol rings: bob is still in the call
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_transfer("bob", call_id, "1003")
    h.engine.on_connect(c, media("10.0.0.3"))
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert c.call is not None and ad.leg is not None and ad.leg.call is c.call
    moved = h.of(CallTransferred)
    assert [
        (e.call_id, e.device, e.role, e.kind, e.target, e.new_call_id, e.by) for e in moved
    ] == [
        (call_id, "bob", "transferrer", "blind", "1003", c.call.id, "cti"),
        (call_id, "alice", "transferee", "blind", "1003", c.call.id, "cti"),
    ]


def test_a_phone_transferring_blind_is_published_as_the_device(
    h: Harness, ms: RecordingMedia
) -> None:
    _, _, bd = talking(h)
    assert bd.leg is not None
    h.engine.transfer(bd.leg, "1003")
    c, _ = h.out("sip:carol@10.0.0.9")
    h.engine.on_connect(c, media("10.0.0.3"))
    assert [(e.role, e.kind, e.by) for e in h.of(CallTransferred)] == [
        ("transferrer", "blind", "device"),
        ("transferee", "blind", "device"),
    ]


def test_a_blind_transfer_is_published_when_the_transferrer_leaves_early(
    h: Harness, ms: RecordingMedia
) -> None:
    call_id, ad, bd = talking(h)
    assert bd.leg is not None and ad.leg is not None
    h.engine.cti_transfer("bob", call_id, "1003")
    c, _ = h.out("sip:carol@10.0.0.9")
    h.engine.cti_hangup("bob", call_id)  # carol still rings: alice goes over now
    assert ad.leg.call is c.call and c.call is not None
    moved = h.of(CallTransferred)
    assert [(e.device, e.call_id, e.new_call_id, e.by) for e in moved] == [
        ("bob", call_id, c.call.id, "cti"),
        ("alice", call_id, c.call.id, "cti"),
    ]


def test_consult_then_complete_the_transfer(h: Harness, ms: RecordingMedia) -> None:
    call_id, ad, bd = talking(h)
    assert ad.leg is not None and bd.leg is not None
    consult = h.engine.cti_consult("bob", call_id, "1003")
    assert consult != call_id
    assert bd.last("update_media")[1].streams[0].direction == INACTIVE  # held first
    h.engine.on_media_answer(bd.leg, media("10.0.0.2", direction=INACTIVE))
    x2, xd = h.out("sip:bob@10.0.0.9")  # bob's phone rung for the consultation
    assert xd.calls[0][1].auto_answer
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_complete_transfer("bob", call_id, consult)  # it has not answered
    h.engine.on_connect(x2, media("10.0.0.2", port=4002))
    c, cd = h.out("sip:carol@10.0.0.9")
    assert cd.calls[0][1].calling.number == "1002"
    h.engine.on_connect(c, media("10.0.0.3"))
    h.engine.on_media_answer(x2, media("10.0.0.2", port=4002))
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_complete_transfer("bob", call_id, call_id)
    h.engine.cti_complete_transfer("bob", call_id, consult)
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert xd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.leg.call is c.call
    moved = h.of(CallTransferred)
    assert [
        (e.call_id, e.device, e.role, e.kind, e.target, e.new_call_id, e.by) for e in moved
    ] == [
        (call_id, "bob", "transferrer", "consult", "1003", consult, "cti"),
        (call_id, "alice", "transferee", "consult", "1003", consult, "cti"),
    ]


def test_conference_of_two_calls(h: Harness, ms: RecordingMedia) -> None:
    call_id, _, bd = talking(h)
    assert bd.leg is not None
    consult, xd = h.call("bob", "1003")
    c, _ = h.out("sip:carol@10.0.0.9")
    h.engine.on_connect(c, media("10.0.0.3"))
    other = the_call(h, consult)
    with refused(Cause.INVALID_CALL_REFERENCE, "wrong device"):
        h.engine.cti_conference("alice", call_id, other)
    h.engine.cti_conference("bob", call_id, other)
    assert xd.released_with() == [Cause.NORMAL_CLEARING]
    done = h.of(CallConferenced)
    assert [(e.call_id, e.device, e.other_call_id, e.by) for e in done] == [
        (call_id, "bob", other, "cti")
    ]
    assert done[0].bridge == f"adhoc-{call_id}"


def test_conference_without_a_media_server_is_refused(h: Harness) -> None:
    call_id, _, _ = talking(h)
    consult, _ = h.call("bob", "1003")
    with refused(Cause.RESOURCE_UNAVAILABLE, "no conference bridge") as info:
        h.engine.cti_conference("bob", call_id, the_call(h, consult))
    assert info.value.cause == Cause.RESOURCE_UNAVAILABLE


def test_a_phone_conferencing_is_published_as_the_device(h: Harness, ms: RecordingMedia) -> None:
    from test_core_features import adhoc_three

    adhoc_three(h, ms)
    assert [(e.device, e.by) for e in h.of(CallConferenced)] == [("bob", "device")]


# ---------------------------------------------------------------- redirect
def test_redirect_deflects_a_ringing_call(h: Harness) -> None:
    phones(h)
    _, ad = h.call("alice", "1002")
    _, bd = h.out("sip:bob@10.0.0.9")
    call_id = the_call(h, ad.leg)
    with refused(Cause.UNALLOCATED_NUMBER, "cannot route") as info:
        h.engine.cti_redirect(call_id, "1999", "bob")
    assert info.value.cause == Cause.UNALLOCATED_NUMBER
    with refused(Cause.INVALID_CALL_REFERENCE, "wrong device"):
        h.engine.cti_redirect(call_id, "1003", "carol")
    h.engine.cti_redirect(call_id, "1003", "bob")
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.released_with() == []
    c, cd = h.out("sip:carol@10.0.0.9")
    setup = cd.calls[0][1]
    assert (setup.called, setup.original_called) == ("1003", "1002")
    assert [(d.number, d.reason) for d in setup.diversions] == [("1002", RedirectReason.DEFLECTION)]
    h.engine.on_connect(c, media("10.0.0.3"))
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_redirect(call_id, "1002")
    h.engine.on_release(c)
    record = h.record()
    assert (record.called, record.original_called, record.called_device) == (
        "1003",
        "1002",
        "carol",
    )
    assert (record.last_redirecting, record.redirect_reason) == ("1002", "deflection")


def test_redirect_without_a_device_takes_the_ringing_one(h: Harness) -> None:
    phones(h)
    _, ad = h.call("alice", "1002")
    _, bd = h.out("sip:bob@10.0.0.9")
    h.engine.cti_redirect(the_call(h, ad.leg), "1003")
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert "sip:carol@10.0.0.9" in h.factory.drivers


# ---------------------------------------------------------------- park
def test_park_answers_with_the_park_number(h: Harness, ms: RecordingMedia) -> None:
    from test_park import parked_with_music
    from test_park import plan as park_plan
    from test_park import talking as parked_talking

    park_plan(h)
    ad, b = parked_talking(h)
    call_id = the_call(h, b)
    assert h.engine.cti_park("bob", call_id) == "7000"
    parked_with_music(h, ms, ad)
    assert [p.number for p in park.parked(h.engine)] == ["7000"]
    assert [(e.role, e.kind, e.target, e.by) for e in h.of(CallTransferred)] == [
        ("transferrer", "blind", "7000", "cti"),
        ("transferee", "blind", "7000", "cti"),  # the parked party
    ]
    # the next ones get the next numbers; none is left after 7002
    for number in ("7001", "7002"):
        cd, d = parked_talking(h, "carol", "dave")
        assert h.engine.cti_park("dave", the_call(h, d)) == number
        parked_with_music(h, ms, cd)
    _, f = parked_talking(h, "carol", "dave")
    with refused(Cause.USER_BUSY, "no park slot available"):
        h.engine.cti_park("dave", the_call(h, f))


def test_park_without_a_media_server_is_refused(h: Harness) -> None:
    call_id, _, _ = talking(h)
    with refused(Cause.RESOURCE_UNAVAILABLE, "park not available"):
        h.engine.cti_park("bob", call_id)


# ---------------------------------------------------------------- DTMF
def test_send_dtmf_as_if_the_device_sent_it(h: Harness) -> None:
    call_id, ad, bd = talking(h)
    h.engine.cti_send_dtmf("alice", call_id, "12#a")
    assert bd.last("send_digits") == ("send_digits", "12#A")
    assert bd.leg is not None
    h.engine.on_digits(bd.leg, "9")  # the phone's own
    assert ad.last("send_digits") == ("send_digits", "9")
    got = h.of(DigitsReceived)
    assert [(e.call_id, e.device, e.digits) for e in got] == [
        (call_id, "alice", "12#A"),
        (call_id, "bob", "9"),
    ]
    for bad in ("", "12x", "1" * 33):
        with refused(Cause.INVALID_NUMBER_FORMAT, "invalid digits"):
            h.engine.cti_send_dtmf("alice", call_id, bad)


def test_send_dtmf_before_answer_is_refused(h: Harness) -> None:
    phones(h)
    _, ad = h.call("alice", "1002")
    with refused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, "wrong state"):
        h.engine.cti_send_dtmf("alice", the_call(h, ad.leg), "1")
    assert not h.of(DigitsReceived)
