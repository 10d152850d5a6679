"""Overlap dialing: digits arrive one at a time, with the inter-digit timer T302.

Theory of operation. A phone that sends digits one by one (SCCP keypad,
MGCP lines, SIP digit-by-digit) feeds a ``DigitCollector``. After each digit
the dial plan says one of four things (``DialPlan.overlap``):

=================  ========================================  ==============
state              meaning                                    collector
=================  ========================================  ==============
need_more          only longer numbers can match              wait (T302)
route_on_timeout   a pattern matches, a longer one could too  wait (T302)
route_now          urgent match, or nothing longer can match  ROUTE
no_match           nothing can match                          REORDER
=================  ========================================  ==============

A directory number and a meet-me conference number are complete matches
like any pattern: dialed in full they route at once, or when T302 expires if
a longer pattern could still match. When T302 expires (ITU-T Q.931 §9.1
T302, default 15 s) the best complete match routes (``route_on_timeout`` ->
ROUTE); a number that is still only a prefix is incomplete (REORDER, cause
28). Feature codes (``codes``, dialled as they are, and ``number_codes``,
followed by a number analysed like any other) are complete numbers too: a
code routes at once unless a longer code could follow, and a code's number
routes when the dial plan says it is complete. Sans-IO: time arrives as ``now``;
the owner arms one timer from ``next_timer()`` and calls ``handle_timer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from offhook.core.dialplan.router import DialPlan, OverlapState

DEFAULT_T302 = 15.0
MAX_DIGITS = 48
DIALABLE = frozenset("0123456789*#+")


class Verdict(StrEnum):
    COLLECTING = "collecting"  # keep collecting digits
    ROUTE = "route"  # route ``digits`` now (en bloc analysis from here on)
    REORDER = "reorder"  # nothing can match: reorder tone, release with ``cause``


INCOMPLETE_CAUSE = 28  # Q.850 invalid number format (address incomplete)
UNALLOCATED_CAUSE = 1


class DigitCollector:
    """Collects one call's dialed digits against a dial plan and a CSS."""

    def __init__(
        self,
        plan: DialPlan,
        css: str | Sequence[str],
        t302: float = DEFAULT_T302,
        *,
        codes: Iterable[str] = (),
        number_codes: Iterable[str] = (),
    ) -> None:
        self.plan = plan
        self.css = css
        self.t302 = t302
        self.codes = frozenset(codes)  # feature codes dialled as they are (``*97``)
        self.number_codes = frozenset(number_codes)  # codes a number follows (``*21``)
        self.digits = ""
        self.verdict = Verdict.COLLECTING
        self.cause = 0
        self._state = OverlapState.NEED_MORE
        self._deadline: float | None = None

    def start(self, now: float) -> None:
        """Off-hook, dial tone: T302 runs from here for the first digit too."""
        self._deadline = now + self.t302

    def add(self, digits: str, now: float) -> Verdict:
        """One or more digits were dialed."""
        if self.verdict is not Verdict.COLLECTING:
            return self.verdict
        for digit in digits:
            if digit not in DIALABLE or len(self.digits) >= MAX_DIGITS:
                return self._finish(Verdict.REORDER, UNALLOCATED_CAUSE)
            self.digits += digit
            self._state = self._analyse(self.digits)
            if self._state is OverlapState.ROUTE_NOW:
                return self._finish(Verdict.ROUTE)
            if self._state is OverlapState.NO_MATCH:
                return self._finish(Verdict.REORDER, UNALLOCATED_CAUSE)
        self._deadline = now + self.t302
        return self.verdict

    def _analyse(self, digits: str) -> OverlapState:
        """The dial plan's overlap state, with the feature codes taken into account."""
        for code in self.number_codes:
            if digits.startswith(code) and len(digits) > len(code):
                return self.plan.overlap(self.css, digits[len(code) :])
        if digits in self.number_codes:
            return OverlapState.NEED_MORE  # its number follows
        state = self.plan.overlap(self.css, digits)
        everything = self.codes | self.number_codes
        longer = any(len(c) > len(digits) and c.startswith(digits) for c in everything)
        if digits in self.codes:
            return OverlapState.ROUTE_ON_TIMEOUT if longer else OverlapState.ROUTE_NOW
        if not longer:
            return state
        if state is OverlapState.NO_MATCH:
            return OverlapState.NEED_MORE
        return OverlapState.ROUTE_ON_TIMEOUT if state is OverlapState.ROUTE_NOW else state

    def next_timer(self) -> float | None:
        return self._deadline if self.verdict is Verdict.COLLECTING else None

    def handle_timer(self, now: float) -> Verdict:
        """T302 expired: route the complete match, or give up."""
        if self._deadline is None or now < self._deadline or self.verdict is not Verdict.COLLECTING:
            return self.verdict
        if self._state is OverlapState.ROUTE_ON_TIMEOUT:
            return self._finish(Verdict.ROUTE)
        return self._finish(Verdict.REORDER, INCOMPLETE_CAUSE)

    def _finish(self, verdict: Verdict, cause: int = 0) -> Verdict:
        self.verdict = verdict
        self.cause = cause
        self._deadline = None
        return verdict
