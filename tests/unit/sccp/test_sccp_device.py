"""DeviceSession: registration sequence, rejection, keepalive, unregister, templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offhook.common import FakeClock
from offhook.sccp import SccpFramer, encode
from offhook.sccp.device import (
    TRANSITIONS,
    Closed,
    DeviceProfile,
    DeviceSession,
    Registered,
    State,
    Unregistered,
)
from offhook.sccp.messages import (
    Alarm,
    ButtonTemplate,
    ButtonTemplateReq,
    CapabilitiesReq,
    CapabilitiesRes,
    Capability,
    ConfigStat,
    DefineTimeDate,
    ForwardStat,
    ForwardStatReq,
    KeepAlive,
    KeepAliveAck,
    LineStat,
    LineStatReq,
    Message,
    OffHook,
    Register,
    RegisterAck,
    RegisterReject,
    SoftKeySetReq,
    SoftKeySetRes,
    SoftKeyTemplateReq,
    SoftKeyTemplateRes,
    SpeedDialStat,
    SpeedDialStatReq,
    TimeDateReq,
    Unregister,
    UnregisterAck,
)
from offhook.sccp.templates import SOFT_KEY_SETS, SOFT_KEY_TEMPLATE, button_template

PAYLOADS = Path(__file__).parents[2] / "vectors" / "sccp" / "cm2_register_payloads.json"

CAROL = DeviceProfile(
    "SEP001122334455",
    "7960",
    lines=(("1003", "Carol"), ("1004", "Carol 2")),
    speed_dials=(("1001", "Alice"),),
)


def lookup(name: str) -> DeviceProfile | None:
    return {CAROL.name: CAROL, "pyskinny01": CAROL}.get(name)


def register(name: str = CAROL.name, version: int = 0) -> Register:
    return Register(name, 0, 1, "10.0.0.5", 7, 5, version=version)


def session(clock: FakeClock) -> DeviceSession:
    return DeviceSession(lookup, clock.monotonic(), wall_offset=clock.wall() - clock.monotonic())


def test_registration_answers_in_order() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(register(), clock.monotonic())
    assert [type(m) for m in s.messages_to_send()] == [RegisterAck, CapabilitiesReq]
    assert s.events() == [Registered(CAROL.name, CAROL.lines)]
    requests: list[Message] = [
        CapabilitiesRes((Capability(4, 40),)),
        ButtonTemplateReq(),
        SoftKeyTemplateReq(),
        SoftKeySetReq(),
        LineStatReq(1),
        LineStatReq(2),
        SpeedDialStatReq(1),
        ForwardStatReq(1),
        TimeDateReq(),
    ]
    for m in requests:
        s.receive(m, clock.monotonic())
    out = s.messages_to_send()
    assert [type(m) for m in out] == [
        ButtonTemplate,
        SoftKeyTemplateRes,
        SoftKeySetRes,
        LineStat,
        LineStat,
        SpeedDialStat,
        ForwardStat,
        DefineTimeDate,
    ]
    assert s.capabilities == (Capability(4, 40),)
    assert out[3] == LineStat(1, "1003", "Carol", "Carol")
    assert out[4] == LineStat(2, "1004", "Carol 2", "Carol 2")
    assert out[5] == SpeedDialStat(1, "1001", "Alice")
    assert out[6] == ForwardStat(0, 1, 0, "", 0, "", 0, "")
    t = out[7]
    assert isinstance(t, DefineTimeDate)
    # FakeClock wall 1_700_000_000 = Tuesday 2023-11-14 22:13:20 UTC
    assert (t.year, t.month, t.day, t.day_of_week, t.hour, t.minute, t.second) == (
        2023,
        11,
        14,
        2,
        22,
        13,
        20,
    )
    assert t.system_time == 1_700_000_000
    for m in out:  # every reply encodes
        assert encode(m, s.version)
    assert s.events() == []


def test_register_ack_fields_and_version() -> None:
    clock = FakeClock()
    s = DeviceSession(lookup, clock.monotonic(), keepalive=20)
    s.receive(register(version=0x11), clock.monotonic())
    ack = s.messages_to_send()[0]
    assert ack == RegisterAck(20, "M/D/YA", 20, version=0x11)
    assert s.version == 0x11


def test_capture_registration_sequence() -> None:
    """The phone side of a captured CallManager registration, replayed in order."""
    streams: dict[str, list[str]] = json.loads(PAYLOADS.read_text())
    framer = SccpFramer()
    phone = [m for h in streams["0:phone"] for m in framer.feed(bytes.fromhex(h))]
    framer = SccpFramer()
    server = [m for h in streams["0:server"] for m in framer.feed(bytes.fromhex(h))]
    clock = FakeClock()
    s = session(clock)
    ours: list[type[Message]] = []
    for m in phone:
        clock.advance(0.01)
        s.receive(m, clock.monotonic())
        ours += [type(r) for r in s.messages_to_send()]
    # CallManager's answers as captured (it answered ButtonTemplateReq last and the
    # capture holds no answer to the softkey and forward requests): each of them is
    # among ours, and ours are one per request in request order.
    theirs = [type(m) for m in server]
    assert set(theirs) <= set(ours)
    assert ours == [
        RegisterAck,
        CapabilitiesReq,
        ButtonTemplate,
        SoftKeyTemplateRes,
        SoftKeySetRes,
        ConfigStat,
        LineStat,
        ForwardStat,
        DefineTimeDate,
        UnregisterAck,
    ]
    assert s.events() == [
        Registered(CAROL.name, CAROL.lines),
        Unregistered("unregister"),
        Closed("unregister"),
    ]


def test_unknown_device_rejected() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(register("SEP999999999999"), clock.monotonic())
    out = s.messages_to_send()
    assert [type(m) for m in out] == [RegisterReject]
    assert s.events() == [Closed("unknown device")]
    assert s.state is State.REJECTED
    assert s.next_timer() is None
    s.receive(KeepAlive(), clock.monotonic())  # as in the capture: ignored
    assert s.messages_to_send() == [] and s.events() == []


def test_keepalive_refreshes_then_timeout() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(register(), clock.monotonic())
    s.messages_to_send()
    s.events()
    for _ in range(5):
        clock.advance(30)
        s.receive(KeepAlive(), clock.monotonic())
        assert s.messages_to_send() == [KeepAliveAck()]
    deadline = s.next_timer()
    assert deadline == clock.monotonic() + 65
    clock.advance(64)
    s.handle_timer(clock.monotonic())
    assert s.events() == []
    clock.advance(1)
    s.handle_timer(clock.monotonic())
    assert s.events() == [Unregistered("keepalive timeout"), Closed("keepalive timeout")]
    assert s.next_timer() is None
    assert s.state is State.CLOSED


def test_profile_keepalive_overrides() -> None:
    clock = FakeClock()
    p = DeviceProfile("SEP0A", "7940", (("2000", "Dan"),), keepalive=10)
    s = DeviceSession(lambda n: p if n == p.name else None, clock.monotonic())
    s.receive(register(p.name), clock.monotonic())
    assert s.messages_to_send()[0] == RegisterAck(10, "M/D/YA", 10)
    assert s.next_timer() == clock.monotonic() + 25


def test_unregister() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(register(), clock.monotonic())
    s.messages_to_send()
    s.events()
    s.receive(Unregister(), clock.monotonic())
    assert s.messages_to_send() == [UnregisterAck(0)]
    assert s.events() == [Unregistered("unregister"), Closed("unregister")]
    assert s.next_timer() is None


@pytest.mark.parametrize(
    "msg", [KeepAlive(), ButtonTemplateReq(), OffHook(), Unregister(), LineStatReq(1)]
)
def test_messages_before_register_close(msg: Message) -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(msg, clock.monotonic())
    assert s.messages_to_send() == []
    assert s.events() == [Closed("not registered")]


def test_alarm_before_register_is_accepted() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(Alarm(2, "Last=Reset", 0, 0), clock.monotonic())
    assert s.events() == [] and s.messages_to_send() == []
    s.receive(register(), clock.monotonic())
    assert s.state is State.REGISTERED


def test_no_register_in_time_closes() -> None:
    clock = FakeClock()
    s = session(clock)
    timer = s.next_timer()
    assert timer is not None
    clock.advance(timer - clock.monotonic())
    s.handle_timer(clock.monotonic())
    assert s.events() == [Closed("register timeout")]


def test_unhandled_message_when_registered_is_ignored() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(register(), clock.monotonic())
    s.messages_to_send()
    s.events()
    s.receive(OffHook(), clock.monotonic())
    assert s.messages_to_send() == [] and s.events() == []
    assert s.state is State.REGISTERED


def test_line_beyond_profile_is_empty() -> None:
    clock = FakeClock()
    s = session(clock)
    s.receive(register(), clock.monotonic())
    s.messages_to_send()
    s.receive(LineStatReq(5), clock.monotonic())
    s.receive(SpeedDialStatReq(3), clock.monotonic())
    assert s.messages_to_send() == [LineStat(5, "", "", ""), SpeedDialStat(3, "", "")]


def test_transition_table_is_data() -> None:
    assert all(hasattr(DeviceSession, h) for h in TRANSITIONS.values())
    assert {state for state, _ in TRANSITIONS} == {State.CONNECTED, State.REGISTERED}


@pytest.mark.parametrize(
    ("model", "lines", "sds", "expected"),
    [
        ("7940", 1, 1, ((1, 9), (1, 2))),
        ("7940", 2, 3, ((1, 9), (2, 9))),
        ("7960", 2, 1, ((1, 9), (2, 9), (1, 2), (2, 2), (3, 2), (4, 2))),
        ("7961", 1, 0, ((1, 9), (1, 2), (2, 2), (3, 2), (4, 2), (5, 2))),
        ("7941", 1, 0, ((1, 9), (1, 2))),
        ("7970", 3, 2, ((1, 9), (2, 9), (3, 9), *((i, 2) for i in range(1, 6)))),
        ("7971", 8, 0, tuple((i, 9) for i in range(1, 9))),
        ("7912", 1, 4, ((1, 9),)),
        ("7912", 0, 0, ((1, 9),)),
    ],
)
def test_button_templates_per_model(
    model: str, lines: int, sds: int, expected: tuple[tuple[int, int], ...]
) -> None:
    assert button_template(model, lines, sds) == expected


def test_7960_template_matches_callmanager() -> None:
    # cm31_reg/button_template: CallManager 3.1's 7960 with 2 lines, 4 speed dials
    assert button_template("7960", 2, 4) == ((1, 9), (2, 9), (1, 2), (2, 2), (3, 2), (4, 2))


def test_softkeys() -> None:
    labels = [label for label, _ in SOFT_KEY_TEMPLATE]
    for key in ("Redial", "NewCall", "Hold", "Trnsfer", "CFwdAll", "EndCall", "Resume", "Answer"):
        assert key in labels
    assert len(SOFT_KEY_SETS) == 11  # 0-10, as packet-skinny.c's SoftKeySet names them
    for ks in SOFT_KEY_SETS:
        assert all(1 <= i <= len(SOFT_KEY_TEMPLATE) for i in ks.template_index)
        events = [SOFT_KEY_TEMPLATE[i - 1][1] for i in ks.template_index]
        assert [300 + e for e in events] == list(ks.info_index)
    assert encode(SoftKeySetRes(0, len(SOFT_KEY_SETS), SOFT_KEY_SETS))
