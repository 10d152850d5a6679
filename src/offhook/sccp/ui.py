"""What a Cisco phone shows and plays: call states, tones, lamps, ringers, prompts.

The wire codes of the call-presentation messages (CallState, StartTone,
SetLamp, SetRinger, SetSpeakerMode, SetMicroMode, DisplayPromptStatus,
CallInfo's redirect reasons) and of the phone's inputs (Stimulus,
KeypadButton), as Wireshark's Skinny dissector and the CallManager
captures in ``vectors/sccp`` show them. Prompts are CallManager's
localised labels: ``\\x80`` followed by the label's index, which the phone
looks up in its own language table (``\\x80\\x17`` + "1003" shows
"From 1003"). Sans-IO and protocol-only: no core types here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType


class CallStateCode(IntEnum):
    """CallState.call_state."""

    OFF_HOOK = 1
    ON_HOOK = 2
    RING_OUT = 3
    RING_IN = 4
    CONNECTED = 5
    BUSY = 6
    CONGESTION = 7
    HOLD = 8
    CALL_WAITING = 9
    CALL_TRANSFER = 10
    CALL_PARK = 11
    PROCEED = 12
    REMOTE_MULTILINE = 13
    INVALID_NUMBER = 14


class DeviceTone(IntEnum):
    """StartTone.tone (the tones CallManager asks phones to play locally).

    The DTMF values are Wireshark packet-skinny.c ``DeviceTone``: 1-9 for the
    digits 1-9, 0x0A for 0, 0x0E ``*``, 0x0F ``#``, 0x10-0x13 A-D.
    """

    SILENCE = 0x00
    DTMF_1 = 0x01
    DTMF_2 = 0x02
    DTMF_3 = 0x03
    DTMF_4 = 0x04
    DTMF_5 = 0x05
    DTMF_6 = 0x06
    DTMF_7 = 0x07
    DTMF_8 = 0x08
    DTMF_9 = 0x09
    DTMF_0 = 0x0A
    DTMF_STAR = 0x0E
    DTMF_POUND = 0x0F
    DTMF_A = 0x10
    DTMF_B = 0x11
    DTMF_C = 0x12
    DTMF_D = 0x13
    INSIDE_DIAL = 0x21
    OUTSIDE_DIAL = 0x22
    LINE_BUSY = 0x23
    ALERTING = 0x24  # ringback
    REORDER = 0x25
    CALL_WAITING = 0x2D


DTMF_TONES: Mapping[str, DeviceTone] = MappingProxyType(
    {
        **{str(d): DeviceTone(d) for d in range(1, 10)},
        "0": DeviceTone.DTMF_0,
        "*": DeviceTone.DTMF_STAR,
        "#": DeviceTone.DTMF_POUND,
        "A": DeviceTone.DTMF_A,
        "B": DeviceTone.DTMF_B,
        "C": DeviceTone.DTMF_C,
        "D": DeviceTone.DTMF_D,
    }
)
"""The StartTone tone that plays a DTMF digit (``0-9*#A-D``) on the phone."""


class RingMode(IntEnum):
    """SetRinger.ring_mode."""

    OFF = 1
    INSIDE = 2
    OUTSIDE = 3
    FEATURE = 4


class RingDuration(IntEnum):
    """SetRinger.ring_duration."""

    NORMAL = 1
    SINGLE = 2


class LampMode(IntEnum):
    """SetLamp.lamp_mode."""

    OFF = 1
    ON = 2
    WINK = 3  # held call
    FLASH = 4
    BLINK = 5  # ringing


class SpeakerMode(IntEnum):
    """SetSpeakerMode.mode."""

    ON = 1
    OFF = 2


class MicroMode(IntEnum):
    """SetMicroMode.mode (packet-skinny.c ``MicrophoneMode``)."""

    ON = 1
    OFF = 2


class Stimulus(IntEnum):
    """Stimulus.stimulus (a feature or line button pressed) and SetLamp.stimulus."""

    REDIAL = 0x01
    SPEED_DIAL = 0x02
    HOLD = 0x03
    TRANSFER = 0x04
    FORWARD_ALL = 0x05
    FORWARD_BUSY = 0x06
    FORWARD_NO_ANSWER = 0x07
    DISPLAY = 0x08
    LINE = 0x09
    VOICEMAIL = 0x0F
    AUTO_ANSWER = 0x11
    CONFERENCE = 0x7D
    CALL_PARK = 0x7E
    CALL_PICKUP = 0x7F


class RedirectCode(IntEnum):
    """CallInfo's redirect reasons (``original_cdpn_redirect_reason``,
    ``last_redirecting_reason``): CallManager's redirect reason codes, as its
    Call Detail Records Administration Guide lists them ("Redirect Reason
    Codes": Q.931 values first, then CallManager's own). Wireshark's Skinny
    dissector shows them as plain numbers."""

    UNKNOWN = 0
    FORWARD_BUSY = 1
    FORWARD_NO_ANSWER = 2
    TRANSFER = 4
    PICKUP = 5
    PARK = 7
    FORWARD_ALL = 15
    DEFLECTION = 18
    FORWARD_UNREGISTERED = 178


class Prompt(IntEnum):
    """CallManager's display label indexes (sent as ``\\x80`` + chr(index))."""

    REDIAL = 0x01
    NEW_CALL = 0x02
    HOLD = 0x03
    TRANSFER = 0x04
    OFF_HOOK = 0x14
    ON_HOOK = 0x15
    RING_OUT = 0x16
    FROM = 0x17
    CONNECTED = 0x18
    BUSY = 0x19
    LINE_IN_USE = 0x1A
    CALL_WAITING = 0x1B
    CALL_PROCEED = 0x1E
    ENTER_NUMBER = 0x20
    TEMP_FAIL = 0x23
    UNKNOWN_NUMBER = 0x38
    BARGE = 0x43


def prompt(label: Prompt, text: str = "") -> str:
    """A DisplayPromptStatus text: a localised label, then ``text`` (e.g. a number)."""
    return f"\x80{chr(label)}{text}"


# KeypadButton.button: 0-9 are the digits; 14 and 15 are * and # (0x0E, 0x0F).
_KEYPAD = {**{i: str(i) for i in range(10)}, 0x0E: "*", 0x0F: "#"}


def keypad_digit(button: int) -> str | None:
    """The dialed character of a KeypadButton, or None for a button that is not one."""
    return _KEYPAD.get(button)
