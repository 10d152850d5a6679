"""Rejection counters: one integer per (listener, reason), for metrics.

Every listener defence that turns a peer away (allow-list, size, rate,
connection limit, parse error, idle timeout, auth block) increments a counter
here; ``ris`` exports ``snapshot()``. There is no global instance: the
composition root creates one and hands it to each listener.

Keys come from our code (listener names from settings, reasons from
``Reason``), not from peers; still, the table is capped at ``max_keys``
distinct pairs and anything beyond is counted under reason ``"other"`` so
that a bug feeding it peer data cannot grow it.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """The usual rejection reasons (free-form strings are accepted too)."""

    ACL = "acl"
    TOO_LARGE = "too_large"
    PARSE = "parse"
    RATE = "rate"
    CONNECTIONS = "connections"
    IDLE = "idle"
    HANDSHAKE = "handshake"
    AUTH_BLOCKED = "auth_blocked"
    AUTH_FAILED = "auth_failed"
    OTHER = "other"


class RejectionCounters:
    """Per (listener, reason) integer counters."""

    __slots__ = ("_counts", "max_keys")

    def __init__(self, max_keys: int = 4096) -> None:
        self.max_keys = max_keys
        self._counts: dict[tuple[str, str], int] = {}

    def increment(self, listener: str, reason: str, n: int = 1) -> None:
        key = (listener, str(reason))
        counts = self._counts
        if key not in counts and len(counts) >= self.max_keys:
            key = (listener, Reason.OTHER.value)
            if key not in counts and len(counts) >= self.max_keys + 64:
                return  # hard cap: never grow without bound
        counts[key] = counts.get(key, 0) + n

    def get(self, listener: str, reason: str) -> int:
        return self._counts.get((listener, str(reason)), 0)

    def total(self, listener: str | None = None) -> int:
        return sum(v for (lst, _), v in self._counts.items() if listener in (None, lst))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{listener: {reason: count}}``, a fresh copy."""
        out: dict[str, dict[str, int]] = {}
        for (listener, reason), value in self._counts.items():
            out.setdefault(listener, {})[reason] = value
        return out

    def reset(self) -> None:
        self._counts.clear()
