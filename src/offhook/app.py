"""The composition root: builds a node from its settings and runs it.

One node is one process with one event loop. ``serve`` wires the parts
together: the database (plan snapshot, call records), the location store,
the core call engine and its event bus, the SIP stack (transport,
transaction layer, registrar, digest, endpoint), the SCCP listener for
Cisco phones (``sccp.aio``, its handler ``sccp.endpoint``), phone provisioning
(``tftp.provision``: TFTP and HTTP serving the plan's cnf.xml files) and the
local control endpoint (``ris.control`` on ``[admin]``, its ops in
``node_control``: ``offhook status`` and the web process ask it for live
state and live commands). Nothing else constructs these.
Trunk supervision (``sip.trunks.TrunkMonitor``: OPTIONS pings, trunk
registration) is fed the plan's trunks at start and on every reload; the
engine asks it whether a trunk is up before offering it a call.

The SCCP side (the listener, its handler, auto-registered phones:
:class:`node_sccp.AutoDevices`) is wired in ``node_sccp``; ``offhook
status`` reads the control endpoint through ``ris.status_view``.

Off the hot path: the plan snapshot is reloaded when the database's
``plan_version`` changes (polled once a second in a worker thread), and
call records are written in batches from a queue by a worker thread, so no
SIP message ever waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from offhook import gc_policy
from offhook.children import ChildSupervisor
from offhook.common import logsetup
from offhook.common.addr import canonical, host_port
from offhook.common.location import Binding, MemoryLocationStore
from offhook.config import Settings
from offhook.core.bus import EventBus
from offhook.core.dialplan.model import Trunk
from offhook.core.directory import PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.features.cti_devices import CTI_PROTOCOL, install_cti_devices
from offhook.core.overload import OverloadControl
from offhook.core.records import (
    CallEnded,
    CallRecord,
    RegistrationChanged,
    RegistrationRejected,
)
from offhook.core.routing import NODE_PROTOCOL
from offhook.db.autoreg import (
    AutoRegistrationWriter,
)
from offhook.db.cdr import CdrRepository, CdrWriter
from offhook.db.engine import create_engine_for
from offhook.db.feature_state import FEATURE_EVENTS, FeatureSettingsWriter, load_feature_events
from offhook.db.snapshot import load_snapshot, plan_version
from offhook.media.bridge import FamilyBridge
from offhook.net.acl import AllowList
from offhook.net.authguard import AuthGuard, PeerGate, source_key
from offhook.net.bindings import describe
from offhook.net.counters import RejectionCounters
from offhook.net.guard import ListenerLimits
from offhook.net.trunk_admission import TrunkSource, TrunkTable
from offhook.node_cdr import cdr_row, iso, utc
from offhook.node_control import control_ops
from offhook.node_cti import NodeCti
from offhook.node_fd import raise_fd_limit as raise_fd_limit  # the CLI and tests
from offhook.node_media import MediaPlane, start_media
from offhook.node_overload import NodeOverload
from offhook.node_reload import NodeReload
from offhook.node_ris import ris_ops, sip_register_refused
from offhook.node_sccp import AutoDevices, start_sccp
from offhook.node_sccp import with_auto_registrations as with_auto_registrations  # for the CLI
from offhook.node_sip import start_sip_events
from offhook.node_web import start_web
from offhook.ris.control import ControlServer
from offhook.ris.metrics import NodeMetrics
from offhook.ris.status_view import print_status as print_status  # ``offhook status``
from offhook.sccp.aio import SccpListener
from offhook.sip.aio import SipTransport, TransportLimits
from offhook.sip.auth import Credentials, DigestAuthenticator
from offhook.sip.endpoint import Caller, SipEndpoint, TrunkPeer
from offhook.sip.registrar import Registrar
from offhook.sip.session_timer import SessionTimerSettings
from offhook.sip.shed_peek import shed_datagram
from offhook.sip.subscriptions import Limits
from offhook.sip.timers import TimerConfig
from offhook.sip.transaction import TransactionLayer
from offhook.sip.trunks import TrunkMonitor, TrunkTarget
from offhook.tftp.provision import Provisioning
from offhook.workers.context import WorkerContext as Worker
from offhook.workers.node_leg import NodeLegFactory, held_here_or_there
from offhook.workers.replica import ReplicatedLocationStore
from offhook.workers.supervisor import serve as serve_workers

log = logging.getLogger("offhook")

PLAN_POLL_SECONDS = 1.0
CDR_BATCH = 500


class LoopClock:
    """The Clock the core and SIP use: the loop's monotonic time, and wall time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def monotonic(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        return time.time()


