"""Running one media server: the control listener and the ``offhook media`` process.

Theory of operation. ``ControlListener`` serves the control protocol
(docs/media-control.md) on a Unix socket (``unix:PATH``, created 0600: the
file permissions are its access control) or TCP (``HOST:PORT``). TCP takes
the ``net/`` defences every listener has (``net.guard.ListenerGuard``):
the ``control_allow`` source list checked before a byte is read (a refused
peer is reset and leaves no state), connection caps in total and per
source, a rate bucket per source (over it, reading pauses: TCP
back-pressure), a handshake timeout (the first request) and an idle
timeout (the node pings every few seconds). Every connection frames lines
with ``control.LineFramer`` (at most 64 KiB a line, never more buffered)
and stops being read while it owes the peer more than ``MAX_WRITE_BACKLOG``
bytes it does not take; it is closed when that lasts. A line that is not a
JSON object with an id closes the connection; a bad request is answered
with an error and the connection goes on; the server is never stopped by
a peer. Every refusal is counted by reason in the server's ``stats``
(``control_<reason>``). A connection's endpoints are released when it
closes.

``main(settings, control)`` runs a media server until SIGTERM or SIGINT
(uvloop when installed), then closes the listener and releases every
endpoint; with ``exit_on_stdin_eof`` it also ends when its standard input
closes (the supervising node died: the child does not outlive it), and
says on its standard output when it listens (``common.ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
from typing import TYPE_CHECKING, cast

from offhook.common import fd_limit
from offhook.common.addr import peer as normal_peer
from offhook.common.logsetup import setup_logging
from offhook.common.ready import announce_ready
from offhook.media import control
from offhook.media.control import ControlAddress, ControlError, Event, LineFramer, Reply
from offhook.media.server import MediaServer, ServerConfig
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
from offhook.net.listen import open_stream_servers

if TYPE_CHECKING:
    from offhook.config import Settings

log = logging.getLogger("offhook.media")

CONTROL_LIMITS = ListenerLimits(
    max_message=control.MAX_LINE,
    idle_timeout=60.0,
    handshake_timeout=10.0,
    max_connections=16,
    max_connections_per_source=8,
    rate_per_source=20000.0,
    rate_burst=40000.0,
)
"""The control listener's defences: a node or two connect, pinging every few
seconds, sending up to thousands of requests a second (a whole site put on hold)."""
MAX_WRITE_BACKLOG = 1 << 20
"""Bytes of replies and events a peer may leave unread before reading it pauses."""
SLOW_READER_TIMEOUT = 10.0
"""Seconds a peer may stay over ``MAX_WRITE_BACKLOG`` before it is closed."""
SLOW_READER = "slow-reader"


class ControlConnection(asyncio.Protocol):
    """One control connection: framing, parsing, dispatch, timers, its endpoints' owner."""

    def __init__(self, listener: ControlListener) -> None:
        self.listener = listener
        self.server = listener.server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.host = ""
        self.framer = LineFramer()
        self.admitted = False
        self.closing = False
        self.requests = 0
        self._idle: asyncio.TimerHandle | None = None
        self._slow: asyncio.TimerHandle | None = None
        self._resume: asyncio.TimerHandle | None = None
        self._paused = False

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's Unix socket transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)
        guard = self.listener.guard
        if self.listener.address.unix:
            self.host = "unix"
            admitted = guard.connections.try_acquire(self.host)
            if not admitted:
                guard.refuse("max-connections", self.host)
        else:
            name = transport.get_extra_info("peername")
            self.host = normal_peer(name)[0] if name else ""
            admitted = guard.admit_connection(self.host, self.loop.time())
        if not admitted:
            self.transport.abort()
            return
        self.admitted = True
        self.listener.connections.add(self)
        self._arm(self.listener.limits.handshake_timeout, HANDSHAKE_TIMEOUT)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            lines = self.framer.feed(data)
        except ControlError as exc:
            self.close(TOO_LARGE, exc.reason)
            return
        for line in lines:
            if self.closing:
                return
            self._line(line)
        if lines and not self.closing:
            self._arm(self.listener.limits.idle_timeout, IDLE_TIMEOUT)
            if not self.listener.address.unix:
                delay = self.listener.guard.throttle(self.host, self.loop.time(), len(lines))
                if delay > 0:
                    self._pause(delay)

    def eof_received(self) -> bool:
        return False  # half-closed: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        for handle in (self._idle, self._slow, self._resume):
            if handle is not None:
                handle.cancel()
        if self.admitted:
            self.admitted = False
            self.listener.connections.discard(self)
            self.listener.guard.release(self.host)
            released = self.server.release_owner(self)
            if released:
                log.info("control connection closed: %d endpoints released", released)

    def pause_writing(self) -> None:
        pass  # the write backlog is watched in _write

    # -- requests ------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        try:
            request = control.parse_request(line)
        except ControlError as exc:
            if exc.fatal or exc.request_id is None:
                self.close(MALFORMED, exc.reason)
                return
            self.listener.count("bad-request")
            self.reply(control.error_reply(exc.request_id, exc.reason))
            return
        self.requests += 1
        try:
            reply = self.server.dispatch(self, request)
        except Exception:
            log.exception("control request %s failed", request.cmd)
            reply = control.error_reply(request.id, "internal error")
        if reply is not None:
            self.reply(reply)

    # -- Owner -----------------------------------------------------------------------

    def reply(self, reply: Reply) -> None:
        self._write(control.encode_reply(reply))

    def event(self, event: Event) -> None:
        self._write(control.encode_event(event))

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_WRITE_BACKLOG and self._slow is None:
            # The peer does not read: stop reading its requests; close if it lasts.
            self._paused = True
            transport.pause_reading()
            self._slow = self.loop.call_later(SLOW_READER_TIMEOUT, self._check_slow)

    def _check_slow(self) -> None:
        self._slow = None
        transport = self.transport
        if transport is None or self.closing:
            return
        if transport.get_write_buffer_size() > MAX_WRITE_BACKLOG // 2:
            self.close(SLOW_READER, "the peer does not read its replies")
            return
        self._paused = False
        transport.resume_reading()

    # -- timers and closing ---------------------------------------------------------

    def _arm(self, seconds: float, reason: str) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self.loop.call_later(seconds, self.close, reason, "timeout")

    def _pause(self, delay: float) -> None:
        transport = self.transport
        if transport is None or self._resume is not None or self._paused:
            return
        transport.pause_reading()

        def resume() -> None:
            self._resume = None
            if not self.closing and not self._paused and self.transport is not None:
                self.transport.resume_reading()

        self._resume = self.loop.call_later(delay, resume)

    def close(self, reason: str = "", detail: str = "") -> None:
        """Close the connection (counted under ``reason``); its endpoints go with it."""
        if self.closing:
            return
        self.closing = True
        if reason:
            self.listener.count(reason)
            log.warning("control connection from %s closed: %s %s", self.host, reason, detail)
        if self.transport is not None:
            self.transport.close()


