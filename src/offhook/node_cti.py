"""The node's CTI side: the event journal over the bus, and the CTI control ops.

``NodeCti(engine, bus, locations, clock, node=..., first_id=...)`` follows
every bus event (``cti.events.EventMapper`` -> ``cti.journal.Journal``) and
``ops()`` gives the control ops the web process uses (``ris.control``):

- ``events`` ``{"after": int | null}``: a streaming op (``ris.control.Streaming``):
  answers ``{"first_id", "last_id", "resync"}``, then one event a line
  (``cti.journal``: replay after ``after``, overflow, resync);
- ``cti_snapshot`` ``{}``: ``{"last_id", "devices": [{"device", "protocol",
  "registered"}], "lines": [{"dn", "partition", "state", "devices"}],
  "calls": [{"call_id", "calling", "calling_name", "called",
  "original_called", "redirect_reason", "state", "command"?, "legs":
  [{"leg_id", "device", "line", "direction", "state"}]}]}``, taken in the same
  step as ``last_id`` (nothing between them is missed);
- the commands ``cti_make_call``, ``cti_answer``, ``cti_hangup``,
  ``cti_hold``, ``cti_resume``, ``cti_transfer``, ``cti_consult``,
  ``cti_complete_transfer``, ``cti_conference``, ``cti_redirect``,
  ``cti_park``, ``cti_pickup``, ``cti_dtmf``, ``cti_mwi``: each maps its JSON
  arguments to ``CallEngine.cti_*`` (``core.cti_ops``) and answers
  ``{"command": "c<n>", ...}``; the events of the calls it touched carry that
  ``command`` (``Journal.command``). A ``media`` argument, or a device that
  is a CTI port, goes to ``core.features.cti_devices`` (``port_call``,
  ``port_answer``). A refusal (``CtiRefused``, ``CtiDeviceError``, a bad
  argument) is a ``ValueError`` whose text says why; the control endpoint
  answers it as the error.

Forward all and DND are the existing ``forward_all`` and ``dnd`` ops
(``node_control``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from offhook.common.clock import Clock
from offhook.common.location import LocationStore
from offhook.core.bus import EventBus
from offhook.core.call import Call
from offhook.core.cti_ops import CtiRefused
from offhook.core.directory import PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.features.cti_devices import media_from_json, port_answer, port_call, port_of
from offhook.cti.events import NO_DEVICE, EventMapper, leg_state, parties
from offhook.cti.journal import Journal
from offhook.ris.control import Handler, Streaming

__all__ = ["CALL_STATES", "NodeCti"]

Args = dict[str, Any]

# The caller's leg state -> the call's state in a snapshot.
CALL_STATES = {
    "idle": "dialing",
    "setup": "dialing",
    "proceeding": "proceeding",
    "alerting": "ringing",
    "connected": "connected",
    "released": "cleared",
}


def _text(args: Args, name: str, default: str | None = None) -> str:
    value = args.get(name, default) if default is not None else args[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    if len(value) > 256:
        raise ValueError(f"{name} is too long")
    return value


def _flag(args: Args, name: str, default: bool = False) -> bool:
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _count(args: Args, name: str) -> int:
    value = args.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9999:
        raise ValueError(f"{name} must be a number 0-9999")
    return value


@contextmanager
def _refusals() -> Iterator[None]:
    """Call control's refusal as the ValueError the control endpoint answers."""
    try:
        yield
    except CtiRefused as exc:
        raise ValueError(str(exc) or "refused") from None


