"""cti.events: every bus event CTI shows, as a dict of the CTI event schema.

Calls run through the real call engine (recording drivers, ``core_harness``):
a call's legs make call.initiated/offered/ringing/answered/cleared per
device with the call's parties read from the engine; records features
publish (held, resumed, transferred, conferenced, digits) and device, line,
MWI, forward and DND changes make their events; legs on a media server and
per-call summaries make none.
"""

from __future__ import annotations

from typing import Any

import pytest

from offhook.core.call import EARLY_MEDIA_DEVICE
from offhook.core.directory import DeviceInfo, Forward, LineInfo
from offhook.core.events import PartyInfo
from offhook.core.leg import Direction, Leg
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallConferenced,
    CallEnded,
    CallHeld,
    CallResumed,
    CallStarted,
    CallTransferred,
    DigitsReceived,
    DndChanged,
    ForwardChanged,
    HuntLoginChanged,
    LegStateChanged,
    LineStateChanged,
    MwiChanged,
    RegistrationChanged,
    RegistrationRejected,
)
from offhook.cti.events import LEG_EVENTS, NO_DEVICE, EventMapper, leg_state
from unit.core.core_harness import FakeDriver, Harness, media

WALL = 1_700_000_000.0
HEAD = {"id", "type", "time", "node"}
CALL_FIELDS = HEAD | {
    "call_id",
    "leg_id",
    "device",
    "line",
    "direction",
    "state",
    "calling",
    "calling_name",
    "called",
    "original_called",
    "redirect_reason",
}
# Every event type and exactly the fields it has (the schema of notes/issue12-design.md).
SCHEMA: dict[str, set[str]] = {
    "device.registered": HEAD | {"device", "protocol"},
    "device.unregistered": HEAD | {"device", "protocol"},
    "device.rejected": HEAD | {"device", "protocol", "source", "reason"},
    "line.state": HEAD | {"dn", "partition", "state", "devices"},
    "call.initiated": CALL_FIELDS,
    "call.offered": CALL_FIELDS,
    "call.ringing": CALL_FIELDS,
    "call.answered": CALL_FIELDS,
    "call.held": CALL_FIELDS | {"held_device", "by"},
    "call.resumed": CALL_FIELDS | {"by"},
    "call.transferred": CALL_FIELDS | {"role", "kind", "target", "new_call_id", "by"},
    "call.conferenced": CALL_FIELDS | {"bridge", "other_call_id", "by"},
    "call.cleared": CALL_FIELDS | {"cause", "cause_text"},
    "call.dtmf": CALL_FIELDS | {"digits"},
    "call.ended": HEAD
    | {
        "call_id",
        "calling",
        "called",
        "original_called",
        "cause",
        "cause_text",
        "duration",
        "answered",
    },
    "mwi.changed": HEAD | {"dn", "partition", "waiting", "new", "old"},
    "forward.changed": HEAD | {"dn", "partition", "destination", "device"},
    "dnd.changed": HEAD | {"device", "on"},
}


class Rig:
    """A harness engine with a mapper on its bus, keeping every CTI event made."""

    def __init__(self) -> None:
        self.h = Harness()
        self.mapper = EventMapper(self.h.engine, "node-a", lambda: WALL)
        self.events: list[dict[str, Any]] = []
        self.h.bus.subscribe_all(self._on)

    def _on(self, event: object) -> None:
        cti = self.mapper(event)
        if cti is not None:
            check_schema(cti)
            self.events.append(cti)

    def publish(self, event: object) -> dict[str, Any]:
        before = len(self.events)
        self.h.bus.publish(event)
        [made] = self.events[before:]
        return made

    def kinds(self) -> list[tuple[str, str, str]]:
        """The call events: type, device, state."""
        return [
            (e["type"], e.get("device", ""), e.get("state", ""))
            for e in self.events
            if e["type"].startswith("call.")
        ]


