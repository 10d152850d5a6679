"""Call control with recording drivers: routing, forking, clearing, media, limits."""

from __future__ import annotations

import logging

import pytest
from core_harness import FakeDriver, Harness, media

from offhook.core.causes import Cause
from offhook.core.events import Alerting, Connect, Digits, MediaOffer, Release
from offhook.core.leg import LegState
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallEnded,
    CallStarted,
    LegStateChanged,
)

START = 1_700_000_000.0  # FakeClock wall at start


def two_phones(h: Harness) -> tuple[str, str]:
    h.device("alice", "1001", display="Alice")
    h.device("bob", "1002")
    h.register("alice")
    return h.register("bob"), "bob"


def test_basic_call_answer_and_hangup(h: Harness) -> None:
    contact, _ = two_phones(h)
    a, ad = h.call("alice", "1002", "1001")
    b, bd = h.out(contact)
    assert bd.names() == ["offer"]
    setup = bd.calls[0][1]
    assert setup.called == "1002" and setup.original_called == "1002"
    assert setup.calling.number == "1001"
    assert setup.calling.name == "Alice"  # filled from the plan's line display
    assert setup.calling.device == "alice"
    assert setup.media == media("10.0.0.1")
    assert b.state.value == "offered" and a.state.value == "setup"

    h.engine.on_progress(b, None)
    h.engine.on_alerting(b, None)
    assert ad.names() == ["progress", "alert"]
    assert a.state is LegState.ALERTING
    h.clock.advance(3)
    h.engine.on_connect(b, media("10.0.0.2"))
    assert ad.last("answer") == ("answer", media("10.0.0.2"))
    assert a.state is b.state is LegState.CONNECTED
    [status] = h.engine.calls()
    assert status.state == "connected" and status.answer == START + 3
    assert [(lg.device, lg.direction) for lg in status.legs] == [
        ("alice", "inbound"),
        ("bob", "outbound"),
    ]
    assert h.engine.snapshot_state()["active_calls"] == 1

    h.clock.advance(42.4)
    h.engine.on_release(a, Cause.NORMAL_CLEARING)
    assert bd.released_with() == [16]
    assert ad.released_with() == []  # it cleared itself
    assert a.released and b.released
    rec = h.record()
    assert rec.calling == "1001" and rec.called == "1002" and rec.original_called == "1002"
    assert rec.calling_device == "alice" and rec.called_device == "bob"
    assert rec.start == START and rec.answer == START + 3
    assert rec.end == pytest.approx(START + 45.4)
    assert rec.duration == 42
    assert rec.cause == 16 and rec.cause_text == "Normal call clearing" and rec.node == "n1"
    assert len(h.of(CallStarted)) == 1 and len(h.of(CallAlerting)) == 1
    assert len(h.of(CallAnswered)) == 1
    assert h.engine.calls() == [] and h.engine.device_calls("alice") == 0
    assert h.engine.next_timer() is None


def test_release_from_called_side_after_connect(h: Harness) -> None:
    contact, _ = two_phones(h)
    a, ad = h.call("alice", "1002")
    b, bd = h.out(contact)
    h.engine.on_connect(b, media("10.0.0.2"))
    h.engine.on_release(b, Cause.NORMAL_CLEARING)
    assert ad.released_with() == [16] and bd.released_with() == []
    assert h.record().cause == 16
    # late reports on released legs are ignored, no second record
    h.engine.on_release(a, 16)
    h.engine.on_release(b, 16)
    assert len(h.records()) == 1


def test_unknown_number_is_unallocated(h: Harness) -> None:
    two_phones(h)
    a, ad = h.call("alice", "5555")
    assert ad.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert a.released
    rec = h.record()
    assert rec.cause == 1 and rec.called_device == "" and rec.answer is None
    assert rec.duration == 0 and rec.called == "5555"


def test_no_registration_is_subscriber_absent(h: Harness) -> None:
    h.device("alice", "1001")
    h.device("bob", "1002")
    h.register("bob", expires=10)
    h.clock.advance(11)  # bob's binding expired
    _, ad = h.call("alice", "1002")
    assert ad.released_with() == [Cause.SUBSCRIBER_ABSENT]
    assert h.record().cause == 20
    assert h.factory.drivers == {}


