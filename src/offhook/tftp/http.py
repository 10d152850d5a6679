"""A tiny asyncio HTTP/1.1 file server for phones that fetch their files on port 6970.

Serves the same ``FileSource`` as TFTP: GET and HEAD only, one request per
connection (``Connection: close``), a bounded request head (``max_head``,
checked by the stream reader before the head is complete: 431), a timeout to
send the head (``request_timeout``: 408) and one to take the answer
(``send_timeout``), ``Content-Length`` on every answer, 404 for anything not
served (a refused name looks like a missing one; there is no directory
listing). A request carrying a body is refused before anything is read of it
(a bad Content-Length 400, any other than 0 413: we take no bodies).

It listens on every address of the ``listen`` setting (one or a list:
IPv4, IPv6, a dual-stack ``"::"``; see ``net.listen``). A peer's address is
normalised as it arrives (``common.addr.peer``: an IPv4-mapped source is
IPv4), and the file source is told the IP version the client used (a
generated cnf.xml names the node by that family).

Sources are checked against the allow-list before anything is read: a
refused source is reset (no answer, no state). Then the global and
per-source connection caps and the source's token bucket
(``net.limits.RateLimiter`` in a bounded LRU): a connection over them is
reset too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from offhook.common.addr import host_port, peer
from offhook.net.bindings import start_stream_servers
from offhook.net.guard import GONE, LISTEN_BACKLOG, MAX_SOURCES
from offhook.net.limits import RateLimiter
from offhook.tftp.files import FileError, FileSource

log = logging.getLogger(__name__)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    505: "HTTP Version Not Supported",
}


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_head: int = 8192
    request_timeout: float = 10.0  # to read the request head
    send_timeout: float = 60.0  # to write the answer
    max_connections: int = 64
    max_per_source: int = 8
    rate_per_source: float = 20.0  # new connections a second per source (token bucket)
    rate_burst: float = 100.0
    max_sources: int = MAX_SOURCES  # rate buckets kept (LRU)


def _body_length(head: bytes) -> int | None:
    """The request's Content-Length (0 without one); None when unreadable.

    Transfer-Encoding means a body of unknown length: refused like a large one.
    """
    length = 0
    seen = False
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key == b"transfer-encoding":
            return 1 << 31
        if key != b"content-length":
            continue
        text = value.strip()
        if seen or not text.isdigit() or len(text) > 12:
            return None  # twice, negative, not a number, absurd
        seen = True
        length = int(text)
    return length


def _content_type(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".xml"):
        return "text/xml"
    if lower.endswith(".txt") or lower.endswith(".cfg"):
        return "text/plain"
    return "application/octet-stream"


class HttpFileServer:
    """Serve ``source`` over HTTP GET on ``host:port`` (port 0 picks a free one).

    ``host`` is one address or a list of them (see ``net.listen``).
    """

    def __init__(
        self,
        source: FileSource,
        host: str | Sequence[str] = "0.0.0.0",
        port: int = 6970,
        *,
        limits: HttpLimits | None = None,
        allow: Callable[[str], bool] | None = None,
        on_reject: Callable[[str, str], None] | None = None,
    ) -> None:
        self._source = source
        self._host = host
        self._port = port
        self._limits = limits or HttpLimits()
        self._allow = allow
        self._on_reject = on_reject
        self._servers: list[asyncio.Server] = []
        self._bound = 0
        self._connections = 0
        self._per_source: dict[str, int] = {}
        self._rates = RateLimiter(
            self._limits.rate_per_source,
            max(1.0, self._limits.rate_burst),
            self._limits.max_sources,
        )
        self.served = 0

    @property
    def port(self) -> int:
        if not self._servers:
            raise RuntimeError("server not started")
        return self._bound

    @property
    def limits(self) -> HttpLimits:
        return self._limits

    def update(self, limits: HttpLimits) -> None:
        """New limits (a settings reload): from the next connection on (the head
        bound of connections already open stays)."""
        self._limits = limits
        self._rates.update(limits.rate_per_source, max(1.0, limits.rate_burst), limits.max_sources)

    @property
    def addresses(self) -> str:
        """The listening addresses as logs print them (``0.0.0.0:6970, [::]:6970``)."""
        return ", ".join(
            host_port(str(sock.getsockname()[0]), self._bound)
            for server in self._servers
            for sock in server.sockets
        )

    @property
    def connections(self) -> int:
        return self._connections

    @property
    def rate_sources(self) -> int:
        """Sources with a rate bucket (bounded by ``max_sources``)."""
        return len(self._rates)

    async def start(self) -> None:
        """Listen on every address; OSError when one cannot be bound."""
        self._servers, self._bound = await start_stream_servers(
            self._handle,
            self._host,
            self._port,
            limit=self._limits.max_head,
            backlog=LISTEN_BACKLOG,
        )

    async def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()

    def _reject(self, reason: str, host: str) -> None:
        if self._on_reject is not None:
            self._on_reject(reason, host)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = writer.get_extra_info("peername")
        host = peer(name)[0] if name else ""  # mapped IPv4 -> IPv4
        try:
            refusal = self._refusal(host)
            if refusal is not None:
                self._reject(refusal, host)
                writer.transport.abort()  # a reset: no answer
                return
            self._connections += 1
            self._per_source[host] = self._per_source.get(host, 0) + 1
            try:
                await self._serve(reader, writer, host)
            finally:
                self._connections -= 1
                left = self._per_source.pop(host) - 1
                if left:
                    self._per_source[host] = left
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _refusal(self, host: str) -> str | None:
        """Why a new connection from ``host`` is refused (None: admitted)."""
        if not host:
            return GONE  # reset by the peer before it was accepted: nothing to admit
        if self._allow is not None and not self._allow(host):
            return "not-allowed"  # before any state is kept for it
        if self._connections >= self._limits.max_connections:
            return "busy"
        if self._per_source.get(host, 0) >= self._limits.max_per_source:
            return "busy-source"
        if not self._rates.allow(host, asyncio.get_running_loop().time()):
            return "rate-limit"
        return None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        try:
            async with asyncio.timeout(self._limits.request_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            self._reject("oversize", host)
            await self._answer(writer, 431)
            return
        except TimeoutError:
            self._reject("timeout", host)
            await self._answer(writer, 408)
            return
        request_line = head.split(b"\r\n", 1)[0]
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._reject("malformed", host)
            status = 505 if len(parts) == 3 and parts[2].startswith(b"HTTP/") else 400
            await self._answer(writer, status)
            return
        method, target = parts[0], parts[1]
        length = _body_length(head)
        if length != 0:
            # A GET or HEAD has no body; we never read one (RFC 9110 §8.6).
            self._reject("malformed" if length is None else "oversize", host)
            await self._answer(writer, 400 if length is None else 413)
            return
        if method not in (b"GET", b"HEAD"):
            await self._answer(writer, 405, extra=b"Allow: GET, HEAD\r\n")
            return
        path = target.split(b"?", 1)[0].split(b"#", 1)[0]
        try:
            name = unquote(path.decode("ascii"), errors="strict")
        except (UnicodeDecodeError, ValueError):
            await self._answer(writer, 400)
            return
        if not name.startswith("/"):
            await self._answer(writer, 400)
            return
        try:
            version = 6 if ":" in host else 4
            body = await asyncio.to_thread(self._source.read, name[1:], version)
        except (FileError, OSError):
            await self._answer(writer, 404, head_only=method == b"HEAD")
            return
        self.served += 1
        await self._answer(
            writer,
            200,
            body,
            content_type=_content_type(name),
            head_only=method == b"HEAD",
        )

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "text/plain",
        head_only: bool = False,
        extra: bytes = b"",
    ) -> None:
        if status != 200 and not body:
            body = f"{status} {_REASONS[status]}\n".encode()
        head = (
            (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n"
            ).encode()
            + extra
            + b"\r\n"
        )
        if writer.transport.is_closing():
            return  # the peer is gone (reset): uvloop refuses writes to a closed transport
        writer.write(head if head_only else head + body)
        async with asyncio.timeout(self._limits.send_timeout):
            await writer.drain()