def check_schema(event: dict[str, Any]) -> None:
    assert set(event) == SCHEMA[event["type"]], event
    assert event["id"] == 0 and event["time"] == WALL and event["node"] == "node-a"
    for name in ("call_id", "leg_id", "device", "line", "calling", "called", "state"):
        if name in event:
            assert isinstance(event[name], str), (name, event)


@pytest.fixture
def rig() -> Rig:
    r = Rig()
    r.h.device("alice", "1001", display="Alice")
    r.h.device("bob", "1002")
    r.h.device("carol", "1003")
    for name in ("alice", "bob", "carol"):
        r.h.register(name)
    return r


def answered(rig: Rig) -> tuple[Leg, Leg]:
    a, _ = rig.h.call("alice", "1002", "1001")
    b, _ = rig.h.out("sip:bob@10.0.0.9")
    rig.h.engine.on_alerting(b, None)
    rig.h.engine.on_connect(b, media("10.0.0.2"))
    return a, b


def test_a_call_makes_one_event_per_leg_and_step_in_order(rig: Rig) -> None:
    a, b = answered(rig)
    rig.h.engine.on_release(a)
    assert rig.kinds() == [
        ("call.initiated", "alice", "dialing"),
        ("call.offered", "bob", "offered"),
        ("call.ringing", "bob", "ringing"),
        ("call.ringing", "alice", "ringback"),
        ("call.answered", "bob", "connected"),
        ("call.answered", "alice", "connected"),
        ("call.cleared", "alice", "cleared"),
        ("call.cleared", "bob", "cleared"),
        ("call.ended", "", ""),
    ]
    call_id = rig.h.record().call_id
    lines = [(e["dn"], e["state"]) for e in rig.events if e["type"] == "line.state"]
    assert lines == [
        ("1001", "in-use"),
        ("1002", "ringing"),
        ("1002", "in-use"),
        ("1001", "idle"),
        ("1002", "idle"),
    ]
    for event in (e for e in rig.events if e["type"].startswith("call.")):
        assert event["call_id"] == call_id
        if event["type"] == "call.ended":
            continue
        assert (event["calling"], event["calling_name"]) == ("1001", "Alice")
        assert (event["called"], event["original_called"]) == ("1002", "1002")
        assert event["redirect_reason"] == ""
        leg = a if event["device"] == "alice" else b
        assert event["leg_id"] == leg.id
        assert event["direction"] == leg.direction.value
        assert event["line"] == ("1001" if leg is a else "1002")
    cleared = [e for e in rig.events if e["type"] == "call.cleared"]
    assert [(e["cause"], e["cause_text"]) for e in cleared] == [(16, "Normal call clearing")] * 2
    ended = rig.events[-1]
    assert (ended["calling"], ended["called"], ended["cause"]) == ("1001", "1002", 16)
    assert ended["answered"] is True and ended["duration"] == 0


def test_an_unanswered_call_ends_unanswered_with_its_cause(rig: Rig) -> None:
    a, _ = rig.h.call("alice", "1002", "1001")
    b, _ = rig.h.out("sip:bob@10.0.0.9")
    rig.h.engine.on_release(b, 17)
    cleared = {e["device"]: e["cause"] for e in rig.events if e["type"] == "call.cleared"}
    assert a.released
    assert cleared == {"alice": 17, "bob": 17}
    ended = rig.events[-1]
    assert ended["type"] == "call.ended" and ended["answered"] is False
    assert (ended["cause"], ended["cause_text"]) == (17, "User busy")


def test_a_forwarded_call_carries_original_called_and_redirect_reason() -> None:
    r = Rig()
    r.h.devices[:] = [
        DeviceInfo("alice", "sip", (LineInfo("1001", "Alice"),)),
        DeviceInfo("bob", "sip", (LineInfo("1002", forward_all=Forward("1003")),)),
        DeviceInfo("carol", "sip", (LineInfo("1003"),)),
    ]
    for name in ("alice", "bob", "carol"):
        r.h.register(name)
    r.h.call("alice", "1002", "1001")
    offered = [e for e in r.events if e["type"] == "call.offered"]
    assert [e["device"] for e in offered] == ["carol"]
    assert (offered[0]["called"], offered[0]["original_called"]) == ("1003", "1002")
    assert offered[0]["redirect_reason"] == "forward-all"


