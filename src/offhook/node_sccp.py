"""The SCCP side of the composition root: phones of the plan and auto-registered ones.

``start_sccp`` builds the SCCP listener (``sccp.aio``) with its call handler
(``sccp.endpoint``, also the engine's leg factory for SCCP bindings), the
lookup of a registering phone's profile in the plan, and auto-registration
(``[sccp] auto_register``). Auto-registered phones are not in the plan:
their DNs are stored apart (``db.autoreg``, given back at the next start)
and :class:`AutoDevices` keeps them as devices of their own (one line in
``auto_register_partition``, dialing with ``auto_register_css``);
``node.snapshot`` is the database's plan (``node.plan``) with them added,
rebuilt when one is assigned and when the plan reloads. Only ``app``
calls this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from offhook.common.addr import host_port
from offhook.common.location import MemoryLocationStore
from offhook.config import SccpSettings, Settings
from offhook.core.dialplan.router import DialPlanError
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot, with_devices
from offhook.core.engine import CallEngine
from offhook.core.records import RegistrationRejected
from offhook.db.autoreg import (
    AutoRegistrationWriter,
    drop_auto_registrations,
    load_auto_registrations,
)
from offhook.net.acl import AllowList
from offhook.net.bindings import describe
from offhook.net.counters import RejectionCounters
from offhook.sccp.aio import SccpLimits, SccpListener
from offhook.sccp.autoreg import DEFAULT_MODEL, AutoRegistrar, auto_profile
from offhook.sccp.device import DeviceProfile

if TYPE_CHECKING:
    from offhook.app import Node
    from offhook.sccp.endpoint import SccpEndpoint

log = logging.getLogger("offhook")


def sccp_profile(dev: DeviceInfo) -> DeviceProfile:
    """What the SCCP session needs of a plan device: model, lines, speed dials."""
    return DeviceProfile(
        dev.name,
        dev.model or DEFAULT_MODEL,
        lines=tuple((line.dn, line.display or dev.display) for line in dev.lines),
        speed_dials=tuple((sd.number, sd.label) for sd in dev.speed_dials),
    )


def sccp_lookup(node: Node) -> Callable[[str], DeviceProfile | None]:
    """Device name -> profile, from the database's plan (SCCP devices only).

    Auto-registered phones are in ``node.snapshot`` but not in ``node.plan``:
    their profile comes from the auto-registrar, which takes a DN back when
    the plan has given it to a device.
    """

    def lookup(name: str) -> DeviceProfile | None:
        dev = node.plan.device(name)
        if dev is None or dev.protocol != "sccp":
            return None
        return sccp_profile(dev)

    return lookup


def auto_device(sccp: SccpSettings, profile: DeviceProfile) -> DeviceInfo:
    """An auto-registered phone as a device: its line in ``auto_register_partition``,
    dialing with ``auto_register_css``."""
    return DeviceInfo(
        name=profile.name,
        protocol="sccp",
        lines=tuple(
            LineInfo(dn, display, sccp.auto_register_partition) for dn, display in profile.lines
        ),
        css=sccp.auto_register_css,
        model=profile.model,
    )


def with_auto_registrations(plan: PlanSnapshot, settings: Settings, db: Engine) -> PlanSnapshot:
    """``plan`` with the stored auto-registered phones (for tools such as ``offhook dna``)."""
    if not settings.sccp.auto_register:
        return plan
    rows = load_auto_registrations(db)
    return with_devices(
        plan,
        (auto_device(settings.sccp, auto_profile(r.name, r.dn, r.model)) for r in rows),
    )


AUTO_REBUILD_SHARE = 0.3
"""Most of the loop's time rebuilding the snapshot for auto-registered phones."""


class AutoDevices:
    """Auto-registered SCCP phones, added to the database's plan in ``node.snapshot``.

    Each phone is a :class:`DeviceInfo` (protocol sccp, its model, one line
    ``Auto <dn>`` in ``[sccp] auto_register_partition``, CSS
    ``auto_register_css``), so that it can be called and dials within its
    CSS. :meth:`changed` (the auto-registrar's callback) rebuilds the snapshot
    at once, except during a registration storm: a rebuild costs time in
    proportion to the plan, so the next one waits until the loop has spent at
    most ``AUTO_REBUILD_SHARE`` of its time rebuilding, and one rebuild then
    takes in every phone assigned meanwhile. :meth:`refresh` (plan reload)
    rebuilds at once. Bounded by the auto-registrar (at most its range or
    ``MAX_ENTRIES`` phones).
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self.devices: dict[str, DeviceInfo] = {}
        self._next = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._problems: tuple[str, ...] = ()

    def changed(self, name: str, profile: DeviceProfile | None) -> None:
        if profile is None:
            self.devices.pop(name, None)
        else:
            self.devices[name] = auto_device(self._node.settings.sccp, profile)
        if self._pending is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._next - loop.time()
        if delay <= 0:
            self.refresh()
        else:
            self._pending = loop.call_later(delay, self.refresh)

    def refresh(self) -> None:
        """``node.snapshot`` = ``node.plan`` + the auto-registered phones, now."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        node = self._node
        self._check(node.plan)
        if not self.devices:
            node.snapshot = node.plan
            return
        t0 = time.perf_counter()
        try:
            node.snapshot = with_devices(node.plan, self.devices.values())
        except DialPlanError as exc:
            log.warning("auto-registered phones cannot be called: %s", exc)
            unrouted = [
                DeviceInfo(d.name, d.protocol, lines=(), css=d.css, model=d.model)
                for d in self.devices.values()
            ]
            node.snapshot = with_devices(node.plan, unrouted)
        cost = time.perf_counter() - t0
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            self._next = loop.time() + cost * (1 - AUTO_REBUILD_SHARE) / AUTO_REBUILD_SHARE

    def _check(self, plan: PlanSnapshot) -> None:
        """Log, once per change, settings that name what the plan does not have."""
        sccp = self._node.settings.sccp
        if not sccp.auto_register:
            return
        spec = plan.dialplan_spec
        problems: list[str] = []
        partition = sccp.auto_register_partition
        if partition and partition not in spec.partitions:
            problems.append(
                f"[sccp] auto_register_partition {partition!r} is not a partition of the plan:"
                " auto-registered phones cannot be called"
            )
        css = sccp.auto_register_css
        if css and css not in {c.name for c in spec.calling_search_spaces}:
            problems.append(
                f"[sccp] auto_register_css {css!r} is not a calling search space of the plan:"
                " auto-registered phones reach the null partition only"
            )
        if tuple(problems) != self._problems:
            self._problems = tuple(problems)
            for problem in problems:
                log.warning("%s", problem)


