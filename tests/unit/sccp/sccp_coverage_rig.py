"""A call engine with Skinny phones for the SCCP call coverage tests (no sockets).

Three SCCP phones and a SIP voicemail on a real ``CallEngine`` and
``SccpEndpoint`` (which follows the engine's bus events), each phone a ``FakeLink`` that
records what the endpoint sends:

===========  =====  ============  =====  ==============================  ======================
phone        model  lines         CSS    speed dials                     coverage
===========  =====  ============  =====  ==============================  ======================
A (C001)     7961   2001, 2100    staff  2002, 2003, 2100                voicemail 8000; forwards
                                                                         busy 8000 (2001)
B (C002)     7960   2002, 2100    staff  2001                            none
C (C003)     7960   2003 (exec)   boss   none                            none
vm (SIP)            8000
===========  =====  ============  =====  ==============================  ======================

2100 is a line shared by A and B. ``staff`` reaches the ``internal``
partition only; ``boss`` reaches ``internal`` and ``exec``. Pickup group
``sales`` has number 8100. ``Rig(media=True)`` gives the engine a media
server (``FakeMedia``: every endpoint opens at once) for the features that
answer with one (feature code confirmations, barge's conference bridge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from offhook.common.clock import FakeClock
from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    PickupGroup,
)
from offhook.core.directory import DeviceInfo, Forward, LineInfo, PlanSnapshot, SpeedDial
from offhook.core.engine import CallEngine
from offhook.core.events import Setup
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription
from offhook.core.ports import LegDriver
from offhook.sccp import messages as m
from offhook.sccp.device import DeviceProfile
from offhook.sccp.endpoint import SccpEndpoint

A, B, C = "SEP00000000C001", "SEP00000000C002", "SEP00000000C003"
INTERNAL, EXEC = "internal", "exec"


@dataclass
class FakeLink:
    """A registered phone connection that records what the endpoint sends."""

    name: str
    profile: DeviceProfile
    capabilities: tuple[m.Capability, ...] = (m.Capability(4, 40), m.Capability(2, 40))
    address: tuple[str, int] = ("127.0.0.1", 50000)
    version: int = 0
    sent: list[m.Message] = field(default_factory=list)
    closed: str = ""

    def send(self, msg: m.Message) -> None:
        self.sent.append(msg)

    def close(self, reason: str) -> None:
        self.closed = reason

    def of(self, kind: type[Any]) -> list[Any]:
        return [x for x in self.sent if isinstance(x, kind)]

    def last(self, kind: type[Any]) -> Any:
        found = self.of(kind)
        assert found, f"no {kind.__name__} sent; sent {[type(x).__name__ for x in self.sent]}"
        return found[-1]

    def states(self) -> list[int]:
        return [x.call_state for x in self.of(m.CallState)]

    def texts(self) -> list[str]:
        shown = (m.DisplayNotify, m.DisplayPromptStatus, m.DisplayPriNotify)
        return [x.text for x in self.sent if isinstance(x, shown)]

    def lamps(self) -> dict[tuple[int, int], int]:
        """The last lamp mode per (stimulus, instance), as the phone would show it."""
        return {(x.stimulus, x.stimulus_instance): x.lamp_mode for x in self.of(m.SetLamp)}


class FakeMedia:
    """A media server whose endpoints open at once; records what call control asks."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.bridges: dict[str, str] = {}  # handle -> bridge ("" none)
        self.devices: dict[str, str] = {}  # handle -> the device it streams to
        self._port = 20000

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
        self.bridges[handle], self.devices[handle] = bridge, device
        self._port += 2
        reply(("192.0.2.50", self._port))

    def connect(
        self,
        handle: str,
        address: str,
        port: int,
        codec: str,
        pt: int,
        dtmf_pt: int | None,
        direction: str,
    ) -> None:
        self.calls.append(("connect", handle, address, port, codec, direction))

    def play(self, handle: str, source: str, loop: bool = True) -> None:
        self.calls.append(("play", handle, source))

    def stop_play(self, handle: str) -> None:
        self.calls.append(("stop_play", handle))

    def join(self, handle: str, bridge: str) -> None:
        self.calls.append(("join", handle, bridge))
        self.bridges[handle] = bridge

    def dtmf(self, handle: str, digits: str) -> None:
        self.calls.append(("dtmf", handle, digits))

    def release(self, handle: str) -> None:
        self.calls.append(("release", handle))
        self.bridges.pop(handle, None)

    def named(self, what: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == what]

    def in_bridges(self) -> dict[str, list[str]]:
        """Bridge -> the devices of its endpoints, now."""
        found: dict[str, list[str]] = {}
        for handle, bridge in self.bridges.items():
            if bridge:
                found.setdefault(bridge, []).append(self.devices.get(handle, ""))
        return found


