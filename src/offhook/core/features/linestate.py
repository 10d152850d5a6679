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

With workers (``offhook.workers``) each worker tracks its own calls' legs:
``share`` (set by the worker) is told each time this worker's own view of a
line changes, and the views other workers share arrive by :meth:`remote`. A
line shows the strongest of its views (the devices of every view in that
state), so a busy lamp on any worker follows the line's calls on all of
them; :meth:`forget_peer` sets back to idle what a worker that has gone had
shared.

Bounded: only live legs of a line are kept, and a line is forgotten once
it is idle again, so the tables never outgrow the calls in progress (other
workers' views likewise: an idle one is dropped).
A leg's line may arrive after its first event (it is read from every
event); a leg seen without a line is not tracked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from offhook.core.bus import EventBus
from offhook.core.records import LegStateChanged, LineStateChanged

__all__ = [
    "CONTRIBUTION",
    "DIRECTIONS",
    "IDLE",
    "IDLE_VIEW",
    "IN_USE",
    "RINGING",
    "STATES",
    "LineStates",
    "LineView",
    "merged",
]

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
STATES = frozenset(_RANK)
DIRECTIONS = frozenset(("", "initiator", "recipient"))


def merged(views: list[LineView]) -> LineView:
    """What a line shows given each worker's view: the strongest state, with the
    devices of every view in it (``initiator`` when any of them placed the call)."""
    best = max((_RANK[v.state] for v in views), default=0)
    if best == 0:
        return IDLE_VIEW
    top = [v for v in views if _RANK[v.state] == best]
    if len(top) == 1:
        return top[0]
    devices = tuple(sorted({d for v in top for d in v.devices}))
    direction = "initiator" if any(v.direction == "initiator" for v in top) else "recipient"
    return LineView(top[0].state, devices, direction)


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
        self._local: dict[Line, LineView] = {}  # lines this process's own legs keep busy
        self._remote: dict[Line, dict[str, LineView]] = {}  # other workers' views, not idle
        # Told (line, this process's own view) when that view changes (offhook.workers).
        self.share: Callable[[Line, LineView], None] | None = None
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

    def local_views(self) -> dict[Line, LineView]:
        """The lines this process's own calls keep busy (what it shares)."""
        return dict(self._local)

    # ------------------------------------------------------------ other workers
    def remote(self, peer: str, dn: str, partition: str, view: LineView) -> None:
        """Worker ``peer``'s own view of a line (idle: it has no call on it now)."""
        line = (dn, partition)
        views = self._remote.get(line)
        if view.state == IDLE:
            if views is None or views.pop(peer, None) is None:
                return
            if not views:
                del self._remote[line]
        else:
            if views is None:
                views = self._remote[line] = {}
            views[peer] = view
        self._show(line)

    def ringing_elsewhere(self, matches: Callable[[Line], bool]) -> str | None:
        """A worker whose own view has a line ``matches`` accepts ringing, or None."""
        for line, views in self._remote.items():
            if matches(line):
                for peer, view in views.items():
                    if view.state == RINGING:
                        return peer
        return None

    def forget_peer(self, peer: str) -> None:
        """Worker ``peer`` is gone (or started again): what it shared is idle now."""
        for line in [line for line, views in self._remote.items() if peer in views]:
            self.remote(peer, line[0], line[1], IDLE_VIEW)

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
        local = tally.current() if tally is not None else IDLE_VIEW
        if local == self._local.get(line, IDLE_VIEW):
            return
        if local.state == IDLE:
            self._local.pop(line, None)
        else:
            self._local[line] = local
        if self.share is not None:
            self.share(line, local)
        self._show(line)

    def _show(self, line: Line) -> None:
        """The line's view from its own and the other workers' views; published on change."""
        local = self._local.get(line, IDLE_VIEW)
        views = self._remote.get(line)
        view = local if not views else merged([local, *views.values()])
        before = self._views.get(line, IDLE_VIEW)
        if view == before:
            return
        if view.state == IDLE:
            self._views.pop(line, None)
        else:
            self._views[line] = view
        if (view.state, view.devices) != (before.state, before.devices):
            self._bus.publish(LineStateChanged(line[0], line[1], view.state, view.devices))
