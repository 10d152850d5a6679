"""SCCP lamps of call coverage: message waiting, busy lamp speed dials, remote in use.

The phones, plan and engine are ``sccp_coverage_rig``'s. Line states come
from the engine's tracker (``engine.lines``, ``core.features.linestate``)
following real calls, or are published directly where a test needs one.
"""

from __future__ import annotations

import pytest
from sccp_coverage_rig import INTERNAL, A, B, FakeLink, Rig

from offhook.core.records import LineStateChanged, RegistrationChanged
from offhook.sccp import messages as m
from offhook.sccp.templates import KeySet
from offhook.sccp.ui import CallStateCode, LampMode, Stimulus

MWI = (Stimulus.VOICEMAIL, 0)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def speed_dial_lamps(link: FakeLink) -> list[tuple[int, int]]:
    return [
        (x.stimulus_instance, x.lamp_mode)
        for x in link.of(m.SetLamp)
        if x.stimulus == Stimulus.SPEED_DIAL
    ]


def lamp(link: FakeLink, stimulus: int, instance: int) -> int | None:
    return link.lamps().get((stimulus, instance))


def call_voicemail(rig: Rig, link: FakeLink, line: int = 1) -> None:
    """``link`` calls the voicemail (8000) on ``line``: that line is in use."""
    rig.press(link, m.OffHook(line, 0))
    rig.dial(link, "8000", line)


# ---------------------------------------------------------------- message waiting


def test_message_lamp_follows_the_lines_messages(rig: Rig) -> None:
    assert rig.engine.set_mwi("2001", True, new=2)
    assert rig.a.last(m.SetLamp) == m.SetLamp(Stimulus.VOICEMAIL, 0, LampMode.ON)
    assert not rig.b.of(m.SetLamp)  # B does not carry 2001
    assert rig.engine.set_mwi("2001", False)
    assert rig.a.lamps()[MWI] == LampMode.OFF


def test_message_lamp_is_the_phones_not_one_lines(rig: Rig) -> None:
    rig.engine.set_mwi("2001", True)
    rig.engine.set_mwi("2100", True)  # shared by A and B
    assert rig.b.lamps()[MWI] == LampMode.ON
    rig.engine.set_mwi("2100", False)
    assert rig.b.lamps()[MWI] == LampMode.OFF
    assert rig.a.lamps()[MWI] == LampMode.ON  # 2001 still has messages


def test_unchanged_messages_send_nothing(rig: Rig) -> None:
    rig.engine.set_mwi("2001", True, new=1)
    before = len(rig.a.sent)
    rig.engine.set_mwi("2001", True, new=1)
    assert len(rig.a.sent) == before


def test_a_registering_phone_gets_its_message_lamp(rig: Rig) -> None:
    rig.engine.set_mwi("2100", True)
    again = rig.attach(B)
    assert again.sent == [m.SetLamp(Stimulus.VOICEMAIL, 0, LampMode.ON)]


# ---------------------------------------------------------------- busy lamp speed dials


def test_a_speed_dial_lamp_follows_the_line_it_dials(rig: Rig) -> None:
    rig.press(rig.b, m.OffHook(1, 0))
    assert not speed_dial_lamps(rig.a)  # dial tone is no call yet
    rig.dial(rig.b, "8000")  # B (2002) calls: in use
    assert speed_dial_lamps(rig.a) == [(1, LampMode.ON)]
    rig.press(rig.b, m.OnHook(1, 0))
    assert speed_dial_lamps(rig.a)[-1] == (1, LampMode.OFF)


def test_ringing_blinks_then_answered_is_on(rig: Rig) -> None:
    rig.press(rig.c, m.OffHook(1, 0))
    rig.dial(rig.c, "2002")  # C (exec, CSS boss) calls B
    assert (1, LampMode.BLINK) in speed_dial_lamps(rig.a)
    assert lamp(rig.a, Stimulus.SPEED_DIAL, 2) == LampMode.ON  # C (2003) is calling
    rig.press(rig.b, m.OffHook(1, 0))
    rig.ack_open(rig.b, 30002)  # B answers
    assert lamp(rig.a, Stimulus.SPEED_DIAL, 1) == LampMode.ON
    rig.press(rig.c, m.OnHook(1, 0))
    assert lamp(rig.a, Stimulus.SPEED_DIAL, 1) == LampMode.OFF
    assert lamp(rig.a, Stimulus.SPEED_DIAL, 2) == LampMode.OFF


def test_a_7960_has_no_busy_lamp_speed_dials(rig: Rig) -> None:
    call_voicemail(rig, rig.a)  # 2001, B's speed dial 1
    assert not speed_dial_lamps(rig.b)