def test_shared_line_forks_first_answer_wins(h: Harness) -> None:
    h.device("alice", "1001")
    for name in ("desk", "soft", "lobby"):
        h.device(name, "2000")
    c1 = h.register("desk")
    c2 = h.register("soft")
    c3 = h.register("soft", "sip:soft@10.0.0.77")  # two contacts of one device
    c4 = h.register("lobby")
    a, ad = h.call("alice", "2000")
    assert sorted(h.factory.drivers) == sorted([c1, c2, c3, c4])
    assert all(d.names() == ["offer"] for d in h.factory.drivers.values())

    h.engine.on_alerting(h.out(c1)[0], None)
    h.engine.on_alerting(h.out(c2)[0], None)  # second alert, no new media: not relayed
    assert ad.names() == ["alert"]
    h.engine.on_progress(h.out(c4)[0], media("10.9.9.9"))  # new early media: relayed
    assert ad.names() == ["alert", "progress"]

    h.engine.on_connect(h.out(c2)[0], media("10.0.0.2"))
    for c in (c1, c3, c4):
        assert h.out(c)[1].released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert h.out(c2)[1].released_with() == []
    assert ad.last("answer")[1] == media("10.0.0.2")
    # alice's dialog took its SDP answer from lobby's early media: she is re-offered soft's
    assert ad.last("update_media")[1] == media("10.0.0.2")

    # a loser's late 200 OK / release are ignored: the adapter cleans up itself
    h.engine.on_connect(h.out(c1)[0], media("10.0.0.3"))
    h.engine.on_release(h.out(c1)[0], 16)
    assert ad.names() == ["alert", "progress", "answer", "update_media"]

    h.engine.on_release(a, 16)
    rec = h.record()
    assert rec.called_device == "soft" and rec.cause == 16


def test_calling_own_shared_line_rings_the_other_devices_only(h: Harness) -> None:
    h.device("desk", "2000")
    h.device("soft", "2000")
    h.register("desk")
    c2 = h.register("soft")
    h.call("desk", "2000")
    assert list(h.factory.drivers) == [c2]


def test_calling_yourself_is_busy(h: Harness) -> None:
    h.device("alice", "1001")
    h.register("alice")
    _, ad = h.call("alice", "1001")
    assert ad.released_with() == [Cause.USER_BUSY]
    assert h.record().cause == 17


def shared(h: Harness, n: int = 3) -> list[str]:
    h.device("alice", "1001")
    contacts = []
    for i in range(n):
        h.device(f"p{i}", "2000")
        contacts.append(h.register(f"p{i}"))
    return contacts


def test_busy_on_all_forks(h: Harness) -> None:
    contacts = shared(h)
    a, ad = h.call("alice", "2000")
    for c in contacts[:-1]:
        h.engine.on_release(h.out(c)[0], Cause.USER_BUSY)
        assert ad.released_with() == []  # still one fork up
    h.engine.on_release(h.out(contacts[-1])[0], Cause.USER_BUSY)
    assert ad.released_with() == [17] and a.released
    assert h.record().cause == 17 and h.record().called_device == "p0"


@pytest.mark.parametrize(
    ("causes", "best"),
    [
        ([Cause.NO_ANSWER, Cause.USER_BUSY, Cause.TEMPORARY_FAILURE], 17),
        ([Cause.TEMPORARY_FAILURE, Cause.NO_ANSWER, Cause.NETWORK_OUT_OF_ORDER], 19),
        ([Cause.NETWORK_OUT_OF_ORDER, Cause.TEMPORARY_FAILURE, Cause.SUBSCRIBER_ABSENT], 20),
    ],
)
def test_mixed_failures_pick_the_best_cause(h: Harness, causes: list[int], best: int) -> None:
    contacts = shared(h)
    _, ad = h.call("alice", "2000")
    for c, cause in zip(contacts, causes, strict=True):
        h.engine.on_release(h.out(c)[0], cause)
    assert ad.released_with() == [best]
    assert h.record().cause == best