class SnapshotCredentials:
    """Digest credentials and caller identity read from the current plan snapshot."""

    def __init__(self, node: Node, table: TrunkTable | None = None) -> None:
        self._node = node
        # The trunks by source address, with their limits (the SIP transport reads it too).
        self.table = table if table is not None else TrunkTable()
        self._peers: dict[str, TrunkPeer] = {}
        self._trunks_indexed: object = None

    @property
    def resolve_cached(self) -> Callable[[str], str | None] | None:
        """The SIP transport's name cache: a trunk named by a host name is
        recognised by the address its name resolved to (and its port)."""
        return self.table.resolve_cached

    @resolve_cached.setter
    def resolve_cached(self, value: Callable[[str], str | None] | None) -> None:
        self.table.resolve_cached = value

    def credentials(self, username: str) -> Credentials | None:
        dev = self._node.snapshot.device_for_user(username)
        if dev is None or dev.protocol != "sip":
            return None
        return Credentials(
            username=username,
            device=dev.name,
            realm=dev.realm,
            ha1_md5=dev.ha1_md5,
            ha1_sha256=dev.ha1_sha256,
            dns=tuple(line.dn for line in dev.lines),
        )

    def trunk_for(self, addr: tuple[str, int]) -> TrunkPeer | None:
        """The trunk a request from ``addr`` belongs to, if any.

        A trunk with ``inbound_addresses`` accepts calls from any port of those
        networks; without them, only from its own host and port (so that a
        phone on the same host as a trunk peer still has to authenticate).
        """
        self.refresh_trunks()
        quota = self.table.match(addr)
        return None if quota is None else self._peers.get(quota.name)

    def refresh_trunks(self) -> None:
        """Index the plan's trunks again if they changed (``net.trunk_admission``)."""
        trunks = self._node.snapshot.dialplan_spec.trunks
        if self._trunks_indexed is not trunks:
            self._index_trunks(trunks)

    def _index_trunks(self, trunks: Sequence[Trunk]) -> None:
        """Trunks by exact address (canonical IP, port) and by inbound networks."""
        self.table.rebuild(
            (
                TrunkSource(
                    t.name, t.host, t.port, tuple(t.inbound_addresses), t.max_calls, t.max_cps
                )
                for t in trunks
            ),
            warn=lambda name, why: log.warning("trunk %s: %s", name, why),
        )
        self._peers = {
            t.name: TrunkPeer(t.name, t.css, t.max_calls, self.table.quota(t.name)) for t in trunks
        }
        self._trunks_indexed = trunks

    def caller_of(self, device: str) -> Caller | None:
        dev = self._node.snapshot.device(device)
        if dev is None:
            return None
        if dev.lines:
            return Caller(dev.lines[0].dn, dev.lines[0].display or dev.display)
        return Caller(dev.name, dev.display)


def trunk_targets(snapshot: PlanSnapshot) -> list[TrunkTarget]:
    """The plan's SIP trunks as the trunk monitor sees them."""
    return [
        TrunkTarget(
            name=t.name,
            host=_trunk_host(t.host),
            port=t.port,
            transport=t.transport,
            options_ping=t.options_ping,
            register=t.register,
            username=t.username,
            password=t.password,
        )
        for t in snapshot.dialplan_spec.trunks
        if t.protocol == "sip"
    ]


