"""Which devices and lines a CTI user may see and control, and one client's event filter.

A user's CTI scope (``Scope``) is the devices listed on their user record
(``UserRecord.devices``: phones, CTI route points and ports) and the lines
(DN, partition) those devices have in the plan; a role with ``cti.all``
(full-admin) sees everything. An event is in scope (``Scope.sees``) when
its ``device`` is one of the user's devices, or (line state, MWI, forward)
its ``dn`` is one of their lines; ``call.ended`` carries no device and is
shown to a client that saw a leg of that call (``EventFilter``).

``EventFilter`` is one connection's view: the scope narrowed by what the
client subscribed to (devices and/or lines; nothing named: everything in
scope), remembering the calls it let through (a bounded LRU) so the call's
``call.ended`` follows. ``Scope.snapshot`` cuts a node snapshot (control op
``cti_snapshot``) down to the scope.

``cti.plan_lines.PlanLines`` reads the devices' lines from the database
and makes scopes; this module is pure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_SEEN_CALLS", "EventFilter", "Line", "Scope"]

MAX_SEEN_CALLS = 4096
"""Calls one client remembers having seen (for their ``call.ended``)."""

Line = tuple[str, str]
"""(DN, partition); partition "" is the default (none)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What one user may see and control (``everything``: all devices and lines)."""

    everything: bool = False
    devices: frozenset[str] = frozenset()
    lines: frozenset[Line] = frozenset()

    @property
    def dns(self) -> frozenset[str]:
        return frozenset(dn for dn, _ in self.lines)

    def has_device(self, device: str) -> bool:
        return self.everything or device in self.devices

    def has_line(self, dn: str, partition: str | None = None) -> bool:
        """``dn`` (in ``partition``; None: in any) is one of the user's lines."""
        if self.everything:
            return True
        if partition is None:
            return dn in self.dns
        return (dn, partition) in self.lines

    def sees(self, event: Mapping[str, Any]) -> bool:
        """``event`` concerns one of the user's devices or lines (``call.ended``: no)."""
        if self.everything:
            return True
        device = event.get("device")
        if isinstance(device, str) and device in self.devices:
            return True
        dn = event.get("dn")
        if isinstance(dn, str):
            partition = event.get("partition")
            return self.has_line(dn, partition if isinstance(partition, str) else None)
        return False

    def snapshot(self, snap: Mapping[str, Any]) -> dict[str, Any]:
        """A ``cti_snapshot`` answer with only what this scope covers.

        A call is kept when one of its legs is on one of the user's devices,
        with those legs only (the others would name other people's phones).
        """
        out = dict(snap)
        if self.everything:
            return out
        out["devices"] = [
            d
            for d in _dicts(snap.get("devices"))
            if isinstance(d.get("device"), str) and d["device"] in self.devices
        ]
        out["lines"] = [
            ln
            for ln in _dicts(snap.get("lines"))
            if isinstance(ln.get("dn"), str)
            and self.has_line(ln["dn"], _partition(ln.get("partition")))
        ]
        calls = []
        for call in _dicts(snap.get("calls")):
            legs = [
                leg
                for leg in _dicts(call.get("legs"))
                if isinstance(leg.get("device"), str) and leg["device"] in self.devices
            ]
            if legs:
                calls.append({**call, "legs": legs})
        out["calls"] = calls
        return out

    def describe(self) -> dict[str, Any]:
        """For the client's ``hello``: what it may see."""
        if self.everything:
            return {"all": True}
        return {
            "all": False,
            "devices": sorted(self.devices),
            "lines": [{"dn": dn, "partition": p} for dn, p in sorted(self.lines)],
        }


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _partition(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class EventFilter:
    """One client's filter: its scope, what it subscribed to, the calls it saw."""

    scope: Scope
    devices: frozenset[str] | None = None
    """Subscribed devices (None: no narrowing by device)."""
    lines: frozenset[str] | None = None
    """Subscribed DNs (None: no narrowing by line)."""
    max_calls: int = MAX_SEEN_CALLS
    _calls: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @property
    def everything(self) -> bool:
        return self.devices is None and self.lines is None

    def subscribe(self, devices: Iterable[str] | None, lines: Iterable[str] | None) -> None:
        """Narrow to these devices and lines (both None: everything in scope)."""
        self.devices = None if devices is None else frozenset(devices)
        self.lines = None if lines is None else frozenset(lines)
        if self.devices is not None and self.lines is None:
            self.lines = frozenset()
        if self.lines is not None and self.devices is None:
            self.devices = frozenset()

    def admits(self, event: Mapping[str, Any]) -> bool:
        """Does this client get ``event``? (Remembers the calls it lets through.)"""
        call_id = event.get("call_id")
        if event.get("type") == "call.ended":
            return isinstance(call_id, str) and self.ended(call_id)
        if not self.scope.sees(event) or not self._subscribed(event):
            return False
        if isinstance(call_id, str):
            self.remember(call_id)
        return True

    def seed(self, event: Mapping[str, Any]) -> None:
        """Learn from an event the client saw earlier (another connection's, before
        a resume): a call it saw a leg of is known, one that ended is not."""
        call_id = event.get("call_id")
        if not isinstance(call_id, str):
            return
        if event.get("type") == "call.ended":
            self.ended(call_id)
        elif self.scope.sees(event) and self._subscribed(event):
            self.remember(call_id)

    def ended(self, call_id: str) -> bool:
        """Was ``call_id`` seen (its ``call.ended`` goes to this client)? Forgets it."""
        if call_id in self._calls:
            del self._calls[call_id]
            return True
        return False

    def remember(self, call_id: str) -> None:
        calls = self._calls
        calls[call_id] = None
        calls.move_to_end(call_id)
        while len(calls) > self.max_calls:
            calls.popitem(last=False)

    def _subscribed(self, event: Mapping[str, Any]) -> bool:
        if self.everything:
            return True
        device = event.get("device")
        if self.devices and isinstance(device, str) and device in self.devices:
            return True
        if self.lines:
            dn = event.get("dn", event.get("line"))
            return isinstance(dn, str) and dn in self.lines
        return False
