"""CTI make call (click-to-dial): the device rings first, then the number is called as if
dialled there (ringback and early media to the phone, feature codes, pickup, park)."""

from __future__ import annotations

import pytest
from core_harness import FakeDriver, Harness, media
from test_core_features import RecordingMedia, phones

from offhook.core.causes import Cause
from offhook.core.cti_ops import CtiRefused
from offhook.core.events import Tone
from offhook.core.features import park
from offhook.core.leg import Leg, LegState
from offhook.core.media import INACTIVE, RECVONLY, SENDONLY, SENDRECV
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallStarted,
    LegStateChanged,
)


@pytest.fixture
def ms(h: Harness) -> RecordingMedia:
    port = RecordingMedia()
    h.engine.media = port
    return port


def ring_device(
    h: Harness, device: str = "alice", number: str = "1002", **kw: object
) -> tuple[str, Leg, FakeDriver]:
    """``cti_make_call``: the call id, and the device's leg and driver (it rings)."""
    call_id = h.engine.cti_make_call(device, number, **kw)  # type: ignore[arg-type]
    contact = f"sip:{device}@10.0.0.9"
    leg, driver = h.out(contact)
    h.factory.drivers.pop(contact)
    h.factory.legs.pop(contact)
    return call_id, leg, driver


def device_answers(
    h: Harness, device: str = "alice", number: str = "1002", address: str = "10.0.0.1"
) -> tuple[str, Leg, FakeDriver]:
    """The device rang and answered (offering ``address``): the number is being called."""
    call_id, leg, driver = ring_device(h, device, number)
    h.engine.on_connect(leg, media(address))
    return call_id, leg, driver


def test_the_device_rings_first_showing_the_number(h: Harness) -> None:
    phones(h)
    call_id, a, ad = ring_device(h)
    assert ad.names() == ["offer"]
    setup = ad.calls[0][1]
    assert (setup.calling.number, setup.called) == ("1002", "1001")
    assert setup.media is None and not setup.auto_answer  # a delayed offer
    assert "sip:bob@10.0.0.9" not in h.factory.drivers  # bob waits for alice
    started = h.of(CallStarted)
    assert [(s.call_id, s.calling.number, s.called, s.calling_device) for s in started] == [
        (call_id, "1001", "1002", "alice")
    ]
    h.engine.on_alerting(a)
    assert a.state is LegState.ALERTING
    assert not h.of(CallAlerting)  # the far end has not been called yet
    # the stand-in for the caller's side is never published nor listed
    assert {(c.device, c.direction) for c in h.of(LegStateChanged)} == {("alice", "outbound")}
    call = h.engine.call(call_id)
    assert call is not None
    assert [leg.device for leg in call.status().legs] == ["alice"]


def test_when_the_device_answers_the_number_is_called_from_it(h: Harness) -> None:
    phones(h)
    call_id, a, ad = device_answers(h)
    silence = ad.last("media_answer")[1].streams[0]
    assert (silence.address, silence.direction) == ("0.0.0.0", INACTIVE)
    b, bd = h.out("sip:bob@10.0.0.9")
    out = bd.calls[0][1]
    assert (out.calling.number, out.calling.device, out.called) == ("1001", "alice", "1002")
    assert out.media == media("10.0.0.1")
    call = h.engine.call(call_id)
    assert call is not None and call.a_leg is a and b in call.forks
    h.engine.on_alerting(b)  # no media server: the phone plays ringback itself
    assert ad.last("play_tone") == ("play_tone", Tone.RINGBACK)
    assert [e.device for e in h.of(CallAlerting)] == ["bob"]
    h.engine.on_connect(b, media("10.0.0.2"))
    assert ad.last("play_tone") == ("play_tone", Tone.OFF)
    assert ad.last("update_media")[1] == media("10.0.0.2")
    h.engine.on_media_answer(a, media("10.0.0.1"))
    assert "update_media" not in bd.names()  # bob sends where alice listens already
    assert [e.device for e in h.of(CallAnswered)] == ["bob"]
    h.engine.on_release(b)
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    record = h.record()
    assert (record.call_id, record.calling, record.called) == (call_id, "1001", "1002")
    assert (record.calling_device, record.called_device) == ("alice", "bob")
    assert record.answer is not None and record.cause == Cause.NORMAL_CLEARING


