"""The node's local admin endpoint: a tiny read-only HTTP/1.0 JSON server.

``offhook status`` asks a running node for its registrations, calls and
counters here (``GET /status``). It listens on loopback by default
(``[admin] listen``: one address or a list, IPv4, IPv6 or a dual-stack
``"::"``; see ``net.listen``) and has the same defences as every listener
(``net.guard.ListenerGuard`` over the ``[admin]`` limits): a source
allow-list checked before a byte is read (a refused source is reset, keeps
no state), connection caps overall and per source, a token bucket per
source, a request head bounded by
``max_message`` (read in bounded chunks, never more), ``handshake_timeout``
to send it and ``idle_timeout`` to take the answer, and one request per
connection. It serves only GET of registered paths. A peer's address is
normalised as it arrives (``common.addr.peer``: an IPv4-mapped source is
IPv4), so ``127.0.0.0/8`` admits ``::ffff:127.0.0.1`` as ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence

from offhook.common.addr import peer as normal_peer
from offhook.net.bindings import start_stream_servers
from offhook.net.guard import (
    HANDSHAKE_TIMEOUT,
    LISTEN_BACKLOG,
    TOO_LARGE,
    ListenerGuard,
    ListenerLimits,
)

log = logging.getLogger("offhook.admin")

MAX_HEAD = 4096
READ_TIMEOUT = 5.0


class _HeadTooLarge(Exception):
    pass


class AdminServer:
    def __init__(
        self,
        routes: dict[str, Callable[[], object]],
        allow: Callable[[str], bool],
        reject: Callable[[str, tuple[str, int]], None] | None = None,
        max_connections: int = 32,
        limits: ListenerLimits | None = None,
    ) -> None:
        self.routes = routes
        self.allow = allow
        self._reject = reject
        self.limits = limits or ListenerLimits(
            max_message=MAX_HEAD,
            idle_timeout=READ_TIMEOUT,
            handshake_timeout=READ_TIMEOUT,
            max_connections=max_connections,
            max_connections_per_source=min(8, max_connections),
            rate_per_source=10.0,
            rate_burst=20.0,
        )
        self.max_connections = self.limits.max_connections
        self.guard = ListenerGuard(
            self.limits, allow, lambda reason, host: self._refuse(reason, (host, 0))
        )
        self.servers: list[asyncio.Server] = []

    async def start(self, host: str | Sequence[str], port: int) -> int:
        """Listen on every address of ``host`` (one or a list) on ``port``; the bound port."""
        self.servers, bound = await start_stream_servers(
            self._handle,
            host,
            port,
            limit=max(4096, self.limits.max_message),
            backlog=LISTEN_BACKLOG,
        )
        return bound

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()

    def status(self) -> dict[str, int]:
        return self.guard.status()

    def _refuse(self, reason: str, peer: tuple[str, int]) -> None:
        if self._reject is not None:
            self._reject(reason, peer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = normal_peer(peer_info) if peer_info else ("", 0)
        loop = asyncio.get_running_loop()
        if not self.guard.admit_connection(peer[0], loop.time()):
            writer.transport.abort()  # a reset: no answer
            return
        try:
            await self._serve(reader, writer, peer)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.guard.release(peer[0])
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: tuple[str, int]
    ) -> None:
        try:
            head = await asyncio.wait_for(self._read_head(reader), self.limits.handshake_timeout)
            status, body = self._respond(head)
        except TimeoutError:
            self._refuse(HANDSHAKE_TIMEOUT, peer)
            status, body = 408, b'{"error": "request timeout"}'
        except _HeadTooLarge:
            self._refuse(TOO_LARGE, peer)
            status, body = 431, b'{"error": "request head too large"}'
        except asyncio.IncompleteReadError:
            self._refuse("bad-request", peer)
            status, body = 400, b'{"error": "bad request"}'
        if writer.transport.is_closing():
            return  # the peer is gone (reset): uvloop refuses writes to a closed transport
        writer.write(
            f"HTTP/1.0 {status} {'OK' if status == 200 else 'Error'}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await asyncio.wait_for(writer.drain(), self.limits.idle_timeout)

    async def _read_head(self, reader: asyncio.StreamReader) -> bytes:
        """The request head, read in chunks of at most what is still allowed."""
        limit = self.limits.max_message
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            chunk = await reader.read(limit + 1 - len(data))
            if not chunk:
                raise asyncio.IncompleteReadError(data, None)  # EOF before the head ended
            data += chunk
            if len(data) > limit:
                raise _HeadTooLarge
        return data

    def _respond(self, head: bytes) -> tuple[int, bytes]:
        line = head.split(b"\n", 1)[0].decode("latin-1").strip()
        parts = line.split()
        if len(parts) < 2 or parts[0] != "GET":
            return 405, b'{"error": "only GET"}'
        path = parts[1].split("?", 1)[0]
        handler = self.routes.get(path)
        if handler is None:
            return 404, b'{"error": "not found"}'
        try:
            return 200, json.dumps(handler(), default=str).encode()
        except Exception:
            log.exception("admin route %s failed", path)
            return 500, b'{"error": "internal error"}'
