"""Health, metrics and the API's description: ``GET /api/v1/health``, ``/healthz``
and ``/readyz`` (public), ``GET /metrics`` (``live.read``), ``GET
/api/v1/openapi.json`` (anyone signed in: no route but login and health
answers without authentication).

- ``/healthz``: 200 ``{"status": "alive"}`` whenever the web process
  answers (a liveness probe: it checks nothing else).
- ``/readyz``: 200 ``{"status": "ready", "checks": {...}}`` when the
  database answers, the node's control endpoint answers and the node says
  its listeners serve and its media servers (when ``[media]`` has one) are
  connected (the control op ``ready``, ``ris.metrics``); otherwise 503
  with ``"status": "not ready"`` and ``failed``, the checks that failed
  (``database``, ``node``, or the node's own: ``sip``, ``sccp``, ``tftp``,
  ``tftp-http``, ``media``). The answer is kept :data:`READY_TTL` seconds
  and concurrent probes share one check, so probes from anywhere cost the
  database and the node at most one check a second.
- ``/api/v1/health``: 200 ``{"status": "ok"}`` when the database answers,
  else 503 (``offhook serve``'s supervisor asks it).
- ``/metrics``: the Prometheus text format of the web's own registry
  (request counts and latency by route template,
  ``middleware.RequestMetrics``; live sessions; the failed-login guard's
  counters; the listener's refusals by reason; what other web parts
  register, such as ``offhook_cti_*``; the web process's CPU, memory and
  file descriptors as ``offhook_web_process_*``) followed by the node's
  (the control op ``metrics``), and ``offhook_node_up`` (1 when the node
  answered, else 0 and none of its metrics). A name is never written twice:
  a node family whose name the web's registry already has is left out.
  With ``[node] workers`` > 1 every worker is asked (its control endpoint
  is ``[admin] port + index``): each node sample, and ``offhook_node_up``,
  carries a ``worker`` label (sum them in queries: ``sum without
  (worker)``), so per-process figures stay per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from offhook.ris.control import ControlError, NodeUnavailable
from offhook.web.deps import AUTH_ERRORS, NodeControl, Principal, WebContext, ctx, require
from offhook.web.roles import Permission

__all__ = ["READY_TTL", "ContextCollector", "Readiness", "merged_exposition", "router"]

log = logging.getLogger("offhook.web")

READY_TTL = 1.0
"""Seconds a readiness answer is reused."""

router = APIRouter(tags=["meta"])

_GUARD_COUNTERS = {
    "failures": "Failed web logins and bad API tokens",
    "blocks": "Sources blocked for failed logins",
    "throttled": "Login attempts held back (throttled)",
    "dropped_blocked": "Login attempts refused: source blocked",
    "dropped_throttled": "Login attempts refused: no hold slot",
}
_GUARD_GAUGES = {
    "blocked_now": "Sources blocked now",
    "throttled_now": "Sources throttled now",
    "tracked_sources": "Sources in the failed-login table",
    "tracked_accounts": "Accounts in the failed-login table",
}


class ContextCollector(Collector):
    """Sessions, failed-login guard and listener refusals of one web context."""

    def __init__(self, context: WebContext) -> None:
        self.context = context
        self.process = ProcessCollector(namespace="offhook_web", registry=None)

    def collect(self) -> Iterator[Metric]:
        yield from self.process.collect()
        context = self.context
        yield GaugeMetricFamily(
            "offhook_web_sessions", "Live browser sessions", value=len(context.sessions)
        )
        status = context.login_guard.guard.status(context.clock())
        for key, doc in _GUARD_COUNTERS.items():
            yield CounterMetricFamily(f"offhook_web_login_{key}", doc, value=status[key])
        for key, doc in _GUARD_GAUGES.items():
            yield GaugeMetricFamily(f"offhook_web_login_{key}", doc, value=status[key])
        refused = CounterMetricFamily(
            "offhook_web_refused",
            "Connections and requests refused by the listener",
            labels=["reason"],
        )
        for reason, count in context.rejections.snapshot().get("web", {}).items():
            refused.add_metric([reason], count)
        yield refused


def _database_ok(context: WebContext) -> bool:
    try:
        with context.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _names(family: Metric) -> set[str]:
    return {family.name, *(sample.name for sample in family.samples)}


def merged_exposition(web: Iterable[Metric], node_text: str | Sequence[str | None] | None) -> bytes:
    """The web's families, ``offhook_node_up``, then the node's (``node_text``; None:
    the node did not answer) less any family whose name or sample names the web's
    already use, in the Prometheus text format. A sequence of answers is one per
    worker: their samples are labelled ``worker``."""
    texts = [node_text] if node_text is None or isinstance(node_text, str) else list(node_text)
    labelled = len(texts) > 1
    families = list(web)
    taken: set[str] = set()
    for family in families:
        taken |= _names(family)
    if "offhook_node_up" not in taken:
        doc = "The node's control endpoint answered this scrape (1) or not (0)"
        if labelled:
            up = GaugeMetricFamily("offhook_node_up", doc, labels=["worker"])
            for index, answer in enumerate(texts):
                up.add_metric([str(index)], 0 if answer is None else 1)
        else:
            up = GaugeMetricFamily("offhook_node_up", doc, value=0 if texts[0] is None else 1)
        families.append(up)
        taken.add("offhook_node_up")
    merged: dict[str, tuple[int, Metric]] = {}  # name -> (the worker that added it, family)
    joined: set[tuple[str, int]] = set()
    for index, answer in enumerate(texts):
        for family in _node_families(answer):
            if labelled:
                worker = str(index)
                family.samples = [
                    s._replace(labels={**s.labels, "worker": worker}) for s in family.samples
                ]
            known = merged.get(family.name)
            if known is not None:
                # Another worker's family of that name: its samples join, once per worker.
                first = (family.name, index) not in joined
                if known[0] != index and known[1].type == family.type and first:
                    joined.add((family.name, index))
                    known[1].samples.extend(family.samples)
                continue
            names = _names(family)
            if names & taken:
                continue
            taken |= names
            merged[family.name] = (index, family)
            families.append(family)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _node_families(text_: str | None) -> list[Metric]:
    if text_ is None:
        return []
    try:
        return list(text_string_to_metric_families(text_))
    except ValueError as exc:
        log.warning("the node's metrics could not be read: %s", exc)
        return []


class Readiness:
    """The last readiness answer, kept ``READY_TTL`` seconds; one check at a time."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.answer: tuple[int, dict[str, Any]] | None = None
        self.at = 0.0

    async def check(self, context: WebContext) -> tuple[int, dict[str, Any]]:
        async with self.lock:
            now = context.clock()
            if self.answer is None or now - self.at >= READY_TTL:
                self.answer = await _check_ready(context)
                self.at = context.clock()
            return self.answer