def test_unregistered_member_counts_in_cause_selection(h: Harness) -> None:
    h.device("alice", "1001")
    h.device("p0", "2000")
    h.device("p1", "2000")  # never registers: 20
    c0 = h.register("p0")
    _, ad = h.call("alice", "2000")
    h.engine.on_release(h.out(c0)[0], Cause.RECOVERY_ON_TIMER_EXPIRY)
    assert ad.released_with() == [Cause.SUBSCRIBER_ABSENT]


def test_decline_ends_the_whole_fork(h: Harness) -> None:
    contacts = shared(h)
    _, ad = h.call("alice", "2000")
    h.engine.on_release(h.out(contacts[1])[0], Cause.CALL_REJECTED)
    assert ad.released_with() == [21]
    assert h.out(contacts[0])[1].released_with() == [21]
    assert h.out(contacts[2])[1].released_with() == [21]
    assert h.record().cause == 21


def test_cancel_before_answer_releases_every_fork(h: Harness) -> None:
    contacts = shared(h)
    a, ad = h.call("alice", "2000")
    h.engine.on_alerting(h.out(contacts[0])[0], None)
    h.engine.on_release(h.out(contacts[2])[0], Cause.USER_BUSY)
    h.engine.on_release(a, Cause.NORMAL_CLEARING)
    assert h.out(contacts[0])[1].released_with() == [16]
    assert h.out(contacts[1])[1].released_with() == [16]
    assert h.out(contacts[2])[1].released_with() == []  # already gone
    assert ad.released_with() == []
    rec = h.record()
    assert rec.cause == 16 and rec.answer is None and rec.duration == 0


def connected(h: Harness) -> tuple[FakeDriver, FakeDriver]:
    contact, _ = two_phones(h)
    _, ad = h.call("alice", "1002")
    b, bd = h.out(contact)
    h.engine.on_connect(b, media("10.0.0.2"))
    return ad, bd


def test_reoffer_relayed_both_ways(h: Harness) -> None:
    ad, bd = connected(h)
    a, b = ad.leg, bd.leg
    assert a is not None and b is not None
    hold = media("10.0.0.1", direction="sendonly")
    h.engine.on_media_offer(a, hold)
    assert bd.last("update_media") == ("update_media", hold)
    held = media("10.0.0.2", direction="recvonly")
    h.engine.on_media_answer(b, held)
    assert ad.last("media_answer") == ("media_answer", held, None)

    resume = media("10.0.0.2", port=5000)
    h.engine.dispatch(b, MediaOffer(resume))
    assert ad.last("update_media") == ("update_media", resume)
    h.engine.on_media_answer(a, None, Cause.INCOMPATIBLE_DESTINATION)  # far side refuses
    assert bd.last("media_answer") == ("media_answer", None, 88)
    # an answer nobody asked for is ignored
    h.engine.on_media_answer(a, media())
    assert bd.names().count("media_answer") == 1


def test_glare_refuses_the_newcomer(h: Harness) -> None:
    ad, bd = connected(h)
    a, b = ad.leg, bd.leg
    assert a is not None and b is not None
    h.engine.on_media_offer(a, media(port=4002))
    h.engine.on_media_offer(b, media("10.0.0.2", port=5002))
    assert bd.last("media_answer") == ("media_answer", None, Cause.TEMPORARY_FAILURE)
    assert "update_media" not in ad.names()
    h.engine.on_media_answer(b, media("10.0.0.2"))
    assert ad.last("media_answer")[1] == media("10.0.0.2")
    # after the answer a new offer goes through
    h.engine.on_media_offer(b, media("10.0.0.2", port=5002))
    assert ad.last("update_media")[1] == media("10.0.0.2", port=5002)


def test_media_offer_before_connect_is_refused(h: Harness) -> None:
    contact, _ = two_phones(h)
    a, ad = h.call("alice", "1002")
    h.engine.on_media_offer(a, media())
    assert ad.last("media_answer") == (
        "media_answer",
        None,
        Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE,
    )
    assert h.out(contact)[1].names() == ["offer"]