def test_only_speed_dials_with_a_button_light(rig: Rig) -> None:
    # A 7961 has 6 buttons: 2 lines, then speed dials 1-3 (2002, 2003, 2100) fit.
    rig.bus.publish(LineStateChanged("2003", "exec", "in-use", ("SEP00000000C003",)))
    assert speed_dial_lamps(rig.a) == [(2, LampMode.ON)]


def test_a_registering_phone_gets_the_busy_lamps(rig: Rig) -> None:
    call_voicemail(rig, rig.b)
    again = rig.attach(A)
    assert m.SetLamp(Stimulus.SPEED_DIAL, 1, LampMode.ON) in again.sent
    rig.press(rig.b, m.OnHook(1, 0))
    fresh = rig.attach(A)
    assert fresh.sent == []  # every line idle again: nothing to show


# ---------------------------------------------------------------- remote in use


def test_a_shared_line_in_use_is_remote_in_use_on_the_other_phone(rig: Rig) -> None:
    call_voicemail(rig, rig.a, 2)  # A calls on the shared line 2100
    remote = rig.b.last(m.CallState)
    assert (remote.call_state, remote.line_instance) == (CallStateCode.REMOTE_MULTILINE, 2)
    assert rig.b.lamps()[(Stimulus.LINE, 2)] == LampMode.ON
    # A's own appearance shows its own call, not remote in use
    assert CallStateCode.REMOTE_MULTILINE not in [x.call_state for x in rig.a.of(m.CallState)]
    # A's speed dial 3 is 2100 too: its busy lamp is on
    assert (3, LampMode.ON) in speed_dial_lamps(rig.a)
    rig.press(rig.a, m.OnHook(2, 0))
    idle = rig.b.last(m.CallState)
    assert (idle.call_state, idle.call_reference) == (CallStateCode.ON_HOOK, remote.call_reference)
    assert rig.b.lamps()[(Stimulus.LINE, 2)] == LampMode.OFF


def test_remote_in_use_has_its_own_call_reference(rig: Rig) -> None:
    call_voicemail(rig, rig.a, 2)
    mine = rig.a.last(m.CallState).call_reference
    remote = rig.b.last(m.CallState).call_reference
    assert mine != remote
    rig.press(rig.b, m.OffHook(1, 0))  # B's own call on line 1 has another one again
    assert rig.b.last(m.CallState).call_reference not in (mine, remote)


def test_an_own_call_ending_keeps_the_remote_in_use_lamp(rig: Rig) -> None:
    rig.bus.publish(LineStateChanged("2100", INTERNAL, "in-use", (A,)))
    assert rig.b.lamps()[(Stimulus.LINE, 2)] == LampMode.ON
    rig.press(rig.b, m.Stimulus(Stimulus.LINE, 2, 0))  # B's own call on line 2
    rig.press(rig.b, m.OnHook(2, 0))
    assert rig.b.lamps()[(Stimulus.LINE, 2)] == LampMode.ON  # A is still on it


def test_ringing_on_a_shared_line_is_not_remote_in_use(rig: Rig) -> None:
    rig.bus.publish(LineStateChanged("2100", INTERNAL, "ringing", (A, B)))
    assert CallStateCode.REMOTE_MULTILINE not in [x.call_state for x in rig.b.of(m.CallState)]


def test_a_registering_phone_sees_the_shared_line_in_use(rig: Rig) -> None:
    call_voicemail(rig, rig.a, 2)
    again = rig.attach(B)
    assert [type(x) for x in again.sent] == [m.CallState, m.SelectSoftKeys, m.SetLamp]
    assert again.sent[0].call_state == CallStateCode.REMOTE_MULTILINE
    assert again.sent[1].soft_key_set_index == KeySet.IN_USE_HINT  # Barge, cBarge, NewCall


def test_a_phone_gone_watches_nothing(rig: Rig) -> None:
    coverage = rig.ep.coverage
    assert A in coverage._watchers["2002"]  # A's busy lamp speed dial
    rig.ep.detach(rig.a, "unregister", rig.now())
    assert all(A not in names for names in coverage._watchers.values())
    call_voicemail(rig, rig.b)  # 2002 in use: nobody left to show it to
    assert not speed_dial_lamps(rig.a)
    rig.ep.detach(rig.b, "unregister", rig.now())
    rig.ep.detach(rig.c, "unregister", rig.now())
    assert coverage._watchers == {} and coverage._watching == {}


def test_a_phone_registering_and_going_is_on_the_bus(rig: Rig) -> None:
    # Presence watchers (SIP SUBSCRIBE presence) follow these.
    assert RegistrationChanged(A, "sccp", True) in rig.events
    rig.ep.detach(rig.a, "gone", rig.now())
    assert rig.events[-1] == RegistrationChanged(A, "sccp", False)
    rig.attach(A)
    assert rig.events.count(RegistrationChanged(A, "sccp", True)) == 2
