"""Test doubles for core: recording LegDrivers, a factory, and a wired engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offhook.common.clock import FakeClock
from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.dialplan.model import DialPlanSpec
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import Leg
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.core.ports import LegDriver
from offhook.core.records import CallEnded, CallRecord

PCMU = Codec("PCMU", 8000, 0)


def media(
    address: str = "10.0.0.1", port: int = 4000, direction: str = "sendrecv"
) -> MediaDescription:
    return MediaDescription((MediaStream("audio", address, port, (PCMU,), direction),))


class FakeDriver(LegDriver):
    """Records every call core makes on it as (method, args...)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.calls: list[tuple[Any, ...]] = []
        self.leg: Leg | None = None
        self.raise_on: set[str] = set()

    def _rec(self, *item: Any) -> None:
        self.calls.append(item)
        if item[0] in self.raise_on:
            raise RuntimeError(f"boom in {item[0]}")

    def offer(self, setup: Setup) -> None:
        self._rec("offer", setup)

    def progress(self, media: MediaDescription | None) -> None:
        self._rec("progress", media)

    def alert(self, media: MediaDescription | None) -> None:
        self._rec("alert", media)

    def answer(self, media: MediaDescription | None) -> None:
        self._rec("answer", media)

    def update_media(self, offer: MediaDescription) -> None:
        self._rec("update_media", offer)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        self._rec("media_answer", answer, cause)

    def release(self, cause: int) -> None:
        self._rec("release", cause)

    def send_digits(self, digits: str) -> None:
        self._rec("send_digits", digits)

    def play_tone(self, tone: Any) -> None:
        self._rec("play_tone", tone)

    def show_display(self, text: str) -> None:
        self._rec("show_display", text)

    def transfer_progress(self, state: Any, cause: int | None) -> None:
        self._rec("transfer_progress", state, cause)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def last(self, method: str) -> tuple[Any, ...]:
        return [c for c in self.calls if c[0] == method][-1]

    def released_with(self) -> list[int]:
        return [c[1] for c in self.calls if c[0] == "release"]


class FakeFactory:
    def __init__(self) -> None:
        self.drivers: dict[str, FakeDriver] = {}  # by contact
        self.legs: dict[str, Leg] = {}  # by contact
        self.hook: Any = None  # called as hook(driver, leg) after create

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        key = binding.contact or binding.device  # a trunk leg has no contact
        driver = FakeDriver(key)
        driver.leg = leg
        self.drivers[key] = driver
        self.legs[key] = leg
        if self.hook is not None:
            self.hook(driver, leg)
        return driver


@dataclass
class Harness:
    clock: FakeClock = field(default_factory=FakeClock)
    locations: MemoryLocationStore = field(default_factory=MemoryLocationStore)
    bus: EventBus = field(default_factory=EventBus)
    factory: FakeFactory = field(default_factory=FakeFactory)
    devices: list[DeviceInfo] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    ring_timeout: float | None = 60.0
    spec: DialPlanSpec | None = None  # a full dial plan; default: the devices' DNs only
    engine: CallEngine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = CallEngine(
            lambda: PlanSnapshot.build(self.devices, dialplan_spec=self.spec),
            self.locations,
            self.clock,
            self.bus,
            node="n1",
            ring_timeout=self.ring_timeout,
        )
        self.engine.register_factory("sip", self.factory)
        self.bus.subscribe_all(self.events.append)

    def device(
        self, name: str, *dns: str, max_calls: int = 4, display: str = "", css: str = ""
    ) -> None:
        self.devices.append(
            DeviceInfo(
                name,
                "sip",
                tuple(LineInfo(dn, display) for dn in dns),
                max_calls=max_calls,
                css=css,
            )
        )

    def register(self, device: str, contact: str = "", expires: float = 3600) -> str:
        contact = contact or f"sip:{device}@10.0.0.9"
        self.locations.put(Binding(device, "sip", contact, self.clock.monotonic() + expires))
        return contact

    def call(
        self, from_device: str, called: str, number: str = "", *, offer: bool = True
    ) -> tuple[Leg, FakeDriver]:
        driver = FakeDriver(from_device)
        leg = self.engine.inbound_leg(driver, from_device)
        driver.leg = leg
        calling = PartyInfo(number or from_device)
        self.engine.setup(leg, Setup(calling, called, media("10.0.0.1") if offer else None))
        return leg, driver

    def out(self, contact: str) -> tuple[Leg, FakeDriver]:
        return self.factory.legs[contact], self.factory.drivers[contact]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def records(self) -> list[CallRecord]:
        return [e.record for e in self.of(CallEnded)]

    def record(self) -> CallRecord:
        records = self.records()
        assert len(records) == 1, records
        return records[0]