def test_delayed_offer_connect_media_is_answered_by_the_caller(h: Harness) -> None:
    contact, _ = two_phones(h)
    a, ad = h.call("alice", "1002", offer=False)
    b, bd = h.out(contact)
    assert bd.calls[0][1].media is None
    h.engine.on_connect(b, media("10.0.0.2"))  # B's 200 OK carries the offer
    assert ad.last("answer")[1] == media("10.0.0.2")
    h.engine.on_media_answer(a, media("10.0.0.1"))  # A's ACK carries the answer
    assert bd.last("media_answer") == ("media_answer", media("10.0.0.1"), None)


def test_digits_relayed_after_connect_only(h: Harness) -> None:
    contact, _ = two_phones(h)
    a, _ = h.call("alice", "1002")
    b, bd = h.out(contact)
    h.engine.on_digits(a, "1")
    assert "send_digits" not in bd.names()
    h.engine.on_connect(b, None)
    h.engine.dispatch(a, Digits("42#"))
    assert bd.last("send_digits") == ("send_digits", "42#")


def test_max_calls_called_device_busy(h: Harness) -> None:
    h.device("alice", "1001")
    h.device("carol", "1003")
    h.device("bob", "1002", max_calls=1)
    h.register("alice")
    h.register("carol")
    cb = h.register("bob")
    h.call("carol", "1002")
    h.engine.on_connect(h.out(cb)[0], None)
    assert h.engine.device_calls("bob") == 1
    _, ad = h.call("alice", "1002")
    assert ad.released_with() == [Cause.USER_BUSY]
    assert [r.cause for r in h.records()] == [17]


def test_max_calls_counts_calls_not_contacts(h: Harness) -> None:
    h.device("alice", "1001")
    h.device("bob", "1002", max_calls=1)
    h.register("bob")
    h.register("bob", "sip:bob@10.0.0.50")
    h.call("alice", "1002")
    assert len(h.factory.drivers) == 2
    assert h.engine.device_calls("bob") == 1


def test_max_calls_on_the_calling_device(h: Harness) -> None:
    h.device("alice", "1001", max_calls=1)
    h.device("bob", "1002")
    h.device("carol", "1003")
    h.register("bob")
    h.register("carol")
    h.call("alice", "1002")
    _, ad2 = h.call("alice", "1003")
    assert ad2.released_with() == [Cause.USER_BUSY]
    assert len(h.factory.drivers) == 1


def test_ring_timeout(h: Harness) -> None:
    contacts = shared(h, 2)
    a, ad = h.call("alice", "2000")
    h.engine.on_alerting(h.out(contacts[0])[0], None)
    deadline = h.engine.next_timer()
    assert deadline == h.clock.monotonic() + 60
    h.clock.advance(59)
    h.engine.handle_timer(h.clock.monotonic())
    assert not a.released
    h.clock.advance(1)
    h.engine.handle_timer(h.clock.monotonic())
    assert ad.released_with() == [19]
    assert all(h.out(c)[1].released_with() == [19] for c in contacts)
    assert h.record().cause == 19
    assert h.engine.next_timer() is None


def test_ring_timer_stops_on_answer() -> None:
    h = Harness(ring_timeout=5)
    contact, _ = two_phones(h)
    h.call("alice", "1002")
    h.engine.dispatch(h.out(contact)[0], Connect(None))
    assert h.engine.next_timer() is None
    h.clock.advance(10)
    h.engine.handle_timer(h.clock.monotonic())
    assert h.records() == []


def test_no_ring_timeout_when_disabled() -> None:
    h = Harness(ring_timeout=None)
    two_phones(h)
    h.call("alice", "1002")
    assert h.engine.next_timer() is None


