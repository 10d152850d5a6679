"""The call engine's hunt with a TrunkMonitor as its "is trunk up" callable:
a trunk whose pings fail is skipped at once (cause 38 in the call's failures)."""

from __future__ import annotations

from typing import Any

from offhook.common.clock import FakeClock
from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Trunk,
)
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription
from offhook.core.ports import LegDriver
from offhook.core.records import CallEnded, CallStarted
from offhook.sip.trunks import TrunkMonitor, TrunkTarget

SPEC = DialPlanSpec(
    partitions=("pstn",),
    calling_search_spaces=(CallingSearchSpace("staff", ("pstn",)),),
    route_patterns=(RoutePattern("9.X!", "pstn", route_list="out"),),
    trunks=(
        Trunk("carrier", "sip", "192.0.2.10", 5060, options_ping=10),
        Trunk("backup", "sip", "192.0.2.20", 5060, options_ping=0),
    ),
    route_groups=(RouteGroup("g", (RouteGroupMember("carrier"), RouteGroupMember("backup"))),),
    route_lists=(RouteList("out", ("g",)),),
)


class Driver(LegDriver):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def offer(self, setup: Setup) -> None:
        self.calls.append(("offer", setup))

    def progress(self, media: MediaDescription | None) -> None:
        self.calls.append(("progress", media))

    def alert(self, media: MediaDescription | None) -> None:
        self.calls.append(("alert", media))

    def answer(self, media: MediaDescription | None) -> None:
        self.calls.append(("answer", media))

    def update_media(self, offer: MediaDescription) -> None:
        self.calls.append(("update_media", offer))

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        self.calls.append(("media_answer", answer, cause))

    def release(self, cause: int) -> None:
        self.calls.append(("release", cause))

    def send_digits(self, digits: str) -> None:
        self.calls.append(("digits", digits))


class Factory:
    def __init__(self) -> None:
        self.offered: list[str] = []

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        self.offered.append(binding.device)
        return Driver()


def targets() -> list[TrunkTarget]:
    return [TrunkTarget(t.name, t.host, t.port, t.transport, t.options_ping) for t in SPEC.trunks]


def setup(trunk_up: Any = None) -> tuple[CallEngine, Factory, list[object]]:
    devices = [DeviceInfo("alice", "sip", (LineInfo("1001", ""),), css="staff")]
    bus = EventBus()
    events: list[object] = []
    bus.subscribe_all(events.append)
    engine = CallEngine(
        lambda: PlanSnapshot.build(devices, dialplan_spec=SPEC),
        MemoryLocationStore(),
        FakeClock(),
        bus,
        trunk_up=trunk_up,
    )
    factory = Factory()
    engine.register_factory("sip", factory)
    return engine, factory, events


def dial(engine: CallEngine) -> Driver:
    driver = Driver()
    leg = engine.inbound_leg(driver, "alice")
    engine.setup(leg, Setup(PartyInfo("1001"), "95551234", None))
    return driver


def test_default_every_trunk_is_up() -> None:
    engine, factory, _ = setup()
    dial(engine)
    assert factory.offered == ["carrier"]


def test_down_trunk_is_skipped_with_cause_38() -> None:
    monitor = TrunkMonitor()
    monitor.configure(targets(), 0.0)
    engine, factory, events = setup(monitor.is_up)
    dial(engine)
    assert factory.offered == ["carrier"]  # unknown counts as up
    assert monitor.due_pings(10.0)[0].name == "carrier"
    monitor.ping_result("carrier", None, 42.0)  # Timer F
    factory.offered.clear()
    dial(engine)
    assert factory.offered == ["backup"]
    started = [e for e in events if isinstance(e, CallStarted)][-1]
    call = engine.call(started.call_id)
    assert call is not None and call.failures == [38]


def test_every_trunk_down_ends_the_call_with_38() -> None:
    engine, factory, events = setup(lambda name: False)
    driver = dial(engine)
    assert factory.offered == []
    assert driver.calls == [("release", 38)]
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert [e.record.cause for e in ended] == [38]
