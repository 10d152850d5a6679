"""Feature codes typed on an SCCP keypad: overlap dialling knows them, core acts on them.

``*78``, ``*212002``, ``#21``, ``**2002``, ``*97`` typed digit by digit go to
core as soon as they are complete (no T302 wait) and core's feature codes
do the rest: the confirmation tone answers from the media server, then the
call is cleared. The phones, plan and engine are ``sccp_coverage_rig``'s.
"""

from __future__ import annotations

import pytest
from sccp_coverage_rig import INTERNAL, A, B, C, FakeLink, Rig

from offhook.core.features.codes import CONFIRM_SECONDS
from offhook.core.records import DndChanged, ForwardChanged
from offhook.sccp import messages as m
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode, RingMode


@pytest.fixture
def rig() -> Rig:
    return Rig(media=True)


def states(link: FakeLink) -> list[int]:
    return [x.call_state for x in link.of(m.CallState)]


def typed(rig: Rig, link: FakeLink, digits: str, line: int = 1) -> int:
    """Off hook on ``line`` and ``digits`` on the keypad; the call reference."""
    rig.press(link, m.OffHook(line, 0))
    ref = int(link.last(m.CallState).call_reference)
    rig.dial(link, digits, line)
    return ref


def confirmed(rig: Rig, link: FakeLink, ref: int) -> None:
    """The code's call is answered by the confirmation tone, then cleared."""
    assert link.last(m.DialedNumber).call_reference == ref
    assert CallStateCode.CONNECTED in states(link)
    rig.ack_open(link, 31000)  # the phone's receive channel: the tone flows to it
    assert any(c[2] == "tone:confirm" for c in rig.media.named("play"))
    assert rig.media.named("connect")[-1][2:4] == ("127.0.0.1", 31000)
    rig.advance(CONFIRM_SECONDS + 0.1)
    assert link.last(m.CallState) == m.CallState(CallStateCode.ON_HOOK, 1, ref, 0, 4, 0)
    assert rig.ep.phones[link.name].active() is None


def test_dnd_on_code_routes_at_once_and_is_confirmed(rig: Rig) -> None:
    ref = typed(rig, rig.a, "*78")
    assert rig.ep.next_timer() is None  # complete: no T302 wait
    assert rig.engine.dnd(A)
    assert rig.of(DndChanged) == [DndChanged(A, True)]
    assert "Do Not Disturb active" in rig.a.texts()
    confirmed(rig, rig.a, ref)
    # a call to A is now offered without ringing
    typed(rig, rig.b, "2001")
    assert rig.a.last(m.CallState).call_state == CallStateCode.RING_IN
    assert rig.a.last(m.SetRinger).ring_mode == RingMode.OFF


def test_dnd_off_code(rig: Rig) -> None:
    rig.engine.set_dnd(A, True)
    typed(rig, rig.a, "*79")
    assert not rig.engine.dnd(A)


def test_forward_all_code_takes_the_number_after_it(rig: Rig) -> None:
    ref = typed(rig, rig.a, "*212002")
    forward = rig.engine.forward_all_of("2001", INTERNAL)
    assert forward is not None and forward.destination == "2002"
    assert rig.of(ForwardChanged) == [ForwardChanged("2001", INTERNAL, "2002", A)]
    assert rig.a.last(m.ForwardStat).forward_all_number == "2002"
    confirmed(rig, rig.a, ref)
    typed(rig, rig.b, "#21")  # B's own line (2002): A's forward stays
    assert rig.engine.forward_all_of("2001", INTERNAL) is not None
    typed(rig, rig.a, "#21")
    assert rig.engine.forward_all_of("2001", INTERNAL) is None


def test_forward_code_waits_for_a_whole_number(rig: Rig) -> None:
    typed(rig, rig.a, "*21200")
    assert rig.ep.next_timer() is not None  # 200 is only a prefix: still collecting
    assert not rig.of(ForwardChanged)
    rig.dial(rig.a, "2")
    assert rig.engine.forward_all_of("2001", INTERNAL) is not None


def test_forward_code_outside_the_forward_css_is_refused(rig: Rig) -> None:
    typed(rig, rig.a, "*212003")  # exec: staff cannot reach it, so it is no number
    assert rig.engine.forward_all_of("2001", INTERNAL) is None
    assert rig.a.last(m.CallState).call_state in (
        CallStateCode.CONGESTION,
        CallStateCode.ON_HOOK,
    )


def test_directed_pickup_code_answers_the_ringing_call(rig: Rig) -> None:
    typed(rig, rig.c, "2002")  # C calls B: B rings
    b_ring = rig.b.last(m.CallState)
    assert b_ring.call_state == CallStateCode.RING_IN
    typed(rig, rig.a, "**2002")
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    assert rig.b.last(m.CallState) == m.CallState(
        CallStateCode.ON_HOOK, b_ring.line_instance, b_ring.call_reference, 0, 4, 0
    )
    rig.ack_open(rig.a, 31000)  # A's offer reaches the caller
    assert rig.c.last(m.CallState).call_state == CallStateCode.CONNECTED


def test_voicemail_code_calls_the_lines_pilot(rig: Rig) -> None:
    typed(rig, rig.a, "*97")
    (vm,) = rig.sip.drivers
    assert vm.calls[0][1].called == "8000"


def test_without_a_media_server_the_code_still_works(rig: Rig) -> None:
    rig.engine.media = None
    ref = typed(rig, rig.b, "*78")
    assert rig.engine.dnd(B)
    assert rig.b.last(m.CallState) == m.CallState(CallStateCode.ON_HOOK, 1, ref, 0, 4, 0)


def test_a_forward_destination_is_never_a_code(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "*78")
    assert not rig.engine.dnd(A)
    assert rig.engine.forward_all_of("2001", INTERNAL) is None
    assert rig.a.texts()[-1] == "Not allowed"


def test_a_group_pickup_number_is_never_a_code(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.GROUP_PICKUP)
    rig.dial(rig.a, "*78")
    assert not rig.engine.dnd(A)


def test_backspace_keeps_the_codes(rig: Rig) -> None:
    rig.engine.set_dnd(C, True)
    ref = typed(rig, rig.c, "*7")
    rig.key(rig.c, SoftKey.BACKSPACE, 1, ref)  # "*" is still the start of a code
    rig.dial(rig.c, "79")
    assert not rig.engine.dnd(C)
