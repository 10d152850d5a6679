"""The node's real-time information ops (``ris.query`` over what the node holds now).

Control ops (``ris.control``; the web process's ``/api/v1/ris/...`` and
``offhook status`` ask them):

- ``ris_devices`` ``{name?, protocol?, status?, address?, limit?}``: the
  devices selected (``ris.query.DeviceFilter``: a name glob, sip/sccp/cti,
  registered/unregistered/rejected/any, an address, network or leading
  part, at most ``limit``): ``{"node", "total", "truncated", "devices":
  [{name, protocol, status, model, firmware, lines, address, port,
  transport, registered_at, unregistered_at, last_rejection: {time, reason,
  source} | null, rejections, node, configured, blocked}]}``; times ISO 8601
  UTC; ``blocked``: not registered, and its address is blocked now for
  failed logins;
- ``ris_calls`` ``{device?}``: the active calls (with a leg of a device
  matching the ``device`` glob): ``{"node", "calls": [{call_id, calling,
  called, state, start, answer, legs: [{leg_id, device, line, state,
  direction, media: [{kind, address, port, codec, direction}]}]}]}``.

``ris_ops`` builds them and the ``ris.index.RegistrationIndex`` they read,
following the bus from then on. ``sip_register_refused`` wraps the
registrar's failed-digest hook so that each refusal is also published as
``RegistrationRejected`` (the SCCP side publishes its RegisterReject in
``node_sccp``). Only ``app`` calls these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offhook.common.addr import host_port
from offhook.common.clock import Clock
from offhook.common.location import Binding, LocationStore
from offhook.core.bus import EventBus
from offhook.core.engine import CallEngine
from offhook.core.records import RegistrationRejected
from offhook.ris.control import Handler
from offhook.ris.index import RegistrationIndex
from offhook.ris.query import MAX_PATTERN, DeviceFilter, select_calls, select_devices

Addr = tuple[str, int]
SIP_AUTH_FAILED = "auth-failed"


def sip_register_refused(
    engine: CallEngine, on_auth_failure: Callable[[Addr, str], None]
) -> Callable[[Addr, str], None]:
    """The registrar's ``on_auth_failure``: ``on_auth_failure``, then ``RegistrationRejected``.

    The device is the plan's device of the digest user name, else the name
    as claimed (the index keeps such names in a bounded table).
    """

    def refused(source: Addr, username: str) -> None:
        on_auth_failure(source, username)
        if not username:
            return
        dev = engine.snapshot().device_for_user(username)
        device = dev.name if dev is not None else username
        engine.publish(RegistrationRejected(device, "sip", host_port(*source), SIP_AUTH_FAILED))

    return refused


def registration_index(
    engine: CallEngine, bus: EventBus, locations: LocationStore, clock: Clock
) -> RegistrationIndex:
    """An index of the engine's plan, following ``bus`` from now on."""

    def lookup(device: str) -> Binding | None:
        bindings = locations.bindings(device, clock.monotonic())
        return max(bindings, key=lambda b: b.registered_at) if bindings else None

    index = RegistrationIndex(
        lambda name: engine.snapshot().device(name) is not None,
        clock.wall,
        lookup=lookup,
        generation=engine.snapshot,
    )
    index.attach(bus)
    return index


def ris_ops(
    engine: CallEngine,
    bus: EventBus,
    locations: LocationStore,
    clock: Clock,
    blocked: Callable[[str], bool] | None = None,
) -> dict[str, Handler]:
    """The ``ris_devices`` and ``ris_calls`` control ops, by name (``blocked(address)``:
    the failed-login guard's verdict on an address now)."""
    index = registration_index(engine, bus, locations, clock)

    def ris_devices(args: dict[str, Any]) -> dict[str, Any]:
        flt = DeviceFilter.parse(args)
        selection = select_devices(
            engine.snapshot().devices,
            locations.all(clock.monotonic()),
            index.histories(),
            flt,
            engine.node,
            blocked,
        )
        return selection.as_json(engine.node)

    def ris_calls(args: dict[str, Any]) -> dict[str, Any]:
        unknown = set(args) - {"device"}
        if unknown:
            raise ValueError(f"unknown argument {sorted(unknown)[0]!r}")
        device = args.get("device") or "*"
        if not isinstance(device, str) or len(device) > MAX_PATTERN:
            raise ValueError("device must be a name pattern")
        rows = select_calls(engine.active_calls(), device)
        return {"node": engine.node, "calls": [row.as_json() for row in rows]}

    return {"ris_devices": ris_devices, "ris_calls": ris_calls}
