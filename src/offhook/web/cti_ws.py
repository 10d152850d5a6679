"""The CTI event WebSocket ``/cti/v1/events`` and the web app's CTI service.

``CtiService`` (one per app, ``app.state.cti``) holds the hub (``cti.hub``:
the one stream from the node), the client caps and the counters; the app's
lifespan starts and stops it (``lifespan``). ``/metrics`` shows it through
``CtiCollector``.

A client connects with an API token whose role has ``cti``, in
``Authorization: Bearer`` or, for browsers, ``?token=`` (a browser cannot
set headers on a WebSocket; cookies are not taken: a page of another site
could otherwise open a WebSocket with them). Before the upgrade is
accepted it may be refused with an HTTP status: 401 no or a bad token (a
failed login for the source's failed-login guard), 403 no ``cti``, 429 the
source is blocked for failed logins or the user has ``max_clients_per_user``
clients, 503 CTI off or ``max_clients`` clients. ``?after=ID`` resumes at
once (as ``{"op": "resume"}``).

Then ``Connection.run``: a writer sends what the session queues (an event
waits at most ``ping_interval + ping_timeout`` for the client to read: then
it is treated as fallen behind), a reader takes client messages one at a
time (``cti.client_protocol``; ``[cti] rate`` a second, beyond it the
connection is read more slowly). The token is checked again on every
client message and every ``[cti] recheck`` seconds (a revoked token, a
disabled user or a role without ``cti`` ends the connection: 4401 or 4403;
the user's devices are read again too; the periodic checks of one token's
connections share one lookup within half a period, ``web.shared_checks``).
Closing codes: 1008 a malformed message (after an ``error``), 1003 a
binary frame, 1013 overflow (after ``{"type": "overflow"}``), 1011 the
node could not give a snapshot, 1009 a message over ``[cti] max_message``
(the WebSocket layer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from offhook.cti.client_protocol import ClientMessageError, parse_client_message
from offhook.cti.hub import Connect, Hub, Upstream, Wire, encode
from offhook.cti.plan_lines import PlanLines
from offhook.cti.scope import Scope
from offhook.cti.session import Overflowed, Session, SessionCounters
from offhook.db.users import UserRecord
from offhook.net.authguard import source_key
from offhook.net.guard import MALFORMED
from offhook.ris.control import ControlError, NodeUnavailable, control_address
from offhook.ris.event_client import EventStream
from offhook.web.cti_asyncapi import asyncapi_document
from offhook.web.deps import AUTH_ERRORS, Principal, WebContext, require
from offhook.web.roles import Permission, permissions_of
from offhook.web.security import LoginRefused
from offhook.web.shared_checks import SharedChecks
from offhook.web.ws_guard import BATCH, RAW, TIMEOUT, URGENT

__all__ = [
    "EVENTS_PATH",
    "Connection",
    "CtiCollector",
    "CtiService",
    "WsAuth",
    "lifespan",
    "require_ws",
    "router",
    "run_client",
]

log = logging.getLogger("offhook.cti")

EVENTS_PATH = "/cti/v1/events"
LISTENER = "web"
"""The listener whose refusal counters count malformed client messages too."""
MAX_TOKEN_LENGTH = 256
CLOSE_MALFORMED = 1008
CLOSE_BINARY = 1003
CLOSE_OVERFLOW = 1013
CLOSE_NODE = 1011
CLOSE_REVOKED = 4401
CLOSE_FORBIDDEN = 4403
BATCH_FRAMES = 64
"""Frames sent in one write at most (when the server takes batches)."""
RAW_BATCH_FRAMES = 192
"""The same for frames the hub renders (about 60 kB of events, the send buffer's size):
a busy client gets one write each ``coalesce`` period, not one each 64 events."""
STREAM_TIMEOUT = 5.0
"""Seconds to connect to the node's event stream and get its answer."""
TokenState = tuple[UserRecord | None, Scope | None]
"""A token's user (None: not valid now) and CTI scope (None: the role has no ``cti``)."""


def node_events(context: WebContext) -> Connect | None:
    """The node's event stream for the hub (None: no ``[admin]`` endpoint to follow)."""
    try:
        host, port = control_address(context.settings)
    except NodeUnavailable:
        return None

    def connect(after: int | None) -> EventStream:
        return EventStream(host, port, after=after, timeout=STREAM_TIMEOUT)

    return connect


class CtiService:
    """The app's CTI: the hub, the clients and their caps, the counters."""

    def __init__(self, context: WebContext, connect: Connect | None = None) -> None:
        self.context = context
        self.settings = context.settings.cti
        self.follows = connect is not None
        self.hub = Hub(connect or _no_node, replay=self.settings.replay)
        self.counters = SessionCounters()
        self.lines = PlanLines(context.engine)
        self.clients = 0
        self.per_user: dict[str, int] = {}
        self.refused: Counter[str] = Counter()
        # The periodic token checks of a token's connections share a lookup (half a period).
        self.token_checks: SharedChecks[TokenState] = SharedChecks(
            self._token_state, self.settings.recheck / 2, time.monotonic
        )

    @classmethod
    def for_context(cls, context: WebContext) -> CtiService:
        return cls(context, node_events(context))

    async def start(self) -> None:
        if self.settings.enabled and self.follows:
            self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()

    def admit(self, user: str) -> tuple[int, str] | None:
        """Take a client slot for ``user``; (HTTP status, why) when the caps say no."""
        settings = self.settings
        if self.clients >= settings.max_clients:
            self.refused["max-clients"] += 1
            return 503, "too many CTI clients"
        if self.per_user.get(user, 0) >= settings.max_clients_per_user:
            self.refused["max-clients-per-user"] += 1
            return 429, "too many CTI clients of this user"
        self.clients += 1
        self.per_user[user] = self.per_user.get(user, 0) + 1
        return None

    def release(self, user: str) -> None:
        self.clients -= 1
        left = self.per_user.get(user, 0) - 1
        if left > 0:
            self.per_user[user] = left
        else:
            self.per_user.pop(user, None)

    def scope_of(self, user: UserRecord) -> Scope:
        """The user's CTI scope (blocking: the database; run it in the thread pool)."""
        everything = Permission.CTI_ALL in permissions_of(user.role)
        return self.lines.scope(user.devices, everything=everything)

    async def _token_state(self, token: str) -> TokenState:
        return await run_in_threadpool(self._token_state_now, token)

    def _token_state_now(self, token: str) -> TokenState:
        """The token's user (None: no longer valid) and, if its role has CTI, its scope."""
        user = self.context.users.user_for_token(token)
        if user is None or Permission.CTI not in permissions_of(user.role):
            return user, None
        return user, self.scope_of(user)

    async def snapshot(self) -> dict[str, Any]:
        """The node's ``cti_snapshot`` (NodeUnavailable, ControlError)."""
        result = await self.context.control.request("cti_snapshot")
        if not isinstance(result, dict):
            raise ControlError("bad cti_snapshot answer")
        return result

    def collector(self) -> CtiCollector:
        return CtiCollector(self)


@asynccontextmanager
async def _no_node(after: int | None) -> AsyncIterator[Upstream]:  # pragma: no cover
    raise NodeUnavailable("no node to follow ([admin] is off)")
    yield  # an async generator: never reached


class CtiCollector(Collector):
    """CTI clients, events received, delivered and dropped, overflows, the upstream."""

    def __init__(self, service: CtiService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        hub, counters = service.hub, service.counters
        yield GaugeMetricFamily(
            "offhook_cti_clients", "CTI WebSocket clients connected", value=service.clients
        )
        yield GaugeMetricFamily(
            "offhook_cti_upstream_connected",
            "1 when the web process follows the node's event stream",
            value=int(hub.connected),
        )
        yield GaugeMetricFamily(
            "offhook_cti_replay_events", "Events held for resuming clients", value=hub.ring_size
        )
        for name, doc, value in (
            ("events_received", "CTI events received from the node", hub.stats.received),
            ("events_delivered", "CTI events handed to clients", counters.delivered),
            ("events_dropped", "CTI events dropped for clients that fell behind", counters.dropped),
            ("events_replayed", "CTI events replayed to resuming clients", counters.replayed),
            (
                "overflow_disconnects",
                "CTI clients disconnected for falling behind",
                counters.overflows,
            ),
            ("resyncs", "Snapshots sent to CTI clients (resynchronisation)", counters.resyncs),
            ("upstream_connects", "Event streams opened to the node", hub.stats.connects),
            ("upstream_failures", "Event streams to the node that failed", hub.stats.failures),
        ):
            yield CounterMetricFamily(f"offhook_cti_{name}", doc, value=value)
        refused = CounterMetricFamily(
            "offhook_cti_refused", "CTI WebSocket clients refused", labels=["reason"]
        )
        for reason, count in sorted(service.refused.items()):
            refused.add_metric([reason], count)
        yield refused


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the app's CTI hub with the server, stop it at shutdown; the same for the
    JSON-lines listener (``web.cti_tcp``) when ``serve_web`` bound its sockets
    (``app.state.cti_sockets``)."""
    service: CtiService | None = getattr(app.state, "cti", None)
    sockets = getattr(app.state, "cti_sockets", None)
    tcp = None
    if service is not None:
        await service.start()
        if sockets:
            from offhook.web.cti_tcp import CtiTcpServer

            tcp = app.state.cti_tcp = CtiTcpServer(service)
            await tcp.start(sockets)
    try:
        yield
    finally:
        if tcp is not None:
            await tcp.close()
        if service is not None:
            await service.stop()


# --- authentication -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WsAuth:
    """Who opened the WebSocket (``principal``, ``token``), or why not (``status``, ``detail``)."""

    principal: Principal | None = None
    token: str = ""
    status: int = 0
    detail: str = ""
    headers: tuple[tuple[str, str], ...] = ()


def _token_of(websocket: WebSocket) -> str:
    authorization = websocket.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return websocket.query_params.get("token", "")


def require_ws(permission: Permission) -> Any:
    """A WebSocket route's dependency: the :class:`WsAuth` of its API token.

    It never raises (a refusal is sent before the upgrade by the route as an
    HTTP answer); it carries ``offhook_permission`` as ``require`` does, so
    the route permission table sees it.
    """

    async def check(websocket: WebSocket) -> WsAuth:
        context: WebContext = websocket.app.state.ctx
        host = websocket.client.host if websocket.client is not None else ""
        source = source_key(host)
        guard = context.login_guard
        try:
            guard.check(source)
        except LoginRefused as exc:
            retry = (("Retry-After", str(exc.retry_after)),)
            return WsAuth(status=429, detail="too many failed logins", headers=retry)
        token = _token_of(websocket)
        user = None
        if token and len(token) <= MAX_TOKEN_LENGTH:
            user = await run_in_threadpool(context.users.user_for_token, token)
        if user is None:
            guard.failure(source, None)
            return WsAuth(
                status=401, detail="not authenticated", headers=(("WWW-Authenticate", "Bearer"),)
            )
        principal = Principal(user, permissions_of(user.role), "token")
        if permission not in principal.permissions:
            return WsAuth(status=403, detail=f"forbidden: needs {permission.value}")
        return WsAuth(principal=principal, token=token)

    check.offhook_permission = permission  # type: ignore[attr-defined]
    check.__name__ = f"require_ws_{permission.name.lower()}"
    return Depends(check)


router = APIRouter(tags=["cti"])


async def _refuse(websocket: WebSocket, status: int, detail: str, headers: Any = ()) -> None:
    await websocket.send_denial_response(
        JSONResponse({"detail": detail}, status_code=status, headers=dict(headers))
    )


def _after(websocket: WebSocket) -> int | str | None:
    raw = websocket.query_params.get("after")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        return "after is an event id (a non-negative integer)"
    return int(raw)


@router.websocket(EVENTS_PATH)
async def events(websocket: WebSocket, auth: Annotated[WsAuth, require_ws(Permission.CTI)]) -> None:
    """The CTI event stream (docs/cti.md; AsyncAPI: ``/cti/v1/asyncapi.json``)."""
    service: CtiService = websocket.app.state.cti
    if auth.principal is None:
        service.refused[str(auth.status)] += 1
        await _refuse(websocket, auth.status, auth.detail, auth.headers)
        return
    if not service.settings.enabled:
        service.refused["disabled"] += 1
        await _refuse(websocket, 503, "CTI is off ([cti] enabled = false)")
        return
    after = _after(websocket)
    if isinstance(after, str):
        service.refused["malformed"] += 1
        await _refuse(websocket, 400, after)
        return
    user = auth.principal.user
    refusal = service.admit(user.name)
    if refusal is not None:
        await _refuse(websocket, *refusal)
        return
    try:
        await run_client(service, user, auth.token, after, websocket, websocket.accept)
    finally:
        service.release(user.name)


async def run_client(
    service: CtiService,
    user: UserRecord,
    token: str,
    after: int | None,
    websocket: Any,
    accept: Callable[[], Awaitable[None]],
) -> None:
    """An admitted client's session, from ``accept`` to its end (the WebSocket, or
    ``web.cti_tcp``'s line socket that speaks the same ASGI messages)."""
    scope = await run_in_threadpool(service.scope_of, user)
    session = Session(
        service.hub,
        scope,
        service.snapshot,
        queue=service.settings.client_queue,
        user=user.name,
        counters=service.counters,
        wire=wire_of(websocket),
    )
    await accept()
    session.hello()
    if after is not None:
        session.resume(after)
    service.hub.attach(session)
    session.follow()
    try:
        await Connection(websocket, session, service, token).run()
    finally:
        service.hub.detach(session)
        session.close()


def wire_of(websocket: Any) -> Wire | None:
    """How the connection frames texts when it takes bytes framed already (``RAW``)."""
    scope = getattr(websocket, "scope", None)
    extensions = scope.get("extensions") if isinstance(scope, dict) else None
    raw = extensions.get(RAW) if isinstance(extensions, dict) else None
    wire = raw.get("wire") if isinstance(raw, dict) else None
    return wire if isinstance(wire, Wire) else None


class Connection:
    """One accepted client: its writer and reader (see the module doc)."""

    def __init__(self, websocket: Any, session: Session, service: CtiService, token: str) -> None:
        self.websocket = websocket
        self.session = session
        self.service = service
        self.token = token
        settings = service.settings
        self.send_timeout = settings.ping_interval + settings.ping_timeout
        self.recheck = settings.recheck
        self.rate = settings.rate
        self.coalesce = settings.coalesce
        self.final: tuple[int, dict[str, Any] | None] | None = None
        """How to end: the close code and the last frame (None: the client left)."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(self._write()),
            loop.create_task(self._read()),
            loop.create_task(self.session.done.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        session = self.session
        if session.overflow is not None and self.final is None:
            self.final = (CLOSE_OVERFLOW, {"type": "overflow", "reason": session.overflow})
        if self.final is not None:
            await self._close(*self.final)

    def _end(self, code: int, frame: dict[str, Any] | None) -> None:
        if self.final is None:
            self.final = (code, frame)

    async def _close(self, code: int, frame: dict[str, Any] | None) -> None:
        websocket = self.websocket
        with contextlib.suppress(Exception):
            if frame is not None:
                await websocket.send(
                    {"type": "websocket.send", "text": encode(frame), URGENT: True}
                )
            await websocket.close(code)

    # --- writer -------------------------------------------------------------------------

    async def _write(self) -> None:
        session, websocket = self.session, self.websocket
        batch = BATCH in websocket.scope.get("extensions", {})
        raw = session.wire is not None
        while True:
            data = b""
            frames: list[str] = []
            try:
                if raw:
                    data = await session.next_bytes(RAW_BATCH_FRAMES, self.coalesce)
                else:
                    frames = await (
                        session.next_frames(BATCH_FRAMES, self.coalesce)
                        if batch
                        else session.next_frames(1)
                    )
            except Overflowed:
                return
            except (NodeUnavailable, ControlError, OSError, TimeoutError) as exc:
                log.info("cti: no snapshot for a client of %s: %s", session.user, exc)
                self._end(CLOSE_NODE, {"type": "error", "reason": "node unavailable: no snapshot"})
                return
            try:
                if raw:
                    # The transport bounds the wait (``TIMEOUT``): no timer per write.
                    message = {"type": "websocket.send", RAW: data, TIMEOUT: self.send_timeout}
                    await websocket.send(message)
                    continue
                async with asyncio.timeout(self.send_timeout):
                    if batch:
                        await websocket.send({"type": "websocket.send", BATCH: frames})
                    else:
                        await websocket.send_text(frames[0])
            except TimeoutError:
                session.overflowed("the client stopped reading")
                return

    # --- reader -------------------------------------------------------------------------

    async def _read(self) -> None:
        websocket = self.websocket
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.recheck
        allowance, last = self.rate, loop.time()
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_check - loop.time())):
                    message = await websocket.receive()
            except TimeoutError:
                if not await self._recheck(fresh=False):
                    return
                next_check = loop.time() + self.recheck
                continue
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._refused(MALFORMED)
                self._end(CLOSE_BINARY, {"type": "error", "reason": "binary frames are not taken"})
                return
            if not await self._recheck(fresh=True):
                return
            next_check = loop.time() + self.recheck
            try:
                request = parse_client_message(text)
            except ClientMessageError as exc:
                self._refused(MALFORMED)
                self._end(CLOSE_MALFORMED, {"type": "error", "reason": str(exc)})
                return
            self.session.handle(request)
            # A token bucket of ``rate`` messages a second: past it, the next
            # message is read later (uvicorn reads nothing until it is taken).
            now = loop.time()
            allowance = min(self.rate, allowance + (now - last) * self.rate) - 1
            last = now
            if allowance < 0:
                await asyncio.sleep(-allowance / self.rate)

    def _refused(self, reason: str) -> None:
        """A client message refused: counted as the web listener's refusals are."""
        self.service.context.rejections.increment(LISTENER, reason)

    async def _recheck(self, *, fresh: bool) -> bool:
        """Is the token still good (and the role still CTI)? The scope is read again.

        ``fresh``: on a client message, the database as it is now; the periodic
        checks of one token's connections share a lookup (``SharedChecks``).
        """
        user, scope = await self.service.token_checks.get(self.token, fresh=fresh)
        if user is None:
            self._end(CLOSE_REVOKED, {"type": "error", "reason": "token no longer valid"})
            return False
        if scope is None:
            self._end(CLOSE_FORBIDDEN, {"type": "error", "reason": "forbidden: needs cti"})
            return False
        self.session.rescope(scope)
        return True


@router.get(
    "/cti/v1/asyncapi.json",
    include_in_schema=False,
    responses={**AUTH_ERRORS},
)
async def asyncapi(
    request: Request, _: Annotated[Principal, require(Permission.AUTHENTICATED)]
) -> JSONResponse:
    """The AsyncAPI 2.6 document of the CTI event stream (any signed-in user or token)."""
    return JSONResponse(asyncapi_document())
