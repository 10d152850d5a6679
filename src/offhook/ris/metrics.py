"""The node's Prometheus metrics: one registry per node, the control op ``metrics``, readiness.

Theory of operation. ``NodeMetrics`` owns a ``CollectorRegistry`` of its
own (never prometheus_client's global one) holding three collectors:

- ``CallCounters``, fed by the event bus (one ``subscribe_all`` handler,
  dispatching on the event's type): call attempts (``CallStarted``),
  answers (``CallAnswered``, once per call: a parked call retrieved is not
  answered twice), calls ended and failed (ended
  unanswered) by Q.850 cause (``CallEnded``), calls up now, the setup time
  from ``CallStarted`` to the call's first ``CallAlerting`` (its first
  ringing; a call answered without ringing counts at its answer) as a
  histogram, and refused registrations by protocol and reason
  (``RegistrationRejected``). Per call it costs a dict insertion and a few
  integer additions; labels are causes, protocols and reasons, never call
  ids or devices, and every labelled table is capped (:data:`MAX_LABELS`).
  The call rate is ``rate(offhook_call_attempts_total[1m])``: no gauge
  of its own.
- the node's live state read at scrape time (``watch`` hands the parts
  over): devices registered now by protocol (the location store), open
  connections per listener, listener refusals by listener and reason
  (``net.counters.RejectionCounters``), the failed-login guard (failures,
  sources blocked and throttled now), the media servers (up, streams,
  bridges, late ticks and late packets: the ``stats`` each connected media
  server answers, asked by :meth:`NodeMetrics.exposition` with a short
  deadline, the last answer kept when none comes);
- ``ProcessCollector`` (namespace ``offhook``: CPU seconds, resident
  memory, open file descriptors of the node's process) and, for the
  embedded media server child, the same under ``offhook_media``.

``ops()`` gives the control endpoint two ops: ``metrics`` ``{}`` ->
``{"text": exposition}`` (the web process serves it on ``/metrics``
together with its own registry) and ``ready`` ``{}`` -> ``{"ready": bool,
"checks": {name: bool}}`` (``/readyz``): each listener the node runs is
bound and serving, and each configured media server is connected.
Every metric name starts with ``offhook_``.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from offhook.core.bus import EventBus
from offhook.core.causes import cause_text
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallEnded,
    CallStarted,
    RegistrationRejected,
)
from offhook.ris.control import Handler
from offhook.ris.eventlog import EventLog

if TYPE_CHECKING:
    from offhook.config import Settings

__all__ = ["SETUP_BUCKETS", "CallCounters", "NodeMetrics"]

SETUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds from call start to ringing (the histogram's upper bounds)."""
MAX_LABELS = 256
"""Distinct label values a labelled counter keeps at most (the rest go to ``other``)."""
MAX_LIVE_CALLS = 1_000_000
"""Calls tracked for their setup time at most (a missed ``CallEnded`` cannot leak)."""
MEDIA_STATS_TIMEOUT = 1.0
"""Seconds a scrape waits for the media servers' ``stats``."""
MEDIA_COUNTERS = {
    "late_ticks": "20 ms media ticks that ran late (their packets left late)",
    "skipped_ticks": "Media ticks skipped because the media server fell behind",
    "jitter_late": "Received RTP packets that came after their playout time (dropped)",
    "jitter_lost": "Received RTP packets that never came (gaps in sequence numbers)",
    "rx_packets": "RTP packets received",
    "tx_packets": "RTP packets sent",
    "rtp_timeouts": "Streams whose far end went silent for rtp_timeout seconds",
    "open_refused": "Endpoint opens refused (max_streams reached, no port free)",
}
MEDIA_NAMES = {"jitter_late": "late_packets", "jitter_lost": "lost_packets"}
_RANG = -1.0
_ANSWERED = -2.0
_PROTOCOLS = ("sip", "sccp")  # always exported, 0 when none is registered


