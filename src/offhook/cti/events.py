"""Core bus events as CTI events: one dict of the CTI event schema per bus event.

Theory of operation. ``EventMapper(engine, node, wall)`` is called with
every event published on the core bus and returns the CTI event it makes
(a dict, JSON-ready) or None for what CTI does not show. The schema is
fixed in ``notes/issue12-design.md`` "Event schema" (documented for
applications by the AsyncAPI document); every event starts with ``id``
(0 here: ``cti.journal`` numbers it), ``type``, ``time`` (wall seconds)
and ``node``.

Call events are one per leg, so one per device, from the legs' state
changes (``LegStateChanged``; the table ``LEG_EVENTS`` says which change
is which event and state) and from what features publish (held, resumed,
transferred, conferenced, digits). ``CallAlerting``/``CallAnswered`` say
per call what the legs' events already say per device, so they make no
event of their own. The parties (``calling``, ``calling_name``,
``called``, ``original_called``, ``redirect_reason``; ``parties``) are read
from the engine's ``Call`` as the event is published (a caller without a
name named as the plan names its line), worked out once per ``Setup`` of
the call and remembered until its ``call.ended``, for events about a call
the engine no longer holds (a transferred call). Legs ending on a media server (hold music,
ringback, announcements) are no device: they make no event.

The mapper is on the call path (the bus is synchronous): a dict lookup on
the event's type, one dict built, nothing serialised here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from offhook.core.call import EARLY_MEDIA_DEVICE
from offhook.core.causes import cause_text
from offhook.core.records import (
    CallConferenced,
    CallEnded,
    CallHeld,
    CallResumed,
    CallTransferred,
    DigitsReceived,
    DndChanged,
    ForwardChanged,
    LegStateChanged,
    LineStateChanged,
    MwiChanged,
    RegistrationChanged,
    RegistrationRejected,
)

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.directory import PlanSnapshot
    from offhook.core.leg import Leg

__all__ = [
    "LEG_EVENTS",
    "LEG_STATES",
    "NO_DEVICE",
    "CallLookup",
    "EventMapper",
    "Parties",
    "leg_state",
    "parties",
]

Event = dict[str, Any]

NO_DEVICE = frozenset({"media", EARLY_MEDIA_DEVICE})
"""Device names of legs that end on a media server (hold music, ringback, announcements)."""

# (leg direction, the leg's new state) -> (event type, CTI state); absent: no event.
LEG_EVENTS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("inbound", "setup"): ("call.initiated", "dialing"),
    ("outbound", "offered"): ("call.offered", "offered"),
    ("outbound", "alerting"): ("call.ringing", "ringing"),
    ("inbound", "alerting"): ("call.ringing", "ringback"),
    ("outbound", "connected"): ("call.answered", "connected"),
    ("inbound", "connected"): ("call.answered", "connected"),
    ("outbound", "released"): ("call.cleared", "cleared"),
    ("inbound", "released"): ("call.cleared", "cleared"),
}

# (leg direction, leg state) -> the CTI word for it (snapshots show legs in these).
LEG_STATES: Mapping[tuple[str, str], str] = {
    ("inbound", "idle"): "idle",
    ("outbound", "idle"): "idle",
    ("inbound", "setup"): "dialing",
    ("inbound", "proceeding"): "proceeding",
    ("outbound", "offered"): "offered",
    ("outbound", "proceeding"): "offered",
    ("inbound", "alerting"): "ringback",
    ("outbound", "alerting"): "ringing",
    ("inbound", "connected"): "connected",
    ("outbound", "connected"): "connected",
    ("inbound", "released"): "cleared",
    ("outbound", "released"): "cleared",
}

Parties = tuple[str, str, str, str, str]
_NO_PARTIES: Parties = ("", "", "", "", "")
MAX_REMEMBERED = 65536
"""Calls whose parties are remembered at most (each is forgotten at its call.ended)."""


def leg_state(direction: str, state: str) -> str:
    """The CTI state of a leg in ``state`` (``core.leg.LegState`` value)."""
    return LEG_STATES.get((direction, state), state)


class CallLookup(Protocol):
    """What the mapper asks the call engine (``core.engine.CallEngine`` is one)."""

    def call(self, call_id: str) -> Call | None: ...

    def leg(self, leg_id: str) -> Leg | None: ...

    def snapshot(self) -> PlanSnapshot: ...


def parties(call: Call, plan: PlanSnapshot) -> Parties:
    """``calling``, ``calling_name``, ``called``, ``original_called``, ``redirect_reason``.

    A caller without a name is named as the plan names its line (as the
    called phone sees it, ``core.routing``).
    """
    setup = call.setup
    calling = setup.calling
    name = calling.name
    if not name:
        info = plan.device(call.a_leg.device)
        if info is not None:
            name = next((ln.display for ln in info.lines if ln.dn == calling.number), "")
            name = name or info.display
    diversions = setup.diversions
    return (
        calling.number,
        name,
        setup.called,
        setup.original_called or setup.called,
        diversions[-1].reason.value if diversions else "",
    )


class EventMapper:
    """Bus event in, CTI event (or None) out; see the module docstring."""

    def __init__(self, engine: CallLookup, node: str, wall: Callable[[], float]) -> None:
        self._engine = engine
        self._node = node
        self._wall = wall
        # call id -> (its Setup, its parties) when last seen: worked out once per
        # Setup (a feature that changes the parties replaces the Setup), and
        # known for events after the engine dropped the call.
        self._known: dict[str, tuple[object, Parties]] = {}
        self._map: dict[type[Any], Callable[[Any], Event | None]] = {
            LegStateChanged: self._leg_changed,
            CallHeld: self._held,
            CallResumed: self._resumed,
            CallTransferred: self._transferred,
            CallConferenced: self._conferenced,
            DigitsReceived: self._digits,
            CallEnded: self._ended,
            RegistrationChanged: self._registration,
            RegistrationRejected: self._rejected,
            LineStateChanged: self._line,
            MwiChanged: self._mwi,
            ForwardChanged: self._forward,
            DndChanged: self._dnd,
        }

    def __call__(self, event: object) -> Event | None:
        convert = self._map.get(type(event))
        return None if convert is None else convert(event)

    @property
    def remembered(self) -> int:
        """Calls whose parties are remembered now."""
        return len(self._known)

    # ------------------------------------------------------------ helpers
    def _head(self, kind: str) -> Event:
        return {"id": 0, "type": kind, "time": self._wall(), "node": self._node}

    def _parties_of(self, call_id: str) -> Parties:
        known = self._known
        seen = known.get(call_id)
        call = self._engine.call(call_id)
        if call is None:
            return _NO_PARTIES if seen is None else seen[1]
        if seen is not None and seen[0] is call.setup:
            return seen[1]
        if seen is None and len(known) >= MAX_REMEMBERED:
            del known[next(iter(known))]  # the oldest: a call that never ended
        found = parties(call, self._engine.snapshot())
        known[call_id] = (call.setup, found)
        return found

    def _call_event(
        self,
        kind: str,
        state: str,
        call_id: str,
        leg_id: str,
        device: str,
        line: str,
        direction: str,
    ) -> Event:
        calling, name, called, original, reason = self._parties_of(call_id)
        return {
            "id": 0,
            "type": kind,
            "time": self._wall(),
            "node": self._node,
            "call_id": call_id,
            "leg_id": leg_id,
            "device": device,
            "line": line,
            "direction": direction,
            "state": state,
            "calling": calling,
            "calling_name": name,
            "called": called,
            "original_called": original,
            "redirect_reason": reason,
        }

    def _leg_event(self, kind: str, state: str, call_id: str, leg_id: str, device: str) -> Event:
        """A call event about a leg known by its id (line and direction from the engine)."""
        leg = self._engine.leg(leg_id) if leg_id else None
        if leg is None:
            return self._call_event(kind, state, call_id, leg_id, device, "", "")
        return self._call_event(
            kind, state, call_id, leg_id, device, leg.line[0], leg.direction.value
        )

    def _device_event(self, kind: str, state: str, call_id: str, device: str) -> Event:
        """A call event about ``device``'s leg in the call (its leg looked up)."""
        call = self._engine.call(call_id)
        if call is not None:
            for leg in call.legs():
                if leg.device == device and not leg.released and not leg.quiet:
                    return self._call_event(
                        kind, state, call_id, leg.id, device, leg.line[0], leg.direction.value
                    )
        return self._call_event(kind, state, call_id, "", device, "", "")

    # ------------------------------------------------------------ call events
    def _leg_changed(self, ev: LegStateChanged) -> Event | None:
        what = LEG_EVENTS.get((ev.direction, ev.new))
        if what is None or not ev.call_id or ev.device in NO_DEVICE:
            return None
        event = self._call_event(
            what[0], what[1], ev.call_id, ev.leg_id, ev.device, ev.line, ev.direction
        )
        if what[0] == "call.cleared":
            cause = 16 if ev.cause is None else ev.cause
            event["cause"] = cause
            event["cause_text"] = cause_text(cause)
        return event

    def _held(self, ev: CallHeld) -> Event:
        event = self._leg_event("call.held", "held", ev.call_id, ev.leg_id, ev.device)
        event["held_device"] = ev.held_device
        event["by"] = ev.by
        return event

    def _resumed(self, ev: CallResumed) -> Event:
        event = self._leg_event("call.resumed", "connected", ev.call_id, ev.leg_id, ev.device)
        event["by"] = ev.by
        return event

    def _transferred(self, ev: CallTransferred) -> Event:
        if ev.role == "transferee" and ev.new_call_id:
            # Its leg (and its parties from now on) are in the call it was moved into.
            event = self._device_event("call.transferred", "transferred", ev.new_call_id, ev.device)
            event["call_id"] = ev.call_id
        else:
            event = self._device_event("call.transferred", "transferred", ev.call_id, ev.device)
        event["role"] = ev.role
        event["kind"] = ev.kind
        event["target"] = ev.target
        event["new_call_id"] = ev.new_call_id
        event["by"] = ev.by
        return event

    def _conferenced(self, ev: CallConferenced) -> Event:
        event = self._device_event("call.conferenced", "conferenced", ev.call_id, ev.device)
        event["bridge"] = ev.bridge
        event["other_call_id"] = ev.other_call_id
        event["by"] = ev.by
        return event

    def _digits(self, ev: DigitsReceived) -> Event:
        event = self._leg_event("call.dtmf", "connected", ev.call_id, ev.leg_id, ev.device)
        event["digits"] = ev.digits
        return event

    def _ended(self, ev: CallEnded) -> Event:
        record = ev.record
        self._known.pop(record.call_id, None)
        event = self._head("call.ended")
        event["call_id"] = record.call_id
        event["calling"] = record.calling
        event["called"] = record.called
        event["original_called"] = record.original_called
        event["cause"] = record.cause
        event["cause_text"] = record.cause_text or cause_text(record.cause)
        event["duration"] = record.duration
        event["answered"] = record.answer is not None
        return event

    # ------------------------------------------------------------ devices and lines
    def _registration(self, ev: RegistrationChanged) -> Event:
        event = self._head("device.registered" if ev.registered else "device.unregistered")
        event["device"] = ev.device
        event["protocol"] = ev.protocol
        return event

    def _rejected(self, ev: RegistrationRejected) -> Event:
        event = self._head("device.rejected")
        event["device"] = ev.device
        event["protocol"] = ev.protocol
        event["source"] = ev.source
        event["reason"] = ev.reason
        return event

    def _line(self, ev: LineStateChanged) -> Event:
        event = self._head("line.state")
        event["dn"] = ev.dn
        event["partition"] = ev.partition
        event["state"] = ev.state
        event["devices"] = list(ev.devices)
        return event

    def _mwi(self, ev: MwiChanged) -> Event:
        event = self._head("mwi.changed")
        event["dn"] = ev.dn
        event["partition"] = ev.partition
        event["waiting"] = ev.waiting
        event["new"] = ev.new
        event["old"] = ev.old
        return event

    def _forward(self, ev: ForwardChanged) -> Event:
        event = self._head("forward.changed")
        event["dn"] = ev.dn
        event["partition"] = ev.partition
        event["destination"] = ev.destination
        event["device"] = ev.device
        return event

    def _dnd(self, ev: DndChanged) -> Event:
        event = self._head("dnd.changed")
        event["device"] = ev.device
        event["on"] = ev.on
        return event
