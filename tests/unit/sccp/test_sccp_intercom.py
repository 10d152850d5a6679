"""Intercom on a Skinny phone: the phone answers by itself, microphone muted (whisper).

B's line 2002 is made an intercom line (the plan's ``lines[].intercom``):
core offers calls to it with ``Setup.auto_answer``. B goes off hook on the
speaker with its microphone muted (SetMicroMode off) and the call connects
at once; Answer, the line button or the handset turns the microphone on.
The phones, plan and engine are ``sccp_coverage_rig``'s.
"""

from __future__ import annotations

import pytest
from sccp_coverage_rig import B, FakeLink, Rig

from offhook.sccp import messages as m
from offhook.sccp.templates import KeySet, SoftKey
from offhook.sccp.ui import CallStateCode, MicroMode, RingMode, SpeakerMode, Stimulus


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    object.__setattr__(rig.snapshot.devices[B].lines[0], "intercom", True)  # 2002
    return rig


def states(link: FakeLink) -> list[int]:
    return [x.call_state for x in link.of(m.CallState)]


def micro(link: FakeLink) -> list[int]:
    return [x.mode for x in link.of(m.SetMicroMode)]


def intercom(rig: Rig) -> int:
    """A dials B's intercom line 2002; B answers by itself. B's call reference."""
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    state = rig.b.last(m.CallState)
    assert state.call_state == CallStateCode.CONNECTED
    rig.ack_open(rig.b, 32000)  # B's receive channel: its offer reaches A
    rig.ack_open(rig.a, 31000)
    return int(state.call_reference)


def test_the_phone_answers_on_the_speaker_with_the_microphone_muted(rig: Rig) -> None:
    ref = intercom(rig)
    assert micro(rig.b) == [MicroMode.OFF]
    assert rig.b.last(m.SetSpeakerMode) == m.SetSpeakerMode(SpeakerMode.ON)
    # muted before the speaker comes on; never rang
    sent = [type(x) for x in rig.b.sent]
    assert sent.index(m.SetMicroMode) < sent.index(m.SetSpeakerMode)
    assert CallStateCode.RING_IN not in states(rig.b)
    assert all(x.ring_mode == RingMode.OFF for x in rig.b.of(m.SetRinger))
    keys = [x for x in rig.b.of(m.SelectSoftKeys) if x.call_reference == ref]
    assert keys[-1].soft_key_set_index == KeySet.RING_IN  # Answer, to talk
    # the caller is connected at once: no ringback
    assert CallStateCode.RING_OUT not in states(rig.a)
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    assert rig.a.last(m.StartMediaTransmission).remote_port == 32000
    assert rig.b.last(m.StartMediaTransmission).remote_port == 31000


def test_answer_turns_the_microphone_on(rig: Rig) -> None:
    ref = intercom(rig)
    rig.key(rig.b, SoftKey.ANSWER, 1, ref)
    assert micro(rig.b) == [MicroMode.OFF, MicroMode.ON]
    assert rig.b.last(m.SelectSoftKeys).soft_key_set_index == KeySet.CONNECTED
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED
    rig.key(rig.b, SoftKey.ANSWER, 1, ref)  # again: nothing more
    assert micro(rig.b) == [MicroMode.OFF, MicroMode.ON]


def test_the_handset_turns_the_microphone_on(rig: Rig) -> None:
    intercom(rig)
    rig.press(rig.b, m.OffHook(0, 0))
    assert micro(rig.b) == [MicroMode.OFF, MicroMode.ON]
    assert rig.ep.phones[B].active() is not None  # the same call: no dial tone
    assert states(rig.b).count(CallStateCode.OFF_HOOK) == 1


def test_the_line_button_turns_the_microphone_on(rig: Rig) -> None:
    intercom(rig)
    rig.press(rig.b, m.Stimulus(Stimulus.LINE, 1, 0))
    assert micro(rig.b) == [MicroMode.OFF, MicroMode.ON]


def test_the_caller_hanging_up_unmutes_for_the_next_call(rig: Rig) -> None:
    ref = intercom(rig)
    rig.press(rig.a, m.OnHook(1, 0))
    assert rig.b.last(m.CallState) == m.CallState(CallStateCode.ON_HOOK, 1, ref, 0, 4, 0)
    assert micro(rig.b) == [MicroMode.OFF, MicroMode.ON]
    assert rig.b.last(m.SetSpeakerMode) == m.SetSpeakerMode(SpeakerMode.OFF)


def test_a_busy_phone_is_offered_the_intercom_call_as_call_waiting(rig: Rig) -> None:
    rig.press(rig.b, m.OffHook(2, 0))
    rig.dial(rig.b, "8000", line=2)  # B is on the phone
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    assert not rig.b.of(m.SetMicroMode)


def test_intercom_ignores_do_not_disturb(rig: Rig) -> None:
    rig.engine.set_dnd(B, True)
    intercom(rig)
    assert micro(rig.b) == [MicroMode.OFF]


def test_an_ordinary_call_is_not_auto_answered(rig: Rig) -> None:
    object.__setattr__(rig.snapshot.devices[B].lines[0], "intercom", False)
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    assert not rig.b.of(m.SetMicroMode)