class Recorder(LegDriver):
    """The voicemail's (SIP) side of a call: records what core asks of it, and rings."""

    def __init__(self, engine: CallEngine, leg: Leg) -> None:
        self.engine = engine
        self.leg = leg
        self.calls: list[tuple[Any, ...]] = []

    def offer(self, setup: Setup) -> None:
        self.calls.append(("offer", setup))
        self.engine.on_alerting(self.leg)

    def progress(self, media: MediaDescription | None) -> None: ...
    def alert(self, media: MediaDescription | None) -> None: ...
    def answer(self, media: MediaDescription | None) -> None: ...
    def update_media(self, offer: MediaDescription) -> None: ...
    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None: ...

    def release(self, cause: int) -> None:
        self.calls.append(("release", cause))


class RecorderFactory:
    def __init__(self, engine: CallEngine) -> None:
        self.engine = engine
        self.drivers: list[Recorder] = []

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        driver = Recorder(self.engine, leg)
        self.drivers.append(driver)
        return driver


def plan() -> PlanSnapshot:
    busy = Forward("8000")
    devices = [
        DeviceInfo(
            A,
            "sccp",
            (
                LineInfo("2001", "Anna", INTERNAL, voicemail="8000", forward_busy=busy),
                LineInfo("2100", "Shared", INTERNAL),
            ),
            css="staff",
            model="7961",
            speed_dials=(SpeedDial("2002", "Bob"), SpeedDial("2003", "Cleo"), SpeedDial("2100")),
        ),
        DeviceInfo(
            B,
            "sccp",
            (LineInfo("2002", "Bob", INTERNAL), LineInfo("2100", "Shared", INTERNAL)),
            css="staff",
            model="7960",
            speed_dials=(SpeedDial("2001", "Anna"),),
        ),
        DeviceInfo(C, "sccp", (LineInfo("2003", "Cleo", EXEC),), css="boss", model="7960"),
        DeviceInfo("vm", "sip", (LineInfo("8000", "Voicemail", INTERNAL),)),
    ]
    dns: dict[tuple[str, str], list[str]] = {}
    for dev in devices:
        for line in dev.lines:
            dns.setdefault((line.dn, line.partition), []).append(dev.name)
    spec = DialPlanSpec(
        partitions=(INTERNAL, EXEC),
        calling_search_spaces=(
            CallingSearchSpace("staff", (INTERNAL,)),
            CallingSearchSpace("boss", (INTERNAL, EXEC)),
        ),
        directory_numbers=tuple(
            DirectoryNumber(dn, partition, tuple(names)) for (dn, partition), names in dns.items()
        ),
        pickup_groups=(PickupGroup("sales", "8100", INTERNAL),),
    )
    return PlanSnapshot.build(devices, dialplan_spec=spec)


class Rig:
    """The engine, the SCCP endpoint on the engine's bus, and phones A, B, C attached."""

    def __init__(self, *, media: bool = False) -> None:
        self.clock = FakeClock()
        self.locations = MemoryLocationStore()
        self.bus = EventBus()
        self.events: list[object] = []
        self.bus.subscribe_all(self.events.append)
        self.snapshot = plan()
        self.engine = CallEngine(
            lambda: self.snapshot, self.locations, self.clock, self.bus, node="n1"
        )
        self.media = FakeMedia()
        if media:
            self.engine.media = self.media
        self.sip = RecorderFactory(self.engine)
        self.engine.register_factory("sip", self.sip)
        self.ep = SccpEndpoint(self.engine, lambda: self.snapshot, t302=5.0)
        self.engine.register_factory("sccp", self.ep)
        self.locations.put(Binding("vm", "sip", "sip:vm@10.0.0.9", 1e9))
        self.a = self.attach(A)
        self.b = self.attach(B)
        self.c = self.attach(C)

    def profile(self, name: str) -> DeviceProfile:
        dev = self.snapshot.devices[name]
        return DeviceProfile(
            name,
            dev.model,
            tuple((line.dn, line.display) for line in dev.lines),
            tuple((sd.number, sd.label) for sd in dev.speed_dials),
        )

    def attach(self, name: str) -> FakeLink:
        link = FakeLink(name, self.profile(name))
        self.ep.attach(link, self.now())
        self.locations.put(Binding(name, "sccp", f"sccp:{name}", 1e9))
        return link

    def now(self) -> float:
        return self.clock.monotonic()

    def press(self, link: FakeLink, msg: m.Message) -> None:
        self.ep.on_message(link, msg, self.now())

    def key(self, link: FakeLink, key: int, line: int = 1, ref: int = 0) -> None:
        self.press(link, m.SoftKeyEvent(int(key), line, ref))

    def dial(self, link: FakeLink, digits: str, line: int = 1) -> None:
        for d in digits:
            button = {"*": 0x0E, "#": 0x0F}.get(d)
            self.press(link, m.KeypadButton(int(d) if button is None else button, line, 0))

    def ack_open(self, link: FakeLink, port: int) -> None:
        orc = link.last(m.OpenReceiveChannel)
        ack = m.OpenReceiveChannelAck(
            0, "127.0.0.1", port, orc.pass_thru_party_id, orc.call_reference
        )
        self.press(link, ack)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def advance(self, seconds: float) -> None:
        """Time passes: the engine's and the endpoint's timers that are due run."""
        self.clock.advance(seconds)
        self.engine.handle_timer(self.now())
        self.ep.handle_timer(self.now())
