"""Overload control: admit or shed new calls from the node's own load signals (sans-IO).

Theory of operation. RFC 6357 describes how a SIP server collapses under
overload: it spends its time on work it will not finish (calls that time out
upstream, retransmissions of requests it is too slow to answer), so that its
goodput falls towards zero as the offered load grows. The cure is to refuse
new work early and cheaply, before anything expensive is done for it, and to
keep the work already accepted (established calls, registrations) going.

``OverloadControl`` is that decision, with no I/O: the node samples its load
(``observe(now, sample)``: the event loop's lag, the loop thread's share of a
CPU core, the pending new calls, or a test's injected figure) and asks
``admit(kind)`` for each new call, registration or subscription before
authenticating or routing it. The policy is a small table of signals, each
with two thresholds (``Threshold``): at or above ``high`` the node is
overloaded, below ``low`` (every signal) it is calm; in between it keeps
what it does (hysteresis).

Every ``window`` seconds the mean of each signal over the window gives the
load, the largest ratio of a signal to its ``high`` threshold (1.0: at the
threshold). The admitted share of new work (``admit_ratio``) follows a
loss-based throttle (RFC 7339's "loss" algorithm, run by the server on
itself), multiplicative decrease and additive increase:

======================  =============================================  ==========
window's load           admit_ratio                                    mode
======================  =============================================  ==========
>= 1 (overloaded)       x min(decrease, 1 / load) but at most halved,   OVERLOADED
                        floor ``min_admit`` (from NORMAL: only the
                        ``sustain``-th such window in a row)
some signal >= its low  + increase / 4, up to 1.0 (the hysteresis      unchanged
                        band: still overloaded, probing)
all below their low     + increase; back at 1.0                        NORMAL
======================  =============================================  ==========

so the node sheds just enough to bring its load back under the thresholds
(a node at twice its capacity ends up shedding about half), and recovers by itself once
the load falls: it needs no operator. ``admit`` spreads the refusals evenly
(a credit counter, no randomness: the same sequence of calls always gets the
same answers): with ``admit_ratio`` 0.25, one new call in four is admitted.
A single sample ``URGENT`` times over a threshold, in NORMAL, decides at once
(the window closed early, no ``sustain``): the node starts shedding within one
sampling interval of a flood instead of a second later.

What is never asked about (the protocol adapters decide): requests inside a
dialog, responses, ACK/CANCEL, OPTIONS, a refresh of a live registration and
an INVITE with Replaces (it takes over an established call). Numbers in
``exempt`` (emergency numbers) are always admitted. A refused SIP request is
answered 503 with ``retry_after()`` seconds (longer as the node sheds more),
an SCCP phone gets reorder.

``memory`` (``CallMemory``) remembers, while the node sheds, what was decided
about each new call by its key (SIP: the Call-ID), for ``MEMORY_TTL``
seconds and at most ``MEMORY_SIZE`` calls: a call admitted once is not asked
about again (the INVITE that answers a digest challenge comes back with the
same Call-ID: shedding it would throw away the challenge already paid for,
and admitting a share r of each of a call's two INVITEs completes only r^2
of them), and a call shed once gets the same answer for a retransmission
(the stored 503, resent without asking or building it again). ``admit``'s
own decisions are stored, not an exempt number's; the SIP endpoint also
stores every INVITE it challenges, overloaded or not, so that a call
challenged just before the overload began is not shed when it answers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "KINDS",
    "MEMORY_SIZE",
    "MEMORY_TTL",
    "SIGNALS",
    "URGENT",
    "CallMemory",
    "Mode",
    "OverloadControl",
    "OverloadPolicy",
    "Threshold",
]

SIGNALS = ("cpu", "lag", "queue", "pending", "injected")
"""The load signals a node may report: the loop thread's share of one CPU core
(0..1), the event loop's lag (seconds), the fullest receive buffer of its UDP
sockets (0..1: datagrams waiting to be read), pending new calls, and a test's
injected load (in units of the threshold: 1.0 is overloaded)."""
KINDS = ("invite", "register", "subscribe", "sccp")
"""What ``admit`` is asked about (shed counts are kept per kind; others count as ``other``)."""
MAX_CUT = 0.5
"""A window cuts the admitted share by half at most: a signal far over its threshold
(a backlog that built up over several windows) must not shut the door for good."""
URGENT = 4.0
"""A sample of a signal at this many times its ``high`` threshold (a receive queue
filling fast, the loop 0.4 s late) overloads a node at once: it closes the window
early and is not taken for a spike (``sustain``). At 4x its capacity a node that
waited the usual two windows would have admitted a second of calls it needs four
to do, and the backlog's delay is what makes clients retransmit and give up."""
RATIO_FLOOR = 0.01
"""An admit ratio below this (and above ``min_admit``) is ``min_admit``: shedding
everything but one call in a thousand is shedding everything."""


