"""Barge and cBarge on a shared line's appearance showing remote in use.

C calls the shared line 2100 (A's and B's line 2); A answers, so B's line 2
shows remote in use with the Barge, cBarge and NewCall softkeys. Pressed
there, Barge (or cBarge) places a call on that line that joins A's call
through a conference bridge of the media server (``engine.barge``). The
phones, plan and engine are ``sccp_coverage_rig``'s, with its media server.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sccp_coverage_rig import A, B, C, FakeLink, Rig

from offhook.sccp import messages as m
from offhook.sccp.templates import SOFT_KEY_SETS, SOFT_KEY_TEMPLATE, KeySet, SoftKey
from offhook.sccp.ui import CallStateCode, LampMode, Stimulus


@pytest.fixture
def rig() -> Rig:
    return Rig(media=True)


def remote_in_use(link: FakeLink, line: int = 2) -> m.CallState:
    """The remote-in-use appearance ``line`` shows now (the last state of its reference)."""
    last: dict[int, m.CallState] = {x.call_reference: x for x in link.of(m.CallState)}
    shown = [
        x
        for x in last.values()
        if (x.call_state, x.line_instance) == (CallStateCode.REMOTE_MULTILINE, line)
    ]
    assert len(shown) == 1, f"remote in use on line {line}: {shown}"
    return shown[0]


def shared_call(rig: Rig) -> int:
    """C calls 2100, A answers on line 2 (media up on both): B's line 2 is remote in use.
    Returns B's remote-in-use call reference."""
    rig.press(rig.c, m.OffHook(1, 0))
    rig.dial(rig.c, "2100")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    rig.press(rig.a, m.OffHook(2, 0))
    rig.ack_open(rig.a, 31000)
    rig.ack_open(rig.c, 33000)
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    return int(remote_in_use(rig.b).call_reference)


def test_barge_softkeys_carry_wiresharks_event_values() -> None:
    events = dict(SOFT_KEY_TEMPLATE)
    assert (events["Barge"], events["cBarge"]) == (0x43, 0x51)  # SoftKeyEvent 67, 81
    labels = [label for label, _ in SOFT_KEY_TEMPLATE]
    in_use = SOFT_KEY_SETS[KeySet.IN_USE_HINT]  # softkey set 10 "In Use Hint"
    assert KeySet.IN_USE_HINT == 10
    assert [labels[i - 1] for i in in_use.template_index] == ["Barge", "cBarge", "NewCall"]


def test_remote_in_use_offers_barge(rig: Rig) -> None:
    ref = shared_call(rig)
    keys = [x for x in rig.b.of(m.SelectSoftKeys) if x.call_reference == ref]
    assert [(x.line_instance, x.soft_key_set_index) for x in keys] == [(2, KeySet.IN_USE_HINT)]


@pytest.mark.parametrize("key", [SoftKey.BARGE, SoftKey.C_BARGE])
def test_barge_joins_the_three_in_a_bridge(rig: Rig, key: SoftKey) -> None:
    ref = shared_call(rig)
    rig.key(rig.b, key, 2, ref)
    # the remote-in-use appearance becomes B's call, answered by the bridge
    assert rig.b.last(m.CallState) == m.CallState(CallStateCode.CONNECTED, 2, ref, 0, 4, 0)
    assert rig.b.of(m.SetLamp)[-1] == m.SetLamp(Stimulus.LINE, 2, LampMode.ON)
    rig.ack_open(rig.b, 32000)
    (devices,) = rig.media.in_bridges().values()
    assert sorted(devices) == sorted([A, B, C])
    # each phone's receive port is a bridge endpoint's far end, and each sends to its own
    connects = {c[2:4] for c in rig.media.named("connect")}
    assert {("127.0.0.1", 31000), ("127.0.0.1", 32000), ("127.0.0.1", 33000)} <= connects
    sends = [link.last(m.StartMediaTransmission) for link in (rig.a, rig.b, rig.c)]
    assert {x.remote_ip for x in sends} == {"192.0.2.50"}
    assert len({x.remote_port for x in sends}) == 3
    # B's line no longer shows remote in use: B is in the call
    assert 2 not in rig.ep.phones[B].remote_in_use
    # B leaves: A and C go on in the bridge, B's line shows remote in use again
    rig.press(rig.b, m.OnHook(2, ref))
    assert rig.engine.device_calls(A) and rig.engine.device_calls(C)
    again = remote_in_use(rig.b)
    assert again.call_reference != ref


