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

from collections.abc import Mapping
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


class _LineTally:
    """One line's live legs, and the counts its view is read from.

    Kept incrementally (a leg added, changed or removed adjusts the counts), so
    reading the view costs the devices of its strongest state, never a scan of
    the line's legs: a line rung by many calls at once stays cheap per event.
    """

    __slots__ = ("devices", "inbound_in_use", "legs")

    def __init__(self) -> None:
        self.legs: dict[str, _LegEntry] = {}
        # contribution -> device -> how many of the line's legs make it so
        self.devices: dict[str, dict[str, int]] = {RINGING: {}, IN_USE: {}}
        self.inbound_in_use = 0  # in-use legs the line placed (inbound)

    def add(self, entry: _LegEntry) -> None:
        by_device = self.devices[entry.contribution]
        by_device[entry.device] = by_device.get(entry.device, 0) + 1
        if entry.contribution == IN_USE and entry.direction == "inbound":
            self.inbound_in_use += 1

    def remove(self, entry: _LegEntry) -> None:
        by_device = self.devices[entry.contribution]
        left = by_device[entry.device] - 1
        if left:
            by_device[entry.device] = left
        else:
            del by_device[entry.device]
        if entry.contribution == IN_USE and entry.direction == "inbound":
            self.inbound_in_use -= 1

    def current(self) -> LineView:
        """The strongest contribution's view (``in-use`` over ``ringing`` over ``idle``)."""
        in_use = self.devices[IN_USE]
        if in_use:
            direction = "initiator" if self.inbound_in_use else "recipient"
            return LineView(IN_USE, tuple(sorted(in_use)), direction)
        ringing = self.devices[RINGING]
        if ringing:
            return LineView(RINGING, tuple(sorted(ringing)), "recipient")
        return IDLE_VIEW


class LineStates:
    """Each line's busy-lamp state, kept from the bus; see the module docstring.

    Work per leg event is bounded by the line's devices: a leg whose
    contribution does not change (``proceeding`` to ``alerting``) costs a
    dictionary lookup, and a view is rebuilt only for the line the leg is on.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._legs: dict[str, _LegEntry] = {}
        self._lines: dict[Line, _LineTally] = {}  # lines with live legs
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
        contribution = CONTRIBUTION.get((ev.direction, ev.new))
        if entry is None:
            if contribution is None or not ev.line:
                return  # not tracked, and not becoming so
            line = (ev.line, ev.partition)
            tally = self._track(ev.leg_id, _LegEntry(line, ev.device, ev.direction, contribution))
            self._update(line, tally)
            return
        line = (ev.line, ev.partition) if ev.line else entry.line
        if contribution is not None and line == entry.line:
            if contribution == entry.contribution:
                return  # the line shows the same: nothing to do
            tally = self._lines[line]
            tally.remove(entry)
            entry.contribution = contribution
            tally.add(entry)
            self._update(line, tally)
            return
        # The leg is gone (no contribution) or moved to another line.
        touched = [entry.line]
        self._forget(ev.leg_id, entry)
        if contribution is not None:
            self._track(ev.leg_id, _LegEntry(line, ev.device, ev.direction, contribution))
            touched.append(line)
            touched.sort()
        for changed in touched:
            self._update(changed, self._lines.get(changed))

    def _track(self, leg_id: str, entry: _LegEntry) -> _LineTally:
        """Count ``entry`` on its line; that line's tally."""
        self._legs[leg_id] = entry
        tally = self._lines.get(entry.line)
        if tally is None:
            tally = self._lines[entry.line] = _LineTally()
        tally.legs[leg_id] = entry
        tally.add(entry)
        return tally

    def _forget(self, leg_id: str, entry: _LegEntry) -> None:
        del self._legs[leg_id]
        tally = self._lines.get(entry.line)
        if tally is not None and tally.legs.pop(leg_id, None) is not None:
            tally.remove(entry)
            if not tally.legs:
                del self._lines[entry.line]

    def _update(self, line: Line, tally: _LineTally | None) -> None:
        view = tally.current() if tally is not None else IDLE_VIEW
        before = self._views.get(line, IDLE_VIEW)
        if view == before:
            return
        if view.state == IDLE:
            self._views.pop(line, None)
        else:
            self._views[line] = view
        if (view.state, view.devices) != (before.state, before.devices):
            self._bus.publish(LineStateChanged(line[0], line[1], view.state, view.devices))
