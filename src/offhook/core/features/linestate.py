"""Busy lamps: each directory number's line state, from the legs' state changes.

Theory of operation. ``LineStates`` subscribes to ``LegStateChanged`` on the
event bus. Every leg that is an appearance of a line (``Leg.line``: the
caller's line for an inbound leg, the DN rung for a fork) counts toward
that line's state while it lives; what one leg contributes is a table
(``CONTRIBUTION``) of its direction and state:

* a phone placing a call (inbound leg, from SETUP on) or a call answered
  on the line (outbound leg CONNECTED): ``in-use``;
* a fork ringing the line (outbound OFFERED, PROCEEDING, ALERTING): ``ringing``;
* nothing (IDLE, RELEASED): the leg is forgotten.

A line's state is the strongest contribution of its legs (``in-use`` over
``ringing`` over ``idle``); its devices are those of the legs that make it
(``in-use`` on one appearance of a shared line is remote-in-use on the
others). Each time a line's state or devices change, ``LineStateChanged``
is published; ``state(dn, partition)`` and ``view(dn, partition)`` answer
what it is now. The lamps of BLF speed dials (SIP dialog and presence
subscriptions, SCCP speed-dial lines) follow these events.

Bounded: only live legs of a line are kept, and a line is forgotten once
it is idle again, so the tables never outgrow the calls in progress.
A leg's line may arrive after its first event (it is read from every
event); a leg seen without a line is not tracked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from offhook.core.bus import EventBus
from offhook.core.records import LegStateChanged, LineStateChanged

__all__ = ["CONTRIBUTION", "IDLE", "IN_USE", "RINGING", "LineStates", "LineView"]

Line = tuple[str, str]  # (directory number, partition)

IDLE = "idle"
RINGING = "ringing"
IN_USE = "in-use"

# Strength of a state: the line shows its strongest leg's.
_RANK = {IDLE: 0, RINGING: 1, IN_USE: 2}

# (leg direction, leg state) -> what the leg makes of its line; absent: nothing.
CONTRIBUTION: Mapping[tuple[str, str], str] = {
    ("inbound", "setup"): IN_USE,
    ("inbound", "proceeding"): IN_USE,
    ("inbound", "alerting"): IN_USE,
    ("inbound", "connected"): IN_USE,
    ("outbound", "offered"): RINGING,
    ("outbound", "proceeding"): RINGING,
    ("outbound", "alerting"): RINGING,
    ("outbound", "connected"): IN_USE,
}


@dataclass(frozen=True, slots=True)
class LineView:
    """A line now: its state, the devices making it, and which way its call goes.

    ``direction`` is ``initiator`` when the line placed the call that makes
    it in use, ``recipient`` when it was called, "" when idle.
    """

    state: str = IDLE
    devices: tuple[str, ...] = ()
    direction: str = ""


IDLE_VIEW = LineView()


@dataclass(slots=True)
class _LegEntry:
    line: Line
    device: str
    direction: str
    contribution: str


class LineStates:
    """Each line's busy-lamp state, kept from the bus; see the module docstring."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._legs: dict[str, _LegEntry] = {}
        self._lines: dict[Line, dict[str, _LegEntry]] = {}
        self._views: dict[Line, LineView] = {}  # lines not idle
        self._unsubscribe = bus.subscribe(LegStateChanged, self._on_leg)

    def close(self) -> None:
        """Stop following the bus."""
        self._unsubscribe()

    def __len__(self) -> int:
        """The number of lines not idle."""
        return len(self._views)

    @property
    def tracked_legs(self) -> int:
        return len(self._legs)

    def state(self, dn: str, partition: str = "") -> str:
        """``idle``, ``ringing`` or ``in-use``."""
        return self.view(dn, partition).state

    def view(self, dn: str, partition: str = "") -> LineView:
        return self._views.get((dn, partition), IDLE_VIEW)

    def busy_lines(self) -> dict[Line, LineView]:
        """Every line not idle, for status pages."""
        return dict(self._views)

    # ------------------------------------------------------------ the bus
    def _on_leg(self, ev: LegStateChanged) -> None:
        entry = self._legs.get(ev.leg_id)
        line: Line | None = (ev.line, ev.partition) if ev.line else None
        if line is None and entry is not None:
            line = entry.line
        contribution = CONTRIBUTION.get((ev.direction, ev.new))
        touched: set[Line] = set()
        if entry is not None and (contribution is None or entry.line != line):
            self._forget(ev.leg_id, entry)
            touched.add(entry.line)
            entry = None
        if contribution is not None and line is not None:
            if entry is None:
                entry = _LegEntry(line, ev.device, ev.direction, contribution)
                self._legs[ev.leg_id] = entry
                self._lines.setdefault(line, {})[ev.leg_id] = entry
            else:
                entry.contribution = contribution
            touched.add(line)
        for changed in sorted(touched):
            self._update(changed)

    def _forget(self, leg_id: str, entry: _LegEntry) -> None:
        del self._legs[leg_id]
        legs = self._lines.get(entry.line)
        if legs is not None:
            legs.pop(leg_id, None)
            if not legs:
                del self._lines[entry.line]

    def _update(self, line: Line) -> None:
        view = _view_of(self._lines.get(line, {}).values())
        before = self._views.get(line, IDLE_VIEW)
        if view == before:
            return
        if view.state == IDLE:
            self._views.pop(line, None)
        else:
            self._views[line] = view
        if (view.state, view.devices) != (before.state, before.devices):
            self._bus.publish(LineStateChanged(line[0], line[1], view.state, view.devices))


def _view_of(legs: Iterable[_LegEntry]) -> LineView:
    entries = list(legs)
    if not entries:
        return IDLE_VIEW
    best = max(_RANK[e.contribution] for e in entries)
    making = [e for e in entries if _RANK[e.contribution] == best]
    state = making[0].contribution
    devices = tuple(sorted({e.device for e in making}))
    if state == IN_USE and any(e.direction == "inbound" for e in making):
        direction = "initiator"
    else:
        direction = "recipient"
    return LineView(state, devices, direction)
