"""What every route depends on: the web context, who is asking, and whether they may.

``require(permission)`` is the one way a route is protected: a FastAPI
dependency that authenticates the request (``Authorization: Bearer`` API
token, or the session cookie), refuses a cookie-authenticated
state-changing request without the session's CSRF token, checks the role's
permission and returns the :class:`Principal`. No credentials: 401; not
permitted or no CSRF token: 403; a source blocked for failed logins: 429.

Every route of the app carries exactly one ``require(...)`` or is in
:data:`PUBLIC_ROUTES`; :func:`route_permission` reads it back, so a test can
walk ``app.routes`` and check every route against every role.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import RouteContext, iter_route_contexts
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from offhook.config import Settings
from offhook.db.audit import AuditLog
from offhook.db.cdr import CdrRepository
from offhook.db.users import UserRecord, UserStore
from offhook.net.authguard import source_key
from offhook.net.counters import RejectionCounters
from offhook.web.roles import Permission, permissions_of
from offhook.web.security import LoginGuard, LoginRefused, credential_stamp
from offhook.web.sessions import COOKIE_NAME, SessionStore

__all__ = [
    "AUTH_ERRORS",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PUBLIC_ROUTES",
    "NodeControl",
    "NotAuthenticated",
    "Principal",
    "WebContext",
    "app_routes",
    "audit",
    "client_host",
    "ctx",
    "error_responses",
    "require",
    "route_permission",
    "route_permissions",
]

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_LENGTH = 256

PUBLIC_ROUTES: frozenset[str] = frozenset(
    {
        "/api/v1/login",
        "/api/v1/health",
        "/healthz",
        "/readyz",
        "/static",
        "/login",
    }
)
"""Paths served without authentication (every method of them): logging in (the
API route, the page and the page's stylesheet) and health (``/api/v1/health``,
the liveness and readiness probes ``/healthz`` and ``/readyz``). The OpenAPI
document and ``/metrics`` need a signed-in user or a token like everything else."""


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {}},
    "required": ["detail"],
}
_ERROR_TEXT = {
    400: "the body could not be read",
    401: "not authenticated (no or a bad token or session)",
    403: "the role lacks the permission, or no CSRF token",
    404: "no such object",
    409: "conflicts with the current state",
    413: "request body too large",
    422: "invalid request (detail: [{loc, msg}])",
    429: "too many failed logins from this source (see Retry-After)",
    503: "the node is not answering",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes: ``{"detail": ...}`` bodies."""
    return {
        code: {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
        for code in codes
    }


AUTH_ERRORS = error_responses(401, 403, 429)
"""What ``require`` may answer: for the ``responses`` of a router of protected routes."""


class NodeControl(Protocol):
    """The node's control endpoint as the web process sees it (``ris.control.ControlClient``)."""

    async def request(self, op: str, **args: Any) -> Any: ...


@dataclass(slots=True)
class WebContext:
    """One per app: the settings, the stores, the node, sessions and the login guard."""

    settings: Settings
    engine: Engine
    users: UserStore
    audit: AuditLog
    cdrs: CdrRepository
    control: NodeControl
    sessions: SessionStore
    login_guard: LoginGuard
    clock: Callable[[], float] = time.monotonic
    rejections: RejectionCounters = field(default_factory=RejectionCounters)
    workers: tuple[NodeControl, ...] = ()
    """The control endpoints of workers 1.. (``[node] workers`` > 1; ``control`` is worker 0's)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, what they may do, and how they proved it."""

    user: UserRecord
    permissions: frozenset[Permission]
    via: Literal["session", "token"]
    session_id: str | None = None

    @property
    def name(self) -> str:
        return self.user.name

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


class NotAuthenticated(HTTPException):
    """401: no credentials, or none that hold (pages turn it into a redirect to /login)."""

    def __init__(self) -> None:
        super().__init__(
            status_code=401,
            detail="not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )


def ctx(request: Request) -> WebContext:
    """The app's :class:`WebContext`."""
    context: WebContext = request.app.state.ctx
    return context


def client_host(request: Request) -> str:
    """The peer's address ("" when the server does not know it)."""
    return request.client.host if request.client is not None else ""


def _refused(exc: LoginRefused) -> HTTPException:
    return HTTPException(
        status_code=429,
        detail="too many failed logins",
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _by_token(request: Request, context: WebContext, token: str) -> Principal:
    source = source_key(client_host(request))
    guard = context.login_guard
    try:
        guard.check(source)
    except LoginRefused as exc:
        raise _refused(exc) from None
    user = None
    if token and len(token) <= MAX_TOKEN_LENGTH:
        user = await run_in_threadpool(context.users.user_for_token, token)
    if user is None:
        guard.failure(source, None)
        raise NotAuthenticated()
    return Principal(user, permissions_of(user.role), "token")


async def _csrf_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        if isinstance(value, str):
            return value
    return ""


def _session_user(context: WebContext, name: str) -> tuple[UserRecord | None, str | None]:
    return context.users.get(name), credential_stamp(context.engine, name)


async def _by_session(request: Request, context: WebContext) -> Principal:
    sid = request.cookies.get(COOKIE_NAME, "")
    session = context.sessions.get(sid, context.clock()) if sid else None
    if session is None:
        raise NotAuthenticated()
    user, stamp = await run_in_threadpool(_session_user, context, session.user)
    if user is None or not user.enabled or stamp is None or stamp != session.stamp:
        # Disabled, deleted, a new password or role: the session is over.
        context.sessions.delete(session.id)
        raise NotAuthenticated()
    if request.method not in SAFE_METHODS:
        given = await _csrf_token(request)
        if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
            raise HTTPException(status_code=403, detail="CSRF token missing or wrong")
    return Principal(user, permissions_of(user.role), "session", session.id)


async def authenticate(request: Request) -> Principal:
    """Who sent ``request`` (bearer token first, then the session cookie); 401 if nobody."""
    context = ctx(request)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise NotAuthenticated()
        return await _by_token(request, context, token.strip())
    return await _by_session(request, context)


def require(permission: Permission) -> Any:
    """A dependency: the request's :class:`Principal` if it holds ``permission``."""

    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        if permission not in principal.permissions:
            raise HTTPException(status_code=403, detail=f"forbidden: needs {permission.value}")
        request.state.principal = principal
        return principal

    check.offhook_permission = permission  # type: ignore[attr-defined]
    check.__name__ = f"require_{permission.name.lower()}"
    return Depends(check)


def app_routes(app: FastAPI) -> list[RouteContext]:
    """Every route of ``app`` as it is served (included routers flattened, prefixes on)."""
    return list(iter_route_contexts(app.routes))


def _permissions(dependant: Any) -> list[Permission]:
    found: list[Permission] = []
    marker = getattr(dependant.call, "offhook_permission", None)
    if isinstance(marker, Permission):
        found.append(marker)
    for sub in dependant.dependencies:
        found.extend(_permissions(sub))
    return found


def route_permissions(route: BaseRoute | RouteContext) -> list[Permission]:
    """Every ``require(...)`` on ``route`` (its own and its dependencies')."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return []
    return _permissions(dependant)


def route_permission(route: BaseRoute | RouteContext) -> Permission | None:
    """The one permission ``route`` requires (None: it has no ``require``).

    Raises ValueError when a route asks for more than one (ambiguous).
    """
    found = route_permissions(route)
    if len(set(found)) > 1:
        raise ValueError(f"route {getattr(route, 'path', route)} requires {found}")
    return found[0] if found else None


def audit(
    request: Request,
    principal: Principal,
    action: str,
    object_type: str,
    key: str,
    before: Any = None,
    after: Any = None,
) -> None:
    """Record one change in the audit log: who, from where, what, before and after."""
    ctx(request).audit.record(
        principal.user.name,
        client_host(request),
        action,
        object_type,
        key,
        before,
        after,
    )