def _trunk_host(host: str) -> str:
    """An IP literal in the one written form (rows loaded before the plan checked it)."""
    try:
        return canonical(host)
    except ValueError:
        return host


@dataclass
class Node:
    settings: Settings
    snapshot: PlanSnapshot = field(default_factory=PlanSnapshot)
    # The plan as the database has it; ``snapshot`` adds auto-registered phones.
    plan: PlanSnapshot = field(default_factory=PlanSnapshot)
    started: float = field(default_factory=time.time)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Ended calls to the database, by a thread, in batches (db.cdr.CdrWriter).
    cdr_writer: CdrWriter[CallRecord] | None = None
    sip_port: int = 0
    sccp_port: int = 0
    admin_port: int = 0
    autoreg_writer: AutoRegistrationWriter | None = None
    media_bridge: FamilyBridge | None = None
    media_plane: MediaPlane | None = None
    overload: OverloadControl | None = None  # [overload]: asked before each new call


def setup_logging(settings: Settings) -> None:
    logsetup.setup_logging(settings.log.level, settings.log.format)


async def run(
    settings: Settings,
    ready: asyncio.Event | None = None,
    *,
    config_path: Path | None = None,
    web_child: bool = False,
    worker: Worker | None = None,
) -> None:
    """Run a node until SIGTERM/SIGINT (or ``node.stopping`` is set).

    ``config_path``: the settings file, for the child processes (media
    server, web). ``web_child``: run the web process as a child (``offhook
    serve`` does when ``[web] enabled``; a node run in-process does not).
    """
    loop = asyncio.get_running_loop()
    node = Node(settings)
    db = create_engine_for(settings.database.url)
    node.plan = node.snapshot = await asyncio.to_thread(load_snapshot, db)
    auto_devices = AutoDevices(node)
    auto_devices.refresh()
    log.info(
        "plan loaded: %d devices, %d numbers (version %d)",
        len(node.snapshot.devices),
        len(node.snapshot.dns),
        node.snapshot.version,
    )
    clock = LoopClock(loop)
    bus = EventBus()
    locations = MemoryLocationStore() if worker is None else worker.locations(loop.time)
    trunks = TrunkMonitor()
    engine = CallEngine(
        lambda: node.snapshot,
        locations,
        clock,
        bus,
        node=settings.node.name,
        trunk_up=trunks.is_up,
    )
    engine.hold_reversion = settings.features.hold_reversion or None
    engine.adhoc_max_parties = settings.features.adhoc_max_parties
    engine.adhoc_drop = settings.features.adhoc_drop
    engine.inband_ringback = settings.features.inband_ringback
    engine.inband_progress = settings.features.inband_progress
    engine.codes = settings.features.codes()
    engine.cfna_timer = settings.features.cfna_timer
    engine.max_forward_hops = settings.features.max_forward_hops
    cdr_writer = node.cdr_writer = CdrWriter(CdrRepository(db), cdr_row, batch=CDR_BATCH)
    bus.subscribe(CallEnded, partial(record_call, cdr_writer))
    # What phones set (forward all, DND, hunt login) and MWI: stored like CDRs, off the
    # call path, and given back before any listener starts.
    feature_store = FeatureSettingsWriter(db)
    record: Callable[[Any], None] = feature_store.record
    if worker is not None:  # another worker's settings: that worker stores them
        record = worker.unless_adopted(record)
    for kind in FEATURE_EVENTS:
        bus.subscribe(kind, record)
    engine.features.restore(await asyncio.to_thread(load_feature_events, db, node.snapshot))

    counters = RejectionCounters()
    auth_gate = PeerGate(auth_guard(settings, worker), loop.time)

    def on_auth_failure(source: tuple[str, int], username: str) -> None:
        counters.increment("sip", "auth_failed")
        auth_gate.failure(source, username)

    sip = settings.sip
    authenticator = DigestAuthenticator(
        settings.auth.key, sip.realm, algorithms=tuple(sip.digest_algorithms)
    )
    creds = SnapshotCredentials(node, TrunkTable(sip.rate_per_source, sip.rate_burst))
    sip_registered: set[str] = set()  # SIP devices with a binding (bounded by the plan)

    def registration_changed(device: str, *_: list[Binding]) -> None:
        """Publish a SIP device's first binding, and its last one going."""
        registered = bool(locations.bindings(device, loop.time()))
        if registered != (device in sip_registered):
            (sip_registered.add if registered else sip_registered.discard)(device)
            bus.publish(RegistrationChanged(device, "sip", registered))

    if isinstance(locations, ReplicatedLocationStore):  # another worker's registrations too
        locations.on_applied = registration_changed
    registrar = Registrar(
        authenticator,
        creds,
        locations,
        min_expires=sip.min_expires,
        max_expires=sip.max_expires,
        default_expires=min(3600, sip.max_expires),
        on_auth_failure=sip_register_refused(engine, on_auth_failure),  # + RegistrationRejected
        on_refused=lambda source, device, reason: engine.publish(
            RegistrationRejected(device, "sip", host_port(*source), reason)
        ),
        node=settings.node.name,
        on_change=registration_changed,
    )
    allow = AllowList(sip.allow)
    endpoint_ref: list[SipEndpoint] = []
    transport = SipTransport(
        on_message=lambda msg, addr, t: endpoint_ref[0].on_message(msg, addr, t),
        allow=allow.allows,
        reject=lambda reason, peer: counters.increment("sip", reason),
        limits=TransportLimits.of(sip),
    )
    try:
        socks = worker.udp_sockets if worker else ()  # a worker's: the supervisor's groups
        listeners = worker.tcp_sockets if worker else ()
        _, port = await transport.start(
            sip.listen, sip.port, sip.udp, sip.tcp, socks, tcp_sockets=listeners
        )
    except OSError as exc:
        where = describe(sip.listen, sip.port)
        raise OSError(exc.errno, f"SIP cannot listen on {where} ({exc.strerror or exc})") from exc
    node.sip_port = port
    creds.resolve_cached = transport.cached
    creds.refresh_trunks()
    transport.trunks = creds.table  # trunks' datagrams: their own buckets
    advertised = {v: h for v in sorted(transport.families) if (h := sip.advertised(v))}
    bridge: FamilyBridge | None = None
    if settings.media.bridge and len(advertised) > 1:
        bridge = FamilyBridge(
            advertised,
            settings.media.port_range,
            settings.media.max_streams,
            count=lambda reason, n: counters.increment("media", reason, n),
        )
        node.media_bridge = bridge
        bus.subscribe(CallEnded, lambda ev: bridge.end(ev.record.call_id))
    endpoint = SipEndpoint(
        engine=engine,
        registrar=registrar,
        authenticator=authenticator,
        credentials=creds,
        caller_of=creds.caller_of,
        txl=TransactionLayer(TimerConfig(t1=sip.t1)),
        send=transport.send,
        clock=clock,
        host=sip.advertised_host,
        port=port,
        on_auth_failure=on_auth_failure,
        auth_gate=auth_gate,
        trunk_for=creds.trunk_for,
        trunks=trunks,
        hosts=advertised,
        resolve_cached=transport.cached,
        prefetch=transport.prefetch,
        bridge=bridge,
        session_timers=(
            SessionTimerSettings(sip.session_expires, sip.min_se) if sip.session_expires else None
        ),
    )
    endpoint_ref.append(endpoint)
    if worker is not None:  # [node] workers > 1: marked ids, the bus (offhook.workers)
        endpoint.ids = worker.ids
        worker.share_state(engine, bus)  # busy lamps and feature settings, before the tables
        await worker.attach(transport)
        worker.share_account_failures(auth_gate.guard, loop.time)
    # Overload control (node_overload): new calls shed before digest or routing.
    overload = NodeOverload(
        settings.overload,
        loop,
        pending=lambda: sum(1 for leg in endpoint.inbound_by_key.values() if not leg.answered),
        sockets=lambda: [t.get_extra_info("socket") for _, t in transport.udp_endpoints],
    )
    # Attached even when off: it sheds nothing then, and a reload may turn it on.
    endpoint.overload = node.overload = overload.control
    transport.peek = lambda data, addr: shed_datagram(endpoint, data, addr)  # sheds unparsed
    sip_events = start_sip_events(
        endpoint,
        engine,
        bus,
        locations,
        lambda: node.snapshot,
        min_expires=sip.min_expires,
        max_expires=sip.max_expires,
        limits=Limits(per_device=sip.max_subscriptions_per_device, total=sip.max_subscriptions),
    )
    endpoint.configure_trunks(trunk_targets(node.snapshot))
    log.info(
        "SIP listening on %s (udp=%s tcp=%s; advertised %s)",
        ", ".join(host_port(h, port) for h in sip.listen),
        sip.udp,
        sip.tcp,
        ", ".join(f"IPv{v} {h}" for v, h in advertised.items()),
    )

    # SCCP (Skinny) phones: core, so a port it cannot bind fails the start.
    sccp_listener: SccpListener | None = None
    if settings.sccp.enabled:
        sccp_sockets = worker.sccp_sockets if worker is not None else ()
        sccp_listener = await start_sccp(
            node, engine, locations, counters, auto_devices, db, sccp_sockets
        )
    if worker is not None:  # what another worker does for this one's calls (node legs)
        node_legs = NodeLegFactory(endpoint, worker.index)
        engine.register_factory(NODE_PROTOCOL, node_legs)  # pickups, park retrievals
        # SCCP phones another worker holds are called through it.
        engine.register_factory("sccp", held_here_or_there(engine.factory("sccp"), node_legs))

    # Phone provisioning (TFTP + HTTP): a port it cannot bind is logged, not fatal.
    provisioning: Provisioning | None = None
    if settings.tftp.enabled:
        provisioning = Provisioning(
            settings, lambda: node.snapshot, counters, sccp_port=lambda: node.sccp_port
        )
        await provisioning.start()

    media_plane: MediaPlane | None = None  # started last (below)
    web: ChildSupervisor | None = None  # likewise
    cti: NodeCti | None = None  # with the admin endpoint (below)

    def status() -> dict[str, Any]:
        now = loop.time()
        return {
            "node": settings.node.name,
            "pid": os.getpid(),
            "started": utc(node.started).isoformat(),
            "uptime": round(time.time() - node.started, 1),
            "plan_version": node.snapshot.version,
            "sip": {
                "listen": sip.listen,
                "port": port,
                "advertised_host": sip.advertised_host,
                "advertised": {f"ipv{v}": h for v, h in advertised.items()},
            },
            "registrations": [
                {
                    "device": b.device,
                    "protocol": b.protocol,
                    "aor": b.aor,
                    "contact": b.contact,
                    "source": host_port(*b.source),
                    "transport": b.transport,
                    # A CTI device's binding never expires: no countdown.
                    "expires_in": (
                        None if b.protocol == CTI_PROTOCOL else max(0, round(b.expires_at - now))
                    ),
                    "user_agent": b.user_agent,
                }
                for b in sorted(locations.all(now), key=lambda b: (b.device, b.contact))
            ],
            "calls": engine.snapshot_state(),
            "trunks": [
                {**row, "last_change": iso(row["last_change"])}
                for row in trunks.status(now, time.time())
            ],
            "trunk_limits": creds.table.status(),
            "tftp": provisioning.status() if provisioning is not None else None,
            "sccp": (
                {"listen": settings.sccp.listen, "port": node.sccp_port, **sccp_listener.status()}
                if sccp_listener is not None
                else None
            ),
            "auth": auth_gate.status(),
            # Open connections and per-source entries each listener holds now.
            "listeners": {
                "sip": transport.status(),
                "sccp": sccp_listener.guard.status() if sccp_listener is not None else None,
                **(provisioning.listeners() if provisioning is not None else {}),
                "admin": admin.status() if admin is not None else None,
            },
            "counters": {
                "rejections": counters.snapshot(),
                "sip": dict(endpoint.counters),
                "transactions": len(endpoint.txl),
                "dialogs": len(endpoint.dialogs),
                "pending_invites": len(endpoint.inbound_by_key),
                "client_requests": len(endpoint.client_owner),
                "cdrs_written": cdr_writer.written,
                "cdrs_pending": cdr_writer.pending,
                "cdrs_dropped": cdr_writer.dropped,
            },
            "media_bridge": bridge.status() if bridge is not None else None,
            "media_server": media_plane.status() if media_plane is not None else None,
            "web": web.status() if web is not None else None,
            "subscriptions": sip_events.status(),
            "cti": cti.status() if cti is not None else None,
            "overload": overload.status(),
            "worker": worker.status() if worker is not None else None,
        }

    # Metrics, readiness (control ops metrics, ready) and the call log (ris.metrics).
    metrics = NodeMetrics.of_node(bus, settings, loop.time).watch(
        bindings=locations,
        rejections=counters,
        auth=auth_gate,
        sip=transport,
        sccp=sccp_listener,
        provisioning=provisioning,
        admin=lambda: admin,
        media=lambda: media_plane,
        cti=lambda: cti,
        trunks=creds.table.status,
    )
    metrics.registry.register(overload.collector())
    admin: ControlServer | None = None
    if settings.admin.enabled:
        # CTI (node_cti): the event journal over the bus, its stream and commands.
        cti = NodeCti(
            engine, bus, locations, clock, node=settings.node.name, first_id=int(node.started * 1e6)
        )
        admin = ControlServer(
            control_ops(engine, status)
            | ris_ops(
                engine,
                bus,
                locations,
                clock,
                lambda host: auth_gate.guard.is_blocked(source_key(host), auth_gate.clock()),
            )
            | cti.ops()
            | metrics.ops()
            | overload.ops(),
            allow=AllowList(settings.admin.allow).allows,
            reject=lambda reason, peer: counters.increment("admin", reason),
            limits=ListenerLimits.of(settings.admin),
        )
        try:
            node.admin_port = await admin.start(settings.admin.listen, settings.admin.port)
        except OSError as exc:
            where = describe(settings.admin.listen, settings.admin.port)
            raise OSError(
                exc.errno, f"the admin endpoint cannot listen on {where} ({exc.strerror or exc})"
            ) from exc
        log.info(
            "admin endpoint on %s (control: %s)",
            describe(settings.admin.listen, node.admin_port),
            ", ".join(sorted(admin.handlers)),
        )

    # CTI route points and ports: bound like registered phones, as the plan says.
    install_cti_devices(engine, locations, node.snapshot, registered_at=time.time())

    async def poll_plan() -> None:
        while True:
            await asyncio.sleep(PLAN_POLL_SECONDS)
            try:
                version = await asyncio.to_thread(plan_version, db)
                if version != node.plan.version:
                    node.plan = await asyncio.to_thread(load_snapshot, db)
                    auto_devices.refresh()
                    install_cti_devices(engine, locations, node.snapshot, registered_at=time.time())
                    log.info("plan reloaded (version %d)", node.snapshot.version)
                    endpoint.configure_trunks(trunk_targets(node.snapshot))
                    creds.refresh_trunks()
                    if media_plane is not None:
                        media_plane.plan_changed(node.snapshot)
            except Exception:
                log.exception("plan reload failed; keeping the current plan")

    # Feature settings (CDRs have their own writer thread). One flush at a time,
    # and never cut short: a write runs in a thread that cancelling cannot stop.
    flush_lock = asyncio.Lock()

    async def write_features() -> None:
        while True:
            await asyncio.sleep(0.2)
            await asyncio.shield(flush_features())

    async def flush_features() -> None:
        async with flush_lock:
            if feature_store.pending:
                await asyncio.to_thread(feature_store.flush)

    async def engine_timers() -> None:
        # The SIP endpoint re-arms call control's timer as it works; this
        # catches timers (ring timeouts, hold reversion) of calls without SIP.
        while True:
            await asyncio.sleep(0.5)
            due = engine.next_timer()
            if due is not None and due <= loop.time():
                engine.handle_timer(loop.time())

    async def expire_bindings() -> None:
        while True:
            await asyncio.sleep(5.0)
            for b in registrar.expire(loop.time()):
                log.info("registration of %s at %s expired", b.device, b.contact)
                registration_changed(b.device)

    # The media server (music on hold, bridges): a child process, never in this
    # loop; started once every listener is bound (a port in use fails the start
    # before any child exists).
    media_plane = await start_media(
        settings, engine, lambda: node.snapshot, advertised, config_path or settings.source
    )
    node.media_plane = media_plane
    if web_child:
        web = await start_web(settings, config_path or settings.source)

    tasks = [
        asyncio.create_task(poll_plan()),
        asyncio.create_task(write_features()),
        asyncio.create_task(expire_bindings()),
        asyncio.create_task(engine_timers()),
    ]
    overload.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, node.stopping.set)
    # SIGHUP: the settings file again; what can change live does (node_reload).
    NodeReload(
        settings,
        config_path or settings.source,
        sip=transport,
        sccp=sccp_listener,
        admin=admin,
        provisioning=provisioning,
        auth=auth_gate.guard,
        overload=overload,
        web=lambda: web,
    ).install(loop)
    if ready is not None:
        ready.set()
    try:
        await node.stopping.wait()
    finally:
        log.info("stopping")
        if web is not None:
            await web.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await overload.stop()
        for call_id in [c["call_id"] for c in engine.snapshot_state().get("calls", [])]:
            engine.release_call(call_id, 16)
        endpoint.flush()
        if sccp_listener is not None:
            await sccp_listener.close()
        if node.autoreg_writer is not None:
            await asyncio.to_thread(node.autoreg_writer.close)
        await asyncio.sleep(0.05)
        await flush_features()
        await asyncio.to_thread(cdr_writer.close)  # writes every queued record first
        await transport.close()
        if media_plane is not None:
            await media_plane.stop()
        if bridge is not None:
            bridge.close()
        if provisioning is not None:
            await provisioning.close()
        if admin is not None:
            await admin.close()
        db.dispose()


