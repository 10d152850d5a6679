"""asyncio TFTP server: read requests on a well-known port, one ephemeral socket per transfer.

RFC 1350 §4: the server answers each request from a new transfer identifier
(a fresh UDP port), so every transfer gets its own socket, connected to the
client's address so that the kernel drops datagrams from any other TID. The
protocol itself is ``offhook.tftp.protocol.ReadSession``; this module only
moves datagrams and drives its timer.

Addresses: the listening port is open on every address of the ``listen``
setting (one or a list: IPv4, IPv6, a dual-stack ``"::"``; see
``net.listen``). A transfer's socket is opened like the listening socket
the request came in on: same family, same address (port 0), and for a
dual-stack one ``IPV6_V6ONLY`` off, so an IPv4 client of a dual-stack
listener is answered through an IPv6 socket connected to its mapped
address. Everything else sees the client's address normalised
(``common.addr.peer``: mapped IPv4 as IPv4): the allow-list, the rate and
per-source tables, logs, and the IP version the file source is asked for
(a generated cnf.xml names the node by the family the phone used).

Guards, in order, for each datagram on the listening port: the source
allow-list (checked before any parsing; refused sources get no answer and
leave no state), the size bound (RFC 2347: a request is at most 512 octets),
the source's token bucket (``net.limits.RateLimiter`` in a bounded LRU:
requests over ``rate_per_source`` are dropped, the client retries), the
parser, then the global and per-source transfer caps. A transfer is
abandoned when its client has sent nothing for ``idle_timeout`` seconds
(whatever timeout option it asked for) or after ``max_duration``. Every
drop is reported to ``on_reject(reason, host)`` so the caller can count it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from offhook.common import ParseError
from offhook.common.addr import host_port, peer
from offhook.net.guard import MAX_SOURCES
from offhook.net.limits import RateLimiter
from offhook.net.listen import BindSpec, bind_plan, listen_list, open_datagram_endpoints
from offhook.tftp.files import FileMissing, FileRefused, FileSource
from offhook.tftp.protocol import (
    Error,
    ErrorCode,
    Opcode,
    ReadSession,
    Request,
    SessionSettings,
    SessionState,
    parse_packet,
)

log = logging.getLogger(__name__)

# RFC 2347 §Packet Formats: a request with options is at most 512 octets.
MAX_REQUEST = 512

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TftpLimits:
    max_transfers: int = 64
    max_per_source: int = 4
    max_duration: float = 600.0  # a transfer longer than this is abandoned
    session: SessionSettings = field(default_factory=SessionSettings)
    max_request: int = MAX_REQUEST  # bytes of a request datagram
    idle_timeout: float = 60.0  # a transfer whose client is silent this long is abandoned
    rate_per_source: float = 20.0  # requests a second per source (token bucket)
    rate_burst: float = 100.0
    max_sources: int = MAX_SOURCES  # rate buckets kept (LRU)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self._server = server
        self.spec: BindSpec | None = None  # set once the endpoint is open

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.spec is not None:
            self._server._on_request(data, addr, self.spec)


def transfer_socket(spec: BindSpec, remote: Any) -> socket.socket:
    """A UDP socket for one transfer: like the listening one (``spec``), connected to ``remote``.

    ``remote`` is the client's address as the listening socket reported it
    (mapped for an IPv4 client of a dual-stack socket).
    """
    sock = socket.socket(spec.family, socket.SOCK_DGRAM)
    try:
        if spec.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if spec.v6only else 0)
        if "%" in spec.host:  # a link-local address: getaddrinfo fills in its scope id
            sock.bind(socket.getaddrinfo(spec.host, 0, spec.family, socket.SOCK_DGRAM)[0][4])
        else:
            sock.bind((spec.host, 0))
        sock.connect(remote)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _TransferProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the client is gone.
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class TftpServer:
    """Serve ``source`` over TFTP on ``host:port`` (port 0 picks a free one).

    ``host`` is one address or a list of them (see ``net.listen``).
    """

    def __init__(
        self,
        source: FileSource,
        host: str | Sequence[str] = "0.0.0.0",
        port: int = 69,
        *,
        limits: TftpLimits | None = None,
        allow: Callable[[str], bool] | None = None,
        on_reject: Callable[[str, str], None] | None = None,
    ) -> None:
        self._source = source
        self._hosts = listen_list(host)
        self._port = port
        self._limits = limits or TftpLimits()
        self._allow = allow
        self._on_reject = on_reject
        self._endpoints: list[tuple[BindSpec, asyncio.DatagramTransport]] = []
        self._bound = 0
        self._active: dict[Addr, asyncio.Task[None]] = {}
        self._per_source: dict[str, int] = {}
        self._rates = RateLimiter(
            self._limits.rate_per_source,
            max(1.0, self._limits.rate_burst),
            self._limits.max_sources,
        )
        self.completed = 0
        self.failed = 0

    @property
    def port(self) -> int:
        if not self._endpoints:
            raise RuntimeError("server not started")
        return self._bound

    @property
    def limits(self) -> TftpLimits:
        return self._limits

    def update(self, limits: TftpLimits) -> None:
        """New limits (a settings reload): from the next request on; transfers
        under way keep theirs."""
        self._limits = limits
        self._rates.update(limits.rate_per_source, max(1.0, limits.rate_burst), limits.max_sources)

    @property
    def addresses(self) -> str:
        """The listening addresses as logs print them (``0.0.0.0:69, [::]:69``)."""
        return ", ".join(host_port(spec.host, self._bound) for spec, _ in self._endpoints)

    @property
    def active_transfers(self) -> int:
        return len(self._active)

    @property
    def rate_sources(self) -> int:
        """Sources with a rate bucket (bounded by ``max_sources``)."""
        return len(self._rates)

    async def start(self) -> None:
        """Open the listening port on every address; OSError when one cannot be bound."""
        self._endpoints, self._bound = await open_datagram_endpoints(
            lambda: _Listener(self), self._hosts, self._port
        )
        for spec, transport in self._endpoints:
            protocol = transport.get_protocol()
            assert isinstance(protocol, _Listener)
            protocol.spec = spec

    async def close(self) -> None:
        for _, transport in self._endpoints:
            transport.close()
        self._endpoints = []
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the listening port

    def _reject(self, reason: str, host: str) -> None:
        if self._on_reject is not None:
            self._on_reject(reason, host)

    def _on_request(self, data: bytes, raw: Any, spec: BindSpec | None = None) -> None:
        """A datagram on the listening socket ``spec`` (default: the first) from ``raw``."""
        # One form for every source (mapped IPv4 -> IPv4) before anything looks at it.
        addr = peer(raw)
        host = addr[0]
        if self._allow is not None and not self._allow(host):
            self._reject("not-allowed", host)
            return
        if len(data) > min(MAX_REQUEST, self._limits.max_request):
            self._reject("oversize", host)
            return
        if not self._rates.allow(host, asyncio.get_running_loop().time()):
            self._reject("rate-limit", host)
            return
        try:
            packet = parse_packet(data)
        except ParseError:
            self._reject("malformed", host)
            return
        if not isinstance(packet, Request):
            # DATA/ACK/... on the listening port belong to no transfer.
            self._reject("not-a-request", host)
            return
        if addr in self._active:
            return  # a retransmitted request for a transfer already running
        if len(self._active) >= self._limits.max_transfers:
            self._reject("busy", host)
            return
        if self._per_source.get(host, 0) >= self._limits.max_per_source:
            self._reject("busy-source", host)
            return
        if packet.opcode is Opcode.WRQ:
            self._reject("write-request", host)
        self._per_source[host] = self._per_source.get(host, 0) + 1
        if spec is None:
            spec = self._endpoints[0][0] if self._endpoints else bind_plan(self._hosts)[0]
        task = asyncio.get_running_loop().create_task(self._transfer(packet, addr, raw, spec))
        self._active[addr] = task
        task.add_done_callback(lambda _t: self._finished(addr))

    def _finished(self, addr: Addr) -> None:
        self._active.pop(addr, None)
        n = self._per_source.get(addr[0], 0) - 1
        if n > 0:
            self._per_source[addr[0]] = n
        else:
            self._per_source.pop(addr[0], None)

    # -- one transfer

    async def _read(self, request: Request, version: int) -> bytes | Error | None:
        if request.opcode is not Opcode.RRQ:
            return None  # the session refuses a WRQ itself
        try:
            return await asyncio.to_thread(self._source.read, request.filename, version)
        except FileRefused:
            return Error(ErrorCode.ACCESS_VIOLATION, "access violation")
        except FileMissing:
            return None
        except OSError:
            return Error(ErrorCode.NOT_DEFINED, "read error")

    async def _transfer(self, request: Request, addr: Addr, raw: Any, spec: BindSpec) -> None:
        loop = asyncio.get_running_loop()
        content = await self._read(request, 6 if ":" in addr[0] else 4)
        sock: socket.socket | None = None
        try:
            sock = transfer_socket(spec, raw)
            transport, proto = await loop.create_datagram_endpoint(_TransferProtocol, sock=sock)
        except OSError as exc:
            if sock is not None:
                sock.close()
            self.failed += 1
            log.warning("tftp: no socket for a transfer to %s: %s", host_port(*addr), exc)
            return
        session = ReadSession(request, content, loop.time(), self._limits.session)
        give_up = loop.time() + self._limits.max_duration
        heard = loop.time()  # the client's last datagram
        try:
            while True:
                for datagram in session.datagrams_to_send():
                    transport.sendto(datagram)
                if session.done:
                    break
                now = loop.time()
                if now >= give_up:
                    transport.sendto(Error(ErrorCode.NOT_DEFINED, "transfer too long").encode())
                    break
                if now >= heard + self._limits.idle_timeout:
                    self._reject("idle-timeout", addr[0])
                    transport.sendto(Error(ErrorCode.NOT_DEFINED, "timed out").encode())
                    break
                deadline = min(
                    session.next_timer() or give_up, give_up, heard + self._limits.idle_timeout
                )
                try:
                    async with asyncio.timeout(max(0.0, deadline - now)):
                        data = await proto.queue.get()
                except TimeoutError:
                    session.handle_timer(loop.time())
                    continue
                if data is None:
                    break
                heard = loop.time()
                session.receive(data, heard)
        finally:
            transport.close()
            if session.state is SessionState.COMPLETE:
                self.completed += 1
            else:
                self.failed += 1
                log.debug("tftp %s from %s: %s", request.filename, host_port(*addr), session.reason)
