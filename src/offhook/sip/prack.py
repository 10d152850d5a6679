"""RFC 3262 reliable provisional responses (100rel, PRACK): headers and state. Sans-IO.

Theory of operation. As the UAS of an INVITE that asks for it
(``Require: 100rel``, or ``Supported: 100rel`` when the 18x carries SDP),
offhook sends its 18x reliably: with ``Require: 100rel`` and an ``RSeq``
that starts at a random value and goes up by one (§3).
``ReliableProvisionals`` holds that side's state:

* ``offer(resp, with_sdp)`` says whether to send a response now, numbered;
  only one may be unacknowledged at a time, later ones wait in order (§3:
  "MUST NOT send a second reliable provisional response until the first is
  acknowledged"), at most a few: when more pile up the oldest waiting one,
  never sent, is dropped. A response is numbered when it goes out, so the
  RSeqs the caller sees have no gaps (§4: it ignores one out of order);
* the unacknowledged one is retransmitted at T1, 2*T1, 4*T1 ... (``interval``
  and ``on_timer``) until its PRACK or until 64*T1 have passed, when the
  INVITE is to be refused with a 5xx (``on_timer`` returns None);
* ``prack(rack, invite_cseq)`` matches a PRACK's ``RAck`` to it (no match:
  the leg answers 481) and hands back the next waiting response, if any;
* ``holds_answer`` says the 2xx must wait: an unacknowledged reliable
  provisional carried SDP (§3).

As the UAC, ``PrackTracker`` remembers, per early dialog (To tag), the
``RSeq`` of the last reliable provisional taken, so that a retransmission
(or one out of order) is neither PRACKed again nor processed (§4).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from offhook.common.errors import ParseError
from offhook.sip.abnf import DIGITS_RE, TOKEN_RE
from offhook.sip.extensions import option_tags
from offhook.sip.message import SipMessage, SipResponse

__all__ = [
    "PrackTracker",
    "RAck",
    "ReliableProvisionals",
    "is_reliable_provisional",
    "parse_rack",
    "parse_rseq",
    "wants_100rel",
]

_MAX_RSEQ = 2**32 - 1  # RFC 3262 §7.1: 1*DIGIT, 1 to 2**32-1
_MAX_EARLY_DIALOGS = 16  # forks of one INVITE we track (a bound, not a limit on calls)
_MAX_WAITING = 4  # reliable 18x queued behind an unacknowledged one; older ones are dropped


@dataclass(frozen=True, slots=True)
class RAck:
    """``RAck: response-num CSeq-num method`` (RFC 3262 §7.2)."""

    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def _number(text: str, what: str, low: int, high: int) -> int:
    if DIGITS_RE.match(text) is None or len(text) > 10 or not low <= int(text) <= high:
        raise ParseError(f"bad {what}")
    return int(text)


def parse_rseq(value: str) -> int:
    return _number(value.strip(" \t"), "RSeq", 1, _MAX_RSEQ)


def parse_rack(value: str) -> RAck:
    parts = value.split()
    if len(parts) != 3 or TOKEN_RE.match(parts[2]) is None:
        raise ParseError("bad RAck")
    rseq = _number(parts[0], "RAck response-num", 1, _MAX_RSEQ)
    cseq = _number(parts[1], "RAck CSeq-num", 0, 2**31 - 1)
    return RAck(rseq, cseq, parts[2])


def is_reliable_provisional(resp: SipResponse) -> int | None:
    """The RSeq of a reliable 101-199 (``Require: 100rel`` + ``RSeq``), else None (§4)."""
    if not 100 < resp.status < 200 or "100rel" not in option_tags(resp, "Require"):
        return None
    value = resp.headers.get("RSeq")
    if value is None:
        return None
    try:
        return parse_rseq(value)
    except ParseError:
        return None


def wants_100rel(invite: SipMessage) -> tuple[bool, bool]:
    """(required, supported): whether an INVITE requires or supports reliable 1xx."""
    if "100rel" in option_tags(invite, "Require"):
        return True, True
    return False, "100rel" in option_tags(invite, "Supported")


@dataclass(slots=True)
class _Pending:
    response: SipResponse
    with_sdp: bool
    rseq: int = 0  # given when it goes out


class ReliableProvisionals:
    """The UAS side of 100rel for one INVITE. ``t1`` is RFC 3261's T1."""

    __slots__ = ("_next", "_unacked", "_waiting", "elapsed", "interval", "t1")

    def __init__(self, first_rseq: int, t1: float) -> None:
        if not 1 <= first_rseq <= 2**31 - 1:  # §3: room to count up without overflow
            raise ValueError("first RSeq out of range")
        self._next = first_rseq
        self.t1 = t1
        self.interval = t1
        self.elapsed = 0.0
        self._unacked: _Pending | None = None
        self._waiting: deque[_Pending] = deque()

    @property
    def unacked(self) -> SipResponse | None:
        return None if self._unacked is None else self._unacked.response

    @property
    def holds_answer(self) -> bool:
        """A 2xx must wait: an unacknowledged (or waiting) reliable 18x carried SDP."""
        pending = [self._unacked, *self._waiting]
        return any(p is not None and p.with_sdp for p in pending)

    @property
    def busy(self) -> bool:
        return self._unacked is not None

    def offer(self, resp: SipResponse, with_sdp: bool) -> bool:
        """True: send ``resp`` now (numbered: RSeq and Require: 100rel); False: it waits."""
        pending = _Pending(resp, with_sdp)
        if self._unacked is not None:
            if len(self._waiting) >= _MAX_WAITING:
                self._waiting.popleft()
            self._waiting.append(pending)
            return False
        self._start(pending)
        return True

    def _start(self, pending: _Pending) -> None:
        pending.rseq = self._next
        self._next += 1
        pending.response.headers.add("Require", "100rel")
        pending.response.headers.add("RSeq", str(pending.rseq))
        self._unacked = pending
        self.interval = self.t1
        self.elapsed = 0.0

    def on_timer(self) -> SipResponse | None:
        """The retransmission interval passed: the response to send again, or
        None when 64*T1 passed without a PRACK (refuse the INVITE, §3)."""
        if self._unacked is None:
            return None
        self.elapsed += self.interval
        limit = 64 * self.t1
        if self.elapsed >= limit - 1e-9:
            return None
        # Doubling, the last wait cut short so that the give-up comes at 64*T1.
        self.interval = min(self.interval * 2, limit - self.elapsed)
        return self._unacked.response

    def prack(self, rack: RAck, invite_cseq: int) -> tuple[bool, SipResponse | None]:
        """(matched, next response to send) for a PRACK's RAck (§3)."""
        pending = self._unacked
        if (
            pending is None
            or rack.method != "INVITE"
            or rack.cseq != invite_cseq
            or rack.rseq != pending.rseq
        ):
            return False, None
        self._unacked = None
        if not self._waiting:
            return True, None
        nxt = self._waiting.popleft()
        self._start(nxt)
        return True, nxt.response

    def drop_waiting(self) -> None:
        """The call is answered: 18x not sent yet never will be. The one sent
        stays, so that its PRACK still matches (and a 2xx may wait for it)."""
        self._waiting.clear()


class PrackTracker:
    """The UAC side: the last RSeq taken from each early dialog (§4)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def take(self, to_tag: str, rseq: int) -> bool:
        """True when this reliable provisional is new and in order: PRACK and process it."""
        last = self._last.get(to_tag)
        if last is None:
            if len(self._last) >= _MAX_EARLY_DIALOGS:
                return False
            self._last[to_tag] = rseq
            return True
        if rseq != last + 1:
            return False  # a retransmission, or one out of order (§4)
        self._last[to_tag] = rseq
        return True
