"""DTMF digits in SIP INFO bodies (``application/dtmf-relay``, ``application/dtmf``). Sans-IO.

Theory of operation. Phones that do not send digits as RTP events
(RFC 4733) send each key press as an in-dialog INFO (RFC 6086 legacy use,
no Info-Package): ``application/dtmf-relay`` with ``Signal=5`` and
``Duration=160`` lines (Cisco's format), or ``application/dtmf`` whose body
is the digit. ``parse_info_digit`` returns the digit (``0-9 * # A-D``;
the event numbers 10-15 of RFC 4733 §3.2 stand for ``* # A B C D``), None
for a body that is not DTMF (a flash, an unknown type: the INFO is just
answered 200), and raises ``ParseError`` for a DTMF body that is broken.

Towards a device, ``DigitQueue`` keeps the digits core relays in order
and lets one INFO be outstanding at a time: ``push`` adds digits,
``next_digit`` hands out the next one when nothing is outstanding,
``done`` marks the outstanding INFO answered. ``relay_body`` writes the
``application/dtmf-relay`` body for one digit.
"""

from __future__ import annotations

from collections import deque

from offhook.common.errors import ParseError

__all__ = [
    "DTMF",
    "DTMF_RELAY",
    "DigitQueue",
    "parse_info_digit",
    "relay_body",
]

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
DIGITS = frozenset("0123456789*#ABCD")
DEFAULT_DURATION = 160  # milliseconds, what phones send for a key press
_EVENTS = {10: "*", 11: "#", 12: "A", 13: "B", 14: "C", 15: "D"}  # RFC 4733 §3.2
_FLASH = 16
_MAX_BODY = 1024
_MAX_QUEUE = 64  # digits waiting for a device; more are dropped (a bound on memory)


def _signal(text: str) -> str | None:
    value = text.strip(" \t").upper()
    if len(value) == 1 and value in DIGITS:
        return value
    if value.isdigit() and len(value) <= 3:
        number = int(value)
        if number in _EVENTS:
            return _EVENTS[number]
        if number == _FLASH:
            return None  # a hook flash: not a digit
    raise ParseError("bad DTMF signal")


def parse_info_digit(content_type: str | None, body: bytes) -> str | None:
    """The digit an INFO signals, None when it is not DTMF; ParseError when DTMF but broken."""
    if content_type not in (DTMF_RELAY, DTMF):
        return None
    if len(body) > _MAX_BODY:
        raise ParseError("DTMF body too large")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ParseError("DTMF body is not ASCII") from exc
    if content_type == DTMF:
        return _signal(text.strip())
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq and name.strip(" \t").lower() == "signal":
            return _signal(value)
    raise ParseError("dtmf-relay without Signal")


def relay_body(digit: str, duration: int = DEFAULT_DURATION) -> bytes:
    """An ``application/dtmf-relay`` body for one digit."""
    if digit not in DIGITS:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return f"Signal={digit}\r\nDuration={duration}\r\n".encode("ascii")


class DigitQueue:
    """Digits waiting to be sent to a device, one INFO outstanding at a time."""

    __slots__ = ("_queue", "outstanding")

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self.outstanding = False

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, digits: str) -> int:
        """Queue the DTMF digits of ``digits`` (others skipped); returns how many were taken."""
        taken = 0
        for ch in digits.upper():
            if ch in DIGITS and len(self._queue) < _MAX_QUEUE:
                self._queue.append(ch)
                taken += 1
        return taken

    def next_digit(self) -> str | None:
        """The digit to send now, or None (one is outstanding, or none waits)."""
        if self.outstanding or not self._queue:
            return None
        self.outstanding = True
        return self._queue.popleft()

    def done(self) -> None:
        """The outstanding INFO got its final response (or timed out)."""
        self.outstanding = False

    def clear(self) -> None:
        self._queue.clear()
        self.outstanding = False