def test_a_leg_released_before_its_setup_makes_no_event(rig: Rig) -> None:
    leg = rig.h.engine.inbound_leg(FakeDriver("alice"), "alice")
    rig.h.engine.on_release(leg)
    assert leg.released and rig.events == []


@pytest.mark.parametrize("device", sorted(NO_DEVICE))
def test_legs_on_a_media_server_make_no_event(rig: Rig, device: str) -> None:
    for direction, state in LEG_EVENTS:
        rig.h.bus.publish(LegStateChanged("c1", "L9", device, direction, "idle", state))
    assert rig.events == []
    assert EARLY_MEDIA_DEVICE in NO_DEVICE


def test_per_call_summaries_and_other_records_make_no_event(rig: Rig) -> None:
    for event in (
        CallStarted("c1", PartyInfo("1001"), "1002", "alice", WALL),
        CallAlerting("c1", "bob"),
        CallAnswered("c1", "bob", WALL),
        HuntLoginChanged("bob", True),
        LegStateChanged("c1", "L1", "bob", "outbound", "offered", "proceeding"),
        object(),
    ):
        rig.h.bus.publish(event)
    assert rig.events == []


def test_held_resumed_and_digits_name_the_leg_of_a_live_call(rig: Rig) -> None:
    a, b = answered(rig)
    call_id = a.call.id if a.call is not None else ""
    held = rig.publish(CallHeld(call_id, a.id, "alice", held_device="bob", by="cti"))
    assert (held["type"], held["state"], held["leg_id"], held["line"]) == (
        "call.held",
        "held",
        a.id,
        "1001",
    )
    assert (held["held_device"], held["by"], held["direction"]) == ("bob", "cti", "inbound")
    assert held["calling"] == "1001" and held["called"] == "1002"
    resumed = rig.publish(CallResumed(call_id, a.id, "alice"))
    assert (resumed["state"], resumed["by"]) == ("connected", "device")
    digits = rig.publish(DigitsReceived(call_id, b.id, "bob", "42#"))
    assert (digits["type"], digits["digits"], digits["direction"]) == (
        "call.dtmf",
        "42#",
        "outbound",
    )


def test_transferred_and_conferenced_find_the_devices_leg(rig: Rig) -> None:
    a, b = answered(rig)
    call_id = a.call.id if a.call is not None else ""
    moved = rig.publish(CallTransferred(call_id, "bob", "blind", "1003", "c9", by="cti"))
    assert (moved["leg_id"], moved["line"], moved["direction"]) == (b.id, "1002", "outbound")
    assert (moved["kind"], moved["target"], moved["new_call_id"], moved["by"]) == (
        "blind",
        "1003",
        "c9",
        "cti",
    )
    assert moved["state"] == "transferred"
    conf = rig.publish(CallConferenced(call_id, "alice", "bridge-1", "c7"))
    assert (conf["leg_id"], conf["bridge"], conf["other_call_id"], conf["by"]) == (
        a.id,
        "bridge-1",
        "c7",
        "device",
    )
    assert conf["state"] == "conferenced"


def test_the_transferee_is_told_about_its_leg_in_the_new_call(rig: Rig) -> None:
    a, b = answered(rig)
    old_call = "c-before"
    new_call = a.call.id if a.call is not None else ""
    ev = CallTransferred(old_call, "alice", "blind", "1002", new_call, role="transferee")
    moved = rig.publish(ev)
    assert (moved["call_id"], moved["new_call_id"], moved["role"]) == (
        old_call,
        new_call,
        "transferee",
    )
    assert (moved["leg_id"], moved["device"], moved["state"]) == (a.id, "alice", "transferred")
    assert (moved["calling"], moved["called"]) == ("1001", "1002")  # the new call's parties
    mover = rig.publish(CallTransferred(new_call, "bob", "blind", "1003", "c9"))
    assert (mover["role"], mover["leg_id"]) == ("transferrer", b.id)


