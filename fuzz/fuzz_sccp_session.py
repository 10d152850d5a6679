"""atheris fuzz target for an SCCP phone connection past the framer: session + call endpoint.

``fuzz_sccp.py`` covers the codec. This target covers what a connection does
with decoded messages, the way ``offhook.sccp.connection.PhoneConnection``
does it: a ``DeviceSession`` (registration, status requests, keepalive,
unregister) and, once the phone is registered, the call side
(``offhook.sccp.endpoint.SccpEndpoint`` on a real ``CallEngine`` with a
plan of two SCCP phones and a SIP phone). Two phones share the engine so
that calls can really connect.

Each input is a stream of frames for the two phones. The first byte picks
the mode:

- raw: the rest is the byte stream of phone A, cut into chunks (seeds: a
  real registration and call, ``fuzz/corpus/fuzz_sccp_session``);
- structured: the rest drives a generator of station messages (every message
  a phone may send, fields from edge cases: the plan's device names and
  unknown ones, line and call reference numbers around the real ones, the
  pass-through id of the last OpenReceiveChannel, huge values) for either
  phone, with clock advances in between; each is encoded and goes through
  the framer too.

Invariant: a ``ParseError`` from the framer ends that phone's connection (as
the adapter does) and is not a failure; any other exception, any ERROR log
record, a server message that cannot be encoded, or anything left behind
after both phones disconnect (calls in the engine, endpoint phones,
receive channels, dialing state) is a crash.

    python fuzz/fuzz_sccp_session.py -max_total_time=60 -max_len=4096 fuzz/corpus/fuzz_sccp_session
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

import atheris

with atheris.instrument_imports():
    from offhook.common import ParseError
    from offhook.common.clock import FakeClock
    from offhook.common.location import Binding, MemoryLocationStore
    from offhook.core.bus import EventBus
    from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg
    from offhook.core.media import MediaDescription
    from offhook.core.ports import LegDriver
    from offhook.sccp import SccpFramer, encode, station
    from offhook.sccp import messages as m
    from offhook.sccp.base import Message
    from offhook.sccp.device import (
        TRANSITIONS,
        Closed,
        DeviceProfile,
        DeviceSession,
        Registered,
        State,
        Unregistered,
    )
    from offhook.sccp.endpoint import SccpEndpoint

NAMES = (
    "SEP000000000001",
    "SEP000000000002",
    "SEPFFFFFFFFFFFF",
    "sipphone",
    "",
    "SEP0000000000011",
)
PROFILES = {
    "SEP000000000001": DeviceProfile(
        "SEP000000000001", "7960", (("1001", "Alice"),), (("1002", "Bob"), ("2001", "Sip"))
    ),
    "SEP000000000002": DeviceProfile(
        "SEP000000000002", "7940", (("1002", "Bob"), ("1010", "")), ()
    ),
}
STATION = [
    cls
    for cls in vars(station).values()
    if isinstance(cls, type) and issubclass(cls, Message) and cls.__module__ == station.__name__
]
DIGITS = ("1001", "1002", "2001", "1010", "9", "", "*67#", "0" * 24, "1001\x00x")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_ERRORS = _Errors()
logging.getLogger("offhook").addHandler(_ERRORS)
logging.getLogger("offhook").setLevel(logging.ERROR)


class _SipSide(LegDriver):
    """The SIP phone's leg: answers whatever is offered to it at once."""

    def __init__(self, engine: CallEngine, leg: Leg) -> None:
        self.engine = engine
        self.leg = leg

    def offer(self, setup: Setup) -> None:
        return None

    def progress(self, media: MediaDescription | None) -> None:
        return None

    def alert(self, media: MediaDescription | None) -> None:
        return None

    def answer(self, media: MediaDescription | None) -> None:
        return None

    def update_media(self, offer: MediaDescription) -> None:
        return None

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        return None

    def release(self, cause: int) -> None:
        return None


@dataclass
class _Rig:
    clock: FakeClock = field(default_factory=FakeClock)
    sip_legs: list[_SipSide] = field(default_factory=list)

    def __post_init__(self) -> None:
        devices = [
            DeviceInfo("SEP000000000001", "sccp", (LineInfo("1001", "Alice"),), model="7960"),
            DeviceInfo(
                "SEP000000000002",
                "sccp",
                (LineInfo("1002", "Bob"), LineInfo("1010", "")),
                model="7940",
            ),
            DeviceInfo("sipphone", "sip", (LineInfo("2001", "Sip"),)),
        ]
        snapshot = PlanSnapshot.build(devices)
        self.locations = MemoryLocationStore()
        self.engine = CallEngine(lambda: snapshot, self.locations, self.clock, EventBus(), "n1")
        self.engine.register_factory("sip", self)
        self.ep = SccpEndpoint(self.engine, lambda: snapshot, t302=5.0)
        self.engine.register_factory("sccp", self.ep)
        self.locations.put(Binding("sipphone", "sip", "sip:s@10.0.0.5", 1e12))

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        side = _SipSide(self.engine, leg)
        self.sip_legs.append(side)
        return side


