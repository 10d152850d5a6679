"""node_sip: the notifier's policy over a real plan, CallEngine, LineStates and bus.

alice (1001) and bob (1002) are in ``internal``, boss (2000) in ``exec``;
alice's CSS ``staff`` reaches only ``internal``. The endpoint is the hand-
driven one of ``test_subscriptions_notifier`` (alice authenticates there).
"""

from __future__ import annotations

import pytest
from test_subscriptions_notifier import PHONE, NRig, Subscriber, notifies, state_of

from offhook.common.clock import FakeClock
from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.dialplan.model import CallingSearchSpace, DialPlanSpec, DirectoryNumber
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.records import LegStateChanged, MwiChanged, RegistrationChanged
from offhook.node_sip import SipEvents, start_sip_events
from offhook.sip.message_summary import MessageCounts, MessageSummary, parse_message_summary


def plan() -> PlanSnapshot:
    devices = [
        DeviceInfo("alice", "sip", (LineInfo("1001", partition="internal"),), css="staff"),
        DeviceInfo("bob", "sip", (LineInfo("1002", partition="internal"),), css="staff"),
        DeviceInfo("boss", "sip", (LineInfo("2000", partition="exec"),), css="all"),
    ]
    spec = DialPlanSpec(
        partitions=("internal", "exec"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal",)),
            CallingSearchSpace("all", ("internal", "exec")),
        ),
        directory_numbers=(
            DirectoryNumber("1001", "internal", ("alice",)),
            DirectoryNumber("1002", "internal", ("bob",)),
            DirectoryNumber("2000", "exec", ("boss",)),
        ),
    )
    return PlanSnapshot.build(devices, dialplan_spec=spec)


class Core:
    def __init__(self) -> None:
        self.clock = FakeClock(start=100.0)
        self.bus = EventBus()
        self.locations = MemoryLocationStore()
        self.snapshot = plan()
        self.engine = CallEngine(lambda: self.snapshot, self.locations, self.clock, self.bus)
        self.lines = self.engine.lines
        self.events = SipEvents(
            lambda: self.snapshot, self.engine, self.locations, self.clock.monotonic
        )
        self.mwi: list[MwiChanged] = []
        self.bus.subscribe(MwiChanged, self.mwi.append)

    def register(self, device: str) -> None:
        self.locations.put(Binding(device, "sip", f"sip:{device}@192.0.2.9", 1e9))

    def leg(self, new: str, old: str = "idle", leg_id: str = "b1") -> None:
        self.bus.publish(
            LegStateChanged("c1", leg_id, "bob", "outbound", old, new, None, "1002", "internal")
        )


@pytest.mark.parametrize(
    ("device", "package", "user", "expected"),
    [
        ("alice", "dialog", "1002", ("1002", "internal")),
        ("alice", "presence", "1001", ("1001", "internal")),
        ("alice", "dialog", "2000", 404),  # exists, but staff does not reach exec
        ("alice", "dialog", "9999", 404),  # does not exist: the same answer
        ("boss", "dialog", "1002", ("1002", "internal")),
        ("alice", "message-summary", "alice", ("1001", "internal")),
        ("alice", "message-summary", "1001", ("1001", "internal")),
        ("alice", "message-summary", "1002", 403),  # not its own line
        ("mallory", "dialog", "1002", 403),  # not in the plan
        ("alice", "dialog", "", 404),
    ],
)
def test_resource(device: str, package: str, user: str, expected: object) -> None:
    assert Core().events.resource(device, package, user) == expected


def test_registered_and_availability() -> None:
    core = Core()
    assert not core.events.registered("alice")
    assert not core.events.line_status(("1002", "internal")).available
    core.register("alice")
    core.register("bob")
    assert core.events.registered("alice")
    status = core.events.line_status(("1002", "internal"))
    assert (status.state, status.available) == ("idle", True)
    core.leg("offered")
    status = core.events.line_status(("1002", "internal"))
    assert (status.state, status.direction) == ("ringing", "recipient")


def test_set_mwi_goes_to_the_engine_and_summary_reads_it_back() -> None:
    core = Core()
    summary = MessageSummary(True, "", (MessageCounts("voice-message", 3, 1),))
    assert core.events.set_mwi("1002", summary)
    assert core.mwi == [MwiChanged("1002", "internal", True, 3, 1)]
    back = core.events.summary(("1002", "internal"))
    assert back.waiting and back.voice == MessageCounts("voice-message", 3, 1)
    assert not core.events.set_mwi("9999", summary)


def test_end_to_end_busy_lamp_and_message_waiting_through_the_bus() -> None:
    core = Core()
    core.register("alice")
    core.register("bob")
    rig = NRig()
    events = start_sip_events(
        rig.ep,
        core.engine,
        core.bus,
        core.locations,
        lambda: core.snapshot,
        min_expires=60,
        max_expires=3600,
    )
    assert rig.ep.notifier is events.notifier
    blf = Subscriber(rig, target="1002")
    assert blf.open().status == 200
    first = notifies(rig.take())[-1]
    assert state_of(first) == "terminated"
    rig.feed(blf.answer(first), PHONE)

    core.leg("offered")  # bob's phone rings
    ringing = notifies(rig.take())[-1]
    assert state_of(ringing) == "early"
    rig.feed(blf.answer(ringing), PHONE)
    core.leg("connected", old="offered")
    in_use = notifies(rig.take())[-1]
    assert state_of(in_use) == "confirmed"
    rig.feed(blf.answer(in_use), PHONE)
    core.leg("released", old="connected")
    idle = notifies(rig.take())[-1]
    assert state_of(idle) == "terminated"
    rig.feed(blf.answer(idle), PHONE)

    mwi = Subscriber(rig, event="message-summary", target="alice")
    assert mwi.open().status == 200
    first = notifies(rig.take())[-1]
    assert not parse_message_summary(first.body).waiting
    rig.feed(mwi.answer(first), PHONE)
    core.engine.set_mwi("1001", True, 1, 0)
    lit = notifies(rig.take())[-1]
    summary = parse_message_summary(lit.body)
    assert summary.waiting and summary.voice == MessageCounts("voice-message", 1, 0)
    assert events.status()["subscriptions"] == 2
    assert events.status()["busy_lines"] == 0


class ChangeRecorder:
    """Stands in for the notifier: what the policy asked it to notify."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, str]]] = []

    def changed(self, package: str, resource: tuple[str, str]) -> None:
        self.calls.append((package, resource))


def test_a_registration_change_notifies_the_devices_lines_presence() -> None:
    core = Core()
    recorder = ChangeRecorder()
    core.events.notifier = recorder  # type: ignore[assignment]
    core.bus.subscribe(RegistrationChanged, core.events.on_registration)
    core.bus.publish(RegistrationChanged("bob", "sip", True))
    assert recorder.calls == [("presence", ("1002", "internal"))]