def test_subscriber_exception_does_not_break_a_call(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("cdr writer down")

    h.bus.subscribe_all(broken)
    contact, _ = two_phones(h)
    with caplog.at_level(logging.ERROR):
        a, ad = h.call("alice", "1002")
        b, _ = h.out(contact)
        h.engine.on_alerting(b, None)
        h.engine.on_connect(b, None)
        h.engine.on_release(a, 16)
    assert ad.names() == ["alert", "answer"]
    assert h.record().cause == 16
    assert "cdr writer down" in caplog.text


def test_driver_calling_back_synchronously_is_queued(h: Harness) -> None:
    """A driver that fails inside offer() reports it at once; routing finishes first."""
    contacts = shared(h, 2)

    def hook(driver: FakeDriver, leg: object) -> None:
        if driver.name == contacts[0]:
            orig = driver.offer

            def offer(setup: object) -> None:
                orig(setup)  # type: ignore[arg-type]
                h.engine.on_release(leg, Cause.DESTINATION_OUT_OF_ORDER)  # type: ignore[arg-type]

            driver.offer = offer  # type: ignore[method-assign]

    h.factory.hook = hook
    _, ad = h.call("alice", "2000")
    assert len(h.factory.drivers) == 2  # the second fork was still offered
    assert ad.released_with() == []
    h.engine.on_release(h.out(contacts[1])[0], Cause.NO_ANSWER)
    assert ad.released_with() == [19]


def test_driver_exception_releases_its_leg(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    two_phones(h)
    h.factory.hook = lambda d, leg: d.raise_on.add("offer")
    with caplog.at_level(logging.ERROR):
        _, ad = h.call("alice", "1002")
    assert ad.released_with() == [Cause.TEMPORARY_FAILURE]
    assert h.record().cause == 41


def test_missing_factory_for_protocol(h: Harness) -> None:
    h.device("alice", "1001")
    h.device("bob", "1002")
    from offhook.common.location import Binding

    h.locations.put(Binding("bob", "sccp", "SEP0001", h.clock.monotonic() + 100))
    _, ad = h.call("alice", "1002")
    assert ad.released_with() == [Cause.SERVICE_UNAVAILABLE]
    assert len(h.records()) == 1


def test_release_call_from_outside(h: Harness) -> None:
    ad, bd = connected(h)
    [status] = h.engine.calls()
    assert h.engine.release_call(status.call_id, Cause.NORMAL_UNSPECIFIED)
    assert ad.released_with() == [31] and bd.released_with() == [31]
    assert not h.engine.release_call(status.call_id)


def test_inbound_leg_released_before_setup_makes_no_record(h: Harness) -> None:
    leg = h.engine.inbound_leg(FakeDriver(), "alice")
    h.engine.dispatch(leg, Release(16))
    assert leg.released and h.records() == []
    assert h.engine.device_calls("alice") == 0


def test_invalid_reports_are_logged_not_raised(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    contact, _ = two_phones(h)
    a, ad = h.call("alice", "1002")
    with caplog.at_level(logging.WARNING):
        h.engine.dispatch(a, Alerting(None))  # inbound devices do not alert
        h.engine.on_progress(h.out(contact)[0], None)
        h.engine.on_connect(h.out(contact)[0], None)
        h.engine.setup(a, h.engine.call(a.call.id).setup)  # type: ignore[union-attr]
    assert "call control" in caplog.text
    assert ad.names() == ["progress", "answer"]


def test_leg_state_events_and_exactly_one_record_per_call(h: Harness) -> None:
    contacts = shared(h, 2)
    a, _ = h.call("alice", "2000")
    h.engine.on_connect(h.out(contacts[0])[0], None)
    h.engine.on_release(a, 16)
    h.call("alice", "9999")
    changes = [(e.device, e.old, e.new) for e in h.of(LegStateChanged)]
    assert ("alice", "idle", "setup") in changes
    assert ("p1", "offered", "released") in changes
    assert ("p0", "connected", "released") in changes
    ends = h.of(CallEnded)
    assert len(ends) == 2 and len(h.of(CallStarted)) == 2
    assert len({e.record.call_id for e in ends}) == 2
    assert all(e.record.call_id.startswith("n1-") for e in ends)


def test_location_store_failure_fails_the_call_cleanly(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    two_phones(h)

    def broken(device: str, now: float) -> list[object]:
        raise ConnectionError("redis down")

    h.locations.bindings = broken  # type: ignore[assignment,method-assign]
    with caplog.at_level(logging.ERROR):
        a, ad = h.call("alice", "1002")
    assert ad.released_with() == [Cause.TEMPORARY_FAILURE] and a.released
    assert h.record().cause == 41
    assert h.engine.calls() == []
