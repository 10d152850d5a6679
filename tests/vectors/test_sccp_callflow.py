"""The SCCP endpoint's call flows against CallManager 4.1's, frame by frame.

``cucm_frames.json`` (tests/vectors/sccp/) holds what a real CallManager sent
a 7960 when the user pressed NewCall (``cm_cap_new_call``), when a call rang
the phone (``cm_call_ring``) and when it was answered (``cm_call_answer``,
``cm_call_open_rx``, ``cm_call_media``). The endpoint, started at the same
call reference, must send the same frames in the same order: byte for byte,
except the fields CallManager fills from its own state (pass-through party
ids, the softkey mask of the connected set, the far end's address).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from offhook.common.clock import FakeClock
from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.events import PartyInfo, Setup
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.sccp import decode_frame, encode
from offhook.sccp import messages as m
from offhook.sccp.device import DeviceProfile
from offhook.sccp.endpoint import SccpEndpoint
from offhook.sccp.templates import SoftKey

FRAMES: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "sccp" / "cucm_frames.json").read_text()
)


def captured(scenario: str) -> list[bytes]:
    return [
        bytes.fromhex(h) for _, h in sorted(FRAMES[scenario].items(), key=lambda kv: int(kv[0]))
    ]


@dataclass
class Link:
    name: str
    profile: DeviceProfile
    capabilities: tuple[m.Capability, ...] = (m.Capability(4, 40), m.Capability(2, 40))
    address: tuple[str, int] = ("10.102.10.209", 52000)
    version: int = 0
    sent: list[m.Message] = field(default_factory=list)

    def send(self, msg: m.Message) -> None:
        self.sent.append(msg)

    def close(self, reason: str) -> None: ...


class Recorder:
    """A far end that records what core asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def rig(first_reference: int) -> tuple[SccpEndpoint, Link, CallEngine]:
    clock = FakeClock()
    devices = [
        DeviceInfo("SEP001380AD9E5F", "sccp", (LineInfo("1002", "Bob"),), model="7960"),
        DeviceInfo("far", "sip", (LineInfo("1003", ""),)),
    ]
    snapshot = PlanSnapshot.build(devices)
    locations = MemoryLocationStore()
    engine = CallEngine(lambda: snapshot, locations, clock, EventBus(), node="n1")
    ep = SccpEndpoint(engine, lambda: snapshot, first_reference=first_reference)
    engine.register_factory("sccp", ep)
    link = Link("SEP001380AD9E5F", DeviceProfile("SEP001380AD9E5F", "7960", (("1002", "Bob"),)))
    ep.attach(link, clock.monotonic())
    locations.put(Binding("SEP001380AD9E5F", "sccp", "sccp:SEP001380AD9E5F", 1e9))
    return ep, link, engine


def frames(msgs: list[m.Message]) -> list[bytes]:
    return [encode(x, 0) for x in msgs]


def test_new_call_softkey_is_callmanagers_sequence() -> None:
    ep, link, _ = rig(0x0100001A)
    ep.on_message(link, m.SoftKeyEvent(SoftKey.NEW_CALL, 1, 0), 0.0)
    assert frames(link.sent) == captured("cm_cap_new_call")


def test_ringing_shows_what_callmanager_shows() -> None:
    _, link, engine = rig(0x0100001F)
    far = Recorder()
    leg = engine.inbound_leg(far, "far")
    engine.setup(leg, Setup(PartyInfo("1003"), "1002"))
    ours = frames(link.sent)
    expected = captured("cm_call_ring")
    # CallManager's frames appear in order; ours add CallInfo (not in the capture set).
    positions = [ours.index(f) for f in expected]
    assert positions == sorted(positions), [type(decode_frame(f)).__name__ for f in ours]


def test_answer_opens_media_as_callmanager_does() -> None:
    ep, link, engine = rig(0x0100001F)
    far = Recorder()
    leg = engine.inbound_leg(far, "far")
    offer = MediaDescription(
        (MediaStream("audio", "10.102.219.27", 60186, (Codec("PCMU", 8000, 0),)),)
    )
    engine.setup(leg, Setup(PartyInfo("1003"), "1002", offer))
    link.sent.clear()
    ep.on_message(link, m.SoftKeyEvent(SoftKey.ANSWER, 1, 0x0100001F), 0.0)
    orc = next(x for x in link.sent if isinstance(x, m.OpenReceiveChannel))
    ep.on_message(
        link, m.OpenReceiveChannelAck(0, "10.102.10.209", 16384, orc.pass_thru_party_id), 0.0
    )

    cm = [decode_frame(f) for f in captured("cm_call_answer")]
    cm_orc = decode_frame(captured("cm_call_open_rx")[0])
    cm_smt = decode_frame(captured("cm_call_media")[0])
    assert isinstance(cm_orc, m.OpenReceiveChannel) and isinstance(cm_smt, m.StartMediaTransmission)
    # CallManager's own ids: the pass-through party id and the connected set's key mask.
    ours: list[m.Message] = []
    for x in link.sent:
        if isinstance(x, m.OpenReceiveChannel | m.StartMediaTransmission):
            x = replace(x, pass_thru_party_id=cm_orc.pass_thru_party_id)
        if isinstance(x, m.SelectSoftKeys):
            x = replace(x, valid_key_mask=0xFFFFFDFF)
        ours.append(x)
    expected = [*cm[:7], cm_orc, *cm[7:], cm_smt]
    ours_bytes = frames(ours)
    positions = [ours_bytes.index(encode(x, 0)) for x in expected]
    assert positions == sorted(positions), [type(x).__name__ for x in ours]
    assert any(name == "answer" for name, _ in far.calls)
