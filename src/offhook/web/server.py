"""Serving the web app: uvicorn behind the listener defences every offhook listener has.

``serve_web(settings)`` runs the app of ``create_app`` on every ``[web]
listen`` address until SIGINT/SIGTERM (or, with ``exit_on_stdin_eof``, until
the parent closes our stdin, and then it says on its standard output when it
listens: ``common.ready``) and returns the exit status.

Every new TCP connection meets a gate first (``_Gate``), before a byte is
read and before any TLS handshake: the ``ListenerGuard`` checks the allow
list (an outsider is reset and leaves no state), the total and per-source
connection caps and one token of the source's rate bucket. An admitted
connection then gets TLS (``loop.start_tls``, bounded by
``handshake_timeout``) when ``tls_cert``/``tls_key`` are set, and is handed
to ``GuardedH11Protocol``: uvicorn's h11 protocol with

- a request head bounded to ``MAX_HEAD`` bytes (h11's incomplete event limit);
- a deadline for each request head (``handshake_timeout`` for the first,
  ``idle_timeout`` after a response), which trickled bytes do not extend;
- a request body that must keep arriving (``idle_timeout`` between
  chunks) and be complete within ``idle_timeout`` plus ``max_message`` at
  ``MIN_BODY_RATE`` (a body trickled just under the idle timeout cannot
  hold a connection for ever), bounded by ``max_message``
  (``middleware.BodyLimit``);
- each request charged to the source's rate bucket; over it, the connection
  is not read for a while (TCP back-pressure);
- answers that wait in a full send buffer for ``idle_timeout`` (a client
  that asks and never reads) end the connection and free its slot;
- a WebSocket upgrade (the CTI stream, ``web.cti_ws``) handed, with its
  admission, to ``ws_guard.GuardedWebSocketProtocol``: messages bounded by
  ``[cti] max_message``, pings every ``[cti] ping_interval``, no compression,
  a close that cannot hang on a client that stopped reading.

The app's lifespan runs (it starts and stops the CTI hub).

Refusals are counted under the listener name ``web`` in the context's
rejection counters (``/metrics``). uvicorn trusts no proxy headers: the
peer address is the socket's, so nobody can claim another source to step
around the failed-login guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from uvicorn.protocols.http.h11_impl import H11Protocol

from offhook.common.addr import peer
from offhook.common.ready import announce_ready
from offhook.config import Settings
from offhook.db.engine import create_engine_for, upgrade
from offhook.net.acl import AllowList
from offhook.net.guard import (
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    LISTEN_BACKLOG,
    MALFORMED,
    TOO_LARGE,
    ListenerGuard,
    ListenerLimits,
)
from offhook.net.listen import bind_plan
from offhook.web.app import create_app
from offhook.web.deps import WebContext
from offhook.web.reload import WebReload
from offhook.web.ws_guard import GuardedWebSocketProtocol

__all__ = ["LISTENER", "MAX_HEAD", "GuardedH11Protocol", "WebServer", "serve_web"]

log = logging.getLogger("offhook.web")

LISTENER = "web"
MAX_HEAD = 16 * 1024
"""Bytes of request line and headers accepted (h11's incomplete event bound)."""
GRACEFUL_SHUTDOWN = 5
MIN_BODY_RATE = 8192
"""Bytes a second a request body arrives at, on average, at the least."""
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class _Admission:
    """One admitted connection's slot in the guard, released exactly once."""

    __slots__ = ("guard", "host", "released")

    def __init__(self, guard: ListenerGuard, host: str) -> None:
        self.guard = guard
        self.host = host
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.guard.release(self.host)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with head/body deadlines and per-request rate."""

    def __init__(self, *args: Any, admission: _Admission, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admission = admission
        self._limits = admission.guard.limits
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_body = False
        self._body_end = 0.0  # loop time by which the current body must be complete
        self._head_seen = 0  # bytes read while waiting for the current request head
        self._head_checked = False
        self._write_deadline: asyncio.TimerHandle | None = None
        if self.ws_protocol_class is not None:
            # A WebSocket takes the connection over, and its slot with it.
            handover = partial(GuardedWebSocketProtocol, admission=admission)
            self.ws_protocol_class = handover  # type: ignore[assignment]

    # --- deadlines ----------------------------------------------------------------
    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, reason: str) -> None:
        self._deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self._admission.guard.refuse(reason, self._admission.host)
            self.transport.abort()

    # --- protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.handshake_timeout, HANDSHAKE_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        self._admission.release()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """Answers fill the send buffer: the client must drain it within ``idle_timeout``."""
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(
                self._limits.idle_timeout, self._not_reading
            )

    def resume_writing(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        super().resume_writing()

    def _not_reading(self) -> None:
        self._write_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self._admission.guard.refuse(IDLE_TIMEOUT, self._admission.host)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and not self._head_checked:
            self._head_seen += len(data)
            if self._head_seen > MAX_HEAD and not self._head_fits(data):
                self._admission.guard.refuse(TOO_LARGE, self._admission.host)
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)
        if self._waiting_body and not self.transport.is_closing():
            self._arm_body()  # the body keeps coming

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()  # a complete request head; the WebSocket has its pings
        super().handle_websocket_upgrade(event)

    def _head_fits(self, data: bytes) -> bool:
        """Once per request, past MAX_HEAD bytes: did the head end within it?

        (h11 bounds only a head that is still incomplete after a read.)
        """
        pending = bytes(self.conn.trailing_data[0]) + data
        end = pending.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        self._head_checked = end >= 0
        return self._head_checked

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not cycle:
            self._disarm()  # a complete request head
            self._head_seen, self._head_checked = 0, False
            self._charge()
        body_pending = self.cycle is not None and self.cycle.more_body
        if body_pending and not self._waiting_body and not self.transport.is_closing():
            limits = self._limits
            budget = limits.idle_timeout + limits.max_message / MIN_BODY_RATE
            self._body_end = self.loop.time() + budget
            self._arm_body()
        elif not body_pending and self._waiting_body:
            self._disarm()
        self._waiting_body = body_pending

    def _arm_body(self) -> None:
        """The next chunk within ``idle_timeout``, the whole body by ``_body_end``."""
        left = self._body_end - self.loop.time()
        self._arm(max(0.0, min(self._limits.idle_timeout, left)), IDLE_TIMEOUT)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        if self.cycle is cycle and not self.transport.is_closing():
            self._arm(self._limits.idle_timeout, IDLE_TIMEOUT)  # the next request head

    def send_400_response(self, msg: str) -> None:
        self._admission.guard.refuse(MALFORMED, self._admission.host)
        super().send_400_response(msg)

    def _charge(self) -> None:
        pause = self._admission.guard.throttle(self._admission.host, self.loop.time(), 1)
        if pause > 0 and not self.transport.is_closing():
            self.transport.pause_reading()
            self.loop.call_later(pause, self._resume)

    def _resume(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()


class _Early(asyncio.Protocol):
    """Holds what arrives over TLS between the handshake and the hand-over to HTTP."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data.append(data)  # one read at most: the task hands over at once

    def eof_received(self) -> None:
        self.eof = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class _Gate(asyncio.Protocol):
    """The first protocol of every connection: admit or reset, then TLS, then HTTP."""

    def __init__(self, server: WebServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        info = transport.get_extra_info("peername")
        host = peer(info)[0] if info else ""
        guard = self.server.guard
        loop = asyncio.get_running_loop()
        if not guard.admit_connection(host, loop.time()):
            transport.abort()  # a reset: no answer, no state
            return
        admission = _Admission(guard, host)
        http = self.server.http_protocol(admission)
        if self.server.tls is None:
            transport.set_protocol(http)
            http.connection_made(transport)
            return
        task = loop.create_task(self._start_tls(transport, http, admission))
        self.server.handshakes.add(task)
        task.add_done_callback(self.server.handshakes.discard)

    async def _start_tls(
        self, transport: asyncio.Transport, http: GuardedH11Protocol, admission: _Admission
    ) -> None:
        loop = asyncio.get_running_loop()
        assert self.server.tls is not None
        early = _Early()
        try:
            secure = await loop.start_tls(
                transport,
                early,
                self.server.tls,
                server_side=True,
                ssl_handshake_timeout=self.server.guard.limits.handshake_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            admission.guard.refuse(HANDSHAKE_TIMEOUT, admission.host)
            log.debug("web: TLS handshake with %s failed: %s", admission.host, exc)
            admission.release()
            transport.abort()
            return
        if secure is None or early.lost:
            admission.release()
            return
        secure.set_protocol(http)
        http.connection_made(secure)
        for data in early.data:
            http.data_received(data)
        if early.eof:
            http.eof_received()

    def data_received(self, data: bytes) -> None:  # pragma: no cover - replaced at once
        pass


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) from PEM files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def bind_sockets(addresses: list[str], port: int) -> list[socket.socket]:
    """Listening-ready TCP sockets on every address, one port (port 0: the first picks)."""
    out: list[socket.socket] = []
    try:
        for spec in bind_plan(addresses):
            sock = socket.socket(spec.family, socket.SOCK_STREAM)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if spec.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if spec.v6only else 0)
            if spec.family == socket.AF_INET6 and "%" in spec.host:
                sock.bind(
                    socket.getaddrinfo(spec.host, port, spec.family, socket.SOCK_STREAM)[0][4]
                )
            else:
                sock.bind((spec.host, port))
            port = int(sock.getsockname()[1])
            sock.setblocking(False)
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out


class WebServer(uvicorn.Server):
    """uvicorn's server loop and shutdown, our sockets and gate."""

    def __init__(
        self,
        app: FastAPI,
        settings: Settings,
        sockets: list[socket.socket],
        on_ready: Callable[[WebServer], None] | None = None,
    ) -> None:
        web = settings.web
        config = uvicorn.Config(
            app,
            http=GuardedH11Protocol,
            ws=GuardedWebSocketProtocol,
            ws_max_size=settings.cti.max_message,
            ws_ping_interval=settings.cti.ping_interval,
            ws_ping_timeout=settings.cti.ping_timeout,
            ws_per_message_deflate=False,
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=int(max(1, web.idle_timeout)),
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            h11_max_incomplete_event_size=MAX_HEAD,
            # uvicorn counts the asking connection too: max_connections (the
            # gate's cap) must still be served; beyond it are requests still
            # running for connections already gone.
            limit_concurrency=web.max_connections + 1,
            backlog=LISTEN_BACKLOG,
        )
        super().__init__(config)
        context: WebContext = app.state.ctx
        self.context = context
        self.sockets = sockets
        self.guard = ListenerGuard(
            ListenerLimits.of(web),
            AllowList(web.allow).allows,
            lambda reason, host: context.rejections.increment(LISTENER, reason),
        )
        self.tls = tls_context(web.tls_cert, web.tls_key) if web.tls else None
        self.handshakes: set[asyncio.Task[None]] = set()
        self.on_ready = on_ready

    @property
    def port(self) -> int:
        """The port listened on (the one picked when ``[web] port`` is 0)."""
        return int(self.sockets[0].getsockname()[1])

    def http_protocol(self, admission: _Admission) -> GuardedH11Protocol:
        return GuardedH11Protocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            admission=admission,
        )

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        for sock in self.sockets:
            server = await loop.create_server(
                lambda: _Gate(self), sock=sock, backlog=LISTEN_BACKLOG
            )
            self.servers.append(server)
        where = ", ".join(_where(s) for s in self.sockets)
        scheme = "https" if self.tls else "http"
        log.info("web: serving %s on %s", scheme, where)
        if self.on_ready is not None:
            self.on_ready(self)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for task in list(self.handshakes):
            task.cancel()
        await super().shutdown(sockets=None)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after shutdown; we return an exit status instead.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        if hasattr(signal, "SIGHUP"):  # [log] and the [web] listener keys again (web.reload)
            reload = WebReload(self.context.settings, self.guard)
            hup = reload.schedule(asyncio.get_running_loop())
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, hup)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _where(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _watch_stdin(server: WebServer) -> None:
    """Stop the server when stdin reaches EOF (the parent went away)."""

    def run() -> None:
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside the
        # buffered reader holds its lock, and the interpreter then aborts at exit.
        with contextlib.suppress(Exception):
            fd = sys.stdin.fileno()
            while os.read(fd, 4096):
                pass
        server.should_exit = True

    threading.Thread(target=run, name="stdin-eof", daemon=True).start()


def _announcing(on_ready: Callable[[WebServer], None] | None) -> Callable[[WebServer], None]:
    """``on_ready``, then the supervised child's ready line (``common.ready``)."""

    def ready(server: WebServer) -> None:
        if on_ready is not None:
            on_ready(server)
        announce_ready()

    return ready


def lower_priority(nice: int) -> None:
    """Run at nice value ``nice`` at least: below call processing (never raised)."""
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if nice > current:
            os.setpriority(os.PRIO_PROCESS, 0, nice)


def serve_web(
    settings: Settings,
    *,
    exit_on_stdin_eof: bool = False,
    on_ready: Callable[[WebServer], None] | None = None,
) -> int:
    """Run the web process until told to stop; 0 on a clean stop, 1 if it cannot start.

    ``on_ready(server)`` is called once it listens (tests read ``server.port``).
    """
    web, cti = settings.web, settings.cti
    lower_priority(web.nice)
    try:
        sockets = bind_sockets(web.listen, web.port)
    except OSError as exc:
        log.error("web: cannot listen on %s port %d: %s", web.listen, web.port, exc)
        return 1
    cti_sockets: list[socket.socket] = []
    if cti.enabled and cti.port:
        try:
            cti_sockets = bind_sockets(cti.listen, cti.port)
        except OSError as exc:
            log.error("cti: cannot listen on %s port %d: %s", cti.listen, cti.port, exc)
            for sock in sockets:
                sock.close()
            return 1
    try:
        engine = create_engine_for(settings.database.url)
        upgrade(engine)
        app = create_app(settings, engine=engine)
        app.state.cti_sockets = cti_sockets
        server = WebServer(app, settings, sockets, on_ready)
    except (OSError, ssl.SSLError, SQLAlchemyError) as exc:
        for sock in sockets + cti_sockets:
            sock.close()
        log.error("web: cannot start: %s", exc)
        return 1
    if exit_on_stdin_eof:
        _watch_stdin(server)
        server.on_ready = _announcing(on_ready)
    try:
        asyncio.run(server.serve(sockets=[]))
    finally:
        engine.dispose()
        for sock in sockets + cti_sockets:
            sock.close()
    return 0