def make_sccp_handler(engine: CallEngine, node: Node) -> SccpEndpoint:
    """The call side of the SCCP listener: the endpoint, also the engine's leg factory
    (and what phones show of the engine's call coverage events)."""
    from offhook.sccp.endpoint import SccpEndpoint

    handler = SccpEndpoint(
        engine,
        lambda: node.snapshot,
        t302=node.settings.dialplan.t302,
        bridge=node.media_bridge,
        overload=node.overload,
    )
    engine.register_factory("sccp", handler)
    return handler


async def restore_auto_registrations(
    auto: AutoRegistrar, db: Engine, node: Node, auto_devices: AutoDevices | None
) -> None:
    """Give the phones auto-registered before this start their DNs back.

    Kept assignments become devices of the snapshot at once (their numbers
    exist, their phones not registered yet); stored rows the registrar does
    not keep (the plan has the phone or its DN now, the range changed) go.
    """
    rows = await asyncio.to_thread(load_auto_registrations, db)
    candidates = [r for r in rows if node.plan.device(r.name) is None]
    kept = set(auto.restore((r.name, r.dn) for r in candidates))
    stale = [r.name for r in rows if r.name not in kept]
    if stale:
        await asyncio.to_thread(drop_auto_registrations, db, stale)
    for r in rows:
        if r.name in kept and auto_devices is not None:
            auto_devices.changed(r.name, auto_profile(r.name, r.dn, r.model))
    if rows:
        log.info(
            "auto-registration: %d phones keep their DN, %d stored entries dropped",
            len(kept),
            len(stale),
        )


async def start_sccp(
    node: Node,
    engine: CallEngine,
    locations: MemoryLocationStore,
    counters: RejectionCounters,
    auto_devices: AutoDevices | None = None,
    db: Engine | None = None,
    sockets: Sequence[socket.socket] = (),
) -> SccpListener:
    """Start the SCCP listener ([sccp]); a port it cannot bind fails the start.

    With ``db``, auto-registrations are stored there and restored from it
    (``node.autoreg_writer`` writes them; the caller closes it). ``sockets``:
    listeners to accept on instead of binding (a worker's, ``offhook.workers``).
    """
    sccp = node.settings.sccp
    auto = None
    if sccp.auto_register:
        writer = AutoRegistrationWriter(db) if db is not None else None
        node.autoreg_writer = writer

        def changed(name: str, profile: DeviceProfile | None) -> None:
            if auto_devices is not None:
                auto_devices.changed(name, profile)
            if writer is not None:
                if profile is None:
                    writer.drop([name])
                else:
                    writer.save(name, profile.lines[0][0], profile.model)

        auto = AutoRegistrar(
            sccp.auto_register, taken=lambda dn: dn in node.plan.dns, on_change=changed
        )
        if db is not None:
            await restore_auto_registrations(auto, db, node, auto_devices)
    handler = make_sccp_handler(engine, node)
    listener = SccpListener(
        handler,
        sccp_lookup(node),
        locations,
        AllowList(sccp.allow).allows,
        reject=lambda reason, peer: counters.increment("sccp", reason),
        limits=SccpLimits(
            max_message=sccp.max_message,
            keepalive=sccp.keepalive,
            register_timeout=sccp.register_timeout,
            max_connections=sccp.max_connections,
            max_connections_per_source=sccp.max_connections_per_source,
            idle_timeout=sccp.idle_timeout,
            handshake_timeout=sccp.handshake_timeout,
            rate_per_source=sccp.rate_per_source,
            rate_burst=sccp.rate_burst,
        ),
        auto_register=auto,
        node=node.settings.node.name,
        server_name=node.settings.node.name,
        forwards=handler.coverage.forwards,
        on_rejected=lambda name, reason, peer: engine.publish(
            RegistrationRejected(name, "sccp", host_port(*peer), reason)
        ),
    )
    try:
        _, node.sccp_port = await listener.start(sccp.listen, sccp.port, sockets)
    except OSError as exc:
        where = describe(sccp.listen, sccp.port)
        raise OSError(exc.errno, f"SCCP cannot listen on {where}: {exc.strerror or exc}") from exc
    log.info("SCCP listening on %s", describe(sccp.listen, node.sccp_port))
    return listener