def test_ringback_from_the_media_server_then_the_far_end(h: Harness, ms: RecordingMedia) -> None:
    phones(h)
    _, a, ad = device_answers(h)
    b, bd = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    handle = ms.reply(("192.0.2.50", 20000))
    assert ("play", handle, "tone:ringback") in ms.calls
    assert ms.named("connect")[-1][2:4] == ("10.0.0.1", 4000)  # it streams to alice
    ringback = ad.last("update_media")[1].streams[0]
    assert (ringback.address, ringback.port, ringback.direction) == (
        "192.0.2.50",
        20000,
        SENDONLY,
    )
    # bob answers while the ringback offer is still unanswered: joined after it
    h.engine.on_connect(b, media("10.0.0.2"))
    assert ("release", handle) in ms.calls
    assert ad.names().count("update_media") == 1
    h.engine.on_media_answer(a, media("10.0.0.1", direction=RECVONLY))
    assert ad.names().count("update_media") == 2
    assert ad.last("update_media")[1] == media("10.0.0.2")
    h.engine.on_media_answer(a, media("10.0.0.1", port=4002))
    assert bd.last("update_media")[1] == media("10.0.0.1", port=4002)


def test_far_end_early_media_goes_to_the_phone_one_offer_at_a_time(
    h: Harness, ms: RecordingMedia
) -> None:
    phones(h)
    _, a, ad = device_answers(h)
    b, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    handle = ms.reply(("192.0.2.50", 20000))
    h.engine.on_progress(b, media("10.0.0.2", port=6000))  # bob's own early media
    assert ("release", handle) in ms.calls  # the ringback stops
    assert ad.names().count("update_media") == 1  # waits for the ringback offer's answer
    h.engine.on_media_answer(a, media("10.0.0.1", direction=RECVONLY))
    assert ad.last("update_media")[1] == media("10.0.0.2", port=6000)


def test_the_device_not_answering_ends_the_call(h: Harness) -> None:
    phones(h)
    call_id, _, ad = ring_device(h)
    h.clock.advance(60.0)
    h.engine.handle_timer(h.clock.monotonic())
    assert ad.released_with() == [Cause.NO_ANSWER]
    record = h.record()
    assert (record.call_id, record.calling, record.called, record.calling_device) == (
        call_id,
        "1001",
        "1002",
        "alice",
    )
    assert record.answer is None and record.cause == Cause.NO_ANSWER
    assert not h.engine.active_calls()
    assert all(c.direction == "outbound" for c in h.of(LegStateChanged))


def test_the_device_declining_ends_the_call(h: Harness) -> None:
    phones(h)
    _, a, _ = ring_device(h)
    h.engine.on_release(a, Cause.CALL_REJECTED)
    assert h.record().cause == Cause.CALL_REJECTED
    assert "sip:bob@10.0.0.9" not in h.factory.drivers


def test_a_hang_up_while_the_device_rings_cancels_it(h: Harness) -> None:
    phones(h)
    call_id, _, ad = ring_device(h)
    h.engine.cti_hangup("alice", call_id)
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    assert h.record().cause == Cause.NORMAL_CLEARING


def test_auto_answer_and_another_line(h: Harness) -> None:
    h.device("alice", "1001", "1011")
    h.device("bob", "1002")
    h.register("alice")
    h.register("bob")
    _, a, ad = ring_device(h, line="1011", auto_answer=True)
    setup = ad.calls[0][1]
    assert setup.auto_answer and setup.called == "1011"
    h.engine.on_connect(a, media("10.0.0.1"))
    _, bd = h.out("sip:bob@10.0.0.9")
    assert bd.calls[0][1].calling.number == "1011"


@pytest.mark.parametrize(
    ("device", "number", "line", "cause", "reason"),
    [
        ("zed", "1002", "", Cause.UNALLOCATED_NUMBER, "no such device"),
        ("alice", "1002", "1099", Cause.UNALLOCATED_NUMBER, "no such line"),
        ("alice", "", "", Cause.INVALID_NUMBER_FORMAT, "invalid number"),
        ("alice", "10 02", "", Cause.INVALID_NUMBER_FORMAT, "invalid number"),
        ("dave", "1002", "", Cause.SUBSCRIBER_ABSENT, "not registered"),
    ],
)
def test_make_call_refusals(
    h: Harness, device: str, number: str, line: str, cause: int, reason: str
) -> None:
    phones(h)
    h.device("dave", "1004")  # never registered
    with pytest.raises(CtiRefused) as refused:
        h.engine.cti_make_call(device, number, line=line)
    assert refused.value.cause == cause
    assert str(refused.value).startswith(reason)
    assert not h.engine.active_calls() and not h.events