MEMORY_SIZE = 4096
"""Calls ``CallMemory`` remembers at most (the oldest are forgotten first): at 1,000
new calls a second, 4 s of them, far longer than a challenge takes to be answered;
about 1 MB when full (a flood of new INVITEs fills it: it must stay small)."""
MEMORY_TTL = 32.0
"""Seconds a decision is remembered: RFC 3261 Timer B (64 x T1), the longest a client
retransmits an INVITE."""


class CallMemory:
    """Recent overload decisions by call key: admitted, or shed with the answer sent
    (sans-IO, bounded by size and age). Counts what it saved."""

    def __init__(self, size: int = MEMORY_SIZE, ttl: float = MEMORY_TTL) -> None:
        self.size = size
        self.ttl = ttl
        self._calls: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self.followed = 0  # later requests of an admitted call admitted without asking
        self.resent = 0  # retransmissions of a shed request answered from memory
        self.absorbed = 0  # ACKs of a shed request's answer, dropped unparsed (sip.shed_peek)

    def __len__(self) -> int:
        return len(self._calls)

    def _put(self, key: Hashable, value: object, now: float) -> None:
        calls = self._calls
        calls[key] = (now + self.ttl, value)
        calls.move_to_end(key)
        while len(calls) > self.size:
            calls.popitem(last=False)
        # Forget what expired, oldest first (amortised: what each call added).
        for _ in range(2):
            if not calls:
                break
            first = next(iter(calls))
            if calls[first][0] > now:
                break
            del calls[first]

    def _get(self, key: Hashable, now: float) -> object | None:
        entry = self._calls.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._calls[key]
            return None
        return entry[1]

    def admitted(self, key: Hashable, now: float) -> None:
        """``key``'s call was admitted: its later requests are too (``follows``)."""
        self._put(key, _ADMITTED, now)

    def admitted_ahead(self, key: Hashable, now: float) -> None:
        """``key``'s call was admitted by a look before its full parse
        (``sip.shed_peek``): the parsed path's ``follows`` for it is not counted."""
        self._put(key, _AHEAD, now)

    def follows(self, key: Hashable, now: float) -> bool:
        """Is ``key`` a call admitted before? Counted; the entry stays (a challenge
        can come again, for another hop's credentials)."""
        value = self._get(key, now)
        if value is _ADMITTED:
            self.followed += 1
            return True
        if value is _AHEAD:  # the same request, admitted before its full parse
            self._calls[key] = (self._calls[key][0], _ADMITTED)
            return True
        return False

    def known(self, key: Hashable, now: float) -> bool:
        """Is ``key`` a call admitted before? Not counted (``follows`` counts)."""
        value = self._get(key, now)
        return value is _ADMITTED or value is _AHEAD

    def shed(self, key: Hashable, answer: object, now: float) -> None:
        """``key``'s request was shed with ``answer`` (what to resend to a retransmission)."""
        self._put(key, answer, now)

    def answer(self, key: Hashable, now: float) -> object | None:
        """The answer a shed request got (None: not shed, or forgotten)."""
        value = self._get(key, now)
        return None if value is _ADMITTED or value is _AHEAD else value

    def forget(self) -> None:
        self._calls.clear()

    def status(self) -> dict[str, int]:
        return {
            "remembered": len(self._calls),
            "followed": self.followed,
            "resent": self.resent,
            "absorbed": self.absorbed,
        }


