"""The node's local admin endpoint: a tiny read-only HTTP/1.0 JSON server.

``offhook status`` asks a running node for its registrations, calls and
counters here (``GET /status``). It listens on loopback by default and has
the same defences as every listener: a source allow-list checked before a
byte is read, a bounded request head, a read timeout, a connection cap, and
one request per connection. It serves only GET of registered paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

log = logging.getLogger("offhook.admin")

MAX_HEAD = 4096
READ_TIMEOUT = 5.0


class AdminServer:
    def __init__(
        self,
        routes: dict[str, Callable[[], object]],
        allow: Callable[[str], bool],
        reject: Callable[[str, tuple[str, int]], None] | None = None,
        max_connections: int = 32,
    ) -> None:
        self.routes = routes
        self.allow = allow
        self._reject = reject
        self.max_connections = max_connections
        self._active = 0
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def _refuse(self, reason: str, peer: tuple[str, int]) -> None:
        if self._reject is not None:
            self._reject(reason, peer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = (str(peer_info[0]), int(peer_info[1])) if peer_info else ("", 0)
        if not self.allow(peer[0]):
            self._refuse("acl", peer)
            writer.transport.abort()
            return
        if self._active >= self.max_connections:
            self._refuse("max-connections", peer)
            writer.transport.abort()
            return
        self._active += 1
        try:
            head = await asyncio.wait_for(self._read_head(reader), READ_TIMEOUT)
            status, body = self._respond(head)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self._refuse("bad-request", peer)
            status, body = 400, b'{"error": "bad request"}'
        except ConnectionError:
            self._active -= 1
            return
        try:
            writer.write(
                f"HTTP/1.0 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._active -= 1
            writer.close()

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data:
            chunk = await reader.read(MAX_HEAD + 1 - len(data))
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_HEAD:
                raise asyncio.LimitOverrunError("request head too large", len(data))
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