class NodeCti:
    """The journal over the bus and the CTI control ops; see the module docstring."""

    def __init__(
        self,
        engine: CallEngine,
        bus: EventBus,
        locations: LocationStore,
        clock: Clock,
        *,
        node: str,
        first_id: int,
        capacity: int = 10000,
        queue_bytes: int = 4 << 20,
    ) -> None:
        self.engine = engine
        self.locations = locations
        self.clock = clock
        self.mapper = EventMapper(engine, node, clock.wall)
        self.journal = Journal(first_id, capacity=capacity, queue_bytes=queue_bytes)
        self._unsubscribe = bus.subscribe_all(self._on_event)

    def _on_event(self, event: object) -> None:
        cti_event = self.mapper(event)
        if cti_event is not None:
            self.journal.record(cti_event)

    def close(self) -> None:
        """Stop following the bus."""
        self._unsubscribe()

    def status(self) -> dict[str, int]:
        return self.journal.status()

    # ------------------------------------------------------------ ops
    def ops(self) -> dict[str, Handler]:
        return {
            "events": self.events,
            "cti_snapshot": lambda args: self.snapshot(),
            "cti_make_call": self.make_call,
            "cti_answer": self.answer,
            "cti_hangup": self._on_call(self.engine.cti_hangup),
            "cti_hold": self._on_call(self.engine.cti_hold),
            "cti_resume": self._on_call(self.engine.cti_resume),
            "cti_transfer": self.transfer,
            "cti_consult": self.consult,
            "cti_complete_transfer": self._two_calls(self.engine.cti_complete_transfer),
            "cti_conference": self._two_calls(self.engine.cti_conference),
            "cti_redirect": self.redirect,
            "cti_park": self.park,
            "cti_pickup": self.pickup,
            "cti_dtmf": self.dtmf,
            "cti_mwi": self.mwi,
        }

    def events(self, args: Args) -> Streaming:
        after = args.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ValueError("after must be an event id or null")
        subscriber, start = self.journal.subscribe(after)
        return Streaming(start._asdict(), subscriber)

    # ------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        engine = self.engine
        plan = engine.snapshot()
        registered: dict[str, str] = {}
        for binding in self.locations.all(self.clock.monotonic()):
            registered.setdefault(binding.device, binding.protocol)
        devices = [
            {"device": d.name, "protocol": d.protocol, "registered": d.name in registered}
            for d in plan.devices.values()
        ]
        devices += [
            {"device": name, "protocol": protocol, "registered": True}
            for name, protocol in registered.items()
            if name not in plan.devices
        ]
        busy = engine.lines.busy_lines()
        lines = []
        for entry in plan.dns.values():
            view = busy.pop((entry.dn, entry.partition), None)
            lines.append(
                {
                    "dn": entry.dn,
                    "partition": entry.partition,
                    "state": view.state if view is not None else "idle",
                    "devices": list(view.devices) if view is not None else [],
                }
            )
        lines += [
            {"dn": dn, "partition": part, "state": view.state, "devices": list(view.devices)}
            for (dn, part), view in busy.items()
        ]
        return {
            "last_id": self.journal.last_id,
            "devices": devices,
            "lines": lines,
            "calls": [self._call(call, plan) for call in engine.active_calls()],
        }

    def _call(self, call: Call, plan: PlanSnapshot) -> dict[str, Any]:
        calling, name, called, original, reason = parties(call, plan)
        row: dict[str, Any] = {
            "call_id": call.id,
            "calling": calling,
            "calling_name": name,
            "called": called,
            "original_called": original,
            "redirect_reason": reason,
            "state": "connected" if call.connected else CALL_STATES.get(call.state.value, ""),
            "legs": [
                {
                    "leg_id": leg.id,
                    "device": leg.device,
                    "line": leg.line[0],
                    "direction": leg.direction.value,
                    "state": "held"
                    if leg.id in call.holds or leg.id in call.silent_holds
                    else leg_state(leg.direction.value, leg.state.value),
                }
                for leg in call.legs()
                if not leg.released and not leg.quiet and leg.device not in NO_DEVICE
            ],
        }
        command = self.journal.command_of(call.id)
        if command is not None:
            row["command"] = command
        return row

    # ------------------------------------------------------------ commands
    @contextmanager
    def _command(self, *call_ids: str) -> Iterator[str]:
        with self.journal.command(*call_ids) as command, _refusals():
            yield command

    def _is_port(self, device: str) -> bool:
        return port_of(self.engine.snapshot(), device) is not None

    def make_call(self, args: Args) -> dict[str, Any]:
        device, number = _text(args, "device"), _text(args, "number")
        line = _text(args, "line", "")
        auto_answer = _flag(args, "auto_answer")
        media = args.get("media")
        with self._command() as command:
            if media is not None or self._is_port(device):
                call_id = port_call(self.engine, device, number, media_from_json(media))
            else:
                call_id = self.engine.cti_make_call(
                    device, number, line=line, auto_answer=auto_answer
                )
            self.journal.tag(call_id, command)
        return {"command": command, "call_id": call_id}

    def answer(self, args: Args) -> dict[str, Any]:
        device, call_id = _text(args, "device"), _text(args, "call_id")
        media = args.get("media")
        with self._command(call_id) as command:
            if media is not None or self._is_port(device):
                port_answer(self.engine, device, call_id, media_from_json(media))
            else:
                self.engine.cti_answer(device, call_id)
        return {"command": command}

    def _on_call(self, method: Callable[[str, str], object]) -> Handler:
        """An op ``{device, call_id}`` -> ``method(device, call_id)``."""

        def op(args: Args) -> dict[str, Any]:
            device, call_id = _text(args, "device"), _text(args, "call_id")
            with self._command(call_id) as command:
                method(device, call_id)
            return {"command": command}

        return op

    def _two_calls(self, method: Callable[[str, str, str], object]) -> Handler:
        """An op ``{device, call_id, other_call_id}`` -> ``method(device, call_id, other)``."""

        def op(args: Args) -> dict[str, Any]:
            device, call_id = _text(args, "device"), _text(args, "call_id")
            other = _text(args, "other_call_id")
            with self._command(call_id, other) as command:
                method(device, call_id, other)
            return {"command": command}

        return op

    def transfer(self, args: Args) -> dict[str, Any]:
        device, call_id = _text(args, "device"), _text(args, "call_id")
        target = _text(args, "target")
        with self._command(call_id) as command:
            self.engine.cti_transfer(device, call_id, target)
        return {"command": command}

    def consult(self, args: Args) -> dict[str, Any]:
        device, call_id = _text(args, "device"), _text(args, "call_id")
        number = _text(args, "number")
        with self._command(call_id) as command:
            consult_id = self.engine.cti_consult(device, call_id, number)
            self.journal.tag(consult_id, command)
        return {"command": command, "call_id": consult_id}

    def redirect(self, args: Args) -> dict[str, Any]:
        call_id, target = _text(args, "call_id"), _text(args, "target")
        device = _text(args, "device", "")
        with self._command(call_id) as command:
            self.engine.cti_redirect(call_id, target, device=device)
        return {"command": command}

    def park(self, args: Args) -> dict[str, Any]:
        device, call_id = _text(args, "device"), _text(args, "call_id")
        with self._command(call_id) as command:
            number = self.engine.cti_park(device, call_id)
        return {"command": command, "number": number}

    def pickup(self, args: Args) -> dict[str, Any]:
        device, number = _text(args, "device"), _text(args, "number", "")
        auto_answer = _flag(args, "auto_answer")
        with self._command() as command:
            call_id = self.engine.cti_pickup(device, number, auto_answer=auto_answer)
            self.journal.tag(call_id, command)
        return {"command": command, "call_id": call_id}

    def dtmf(self, args: Args) -> dict[str, Any]:
        device, call_id = _text(args, "device"), _text(args, "call_id")
        digits = _text(args, "digits")
        with self._command(call_id) as command:
            self.engine.cti_send_dtmf(device, call_id, digits)
        return {"command": command}

    def mwi(self, args: Args) -> dict[str, Any]:
        dn = _text(args, "dn")
        partition = None if args.get("partition") is None else _text(args, "partition")
        waiting = _flag(args, "waiting")
        if "waiting" not in args:
            raise KeyError("waiting")
        new, old = _count(args, "new"), _count(args, "old")
        with self._command() as command:
            if not self.engine.set_mwi(dn, waiting, new, old, partition):
                raise ValueError(f"no line {dn!r}" + (f" in {partition!r}" if partition else ""))
        return {"command": command}