def test_make_call_from_a_device_at_its_limit_is_refused(h: Harness) -> None:
    h.device("alice", "1001", max_calls=1)
    h.device("bob", "1002")
    h.register("alice")
    h.register("bob")
    h.call("alice", "1002")
    with pytest.raises(CtiRefused) as refused:
        h.engine.cti_make_call("alice", "1002")
    assert refused.value.cause == Cause.USER_BUSY


def test_a_feature_code_works_as_dialled_on_the_phone(h: Harness) -> None:
    phones(h)
    _, _, ad = device_answers(h, number="*78")
    assert h.engine.dnd("alice")
    assert ad.released_with() == [Cause.NORMAL_CLEARING]  # no media server: no confirmation tone


def test_an_unknown_number_releases_the_phone(h: Harness) -> None:
    phones(h)
    _, _, ad = device_answers(h, number="1999")
    assert ad.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert h.record().cause == Cause.UNALLOCATED_NUMBER


# ---------------------------------------------------------------- pickup, park
def test_cti_pickup_rings_the_picker_then_takes_the_call(h: Harness) -> None:
    from test_pickup import dial
    from test_pickup import plan as pickup_plan

    pickup_plan(h)
    ad = dial(h, "alice", "1002")
    b, bd = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    picker = h.engine.cti_pickup("carol")
    c, cd = h.out("sip:carol@10.0.0.9")
    assert cd.calls[0][1].calling.number == "*8"
    assert bd.released_with() == []  # still ringing: carol has not answered yet
    h.engine.on_connect(c, media("10.0.0.3"))
    assert bd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    # carol is connected already: she is offered alice's offer, alice answered with hers
    assert cd.last("update_media")[1] == media("10.0.0.1")
    h.engine.on_media_answer(c, media("10.0.0.3", port=4004))
    assert ad.last("answer")[1] == media("10.0.0.3", port=4004)
    assert ad.leg is not None and ad.leg.state is LegState.CONNECTED
    assert [e.device for e in h.of(CallAnswered)] == ["carol"]
    pick = h.record()
    assert pick.call_id == picker and pick.called == "*8"
    h.engine.on_release(c)
    record = h.records()[-1]
    assert (record.called_device, record.called) == ("carol", "1003")
    assert (record.last_redirecting, record.redirect_reason) == ("1002", "pickup")


def test_cti_directed_pickup(h: Harness) -> None:
    from test_pickup import dial
    from test_pickup import plan as pickup_plan

    pickup_plan(h)
    dial(h, "alice", "1002", offer=False)  # an SCCP caller: no offer
    h.engine.cti_pickup("dave", "1002")
    d, dd = h.out("sip:dave@10.0.0.9")
    assert dd.calls[0][1].calling.number == "**1002"
    h.engine.on_connect(d, media("10.0.0.4"))
    ad = [c for c in h.events if isinstance(c, CallAnswered)]
    assert [e.device for e in ad] == ["dave"]


def test_cti_pickup_without_a_code_is_refused(h: Harness) -> None:
    phones(h)
    h.engine.codes["pickup"] = ""
    with pytest.raises(CtiRefused) as refused:
        h.engine.cti_pickup("alice")
    assert refused.value.cause == Cause.SERVICE_NOT_IMPLEMENTED


def test_park_retrieval_by_click_to_dial(h: Harness, ms: RecordingMedia) -> None:
    from test_park import parked_with_music, talking
    from test_park import plan as park_plan

    park_plan(h)
    ad, b = talking(h)
    h.engine.transfer(b, "7001")
    parked_with_music(h, ms, ad)
    h.engine.cti_make_call("carol", "7001")
    c, cd = h.out("sip:carol@10.0.0.9")
    h.engine.on_connect(c, media("10.0.0.3"))
    assert not park.parked(h.engine)
    offer = cd.last("update_media")[1]  # alice's media, offered to carol
    assert offer.streams[0].address == "10.0.0.1" and offer.streams[0].direction == SENDRECV
    h.engine.on_media_answer(c, media("10.0.0.3"))
    assert ad.last("update_media")[1] == media("10.0.0.3")
    assert [e.device for e in h.of(CallAnswered)][-1] == "carol"
