"""The lines of every device in the plan, for CTI scopes (``cti.scope.Scope``).

``PlanLines(engine)`` reads the whole plan once per plan change
(``plan_version``, looked at most every ``every`` seconds), shared by
every client of the web process, and answers which (DN, partition) lines a
set of devices has: phones (``devices``) and the CTI route points and ports
(one DN each). It is thread-safe: it runs in the thread pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from offhook.cti.scope import Line, Scope
from offhook.db.plan_export import export_plan
from offhook.db.snapshot import plan_version

__all__ = ["PlanLines"]

_DEVICE_SECTIONS = ("devices", "cti_route_points", "cti_ports")


@dataclass(slots=True)
class PlanLines:
    """The lines of every device in the plan, reloaded when the plan changes."""

    engine: Engine
    every: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _version: int = -1
    _checked: float = float("-inf")
    _lines: dict[str, frozenset[Line]] = field(default_factory=dict)

    def lines_of(self, devices: Iterable[str]) -> frozenset[Line]:
        """The (DN, partition) lines of ``devices`` (unknown devices have none)."""
        with self._lock:
            self._refresh()
            out: set[Line] = set()
            for name in devices:
                out |= self._lines.get(name, frozenset())
            return frozenset(out)

    def devices_with(self, dn: str, devices: Iterable[str]) -> tuple[str, ...]:
        """Those of ``devices`` that have line ``dn`` (in their order)."""
        with self._lock:
            self._refresh()
            return tuple(
                d for d in devices if any(x == dn for x, _ in self._lines.get(d, frozenset()))
            )

    def scope(self, devices: Iterable[str], *, everything: bool = False) -> Scope:
        """The scope of a user owning ``devices`` (``everything``: a cti.all role)."""
        if everything:
            return Scope(everything=True)
        names = frozenset(devices)
        return Scope(devices=names, lines=self.lines_of(names))

    def _refresh(self) -> None:
        now = self.clock()
        if now - self._checked < self.every:
            return
        self._checked = now
        version = plan_version(self.engine)
        if version == self._version:
            return
        plan = export_plan(self.engine)
        lines: dict[str, frozenset[Line]] = {}
        for section in _DEVICE_SECTIONS:
            for entry in plan.get(section) or []:
                name = entry.get("name")
                if not isinstance(name, str):
                    continue
                found = {
                    (str(ln["dn"]), str(ln.get("partition") or ""))
                    for ln in entry.get("lines") or []
                    if isinstance(ln, dict) and ln.get("dn")
                }
                if entry.get("dn"):  # a route point or port: one DN of its own
                    found.add((str(entry["dn"]), str(entry.get("partition") or "")))
                lines[name] = frozenset(found)
        self._lines = lines
        self._version = version