def test_privacy_refuses_the_barge(rig: Rig) -> None:
    object.__setattr__(rig.snapshot.devices[A], "privacy", True)
    ref = shared_call(rig)
    rig.key(rig.b, SoftKey.BARGE, 2, ref)
    assert "Private" in rig.b.texts()
    assert not rig.media.in_bridges()
    # the barging call is gone; the appearance is remote in use again
    states = [x for x in rig.b.of(m.CallState) if x.call_reference == ref]
    assert states[-1].call_state == CallStateCode.ON_HOOK
    assert remote_in_use(rig.b).call_reference != ref
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED


def test_barge_with_nothing_in_use_is_not_available(rig: Rig) -> None:
    rig.key(rig.b, SoftKey.BARGE, 2)
    assert rig.b.texts()[-1] == "Not available"
    assert not rig.b.of(m.CallState)


def test_barge_pressed_without_a_line_finds_the_appearance(rig: Rig) -> None:
    shared_call(rig)
    rig.press(rig.b, m.SoftKeyEvent(int(SoftKey.BARGE), 0, 0))
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED
    assert rig.b.last(m.CallState).line_instance == 2


def test_a_ringing_shared_line_is_not_barged(rig: Rig) -> None:
    rig.press(rig.c, m.OffHook(1, 0))
    rig.dial(rig.c, "2100")  # ringing on A and B, nobody answered
    rig.key(rig.b, SoftKey.BARGE, 2)
    assert rig.b.texts()[-1] == "Not available"


# ---------------------------------------------------------------- never stuck

PHONES = ("a", "b", "c")
STEP = st.one_of(
    st.tuples(st.just("dial"), st.sampled_from(PHONES), st.sampled_from(["2100", "2001", "2002"])),
    st.tuples(st.just("answer"), st.sampled_from(PHONES), st.just("")),
    st.tuples(st.just("onhook"), st.sampled_from(PHONES), st.sampled_from(["1", "2"])),
    st.tuples(st.just("barge"), st.sampled_from(("a", "b")), st.sampled_from(["1", "2"])),
    st.tuples(st.just("ack"), st.sampled_from(PHONES), st.just("")),
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(STEP, max_size=25))
def test_any_barge_sequence_ends_with_everything_idle(steps: list[tuple[str, str, str]]) -> None:
    rig = Rig(media=True)
    for kind, who, arg in steps:
        link: FakeLink = getattr(rig, who)
        if kind == "dial":
            line = 2 if arg == "2100" and who != "c" else 1
            rig.press(link, m.OffHook(line, 0))
            rig.dial(link, arg, line)
        elif kind == "answer":
            rig.press(link, m.OffHook(0, 0))
        elif kind == "onhook":
            rig.press(link, m.OnHook(int(arg), 0))
        elif kind == "barge":
            rig.press(link, m.SoftKeyEvent(int(SoftKey.BARGE), int(arg), 0))
        elif link.of(m.OpenReceiveChannel):
            rig.ack_open(link, 40000 + len(link.sent))
    for who in PHONES:
        phone = rig.ep.phones[getattr(rig, who).name]
        for ref in list(phone.calls):
            rig.key(getattr(rig, who), SoftKey.END_CALL, 0, ref)
    for name, phone in rig.ep.phones.items():
        assert not phone.calls, (name, phone.calls)
        assert rig.engine.device_calls(name) == 0
        assert phone.remote_in_use == {}
    assert rig.media.in_bridges() == {}
