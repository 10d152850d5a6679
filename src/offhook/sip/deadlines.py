"""Named one-shot timers for the SIP legs, sans-IO.

Theory of operation. The legs need timers of their own beside the
transaction layer's: the 2xx retransmission until the ACK (RFC 3261
§13.3.1.4), a reliable provisional response's retransmission until its
PRACK (RFC 3262 §3), the session refresh and expiry (RFC 4028 §10), a
re-INVITE retried after a 491 (RFC 3261 §14.1). ``Deadlines`` keeps them all
in one heap keyed by a hashable name (a leg and what the timer is for):
``set`` replaces the timer of that name, ``cancel`` forgets it,
``next_timer()`` says when the endpoint must call ``due(now)``, which
returns the actions whose deadline passed, earliest first, for the caller
to run. Stale heap entries (cancelled or replaced) are skipped when they
surface and compacted when they outnumber the live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable

__all__ = ["Action", "Deadlines"]

Action = Callable[[], None]


class Deadlines:
    """One-shot timers by name. ``now`` is always given (monotonic seconds)."""

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, tuple[int, float, Action]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def when(self, key: Hashable) -> float | None:
        """The deadline of timer ``key``, or None when it is not set."""
        entry = self._live.get(key)
        return None if entry is None else entry[1]

    def set(self, key: Hashable, when: float, action: Action) -> None:
        """Run ``action`` at ``when``; replaces any timer named ``key``."""
        self._seq += 1
        self._live[key] = (self._seq, when, action)
        heapq.heappush(self._heap, (when, self._seq, key))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._live):
            self._compact()

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def next_timer(self) -> float | None:
        heap = self._heap
        while heap:
            when, seq, key = heap[0]
            entry = self._live.get(key)
            if entry is not None and entry[0] == seq:
                return when
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> list[Action]:
        """Remove and return the actions due at ``now``, earliest first."""
        out: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            entry = self._live.get(key)
            if entry is None or entry[0] != seq:
                continue
            del self._live[key]
            out.append(entry[2])
        return out

    def _compact(self) -> None:
        live = self._live
        self._heap = [e for e in self._heap if (x := live.get(e[2])) is not None and x[0] == e[1]]
        heapq.heapify(self._heap)