@dataclass
class _Phone:
    """One connection: framer, session, link (once registered), as PhoneConnection has them."""

    rig: _Rig
    port: int
    framer: SccpFramer = field(default_factory=lambda: SccpFramer(4096))
    closed: str = ""
    attached: bool = False
    sent: list[Message] = field(default_factory=list)
    session: DeviceSession = field(init=False)

    def __post_init__(self) -> None:
        self.session = DeviceSession(PROFILES.get, self.rig.clock.monotonic(), 30)

    # -- link.PhoneLink
    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def version(self) -> int:
        return self.session.version

    @property
    def profile(self) -> DeviceProfile:
        assert self.session.profile is not None
        return self.session.profile

    @property
    def capabilities(self) -> tuple[m.Capability, ...]:
        return self.session.capabilities

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def send(self, msg: Message) -> None:
        if self.closed:
            return
        encode(msg, self.session.version)  # must encode
        self.sent.append(msg)
        del self.sent[:-64]

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = reason
        self._detach(reason)

    def _detach(self, reason: str) -> None:
        if self.attached:
            self.attached = False
            self.rig.ep.detach(self, reason, self.rig.clock.monotonic())

    # -- connection side
    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            messages = self.framer.feed(data)
        except ParseError:
            self.close("bad frame")
            return
        for msg in messages:
            if self.closed:
                return
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        now = self.rig.clock.monotonic()
        session = self.session
        registered = session.state is State.REGISTERED
        if isinstance(msg, m.Unknown) and not registered:
            self.close("unknown message")
            return
        session.receive(msg, now)
        for out in session.messages_to_send():
            self.send(out)
        for event in session.events():
            if isinstance(event, Registered):
                self.attached = True
                self.rig.ep.attach(self, now)
                self.rig.locations.put(Binding(self.name, "sccp", f"sccp:{self.name}", 1e12))
            elif isinstance(event, Unregistered | Closed):
                self.close(getattr(event, "reason", "closed"))
        call_side = (State.REGISTERED, type(msg)) not in TRANSITIONS
        if registered and self.attached and not self.closed and call_side:
            self.rig.ep.on_message(self, msg, now)

    def last_pass_thru(self) -> int:
        for msg in reversed(self.sent):
            if isinstance(msg, m.OpenReceiveChannel):
                return int(msg.pass_thru_party_id)
        return 0


def _int(fdp: atheris.FuzzedDataProvider, kind: str, phone: _Phone) -> int:
    choice = fdp.ConsumeIntInRange(0, 7)
    if choice == 0:
        return phone.last_pass_thru()
    if choice <= 4:
        return fdp.ConsumeIntInRange(0, 4)
    bits = {"I": 32, "H": 16, "B": 8}[kind]
    return fdp.ConsumeIntInRange(0, (1 << bits) - 1)


def _message(fdp: atheris.FuzzedDataProvider, phone: _Phone) -> Message:
    version = fdp.ConsumeIntInRange(0, 22)
    pick = fdp.ConsumeIntInRange(0, len(STATION))
    if pick == len(STATION):  # the one array message a phone sends (arrays.py)
        caps = tuple(
            m.Capability(fdp.ConsumeIntInRange(0, 300), fdp.ConsumeIntInRange(0, 120))
            for _ in range(fdp.ConsumeIntInRange(0, 4))
        )
        return m.CapabilitiesRes(caps, version=version)
    cls = STATION[pick]
    values: dict[str, Any] = {}
    for name, kind in cls._layout(version)[0]:
        if kind[0] == "p":
            continue
        if kind in ("I", "H", "B"):
            values[name] = min(_int(fdp, kind, phone), (1 << {"I": 32, "H": 16, "B": 8}[kind]) - 1)
        elif kind == "ip":
            values[name] = ".".join(str(fdp.ConsumeIntInRange(0, 255)) for _ in range(4))
        elif kind[0] == "b":
            values[name] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, int(kind[1:])))
        elif name == "device_name":
            values[name] = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
        elif fdp.ConsumeBool():
            values[name] = DIGITS[fdp.ConsumeIntInRange(0, len(DIGITS) - 1)]
        else:
            values[name] = fdp.ConsumeString(fdp.ConsumeIntInRange(0, int(kind[1:])))
    if cls is station.Register and fdp.ConsumeBool():
        values["device_name"] = NAMES[0] if phone.port == 50001 else NAMES[1]
    return cls(**values, version=version)


def _finish(rig: _Rig, phones: list[_Phone]) -> None:
    for phone in phones:
        phone.close("input over")
    for side in rig.sip_legs:
        if not side.leg.released:
            rig.engine.on_release(side.leg, 16)
    if rig.engine.calls():
        raise AssertionError(f"calls left in the engine: {rig.engine.calls()}")
    if rig.ep.phones or rig.ep._receiving or rig.ep._dialing:
        raise AssertionError("endpoint state left behind")
    if _ERRORS.records:
        raise AssertionError(f"ERROR logged: {[r.getMessage() for r in _ERRORS.records]}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    _ERRORS.records.clear()
    rig = _Rig()
    phones = [_Phone(rig, 50001), _Phone(rig, 50002)]
    if data[0] % 2 == 0:
        chunk = data[0] // 2 % 48 + 1
        stream = data[1:]
        for i in range(0, len(stream), chunk):
            phones[0].feed(stream[i : i + chunk])
            rig.clock.advance(0.5)
            rig.ep.handle_timer(rig.clock.monotonic())
    else:
        fdp = atheris.FuzzedDataProvider(data[1:])
        while fdp.remaining_bytes():
            phone = phones[fdp.ConsumeIntInRange(0, 1)]
            action = fdp.ConsumeIntInRange(0, 15)
            if action == 0:
                rig.clock.advance(fdp.ConsumeIntInRange(0, 120))
                now = rig.clock.monotonic()
                rig.ep.handle_timer(now)
                for p in phones:
                    p.session.handle_timer(now)
                    for event in p.session.events():
                        if isinstance(event, Unregistered | Closed):
                            p.close("timer")
            elif action == 1:
                for side in rig.sip_legs:
                    if not side.leg.released:
                        rig.engine.on_connect(side.leg, None)
            elif action == 2:
                phone.feed(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 32)))
            else:
                frame = encode(_message(fdp, phone))
                phone.feed(frame)
            rig.clock.advance(0.1)
    _finish(rig, phones)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
