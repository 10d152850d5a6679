"""The CTI event stream as JSON lines on TCP (``[cti] port``; CallManager's CTI Manager used 2748).

The same stream, the same requests and the same caps as the WebSocket
``/cti/v1/events`` (``web.cti_ws``, docs/cti.md), for applications that
speak plain TCP: one JSON object a line, each way. The first line a client
sends authenticates it::

    {"op": "auth", "token": "API-TOKEN"}            (optionally "after": EVENT_ID)

answered by ``hello`` (then events, and the answers to ``subscribe``,
``resume`` and ``ping``), or by one ``{"type": "error", "reason": ...}``
line and the close: a bad or missing token (a failed login for the source's
failed-login guard), a source blocked for failed logins, a role without
``cti``, CTI off, the client caps. Every line after it is a client message
of the WebSocket's protocol (``cti.client_protocol``); a malformed one is
answered with an ``error`` line and the connection closed, as an
``overflow`` line precedes the close of a client that fell behind.

The advisory's CTI Manager (CSCee00116) allocated over a gigabyte for one
crafted packet and held sockets that never timed out. Here, as on every
listener (``net.guard.ListenerGuard`` over the ``[cti]`` keys): the
allow-list is checked before a byte is read (a refused source is reset and
keeps no state), connections are capped overall and per source and new ones
rate-limited per source, a line is bounded by ``max_message`` bytes (no more
is ever buffered: a longer one closes the connection, counted
``too-large``), the ``auth`` line must come within ``handshake_timeout``
and a client that sends nothing for ``idle_timeout`` is closed (a quiet
client sends ``{"op": "ping"}``). What is written to a client is bounded as
for a WebSocket (``ws_guard.SEND_BUFFER``): a client that stops reading is
overflowed and its connection reset.

``LineSocket`` gives ``cti_ws.Connection`` the ASGI WebSocket messages it
reads and writes, over the stream: the session, its writer, its reader, the
token checks and the message rate are the WebSocket's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from starlette.concurrency import run_in_threadpool

from offhook.cti.client_protocol import ClientMessageError, parse_auth
from offhook.cti.hub import Wire, encode
from offhook.db.users import UserRecord
from offhook.net.acl import AllowList
from offhook.net.authguard import source_key
from offhook.net.guard import IDLE_TIMEOUT, MALFORMED, TOO_LARGE, ListenerGuard, ListenerLimits
from offhook.web.cti_ws import CtiService, run_client
from offhook.web.roles import Permission, permissions_of
from offhook.web.security import LoginRefused
from offhook.web.ws_guard import BATCH, CLOSE_TIMEOUT, RAW, SEND_BUFFER, TIMEOUT, URGENT

__all__ = ["LINES_WIRE", "LISTENER", "CtiTcpServer", "LineSocket"]

log = logging.getLogger("offhook.cti")

LISTENER = "cti"
"""The listener's name in the refusal counters."""


def _no_head(length: int) -> bytes:
    return b""


LINES_WIRE = Wire("lines", _no_head, b"\n")
"""One JSON text a line (what a follower's events are rendered as, ``cti.hub``)."""