class ControlListener:
    """The control protocol's listener, on a Unix socket or TCP; see the module docstring."""

    def __init__(
        self,
        server: MediaServer,
        address: ControlAddress,
        allow: list[str] | tuple[str, ...] = ("127.0.0.1/32", "::1/128"),
        limits: ListenerLimits = CONTROL_LIMITS,
    ) -> None:
        self.server = server
        self.address = address
        self.limits = limits
        acl = AllowList(list(allow))
        self.guard = ListenerGuard(limits, acl.allows, lambda reason, host: self.count(reason))
        self.connections: set[ControlConnection] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.port = address.port

    def count(self, reason: str) -> None:
        key = f"control_{reason.replace('-', '_')}"
        self.server.totals[key] = self.server.totals.get(key, 0) + 1

    async def start(self) -> ControlAddress:
        """Listen; the address listened on (port 0 for TCP: the one picked)."""
        loop = asyncio.get_running_loop()
        factory = lambda: ControlConnection(self)  # noqa: E731
        if self.address.unix:
            path = self.address.path
            _remove_stale_socket(path)
            old = os.umask(0o177)
            try:
                server = await loop.create_unix_server(factory, path, backlog=LISTEN_BACKLOG)
            finally:
                os.umask(old)
            self.servers = [server]
            return self.address
        self.servers, self.port = await open_stream_servers(  # type: ignore[assignment]
            factory, [self.address.host], self.address.port, backlog=LISTEN_BACKLOG
        )
        return ControlAddress(host=self.address.host, port=self.port)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
            if conn.transport is not None:
                conn.transport.abort()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self.address.unix:
            _remove_stale_socket(self.address.path)


def _remove_stale_socket(path: str) -> None:
    """Remove a Unix socket left at ``path`` (never a file of another kind)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path}: exists and is not a socket")
    os.unlink(path)


# -- the process -------------------------------------------------------------------


def raise_fd_limit(max_streams: int) -> None:
    """Lift the soft open-file limit to what ``max_streams`` endpoints need (two sockets each)."""
    need = 64 + 2 * max_streams + CONTROL_LIMITS.max_connections
    limits = fd_limit.lift(need)
    if limits is not None and limits[0] != fd_limit.UNLIMITED and limits[0] < need:
        log.warning("open-file limit %d is below the %d max_streams needs", limits[0], need)


async def serve(
    settings: Settings,
    address: ControlAddress,
    *,
    exit_on_stdin_eof: bool = False,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run a media server until SIGTERM/SIGINT (or ``stopping`` is set)."""
    loop = asyncio.get_running_loop()
    stop = stopping or asyncio.Event()
    server = MediaServer(ServerConfig.of(settings.media))
    listener = ControlListener(server, address, settings.media.control_allow)
    bound = await listener.start()
    server.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    watcher: asyncio.BaseTransport | None = None
    if exit_on_stdin_eof:
        watcher = await _watch_stdin(stop)
        announce_ready()
    log.info(
        "media server: control on %s, RTP on %s ports %s, at most %d streams",
        bound,
        ", ".join(settings.media.listen),
        settings.media.rtp_ports,
        settings.media.max_streams,
    )
    try:
        await stop.wait()
    finally:
        log.info("media server stopping")
        if watcher is not None:
            watcher.close()
        await listener.close()
        await server.close()


async def _watch_stdin(stop: asyncio.Event) -> asyncio.BaseTransport | None:
    """Set ``stop`` when standard input closes (the parent is gone)."""

    class _Eof(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            stop.set()

        def eof_received(self) -> bool:
            stop.set()
            return False

    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.connect_read_pipe(_Eof, os.fdopen(os.dup(0), "rb", buffering=0))
    except (OSError, ValueError) as exc:
        log.warning("cannot watch standard input: %s", exc)
        return None
    return transport


def main(settings: Settings, control_address: str, *, exit_on_stdin_eof: bool = False) -> int:
    """Entry point of ``offhook media``: 0 after a clean stop, 1 when it cannot start."""
    setup_logging(settings.log.level, settings.log.format)
    try:
        address = control.parse_control_address(control_address)
    except ValueError as exc:
        log.error("cannot start: control address %s", exc)
        return 2
    raise_fd_limit(settings.media.max_streams)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        asyncio.run(serve(settings, address, exit_on_stdin_eof=exit_on_stdin_eof))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


__all__ = ["ControlConnection", "ControlListener", "main", "serve"]
