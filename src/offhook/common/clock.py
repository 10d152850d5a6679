"""Time as a dependency: sans-IO code receives ``now`` or a Clock, never imports ``time``."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds (for timers) and wall-clock seconds (for records)."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self._now += seconds
