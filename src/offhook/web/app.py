"""The web application: one FastAPI app with every router, built from the settings.

``create_app(settings)`` opens the database (or takes ``engine``), builds
the one :class:`~offhook.web.deps.WebContext` (stores, sessions, login
guard, the node's control client) and includes the routers: login
(``api_auth``), users/roles/tokens/audit (``api_admin``), health and metrics
(``api_meta``), the plan and operations API (``api_plan``, ``api_ops``),
the pages and the self-care API (``pages``, ``api_self``), CTI (the event
WebSocket ``cti_ws``, whose hub the app's lifespan starts and stops, and
the commands ``api_cti``). The OpenAPI document is ``/api/v1/openapi.json``
(for any signed-in user or token); the CTI stream's AsyncAPI document is
``/cti/v1/asyncapi.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from offhook.config import Settings
from offhook.db.audit import AuditLog
from offhook.db.cdr import CdrRepository
from offhook.db.engine import create_engine_for
from offhook.db.users import UserStore, password_hasher
from offhook.net.authguard import AuthGuard
from offhook.ris.control import ControlClient, NodeUnavailable, control_address
from offhook.web import (
    api_admin,
    api_auth,
    api_cti,
    api_meta,
    api_ops,
    api_plan,
    api_ris,
    api_self,
    cti_ws,
    pages,
)
from offhook.web.api_meta import ContextCollector
from offhook.web.deps import NodeControl, WebContext
from offhook.web.hosts import KnownHost, known_names
from offhook.web.middleware import (
    BodyLimit,
    RequestMetrics,
    SameOrigin,
    SecurityHeaders,
    WebMetrics,
)
from offhook.web.security import LoginGuard
from offhook.web.sessions import SessionStore

__all__ = ["API_PREFIX", "create_app", "default_control"]

log = logging.getLogger("offhook.web")

API_PREFIX = "/api/v1"
STATIC = Path(__file__).resolve().parent / "static"

ROUTERS: tuple[APIRouter, ...] = (
    api_auth.router,
    api_admin.router,
    api_meta.router,
    api_plan.router,
    api_ops.router,
    api_ris.router,
    api_self.router,
    api_cti.router,
    cti_ws.router,
    pages.router,
)


class _NoNode:
    """The node's control when ``[admin]`` is off: every request finds the node down."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def request(self, op: str, **args: Any) -> Any:
        raise NodeUnavailable(self.why)


def default_control(settings: Settings) -> NodeControl:
    """A control client for the node's ``[admin]`` endpoint."""
    try:
        return ControlClient.from_settings(settings)
    except NodeUnavailable as exc:
        return _NoNode(str(exc))


def worker_controls(settings: Settings) -> tuple[NodeControl, ...]:
    """Control clients for workers 1.. (``[admin] port + index``); none for one worker."""
    if settings.node.workers < 2 or not settings.admin.port:
        return ()
    try:
        host, port = control_address(settings)
    except NodeUnavailable:
        return ()
    return tuple(ControlClient(host, port + i) for i in range(1, settings.node.workers))


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    control: NodeControl | None = None,
    workers: tuple[NodeControl, ...] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The web app for ``settings`` (``engine``: an open database; ``clock``: monotonic seconds)."""
    web = settings.web
    if engine is None:
        engine = create_engine_for(settings.database.url)
    hasher = password_hasher(web.argon2_time_cost, web.argon2_memory_kib, web.argon2_parallelism)
    context = WebContext(
        settings=settings,
        engine=engine,
        users=UserStore(engine, hasher),
        audit=AuditLog(engine),
        cdrs=CdrRepository(engine),
        control=control if control is not None else default_control(settings),
        sessions=SessionStore(web.session_idle, web.session_absolute, web.max_sessions),
        login_guard=LoginGuard(AuthGuard(settings.auth.policy()), web.max_concurrent_hashes, clock),
        clock=clock,
        workers=workers if workers is not None else worker_controls(settings),
    )
    app = FastAPI(
        title="offhook",
        summary="offhook call manager: administration and self-care API",
        version="1",
        # The OpenAPI document is served by api_meta to signed-in users only; no
        # Swagger UI (its scripts come from a CDN: the CSP allows this origin alone).
        openapi_url=None,
        docs_url=None,
        swagger_ui_oauth2_redirect_url=None,
        redoc_url=None,
        lifespan=cti_ws.lifespan,
    )
    app.state.ctx = context
    cti = cti_ws.CtiService.for_context(context)
    app.state.cti = cti
    metrics = WebMetrics()
    metrics.registry.register(ContextCollector(context))
    metrics.registry.register(cti.collector())
    app.state.metrics = metrics
    for router in ROUTERS:
        app.include_router(router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Added last = outermost: the body bound holds for everything inside.
    app.add_middleware(SameOrigin)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, limit=web.max_message)
    app.add_middleware(KnownHost, names=known_names(web.hosts))
    return app
