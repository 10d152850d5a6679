"""SCCP button templates per phone model and the softkey template/sets (sans-IO data).

A phone asks for its button template (ButtonTemplateReq) and its softkeys
(SoftKeyTemplateReq, SoftKeySetReq) while registering. The button definitions
and softkey events are the values of Wireshark's Skinny dissector
(packet-skinny.c ``ButtonType`` and ``SoftKeyEvent``); the softkey sets follow
what CallManager 3.x/4.x sends (see tests/vectors/sccp/cucm_frames.json,
``cm_cap_assets/43``). All tables here are immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType

from offhook.sccp.arrays import SoftKeySet


class ButtonType(IntEnum):
    """Button definitions of ButtonTemplate (packet-skinny.c ``ButtonType``)."""

    SPEED_DIAL = 0x02
    LINE = 0x09
    UNDEFINED = 0xFF


class SoftKey(IntEnum):
    """Softkey events (packet-skinny.c ``SoftKeyEvent``)."""

    REDIAL = 1
    NEW_CALL = 2
    HOLD = 3
    TRANSFER = 4
    CFWD_ALL = 5
    CFWD_BUSY = 6
    CFWD_NO_ANSWER = 7
    BACKSPACE = 8
    END_CALL = 9
    RESUME = 10
    ANSWER = 11
    INFO = 12
    CONFERENCE = 13
    PARK = 14
    JOIN = 15
    MEET_ME = 16
    PICKUP = 17
    GROUP_PICKUP = 18
    # Later softkeys carry the index of their label (packet-skinny.c
    # ``SoftKeyEvent``/``DisplayLabels_200``: 0x3A Voicemail, 0x3F DND, 0x43
    # Barge, 0x51 cBarge, 0x5C HLog).
    MESSAGES = 0x3A
    DND = 0x3F
    BARGE = 0x43
    C_BARGE = 0x51
    HLOG = 0x5C


class KeySet(IntEnum):
    """Softkey set index per call state (packet-skinny.c ``SoftKeySet``)."""

    ON_HOOK = 0
    CONNECTED = 1
    ON_HOLD = 2
    RING_IN = 3
    OFF_HOOK = 4
    CONNECTED_TRANSFER = 5
    DIGITS_FOLLOWING = 6
    CONNECTED_CONFERENCE = 7
    RING_OUT = 8
    OFF_HOOK_FEATURES = 9
    IN_USE_HINT = 10  # another appearance of the line is in a call (remote in use)


MODEL_BUTTONS: Mapping[str, int] = MappingProxyType(
    {"7912": 1, "7940": 2, "7941": 2, "7960": 6, "7961": 6, "7970": 8, "7971": 8}
)
"""Programmable line/feature buttons per phone model."""

BLF_MODELS = frozenset({"7941", "7961", "7970", "7971"})
"""Models whose speed dials can be busy lamp field speed dials (the 7940/7960 cannot)."""

# (label, event) in template order; the label is what the phone shows.
SOFT_KEY_TEMPLATE: tuple[tuple[str, int], ...] = (
    ("Redial", SoftKey.REDIAL),
    ("NewCall", SoftKey.NEW_CALL),
    ("Hold", SoftKey.HOLD),
    ("Trnsfer", SoftKey.TRANSFER),
    ("CFwdAll", SoftKey.CFWD_ALL),
    ("CFwdBusy", SoftKey.CFWD_BUSY),
    ("CFwdNoAnswer", SoftKey.CFWD_NO_ANSWER),
    ("<<", SoftKey.BACKSPACE),
    ("EndCall", SoftKey.END_CALL),
    ("Resume", SoftKey.RESUME),
    ("Answer", SoftKey.ANSWER),
    ("Info", SoftKey.INFO),
    ("Confrn", SoftKey.CONFERENCE),
    ("Park", SoftKey.PARK),
    ("Join", SoftKey.JOIN),
    ("MeetMe", SoftKey.MEET_ME),
    ("PickUp", SoftKey.PICKUP),
    ("GPickUp", SoftKey.GROUP_PICKUP),
    ("Messages", SoftKey.MESSAGES),
    ("DND", SoftKey.DND),
    ("HLog", SoftKey.HLOG),
    ("Barge", SoftKey.BARGE),
    ("cBarge", SoftKey.C_BARGE),
)

_SET_KEYS: tuple[tuple[KeySet, tuple[SoftKey, ...]], ...] = (
    (
        KeySet.ON_HOOK,
        (
            SoftKey.REDIAL,
            SoftKey.NEW_CALL,
            SoftKey.CFWD_ALL,
            SoftKey.PICKUP,
            SoftKey.GROUP_PICKUP,
            SoftKey.MESSAGES,
            SoftKey.DND,
            SoftKey.HLOG,
        ),
    ),
    (
        KeySet.CONNECTED,
        (
            SoftKey.HOLD,
            SoftKey.END_CALL,
            SoftKey.TRANSFER,
            SoftKey.CONFERENCE,
            SoftKey.JOIN,
            SoftKey.PARK,
        ),
    ),
    (KeySet.ON_HOLD, (SoftKey.RESUME, SoftKey.NEW_CALL, SoftKey.END_CALL)),
    (KeySet.RING_IN, (SoftKey.ANSWER, SoftKey.END_CALL)),
    (
        KeySet.OFF_HOOK,
        (
            SoftKey.REDIAL,
            SoftKey.END_CALL,
            SoftKey.CFWD_ALL,
            SoftKey.PICKUP,
            SoftKey.GROUP_PICKUP,
            SoftKey.MESSAGES,
        ),
    ),
    (KeySet.CONNECTED_TRANSFER, (SoftKey.END_CALL, SoftKey.TRANSFER)),
    (KeySet.DIGITS_FOLLOWING, (SoftKey.BACKSPACE, SoftKey.END_CALL)),
    (KeySet.CONNECTED_CONFERENCE, (SoftKey.END_CALL, SoftKey.CONFERENCE)),
    (KeySet.RING_OUT, (SoftKey.END_CALL,)),
    (KeySet.OFF_HOOK_FEATURES, (SoftKey.REDIAL, SoftKey.END_CALL)),
    (KeySet.IN_USE_HINT, (SoftKey.BARGE, SoftKey.C_BARGE, SoftKey.NEW_CALL)),
)


def _soft_key_set(keys: tuple[SoftKey, ...]) -> SoftKeySet:
    # Template index is the 1-based position in SOFT_KEY_TEMPLATE; info index is
    # 300 + event, as CallManager sends it.
    position = {event: i + 1 for i, (_, event) in enumerate(SOFT_KEY_TEMPLATE)}
    return SoftKeySet(tuple(position[k] for k in keys), tuple(300 + int(k) for k in keys))


SOFT_KEY_SETS: tuple[SoftKeySet, ...] = tuple(_soft_key_set(keys) for _, keys in _SET_KEYS)
"""Softkey sets in KeySet order (index = KeySet value)."""


def button_count(model: str, lines: int, speed_dials: int) -> int:
    """Buttons of ``model``; an unknown model gets one per line and speed dial."""
    return MODEL_BUTTONS.get(model, max(1, lines + speed_dials))


def button_template(model: str, lines: int, speed_dials: int) -> tuple[tuple[int, int], ...]:
    """(instance, definition) per button: lines first, then speed dials.

    Buttons left over are further speed-dial slots, as CallManager's default
    templates have them (the 7960's is 2 lines + 4 speed dials).
    """
    count = button_count(model, lines, speed_dials)
    used_lines = min(lines, count)
    buttons = [(i + 1, int(ButtonType.LINE)) for i in range(max(1, used_lines))][:count]
    buttons += [(i + 1, int(ButtonType.SPEED_DIAL)) for i in range(count - len(buttons))]
    return tuple(buttons)