class LineSocket:
    """A TCP stream speaking the ASGI WebSocket messages ``cti_ws.Connection`` uses."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        guard: ListenerGuard,
        host: str,
        idle_timeout: float,
    ) -> None:
        self.reader, self.writer, self.guard, self.host = reader, writer, guard, host
        self.idle_timeout = idle_timeout
        self.scope: dict[str, Any] = {"extensions": {BATCH: {}, RAW: {"wire": LINES_WIRE}}}
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self.last_heard = loop.time()

    async def accept(self) -> None:
        """Nothing to send: ``hello`` is the answer to the ``auth`` line."""

    async def send(self, message: dict[str, Any]) -> None:
        raw = message.get(RAW)
        if isinstance(raw, bytes):
            if raw:
                self.writer.write(raw)
                if not message.get(URGENT):
                    async with asyncio.timeout(message.get(TIMEOUT)):
                        await self.writer.drain()
            return
        texts = message.get(BATCH)
        if texts is None:
            text = message.get("text")
            texts = [text] if isinstance(text, str) else []
        if not texts:
            return
        self.writer.write("".join(f"{t}\n" for t in texts).encode())
        if not message.get(URGENT):
            await self.writer.drain()  # bounded by the Connection's send timeout

    async def send_text(self, text: str) -> None:
        await self.send({"text": text})

    async def receive(self) -> dict[str, Any]:
        """The next line as a ``websocket.receive`` message, or ``websocket.disconnect``
        (the client closed, went idle, or sent a line too long or not UTF-8). A blank
        line is skipped (it still counts as the client being there)."""
        while True:
            left = self.last_heard + self.idle_timeout - self._clock()
            try:
                async with asyncio.timeout(max(0.0, left)):
                    line = await self.reader.readuntil(b"\n")
            except TimeoutError:
                if self.last_heard + self.idle_timeout > self._clock():
                    raise  # the caller's own deadline, not the idle one
                self.guard.refuse(IDLE_TIMEOUT, self.host)
                return self._gone(
                    {"type": "error", "reason": "idle: send ping to keep a connection"}
                )
            except asyncio.LimitOverrunError:
                self.guard.refuse(TOO_LARGE, self.host)
                return self._gone({"type": "error", "reason": "line too long"})
            except (asyncio.IncompleteReadError, ConnectionError):
                return {"type": "websocket.disconnect"}
            self.last_heard = self._clock()
            try:
                text = line.decode().strip()
            except UnicodeDecodeError:
                self.guard.refuse(MALFORMED, self.host)
                return self._gone({"type": "error", "reason": "a line is UTF-8 text"})
            if text:
                return {"type": "websocket.receive", "text": text}

    def _gone(self, frame: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.write((encode(frame) + "\n").encode())
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000) -> None:
        await close_writer(self.writer)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close, and reset a connection whose peer does not take what is left."""
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await writer.wait_closed()
    except (TimeoutError, ConnectionError, OSError):
        writer.transport.abort()


class CtiTcpServer:
    """The ``[cti] port`` listener of the web process (see the module doc)."""

    def __init__(self, service: CtiService) -> None:
        self.service = service
        settings = service.settings
        self.settings = settings
        rejections = service.context.rejections
        self.guard = ListenerGuard(
            ListenerLimits.of(settings),
            AllowList(settings.allow).allows,
            lambda reason, host: rejections.increment(LISTENER, reason),
        )
        self.servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            server = await asyncio.start_server(
                self._accepted, sock=sock, limit=self.settings.max_message
            )
            self.servers.append(server)

    @property
    def port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1]) if self.servers else 0

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = source_key(peer[0]) if peer else ""
        if not self.guard.admit_connection(host, asyncio.get_running_loop().time()):
            writer.transport.abort()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        writer.transport.set_write_buffer_limits(high=SEND_BUFFER)
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer, host))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        line = LineSocket(reader, writer, self.guard, host, self.settings.handshake_timeout)
        try:
            first = await line.receive()
            if first["type"] != "websocket.receive":
                return  # gone, idle or a bad line before authenticating (answered)
            auth = await self._authenticate(first["text"], host)
            if isinstance(auth, str):
                line._gone({"type": "error", "reason": auth})
                return
            user, token, after = auth
            service = self.service
            refusal = service.admit(user.name)
            if refusal is not None:
                line._gone({"type": "error", "reason": refusal[1]})
                return
            line.idle_timeout = self.settings.idle_timeout
            try:
                await run_client(service, user, token, after, line, line.accept)
            finally:
                service.release(user.name)
        except Exception:
            log.exception("cti: a TCP client from %s failed", host)
        finally:
            self.guard.release(host)
            await close_writer(writer)

    async def _authenticate(self, text: str, host: str) -> tuple[UserRecord, str, int | None] | str:
        """(user, token, after) from the ``auth`` line, or why it is refused."""
        service = self.service
        try:
            auth = parse_auth(text)
        except ClientMessageError as exc:
            self.guard.refuse(MALFORMED, host)
            service.refused["malformed"] += 1
            return str(exc)
        context = service.context
        source = source_key(host)
        try:
            context.login_guard.check(source)
        except LoginRefused:
            service.refused["429"] += 1
            return "too many failed logins"
        user = await run_in_threadpool(context.users.user_for_token, auth.token)
        if user is None:
            context.login_guard.failure(source, None)
            service.refused["401"] += 1
            return "not authenticated"
        if Permission.CTI not in permissions_of(user.role):
            service.refused["403"] += 1
            return "forbidden: needs cti"
        if not service.settings.enabled:
            service.refused["disabled"] += 1
            return "CTI is off ([cti] enabled = false)"
        return user, auth.token, auth.after
