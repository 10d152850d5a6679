"""Health, metrics and the API's description: ``GET /api/v1/health`` (public),
``GET /metrics`` (``live.read``), ``GET /api/v1/openapi.json`` (anyone signed in:
no route but login and health answers without authentication).

Health answers 200 ``{"status": "ok"}`` when the database answers, else 503
(a load balancer or ``offhook serve``'s supervisor may ask it; it says
nothing about users or the plan). ``/metrics`` is the Prometheus text
format: request counts and latency by route template
(``middleware.RequestMetrics``), live sessions, and the failed-login
guard's counters (failures, blocked and throttled sources, tracked table
sizes) and the listener's refusals by reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from offhook.web.deps import AUTH_ERRORS, Principal, WebContext, ctx, require
from offhook.web.roles import Permission

__all__ = ["ContextCollector", "router"]

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

    def collect(self) -> Iterator[Metric]:
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
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/openapi.json", include_in_schema=False)
async def openapi(
    request: Request,
    _: Annotated[Principal, require(Permission.AUTHENTICATED)],
) -> JSONResponse:
    """The OpenAPI document of the API (for a signed-in user or an API token)."""
    return JSONResponse(request.app.openapi())