def serve(settings: Settings, config_path: Path | None = None, worker: Worker | None = None) -> int:
    """Entry point of ``offhook serve`` (N > 1 workers: ``workers.supervisor``), and of a worker."""
    setup_logging(settings)
    if worker is None and settings.node.workers > 1:
        return serve_workers(settings, config_path)
    raise_fd_limit(settings)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    gc.set_threshold(*gc_policy.THRESHOLDS)

    async def main() -> None:
        ready = asyncio.Event()
        node = asyncio.create_task(
            run(
                settings,
                ready,
                config_path=config_path,
                web_child=settings.web.enabled,
                worker=worker,
            )
        )
        started = asyncio.create_task(ready.wait())
        await asyncio.wait({node, started}, return_when=asyncio.FIRST_COMPLETED)
        collections: asyncio.Task[None] | None = None
        if ready.is_set():
            gc_policy.freeze_start_up()
            collections = asyncio.create_task(gc_policy.FullCollections().run())
        started.cancel()
        try:
            await node
        finally:
            if collections is not None:
                collections.cancel()

    try:
        asyncio.run(main())
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


def record_call(writer: CdrWriter[CallRecord], event: CallEnded) -> None:
    """The call's CDR, unless it is a node leg's far half (another worker records it)."""
    if not event.record.internal:
        writer.submit(event.record)


def auth_guard(settings: Settings, worker: Worker | None = None) -> AuthGuard:
    """The failed-login guard of ``[auth]`` (shared by every listener that authenticates).

    A worker's shares its account counts with the others; worker 0 leads (logs
    the alerts the others' failures bring about)."""
    if worker is None:
        return AuthGuard(settings.auth.policy())
    return AuthGuard(settings.auth.policy(), share_accounts=True, lead=worker.index == 0)
