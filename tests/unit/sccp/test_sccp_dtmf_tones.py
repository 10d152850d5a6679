"""A far end's DTMF played on an SCCP phone: StartTone with the digit's tone, StopTone later.

Through a real CallEngine (the rig of ``test_sccp_endpoint``): SCCP phone A
talks to a SIP leg or to phone B; digits the other side sends (core's
``on_digits``) reach A's ``send_digits``, which plays each one for
``DTMF_ON`` seconds with ``DTMF_GAP`` between digits, timed by call control.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sccp_endpoint import FakeLink, Rig, SipSide, sip_offer  # type: ignore[import-not-found]

from offhook.sccp import messages as m
from offhook.sccp.calls import DTMF_GAP, DTMF_ON, MAX_DTMF
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import DTMF_TONES, CallStateCode, DeviceTone


@pytest.fixture
def rig() -> Rig:
    return Rig()


def sip_call(rig: Rig) -> SipSide:
    """A (SCCP) calls the SIP phone, which answers: connected, media both ways."""
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2001")
    sip: SipSide = rig.sip.drivers[-1]
    assert sip.leg is not None
    rig.engine.on_connect(sip.leg, sip_offer(5000))
    rig.ack_open(rig.a, 32000)
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    return sip


def tone_messages(link: FakeLink, since: int = 0) -> list[tuple[str, int | None]]:
    """StartTone (with its tone) and StopTone sent from index ``since``."""
    out: list[tuple[str, int | None]] = []
    for msg in link.sent[since:]:
        if isinstance(msg, m.StartTone):
            out.append(("start", msg.tone))
        elif isinstance(msg, m.StopTone):
            out.append(("stop", None))
    return out


def run_timers(rig: Rig, seconds: float, step: float = 0.01) -> None:
    """Move the clock by ``seconds`` in small steps, running call control's timers."""
    for _ in range(round(seconds / step)):
        rig.clock.advance(step)
        rig.engine.handle_timer(rig.now())


def test_sip_digits_are_played_one_after_the_other(rig: Rig) -> None:
    sip = sip_call(rig)
    assert sip.leg is not None
    mark = len(rig.a.sent)
    rig.engine.on_digits(sip.leg, "5#")
    # the first digit plays at once, on the call's line and reference
    start = rig.a.last(m.StartTone)
    assert (start.tone, start.tone_direction) == (DeviceTone.DTMF_5, 0)
    assert (start.line_instance, start.call_reference) == (
        1,
        rig.a.last(m.CallState).call_reference,
    )
    assert tone_messages(rig.a, mark) == [("start", DeviceTone.DTMF_5)]
    rig.clock.advance(DTMF_ON)
    rig.engine.handle_timer(rig.now())
    assert tone_messages(rig.a, mark)[-1] == ("stop", None)
    rig.clock.advance(DTMF_GAP)
    rig.engine.handle_timer(rig.now())
    assert tone_messages(rig.a, mark)[-1] == ("start", DeviceTone.DTMF_POUND)
    run_timers(rig, 1.0)
    assert tone_messages(rig.a, mark) == [
        ("start", DeviceTone.DTMF_5),
        ("stop", None),
        ("start", DeviceTone.DTMF_POUND),
        ("stop", None),
    ]


def test_every_dtmf_digit_has_its_skinny_tone() -> None:
    # Wireshark packet-skinny.c DeviceTone: Dtmf1..Dtmf9 = 1..9, Dtmf0 = 0x0A,
    # DtmfStar 0x0E, DtmfPound 0x0F, DtmfA..DtmfD 0x10..0x13.
    expected = {**{str(d): d for d in range(1, 10)}, "0": 0x0A, "*": 0x0E, "#": 0x0F}
    expected |= {"A": 0x10, "B": 0x11, "C": 0x12, "D": 0x13}
    assert {k: int(v) for k, v in DTMF_TONES.items()} == expected


def test_keypad_of_one_phone_plays_on_the_other(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    rig.press(rig.b, m.OffHook(1, 0))
    rig.ack_open(rig.b, 30002)
    rig.ack_open(rig.a, 30001)
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED
    mark_a, mark_b = len(rig.a.sent), len(rig.b.sent)
    rig.dial(rig.b, "7")
    run_timers(rig, 0.5)
    assert tone_messages(rig.a, mark_a) == [("start", DeviceTone.DTMF_7), ("stop", None)]
    assert tone_messages(rig.b, mark_b) == []  # the phone that pressed plays its own key


def test_waiting_digits_are_bounded(rig: Rig) -> None:
    sip = sip_call(rig)
    assert sip.leg is not None
    mark = len(rig.a.sent)
    rig.engine.on_digits(sip.leg, "1" * 100)
    rig.engine.on_digits(sip.leg, "2")
    run_timers(rig, (MAX_DTMF + 5) * (DTMF_ON + DTMF_GAP + 0.02))
    played = [tone for kind, tone in tone_messages(rig.a, mark) if kind == "start"]
    # MAX_DTMF digits are taken, the rest of the burst is dropped; the first
    # already plays, so one more place is free for the next burst's 2
    assert played == [DeviceTone.DTMF_1] * MAX_DTMF + [DeviceTone.DTMF_2]


def test_a_call_that_ends_stops_playing(rig: Rig) -> None:
    sip = sip_call(rig)
    assert sip.leg is not None
    rig.engine.on_digits(sip.leg, "123")
    ref = rig.a.last(m.CallState).call_reference
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.END_CALL, 1, ref))
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK
    mark = len(rig.a.sent)
    run_timers(rig, 1.0)
    assert tone_messages(rig.a, mark) == []


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="0123456789*#ABCDabcdxyz,!", max_size=12))
def test_any_digit_string_plays_its_dtmf_digits_in_order(digits: str) -> None:
    rig = Rig()
    sip = sip_call(rig)
    assert sip.leg is not None
    mark = len(rig.a.sent)
    rig.engine.on_digits(sip.leg, digits)
    run_timers(rig, len(digits) * (DTMF_ON + DTMF_GAP + 0.02) + 0.2)
    wanted = [DTMF_TONES[d] for d in digits.upper() if d in DTMF_TONES]
    seen = tone_messages(rig.a, mark)
    assert seen == [x for tone in wanted for x in (("start", tone), ("stop", None))]