async def _check_ready(context: WebContext) -> tuple[int, dict[str, Any]]:
    checks: dict[str, bool] = {"database": await run_in_threadpool(_database_ok, context)}
    try:
        node = await context.control.request("ready")
    except (NodeUnavailable, ControlError):
        checks["node"] = False
    else:
        checks["node"] = isinstance(node, dict) and isinstance(node.get("checks"), dict)
        if checks["node"]:
            checks.update({str(k): bool(v) for k, v in node["checks"].items()})
    failed = [name for name, ok in checks.items() if not ok]
    body = {"status": "not ready" if failed else "ready", "checks": checks, "failed": failed}
    return (503 if failed else 200), body


@router.get(
    "/api/v1/health",
    responses={
        503: {
            "description": "the database does not answer",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def health(request: Request) -> Any:
    if await run_in_threadpool(_database_ok, ctx(request)):
        return {"status": "ok"}
    return JSONResponse({"status": "database unavailable"}, status_code=503)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the web process answers."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "not ready: ``failed`` names the checks that failed",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database, the node, its listeners and media servers."""
    state = request.app.state
    readiness: Readiness | None = getattr(state, "readiness", None)
    if readiness is None:
        readiness = state.readiness = Readiness()
    status, body = await readiness.check(ctx(request))
    return JSONResponse(body, status_code=status)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **AUTH_ERRORS,
    },
)
async def metrics(
    request: Request,
    _: Annotated[Principal, require(Permission.LIVE_READ)],
) -> Response:
    registry: CollectorRegistry = request.app.state.metrics.registry
    context = ctx(request)
    controls = (context.control, *context.workers)
    texts = await asyncio.gather(*(_node_metrics(control) for control in controls))
    node: str | list[str | None] | None = texts[0] if len(texts) == 1 else texts
    return Response(merged_exposition(registry.collect(), node), media_type=CONTENT_TYPE_LATEST)


async def _node_metrics(control: NodeControl) -> str | None:
    """One node's (or worker's) metrics text, None when it does not answer."""
    try:
        answer = await control.request("metrics")
    except (NodeUnavailable, ControlError):
        return None
    if isinstance(answer, dict) and isinstance(answer.get("text"), str):
        return str(answer["text"])
    return None


@router.get("/api/v1/openapi.json", include_in_schema=False)
async def openapi(
    request: Request,
    _: Annotated[Principal, require(Permission.AUTHENTICATED)],
) -> JSONResponse:
    """The OpenAPI document of the API (for a signed-in user or an API token)."""
    return JSONResponse(request.app.openapi())