def test_a_call_gone_from_the_engine_keeps_its_parties_until_it_ended(rig: Rig) -> None:
    a, _ = answered(rig)
    call_id = a.call.id if a.call is not None else ""
    rig.h.engine.on_release(a)
    assert rig.mapper.remembered == 0  # forgotten at call.ended
    late = rig.publish(CallTransferred(call_id, "bob", "consult"))
    assert (late["calling"], late["called"], late["leg_id"]) == ("", "", "")
    # A leg event of a call the engine no longer holds, before its end: parties remembered.
    r = Rig()
    r.h.device("alice", "1001", display="Alice")
    r.h.device("bob", "1002")
    r.h.register("bob")
    a2, _ = r.h.call("alice", "1002", "1001")
    gone_id = a2.call.id if a2.call is not None else ""
    r.h.engine._calls.pop(gone_id)  # as a call that left the engine before its legs
    event = r.publish(LegStateChanged(gone_id, "L77", "bob", "outbound", "alerting", "released"))
    assert (event["calling"], event["calling_name"], event["called"]) == ("1001", "Alice", "1002")


def test_device_line_and_coverage_events() -> None:
    r = Rig()
    assert r.publish(RegistrationChanged("alice", "sip", True)) | {"time": 0} == {
        "id": 0,
        "type": "device.registered",
        "time": 0,
        "node": "node-a",
        "device": "alice",
        "protocol": "sip",
    }
    assert r.publish(RegistrationChanged("sep1", "sccp", False))["type"] == "device.unregistered"
    rejected = r.publish(RegistrationRejected("mallory", "sip", "192.0.2.7:5060", "auth"))
    assert (rejected["device"], rejected["source"], rejected["reason"]) == (
        "mallory",
        "192.0.2.7:5060",
        "auth",
    )
    line = r.publish(LineStateChanged("1001", "internal", "in-use", ("alice", "alice2")))
    assert (line["dn"], line["partition"], line["state"], line["devices"]) == (
        "1001",
        "internal",
        "in-use",
        ["alice", "alice2"],
    )
    mwi = r.publish(MwiChanged("1001", "", True, 2, 5))
    assert (mwi["waiting"], mwi["new"], mwi["old"]) == (True, 2, 5)
    fwd = r.publish(ForwardChanged("1001", "", None, "alice"))
    assert fwd["destination"] is None and fwd["device"] == "alice"
    assert r.publish(ForwardChanged("1001", "", "1003"))["destination"] == "1003"
    dnd = r.publish(DndChanged("bob", True))
    assert (dnd["device"], dnd["on"]) == ("bob", True)
    assert {e["type"] for e in r.events} | {t for t in SCHEMA if t.startswith("call.")} == set(
        SCHEMA
    )


def test_call_ended_from_a_record_alone() -> None:
    r = Rig()
    from offhook.core.records import CallRecord

    record = CallRecord("c5", "1001", "1002", "1009", "alice", "", WALL, None, WALL + 3, 0, 1, "")
    ended = r.publish(CallEnded(record))
    assert (ended["original_called"], ended["cause"], ended["cause_text"]) == (
        "1009",
        1,
        "Unallocated (unassigned) number",
    )
    assert ended["answered"] is False


@pytest.mark.parametrize(("direction", "state"), sorted(LEG_EVENTS))
def test_every_leg_event_state_is_the_snapshot_word_of_that_leg_state(
    direction: str, state: str
) -> None:
    # What a leg's event says it is, a snapshot of the same leg says too.
    assert LEG_EVENTS[(direction, state)][1] == leg_state(direction, state)
    assert direction in {d.value for d in Direction}