_ADMITTED = object()
_AHEAD = object()  # admitted before the full parse; the parsed path follows it uncounted


class Mode(Enum):
    NORMAL = "normal"
    OVERLOADED = "overloaded"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One signal's thresholds: overloaded at ``high`` and above, calm below ``low``.

    ``high`` 0 leaves the signal out.
    """

    high: float
    low: float

    def __post_init__(self) -> None:
        if not (0 <= self.low <= self.high) or not math.isfinite(self.high):
            raise ValueError(f"thresholds need 0 <= low <= high: {self.low}, {self.high}")


def _default_thresholds() -> dict[str, Threshold]:
    return {
        "cpu": Threshold(0.9, 0.7),
        "lag": Threshold(0.1, 0.02),
        "injected": Threshold(1.0, 0.5),
    }


@dataclass(frozen=True)
class OverloadPolicy:
    """The signals' thresholds and the throttle's steps (see the module docstring)."""

    thresholds: Mapping[str, Threshold] = field(default_factory=_default_thresholds)
    window: float = 0.5  # seconds of samples per decision
    decrease: float = 0.75  # the admit ratio is multiplied by at most this per overloaded window
    increase: float = 0.1  # ... and regains this much per calm window
    min_admit: float = 0.0  # the admit ratio never goes below this
    retry_after_min: int = 1  # Retry-After (seconds) when shedding little ...
    retry_after_max: int = 8  # ... and when shedding everything
    exempt: frozenset[str] = frozenset()  # numbers always admitted (emergency)
    sustain: int = 2  # overloaded windows in a row before shedding starts (not for a spike)

    def __post_init__(self) -> None:
        if not 0 < self.decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        if not 0 < self.increase <= 1:
            raise ValueError("increase must be in (0, 1]")
        if not 0 <= self.min_admit <= 1:
            raise ValueError("min_admit must be in [0, 1]")
        if self.window <= 0:
            raise ValueError("window must be positive")
        if not 0 <= self.retry_after_min <= self.retry_after_max:
            raise ValueError("retry_after_min must be <= retry_after_max")
        if self.sustain < 1:
            raise ValueError("sustain must be at least 1")


class OverloadControl:
    """Admit or shed new work; the node feeds it samples of its load (sans-IO)."""

    def __init__(self, policy: OverloadPolicy, now: float) -> None:
        self.policy = policy
        self.mode = Mode.NORMAL
        self.admit_ratio = 1.0
        self.load = 0.0  # the last window's load (1.0: at a high threshold)
        self.signals: dict[str, float] = {}  # the last window's mean of each signal
        self.shed: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.admitted: dict[str, int] = dict.fromkeys(KINDS, 0)  # while overloaded
        self.unparsed = 0  # sheds and resends decided before the full parse (sip.shed_peek)
        self.episodes = 0  # times the node became overloaded
        self.since: float | None = None  # when the current episode began
        self.changes = 0  # times admit_ratio changed (RFC 7339 oc-seq material)
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._window_start = now
        self._credit = 0.0
        self._over = 0  # overloaded windows in a row
        self.memory = CallMemory()

    @property
    def overloaded(self) -> bool:
        return self.mode is Mode.OVERLOADED

    def set_policy(self, policy: OverloadPolicy, now: float) -> None:
        """New thresholds (a reload): the window starts again; the mode and the share
        admitted stay, so a node in overload goes on shedding until calm."""
        self.policy = policy
        self._sums.clear()
        self._counts.clear()
        self._window_start = now

    def reset(self, now: float) -> None:
        """Back to normal, admitting everything (overload control turned off);
        the counters stay."""
        self.mode = Mode.NORMAL
        self.admit_ratio = 1.0
        self.load = 0.0
        self.signals = {}
        self.since = None
        self._credit = 0.0
        self._over = 0
        self.set_policy(self.policy, now)

    # --- load in --------------------------------------------------------------
    def observe(self, now: float, sample: Mapping[str, float]) -> bool:
        """Add one sample of some signals; True when it closed a window (a decision)."""
        thresholds = self.policy.thresholds
        urgent = False
        for name, value in sample.items():
            threshold = thresholds.get(name)
            if threshold is not None and math.isfinite(value):
                self._sums[name] = self._sums.get(name, 0.0) + max(0.0, value)
                self._counts[name] = self._counts.get(name, 0) + 1
                urgent = urgent or 0 < threshold.high * URGENT <= value
        if now - self._window_start < self.policy.window:
            if now < self._window_start:  # a clock that went back: start over
                self._window_start = now
            if not (urgent and self.mode is Mode.NORMAL):
                return False
        self._decide(now, urgent)
        return True

    def _decide(self, now: float, urgent: bool = False) -> None:
        policy = self.policy
        means = {name: self._sums[name] / count for name, count in self._counts.items() if count}
        self._sums.clear()
        self._counts.clear()
        self._window_start = now
        self.signals = means
        load = 0.0
        calm = True
        for name, value in means.items():
            threshold = policy.thresholds[name]
            if threshold.high <= 0:
                continue
            load = max(load, value / threshold.high)
            if value >= threshold.low:
                calm = False
        self.load = load
        ratio = self.admit_ratio
        self._over = self._over + 1 if load >= 1.0 else 0
        if load >= 1.0 and self.mode is Mode.NORMAL and self._over < policy.sustain and not urgent:
            return  # a spike, not (yet) overload
        if load >= 1.0:
            ratio *= max(MAX_CUT, min(policy.decrease, 1.0 / load))
            if ratio < max(policy.min_admit, RATIO_FLOOR):
                ratio = policy.min_admit
            if self.mode is Mode.NORMAL:
                self.mode = Mode.OVERLOADED
                self.episodes += 1
                self.since = now
            self._credit = 0.0
        elif self.mode is Mode.OVERLOADED:
            # Calm: a full step back; in the band between the thresholds, a quarter
            # step (probing for the load the node can take), never out of overload.
            ratio = ratio + (policy.increase if calm else policy.increase / 4)
            if ratio >= 1.0 - 1e-9:  # ten steps of 0.1 make 0.9999999999999999
                ratio = 1.0
            if ratio == 1.0 and calm:
                self.mode = Mode.NORMAL
                self.since = None
                self._credit = 0.0
        if ratio != self.admit_ratio:
            self.admit_ratio = ratio
            self.changes += 1

    # --- decisions ------------------------------------------------------------
    def admit(self, kind: str, number: str = "") -> bool:
        """May a new ``kind`` (``KINDS``) go on? Refusals are spread evenly and counted.

        ``number``: the number a new call is for; an ``exempt`` one is always admitted.
        """
        if self.mode is Mode.NORMAL:
            return True
        key = kind if kind in self.shed else "other"
        if number and number in self.policy.exempt:
            self.admitted[key] = self.admitted.get(key, 0) + 1
            return True
        self._credit += self.admit_ratio
        if self._credit >= 1.0:
            self._credit -= 1.0
            self.admitted[key] = self.admitted.get(key, 0) + 1
            return True
        self.shed[key] = self.shed.get(key, 0) + 1
        return False

    def retry_after(self) -> int:
        """Seconds a refused peer should wait: longer the more the node sheds."""
        policy = self.policy
        span = policy.retry_after_max - policy.retry_after_min
        return policy.retry_after_min + round(span * (1.0 - self.admit_ratio))

    def reduction(self) -> int:
        """The share of new work refused now, in percent (RFC 7339 ``oc`` value)."""
        return 0 if self.mode is Mode.NORMAL else round(100 * (1.0 - self.admit_ratio))

    def status(self, now: float) -> dict[str, Any]:
        """For ``offhook status`` and metrics."""
        return {
            "state": self.mode.value,
            "admit_ratio": round(self.admit_ratio, 4),
            "load": round(self.load, 4),
            "signals": {name: round(value, 6) for name, value in sorted(self.signals.items())},
            "retry_after": self.retry_after() if self.overloaded else 0,
            "episodes": self.episodes,
            "overloaded_for": round(now - self.since, 3) if self.since is not None else 0.0,
            "shed": dict(self.shed),
            "admitted_while_overloaded": dict(self.admitted),
            "shed_unparsed": self.unparsed,
            "memory": self.memory.status(),
        }
