"""SccpEndpoint: Skinny phones placing, answering, holding and ending calls through core."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sccp_coverage_rig import FakeLink

from offhook.common.clock import FakeClock
from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import Leg
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.core.ports import LegDriver
from offhook.core.records import CallEnded
from offhook.sccp import messages as m
from offhook.sccp.device import DeviceProfile
from offhook.sccp.endpoint import SccpEndpoint
from offhook.sccp.templates import KeySet, SoftKey
from offhook.sccp.ui import CallStateCode, DeviceTone, LampMode, Prompt, prompt

PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
G722 = Codec("G722", 8000, 9)


class SipSide(LegDriver):
    """A recording driver standing in for the other protocol's leg."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.leg: Leg | None = None

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

    def last(self, name: str) -> tuple[Any, ...]:
        return [c for c in self.calls if c[0] == name][-1]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class SipFactory:
    def __init__(self) -> None:
        self.drivers: list[SipSide] = []

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        driver = SipSide()
        driver.leg = leg
        self.drivers.append(driver)
        return driver


class Rig:
    """Two SCCP phones (1001, 1002) and a SIP phone (2001) on a real CallEngine."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.locations = MemoryLocationStore()
        self.bus = EventBus()
        self.events: list[object] = []
        self.bus.subscribe_all(self.events.append)
        devices = [
            DeviceInfo("SEP000000000001", "sccp", (LineInfo("1001", "Alice"),), model="7960"),
            DeviceInfo("SEP000000000002", "sccp", (LineInfo("1002", "Bob"),), model="7960"),
            DeviceInfo("sipphone", "sip", (LineInfo("2001", "Sip"),)),
        ]
        self.snapshot = PlanSnapshot.build(devices)
        self.engine = CallEngine(
            lambda: self.snapshot, self.locations, self.clock, self.bus, node="n1"
        )
        self.sip = SipFactory()
        self.engine.register_factory("sip", self.sip)
        self.ep = SccpEndpoint(self.engine, lambda: self.snapshot, t302=5.0)
        self.engine.register_factory("sccp", self.ep)
        self.a = self.phone("SEP000000000001", "1001", "Alice", 50001)
        self.b = self.phone("SEP000000000002", "1002", "Bob", 50002)
        self.locations.put(Binding("sipphone", "sip", "sip:s@10.0.0.5", 1e9))

    def phone(self, name: str, dn: str, display: str, port: int) -> FakeLink:
        link = FakeLink(name, DeviceProfile(name, "7960", ((dn, display),), (("2001", "Sip"),)))
        link.address = ("127.0.0.1", port)
        self.ep.attach(link, self.clock.monotonic())
        self.locations.put(Binding(name, "sccp", f"sccp:{name}", 1e9))
        return link

    def now(self) -> float:
        return self.clock.monotonic()

    def press(self, link: FakeLink, msg: m.Message) -> None:
        self.ep.on_message(link, msg, self.now())

    def dial(self, link: FakeLink, digits: str) -> None:
        for d in digits:
            button = {"*": 0x0E, "#": 0x0F}.get(d)
            self.press(link, m.KeypadButton(int(d) if button is None else button, 1, 0))

    def ack_open(self, link: FakeLink, port: int, ip: str = "127.0.0.1") -> None:
        orc = link.last(m.OpenReceiveChannel)
        self.press(
            link, m.OpenReceiveChannelAck(0, ip, port, orc.pass_thru_party_id, orc.call_reference)
        )

    def ended(self) -> list[Any]:
        return [e.record for e in self.events if isinstance(e, CallEnded)]


def sip_offer(
    port: int = 4000, codecs: tuple[Codec, ...] = (PCMU, PCMA), direction: str = "sendrecv"
) -> MediaDescription:
    return MediaDescription((MediaStream("audio", "10.0.0.5", port, codecs, direction),))


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_off_hook_gives_dial_tone_in_callmanager_order(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    kinds = [type(x).__name__ for x in rig.a.sent]
    assert kinds == [
        "SetRinger",
        "SetLamp",
        "CallState",
        "SelectSoftKeys",
        "DisplayPromptStatus",
        "ActivateCallPlane",
        "StartTone",
    ]
    assert rig.a.last(m.StartTone).tone == DeviceTone.INSIDE_DIAL
    assert rig.a.last(m.CallState).call_state == CallStateCode.OFF_HOOK
    assert rig.a.last(m.SelectSoftKeys).soft_key_set_index == KeySet.OFF_HOOK
    assert rig.a.last(m.DisplayPromptStatus).text == prompt(Prompt.ENTER_NUMBER)
    assert rig.a.last(m.SetLamp).lamp_mode == LampMode.ON


def test_sccp_to_sccp_call_with_media_both_ways(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    # the called phone rings with the caller on its display
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    assert rig.b.last(m.SetRinger).ring_mode == 2
    info = rig.b.last(m.CallInfo)
    assert (info.calling_party, info.calling_party_name, info.called_party) == (
        "1001",
        "Alice",
        "1002",
    )
    assert rig.b.last(m.DisplayPromptStatus).text == prompt(Prompt.FROM, "1001")
    # the caller hears ringback
    assert rig.a.last(m.CallState).call_state == CallStateCode.RING_OUT
    assert rig.a.last(m.StartTone).tone == DeviceTone.ALERTING
    # B answers: B opens a receive channel and makes the offer (A sent none)
    rig.press(rig.b, m.OffHook(1, 0))
    orc_b = rig.b.last(m.OpenReceiveChannel)
    assert orc_b.payload_capability == 4 and orc_b.ms_packet_size == 20
    rig.ack_open(rig.b, 30002)
    # A is connected and opens its channel for B's codec
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    rig.ack_open(rig.a, 30001)
    smt_a = rig.a.last(m.StartMediaTransmission)
    smt_b = rig.b.last(m.StartMediaTransmission)
    assert (smt_a.remote_ip, smt_a.remote_port, smt_a.payload_capability) == ("127.0.0.1", 30002, 4)
    assert (smt_b.remote_ip, smt_b.remote_port, smt_b.payload_capability) == ("127.0.0.1", 30001, 4)
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED
    # A hangs up: both phones go idle, both channels closed, one CDR
    rig.press(rig.a, m.OnHook(1, 0))
    for link in (rig.a, rig.b):
        assert link.last(m.CallState).call_state == CallStateCode.ON_HOOK
        assert link.of(m.CloseReceiveChannel) and link.of(m.StopMediaTransmission)
        assert link.last(m.SetLamp).lamp_mode == LampMode.OFF
    (record,) = rig.ended()
    assert (record.calling, record.called, record.cause) == ("1001", "1002", 16)
    assert not rig.ep._receiving and not rig.ep._dialing


def test_sip_caller_offer_is_answered_with_the_phone_codec(rig: Rig) -> None:
    driver = SipSide()
    leg = rig.engine.inbound_leg(driver, "sipphone")
    driver.leg = leg
    rig.engine.setup(leg, Setup(PartyInfo("2001", "Sip"), "1001", sip_offer(codecs=(G722, PCMA))))
    assert rig.a.last(m.CallState).call_state == CallStateCode.RING_IN
    assert "alert" in driver.names()
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.ANSWER, 1, rig.a.last(m.CallState).call_reference))
    # the phone has no G.722 capability: PCMA is the first offered codec it has
    assert rig.a.last(m.OpenReceiveChannel).payload_capability == 2
    rig.ack_open(rig.a, 31000)
    answer = driver.last("answer")[1]
    stream = answer.streams[0]
    assert (stream.address, stream.port, stream.codecs[0].name) == ("127.0.0.1", 31000, "PCMA")
    smt = rig.a.last(m.StartMediaTransmission)
    assert (smt.remote_ip, smt.remote_port, smt.payload_capability) == ("10.0.0.5", 4000, 2)
    # the answered call is the one on the plane: Hold holds it
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.HOLD, 1, smt.call_reference))
    assert rig.a.last(m.CallState).call_state == CallStateCode.HOLD
    assert driver.last("update_media")[1].streams[0].direction == "inactive"


def test_sccp_caller_to_sip_uses_a_delayed_offer(rig: Rig) -> None:
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.NEW_CALL, 1, 0))
    assert rig.a.of(m.SetSpeakerMode)[0].mode == 1
    rig.dial(rig.a, "2001")
    sip = rig.sip.drivers[-1]
    setup = sip.last("offer")[1]
    assert setup.media is None and setup.calling.number == "1001"
    assert sip.leg is not None
    rig.engine.on_alerting(sip.leg)
    rig.engine.on_connect(sip.leg, sip_offer(5000))
    rig.ack_open(rig.a, 32000)
    answer = sip.last("media_answer")[1]
    assert answer.streams[0].port == 32000 and answer.streams[0].codecs[0].name == "PCMU"
    assert rig.a.last(m.StartMediaTransmission).remote_port == 5000
    # the far end hangs up: the phone goes idle and the speaker off
    rig.engine.on_release(sip.leg, 16)
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK
    assert rig.a.last(m.SetSpeakerMode).mode == 2


def test_hold_and_resume_reoffer_media(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2001")
    sip = rig.sip.drivers[-1]
    assert sip.leg is not None
    rig.engine.on_connect(sip.leg, sip_offer(5000))
    rig.ack_open(rig.a, 32000)
    ref = rig.a.last(m.CallState).call_reference
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.HOLD, 1, ref))
    assert rig.a.last(m.CallState).call_state == CallStateCode.HOLD
    assert rig.a.last(m.SetLamp).lamp_mode == LampMode.WINK
    held = sip.last("update_media")[1]
    assert held.streams[0].direction == "inactive"
    rig.engine.on_media_answer(sip.leg, sip_offer(5000, direction="inactive"))
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.RESUME, 1, ref))
    rig.ack_open(rig.a, 32002)
    resumed = sip.last("update_media")[1]
    assert resumed.streams[0].direction == "sendrecv" and resumed.streams[0].port == 32002
    rig.engine.on_media_answer(sip.leg, sip_offer(5002))
    assert rig.a.last(m.StartMediaTransmission).remote_port == 5002
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED


def test_remote_hold_stops_the_phone_sending(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2001")
    sip = rig.sip.drivers[-1]
    assert sip.leg is not None
    rig.engine.on_connect(sip.leg, sip_offer(5000))
    rig.ack_open(rig.a, 32000)
    before = len(rig.a.of(m.StopMediaTransmission))
    rig.engine.on_media_offer(sip.leg, sip_offer(5000, direction="sendonly"))
    answer = sip.last("media_answer")[1]
    assert answer.streams[0].direction == "recvonly" and answer.streams[0].port == 32000
    assert len(rig.a.of(m.StopMediaTransmission)) == before + 1
    rig.engine.on_media_offer(sip.leg, sip_offer(5004))
    assert sip.last("media_answer")[1].streams[0].direction == "sendrecv"
    assert rig.a.last(m.StartMediaTransmission).remote_port == 5004


def test_unknown_number_plays_reorder(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "9")
    assert rig.a.last(m.StartTone).tone == DeviceTone.REORDER
    assert rig.a.last(m.DisplayPromptStatus).text == prompt(Prompt.UNKNOWN_NUMBER)
    rig.press(rig.a, m.OnHook(1, 0))
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK


def test_t302_routes_the_complete_number(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "100")
    assert rig.ep.next_timer() == pytest.approx(rig.now() + 5.0)
    rig.clock.advance(5.0)
    rig.ep.handle_timer(rig.now())
    # "100" is only a prefix of 1001/1002: incomplete -> reorder
    assert rig.a.last(m.StartTone).tone == DeviceTone.REORDER
    assert rig.ep.next_timer() is None


def test_busy_phone_gets_busy_tone(rig: Rig) -> None:
    bob = DeviceInfo(
        "SEP000000000002", "sccp", (LineInfo("1002", "Bob"),), model="7960", max_calls=1
    )
    rig.snapshot = PlanSnapshot.build(
        [
            DeviceInfo("SEP000000000001", "sccp", (LineInfo("1001", "Alice"),), model="7960"),
            bob,
            DeviceInfo("sipphone", "sip", (LineInfo("2001", "Sip"),)),
        ]
    )
    rig.press(rig.b, m.OffHook(1, 0))
    rig.dial(rig.b, "2001")
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    assert rig.a.last(m.CallState).call_state == CallStateCode.BUSY
    assert rig.a.last(m.StartTone).tone == DeviceTone.LINE_BUSY
    assert rig.a.last(m.DisplayPromptStatus).text == prompt(Prompt.BUSY)


def test_redial_and_speed_dial_route_at_once(rig: Rig) -> None:
    rig.press(rig.a, m.Stimulus(2, 1, 0))  # speed dial 1 = 2001
    assert rig.sip.drivers[-1].last("offer")[1].called == "2001"
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.END_CALL, 1, 0))
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.REDIAL, 1, 0))
    assert len(rig.sip.drivers) == 2 and rig.sip.drivers[-1].last("offer")[1].called == "2001"
    rig.press(rig.a, m.EnblocCall("1002", 1))  # while a call is up: it is ended first
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN


def test_second_call_while_connected_gets_call_waiting_and_answer_holds_the_first(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2001")
    sip = rig.sip.drivers[-1]
    assert sip.leg is not None
    rig.engine.on_connect(sip.leg, sip_offer(5000))
    rig.ack_open(rig.a, 32000)
    rig.press(rig.b, m.OffHook(1, 0))
    rig.dial(rig.b, "1001")
    assert rig.a.last(m.StartTone).tone == DeviceTone.CALL_WAITING
    ringing_ref = rig.a.last(m.CallState).call_reference
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.ANSWER, 1, ringing_ref))
    assert sip.last("update_media")[1].streams[0].direction == "inactive"
    assert rig.a.last(m.OpenReceiveChannel).call_reference == ringing_ref


def test_phone_gone_releases_its_calls(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2001")
    sip = rig.sip.drivers[-1]
    rig.ep.detach(rig.a, "keepalive timeout", rig.now())
    assert sip.last("release")[1] == 41
    assert "SEP000000000001" not in rig.ep.phones


def test_call_to_unregistered_phone_reports_absent(rig: Rig) -> None:
    rig.ep.detach(rig.b, "unregister", rig.now())
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    (record,) = rig.ended()
    assert record.cause == 20


# -- whatever the users press, nothing raises and nothing leaks ------------------

_PRESSES = st.one_of(
    st.builds(m.OffHook, st.integers(0, 3), st.integers(0, 4)),
    st.builds(m.OnHook, st.integers(0, 3), st.integers(0, 4)),
    st.builds(m.KeypadButton, st.integers(0, 16), st.just(1), st.integers(0, 4)),
    st.builds(m.SoftKeyEvent, st.integers(0, 20), st.integers(0, 3), st.integers(0, 4)),
    st.builds(m.Stimulus, st.sampled_from([1, 2, 3, 9, 0x7D]), st.integers(0, 3)),
    st.builds(m.EnblocCall, st.sampled_from(["1001", "1002", "2001", "9", ""]), st.just(1)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), st.one_of(_PRESSES, st.just(None))), max_size=40))
def test_any_button_sequence_keeps_state_consistent(
    steps: list[tuple[bool, m.Message | None]],
) -> None:
    rig = Rig()
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign,assignment]
    logging.getLogger("offhook").addHandler(handler)
    try:
        _run(rig, steps)
    finally:
        logging.getLogger("offhook").removeHandler(handler)
    assert not errors, [r.getMessage() for r in errors]
    assert rig.engine.calls() == []
    assert not rig.ep.phones and not rig.ep._receiving and not rig.ep._dialing


def _run(rig: Rig, steps: list[tuple[bool, m.Message | None]]) -> None:
    for on_a, msg in steps:
        link = rig.a if on_a else rig.b
        if msg is None:  # the phone acknowledges its newest receive channel, if any
            opens = link.of(m.OpenReceiveChannel)
            if opens:
                rig.ack_open(link, 40000 + len(opens))
            for sip in rig.sip.drivers:
                if sip.leg is not None and not sip.leg.released and "answer" not in sip.names():
                    rig.engine.on_connect(sip.leg, sip_offer(6000))
            continue
        rig.press(link, msg)
        rig.clock.advance(1.0)
        rig.ep.handle_timer(rig.now())
    rig.ep.detach(rig.a, "test over", rig.now())
    rig.ep.detach(rig.b, "test over", rig.now())
    for sip in rig.sip.drivers:
        if sip.leg is not None and not sip.leg.released:
            rig.engine.on_release(sip.leg, 16)