class CallCounters:
    """Call and registration counters from the event bus (see the module docstring)."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self.attempts = 0
        self.answered = 0
        self.ended: dict[int, int] = {}
        self.failed: dict[int, int] = {}
        self.setup_buckets = [0] * (len(SETUP_BUCKETS) + 1)
        self.setup_sum = 0.0
        self.setup_count = 0
        # Calls up now: call id -> its start (wall seconds) until it rings, then _RANG,
        # then _ANSWERED.
        self._live: dict[str, float] = {}
        self.rejected: dict[tuple[str, str], int] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            CallStarted: self._started,
            CallAlerting: self._alerting,
            CallAnswered: self._answered,
            CallEnded: self._ended,
            RegistrationRejected: self._rejected,
        }

    @property
    def active(self) -> int:
        return len(self._live)

    def on_event(self, event: object) -> None:
        """The bus handler (every event; those of no interest cost one dict lookup)."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _started(self, event: CallStarted) -> None:
        if event.internal:
            return  # a node leg's far half: the worker that owns the call counts it
        self.attempts += 1
        live = self._live
        if len(live) >= MAX_LIVE_CALLS:
            del live[next(iter(live))]
        live[event.call_id] = max(0.0, event.start)

    def _rang(self, call_id: str, start: float) -> None:
        """The call's setup is over (ringing, or answered first): observe it once."""
        self._live[call_id] = _RANG
        seconds = max(0.0, self._wall() - start)
        self.setup_buckets[bisect.bisect_left(SETUP_BUCKETS, seconds)] += 1
        self.setup_sum += seconds
        self.setup_count += 1

    def _alerting(self, event: CallAlerting) -> None:
        state = self._live.get(event.call_id)
        if state is not None and state >= 0:
            self._rang(event.call_id, state)

    def _answered(self, event: CallAnswered) -> None:
        state = self._live.get(event.call_id)
        if state is None or state == _ANSWERED:
            return  # a call this node never saw start, or answered again (a park retrieved)
        if state >= 0:
            self._rang(event.call_id, state)  # answered without ringing first
        self._live[event.call_id] = _ANSWERED
        self.answered += 1

    def _ended(self, event: CallEnded) -> None:
        record = event.record
        self._live.pop(record.call_id, None)
        if record.internal:
            return  # counted by the worker that records it
        _bump(self.ended, record.cause)
        if record.answer is None:
            _bump(self.failed, record.cause)

    def _rejected(self, event: RegistrationRejected) -> None:
        _bump(self.rejected, (event.protocol, event.reason))

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "offhook_call_attempts",
            "Call attempts (every call set up, routed or not); calls per second is its rate()",
            value=self.attempts,
        )
        yield CounterMetricFamily(
            "offhook_calls_answered", "Call attempts answered", value=self.answered
        )
        yield GaugeMetricFamily("offhook_calls_active", "Calls up now", value=self.active)
        for name, doc, table in (
            ("offhook_calls_ended", "Calls ended, by Q.850 cause", self.ended),
            (
                "offhook_call_failures",
                "Call attempts that ended unanswered, by Q.850 cause "
                "(busy, no answer, unallocated number, the caller giving up...)",
                self.failed,
            ),
        ):
            family = CounterMetricFamily(name, doc, labels=["cause", "cause_text"])
            for cause, count in sorted(table.items()):
                text = cause_text(cause) if cause >= 0 else "other"
                family.add_metric([str(cause) if cause >= 0 else "other", text], count)
            yield family
        cumulative, buckets = 0, []
        for bound, count in zip((*SETUP_BUCKETS, float("inf")), self.setup_buckets, strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        yield HistogramMetricFamily(
            "offhook_call_setup_seconds",
            "Seconds from a call's start (INVITE, off-hook dialled) to its first ringing",
            buckets=buckets,
            sum_value=self.setup_sum,
        )
        rejected = CounterMetricFamily(
            "offhook_registration_rejections",
            "Registrations refused, by protocol and reason",
            labels=["protocol", "reason"],
        )
        for (protocol, reason), count in sorted(self.rejected.items()):
            rejected.add_metric([protocol, reason], count)
        yield rejected


def _bump(table: dict[Any, int], key: Any) -> None:
    if key not in table and len(table) >= MAX_LABELS:
        key = -1 if isinstance(key, int) else ("other", "other")
    table[key] = table.get(key, 0) + 1


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


# --- what the node hands over (structural types: ris imports no protocol package) ---


class Bindings(Protocol):
    def all(self, now: float) -> Sequence[Any]: ...


class Rejections(Protocol):
    def snapshot(self) -> dict[str, dict[str, int]]: ...


class AuthStatus(Protocol):
    def status(self) -> dict[str, Any]: ...


class StreamListener(Protocol):
    """A listener with TCP servers and a status (``SccpListener``)."""

    @property
    def servers(self) -> Sequence[asyncio.AbstractServer]: ...

    def status(self) -> Mapping[str, Any]: ...


class SipListener(StreamListener, Protocol):
    """The SIP transport: TCP servers and UDP endpoints."""

    @property
    def udp_endpoints(self) -> Sequence[tuple[object, asyncio.BaseTransport]]: ...


class Provisioning(Protocol):
    @property
    def tftp_port(self) -> int | None: ...

    @property
    def http_port(self) -> int | None: ...

    @property
    def http(self) -> object | None: ...

    def listeners(self) -> Mapping[str, Mapping[str, int]]: ...


class AdminListener(Protocol):
    def status(self) -> Mapping[str, int]: ...


class MediaClientView(Protocol):
    @property
    def connected(self) -> bool: ...

    @property
    def handles(self) -> frozenset[str]: ...

    def stats(self, reply: Callable[[dict[str, Any] | None], None]) -> None: ...


class MediaSupervisorView(Protocol):
    @property
    def pid(self) -> int | None: ...

    @property
    def starts(self) -> int: ...


class MediaPlaneView(Protocol):
    @property
    def clients(self) -> Mapping[str, MediaClientView]: ...

    @property
    def supervisor(self) -> MediaSupervisorView | None: ...


class CtiJournalView(Protocol):
    def status(self) -> Mapping[str, int]: ...


def _nothing() -> None:
    return None


def _resolver(
    future: asyncio.Future[dict[str, Any] | None],
) -> Callable[[dict[str, Any] | None], None]:
    def reply(fields: dict[str, Any] | None) -> None:
        if not future.done():
            future.set_result(fields)

    return reply


class NodeMetrics(Collector):
    """The node's registry, its bus-fed counters and the live-state collectors."""

    def __init__(self, bus: EventBus, wall: Callable[[], float], *, node: str = "") -> None:
        self.node = node
        self.calls = CallCounters(wall)
        bus.subscribe_all(self.calls.on_event)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(namespace="offhook", registry=self.registry)
        ProcessCollector(namespace="offhook_media", pid=self._media_pid, registry=self.registry)
        self.clock: Callable[[], float] = lambda: 0.0
        self.bindings: Bindings | None = None
        self.rejections: Rejections | None = None
        self.auth: AuthStatus | None = None
        self.sip: SipListener | None = None
        self.sccp: StreamListener | None = None
        self.provisioning: Provisioning | None = None
        self.admin: Callable[[], AdminListener | None] = _nothing
        self.media: Callable[[], MediaPlaneView | None] = _nothing
        self.cti: Callable[[], CtiJournalView | None] = _nothing
        self.trunks: Callable[[], list[dict[str, Any]]] = list
        self.media_expected = False
        self.media_stats: dict[str, dict[str, Any]] = {}

    @classmethod
    def of_node(cls, bus: EventBus, settings: Settings, clock: Callable[[], float]) -> NodeMetrics:
        """The metrics of a node run with ``settings`` (``clock``: the loop's monotonic time),
        and its call log (``ris.eventlog``) on the same bus."""
        EventLog(bus, clock)
        metrics = cls(bus, time.time, node=settings.node.name)
        media = settings.media
        metrics.clock = clock
        metrics.media_expected = bool(media.embedded or media.control or media.servers)
        return metrics

    def watch(
        self,
        *,
        clock: Callable[[], float] | None = None,
        bindings: Bindings | None = None,
        rejections: Rejections | None = None,
        auth: AuthStatus | None = None,
        sip: SipListener | None = None,
        sccp: StreamListener | None = None,
        provisioning: Provisioning | None = None,
        admin: Callable[[], AdminListener | None] = _nothing,
        media: Callable[[], MediaPlaneView | None] = _nothing,
        media_expected: bool = False,
        cti: Callable[[], CtiJournalView | None] = _nothing,
        trunks: Callable[[], list[dict[str, Any]]] = list,
    ) -> NodeMetrics:
        """Hand over the node's parts read at scrape time (``admin`` and ``media``:
        callables, as they exist only later in the start-up). ``media_expected``:
        ``[media]`` asks for a media server (readiness then needs it connected;
        ``of_node`` sets it from the settings)."""
        if clock is not None:
            self.clock = clock
        self.bindings, self.rejections, self.auth = bindings, rejections, auth
        self.sip, self.sccp, self.provisioning = sip, sccp, provisioning
        self.admin, self.media, self.cti = admin, media, cti
        self.trunks = trunks
        self.media_expected = self.media_expected or media_expected
        return self

    def ops(self) -> dict[str, Handler]:
        """The control ops ``metrics`` and ``ready``."""

        async def metrics(args: dict[str, Any]) -> dict[str, Any]:
            return {"text": await self.exposition()}

        return {"metrics": metrics, "ready": lambda args: self.readiness()}

    # --- scraping ----------------------------------------------------------------

    async def exposition(self) -> str:
        """The registry in the Prometheus text format, media servers asked first."""
        await self.refresh_media()
        return generate_latest(self.registry).decode()

    async def refresh_media(self, timeout: float = MEDIA_STATS_TIMEOUT) -> None:
        """Ask every connected media server for its ``stats`` (at most ``timeout`` s)."""
        plane = self.media()
        if plane is None:
            self.media_stats.clear()
            return
        loop = asyncio.get_running_loop()
        waiting: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        for name, client in plane.clients.items():
            if not client.connected:
                self.media_stats.pop(name, None)
                continue
            future: asyncio.Future[dict[str, Any] | None] = loop.create_future()
            client.stats(_resolver(future))
            waiting[name] = future
        if not waiting:
            return
        await asyncio.wait(waiting.values(), timeout=timeout)
        for name, future in waiting.items():
            if future.done() and isinstance(reply := future.result(), dict):
                self.media_stats[name] = reply

    def _media_pid(self) -> str:
        plane = self.media()
        sup = plane.supervisor if plane is not None else None
        pid = sup.pid if sup is not None else None
        return str(pid) if pid is not None else "none"  # no /proc/none: nothing collected

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("offhook_node_info", "This node (value 1)", labels=["node"])
        info.add_metric([self.node], 1)
        yield info
        yield from self.calls.collect()
        yield self._registered()
        yield from self._listeners()
        yield from self._auth()
        yield from self._media()
        yield from self._cti()
        yield from self._trunks()

    def _registered(self) -> Metric:
        counts = dict.fromkeys(_PROTOCOLS, 0)
        if self.bindings is not None:
            devices = {(b.protocol, b.device) for b in self.bindings.all(self.clock())}
            for protocol, _ in devices:
                counts[protocol] = counts.get(protocol, 0) + 1
        family = GaugeMetricFamily(
            "offhook_registered_devices", "Devices registered now, by protocol", labels=["protocol"]
        )
        for protocol, count in sorted(counts.items()):
            family.add_metric([protocol], count)
        return family

    def _listener_rows(self) -> dict[str, Mapping[str, Any]]:
        rows: dict[str, Mapping[str, Any]] = {}
        if self.sip is not None:
            rows["sip"] = self.sip.status()
        if self.sccp is not None:
            rows["sccp"] = self.sccp.status()
        if self.provisioning is not None:
            rows.update(self.provisioning.listeners())
        admin = self.admin()
        if admin is not None:
            rows["admin"] = admin.status()
        return rows

    def _listeners(self) -> Iterator[Metric]:
        conns = GaugeMetricFamily(
            "offhook_listener_connections",
            "Connections (TFTP: transfers) open now, by listener",
            labels=["listener"],
        )
        for name, row in sorted(self._listener_rows().items()):
            conns.add_metric([name], int(row.get("connections", 0)))
        yield conns
        refused = CounterMetricFamily(
            "offhook_rejections",
            "Connections, datagrams and messages refused by a listener's defences, "
            "by listener and reason",
            labels=["listener", "reason"],
        )
        if self.rejections is not None:
            for listener, reasons in sorted(self.rejections.snapshot().items()):
                for reason, count in sorted(reasons.items()):
                    refused.add_metric([listener, reason], count)
        yield refused

    def _auth(self) -> Iterator[Metric]:
        if self.auth is None:
            return
        status = self.auth.status()
        for key, doc in (
            ("failures", "Failed authentications (SIP digest)"),
            ("blocks", "Sources blocked for failed authentications"),
            ("throttled", "Requests held back (throttled source)"),
            ("dropped_blocked", "Requests dropped: source blocked"),
            ("dropped_throttled", "Requests dropped: no hold slot"),
        ):
            yield CounterMetricFamily(f"offhook_auth_{key}", doc, value=status[key])
        for key, doc in (
            ("blocked_now", "Sources blocked now (failed authentications)"),
            ("throttled_now", "Sources throttled now (failed authentications)"),
            ("tracked_sources", "Sources in the failed-authentication table"),
        ):
            yield GaugeMetricFamily(f"offhook_auth_{key}", doc, value=status[key])

    def _media(self) -> Iterator[Metric]:
        plane = self.media()
        up = GaugeMetricFamily(
            "offhook_media_server_up", "Media server connected (1) or not (0)", labels=["server"]
        )
        streams = GaugeMetricFamily(
            "offhook_media_streams", "RTP endpoints open on the media server", labels=["server"]
        )
        bridges = GaugeMetricFamily(
            "offhook_media_bridges", "Bridges (conferences) on the media server", labels=["server"]
        )
        counters = {
            key: CounterMetricFamily(
                f"offhook_media_{MEDIA_NAMES.get(key, key)}", doc, labels=["server"]
            )
            for key, doc in MEDIA_COUNTERS.items()
        }
        for name, client in sorted((plane.clients if plane is not None else {}).items()):
            up.add_metric([name], 1 if client.connected else 0)
            stats = self.media_stats.get(name) if client.connected else None
            if stats is None:
                streams.add_metric([name], len(client.handles) if client.connected else 0)
                continue
            streams.add_metric([name], int(stats.get("streams", 0)))
            bridges.add_metric([name], int(stats.get("bridges", 0)))
            values = stats.get("counters") or {}
            for key, family in counters.items():
                if key in values:
                    family.add_metric([name], int(values[key]))
        yield from (up, streams, bridges, *counters.values())
        sup = plane.supervisor if plane is not None else None
        if sup is not None:
            yield CounterMetricFamily(
                "offhook_media_server_starts",
                "Times the embedded media server was started",
                value=sup.starts,
            )

    def _cti(self) -> Iterator[Metric]:
        journal = self.cti()
        if journal is None:
            return
        row = journal.status()
        yield CounterMetricFamily(
            "offhook_cti_node_events", "CTI events published by the node", value=row["published"]
        )
        yield GaugeMetricFamily(
            "offhook_cti_node_events_held",
            "CTI events the node keeps for replay",
            value=row["held"],
        )
        yield GaugeMetricFamily(
            "offhook_cti_node_streams",
            "Event streams open from the node (the web process's CTI hub, offhook events)",
            value=row["subscribers"],
        )
        yield CounterMetricFamily(
            "offhook_cti_node_stream_overflows",
            "Node event streams closed because their reader fell behind",
            value=row["overflows"],
        )

    def _trunks(self) -> Iterator[Metric]:
        """Per trunk of the plan (labels: its name; the plan bounds them)."""
        admitted = CounterMetricFamily(
            "offhook_trunk_calls_admitted",
            "New calls a trunk sent that were let in",
            labels=["trunk"],
        )
        refused = CounterMetricFamily(
            "offhook_trunk_calls_refused",
            "New calls a trunk sent that were refused (503): at max_calls (busy) or over "
            "max_cps (rate)",
            labels=["trunk", "reason"],
        )
        dropped = CounterMetricFamily(
            "offhook_trunk_datagrams_dropped",
            "Datagrams from a trunk dropped over its own bucket",
            labels=["trunk"],
        )
        for row in self.trunks():
            name = str(row["name"])
            admitted.add_metric([name], row["calls_admitted"])
            refused.add_metric([name, "busy"], row["refused_busy"])
            refused.add_metric([name, "rate"], row["refused_rate"])
            dropped.add_metric([name], row["datagrams_dropped"])
        yield admitted
        yield refused
        yield dropped

    # --- readiness -----------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """``{"ready": bool, "checks": {name: bool}}``: listeners serving, media connected."""
        checks: dict[str, bool] = {}
        if self.sip is not None:
            sip = self.sip
            checks["sip"] = bool(sip.udp_endpoints) or any(s.is_serving() for s in sip.servers)
        if self.sccp is not None:
            checks["sccp"] = any(s.is_serving() for s in self.sccp.servers)
        if self.provisioning is not None:
            checks["tftp"] = self.provisioning.tftp_port is not None
            if self.provisioning.http is not None:
                checks["tftp-http"] = self.provisioning.http_port is not None
        plane = self.media()
        if self.media_expected or plane is not None:
            clients = plane.clients if plane is not None else {}
            checks["media"] = bool(clients) and all(c.connected for c in clients.values())
        return {"ready": all(checks.values()), "checks": checks}
