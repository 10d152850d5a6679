"""asyncio adapters for SIP: UDP and TCP on one port, with the listener defences.

Theory of operation. ``SipTransport`` binds a UDP endpoint and a TCP server
on the same address and port. Every datagram and every connection is checked
against the source allow-list before a byte is parsed; a refused source gets
no answer and leaves no state. Datagrams are parsed whole; TCP bytes go
through a ``StreamFramer`` that checks the header block and Content-Length
against ``max_message`` before buffering. A request that fails to parse is
answered 400 when its Via/Call-ID/CSeq can be salvaged, otherwise dropped and
counted; on TCP the connection is then closed. Parsed messages go to the
``on_message`` callback (the endpoint); nothing a peer sends can raise out of
the protocol callbacks.

Before delivery the top Via of a request is stamped per RFC 3261 §18.2.1 and
RFC 3581 (``received``, ``rport``). Responses are sent back per §18.2.2: on
the connection the request came on, or over UDP to received/rport.

The defences are a ``net.guard.ListenerGuard`` built from the ``[sip]``
limits: the allow-list (before a byte is parsed; no state for a refused
source), the caps on inbound TCP connections overall and per source, and a
token bucket per source (datagrams over the rate are dropped; a TCP
connection over it stops being read for a while: back-pressure). Over the
rate, a datagram of work under way (a response, ACK, CANCEL, a request with
a To-tag: ``sip.ingress.is_ongoing``, a peek without a parse) draws on a
reserve before it is dropped, so that new requests are always dropped
first. A source the plan names as a trunk (``trunks``, a
``net.trunk_admission.TrunkTable``: one dict lookup per datagram) is held to
its own bucket, sized from its ``max_cps``, instead of the per-source one. A datagram
over ``max_message`` is answered 513 when its Via/Call-ID/CSeq can be read
(RFC 3261 §21.5.14), else dropped. TCP connections are closed when they
deliver no complete message for ``idle_timeout`` seconds (bytes of an
unfinished message do not count: a slow trickle is idle), when an inbound one
has not delivered its first message within ``handshake_timeout``, when the
peer half-closes, or on a framing error (answered 400/413 first when the
request can be salvaged). Outbound requests to a peer we have a connection
with reuse it (phones behind NAT registered over TCP); otherwise a new one is
opened (RFC 3261 §18.1.1). With workers (``offhook.workers``) the connections
to a peer live in the worker its address lands on: ``relay`` passes a TCP
message for a peer homed elsewhere to that worker, which writes it
(``write_stream``), and ``forward_message`` passes on a message framed out of a
connection here that belongs to another worker's dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any, cast

from offhook.common.addr import canonical, family, ip_version, peer, same_host
from offhook.common.errors import ParseError
from offhook.net.guard import (
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    LISTEN_BACKLOG,
    TOO_LARGE,
    ListenerGuard,
    ListenerLimits,
)
from offhook.net.listen import (
    PICK_ATTEMPTS,
    BindSpec,
    bind_plan,
    listen_list,
    open_datagram_endpoints,
    open_stream_servers,
    pick_endpoint,
    served_families,
)
from offhook.net.trunk_admission import TrunkTable
from offhook.sip.codec import StreamFramer, parse_message, salvage_for_400
from offhook.sip.ingress import is_ongoing
from offhook.sip.message import SipMessage, SipRequest, SipResponse, make_response, split_list
from offhook.sip.node_ring import NODE

log = logging.getLogger("offhook.sip.transport")

Addr = tuple[str, int]
MessageHandler = Callable[[SipMessage, Addr, str], None]


_RESOLVE_TTL = 60.0
_STALE_MAX = 3600.0  # an expired answer is still used this long while it is looked up again
_MAX_RESOLVED = 1024
_MAX_RESOLVING = 64  # host name lookups in flight (each holds an executor thread)

TransportLimits = ListenerLimits
"""The [sip] limits the transport enforces (the listener limits every listener has)."""


# ``;key`` in a Via value, with optional blanks around the key, then the end, a
# ``;``/``,`` (not taken) or ``=`` and the value up to the next ``;`` or ``,``.
_VIA_PARAMS = {
    key: re.compile(rf";[ \t]*{key}[ \t]*(?:=[^;,]*|(?=[;,])|\Z)", re.IGNORECASE | re.ASCII)
    for key in ("rport", "received")
}


def _via_param_span(via: str, key: str) -> tuple[int, int] | None:
    """(start, end) of ``;key[=value]`` in a Via value, or None (``key``: rport, received)."""
    m = _VIA_PARAMS[key].search(via)
    return None if m is None else m.span()


def _via_sent_by(via: str) -> tuple[str, int | None]:
    """Host and port of a Via value's sent-by (``SIP/2.0/UDP host:port;...``)."""
    parts = via.split(None, 1)
    if len(parts) != 2:
        raise ParseError("bad Via")
    sent_by = parts[1].split(";", 1)[0].strip()
    if sent_by.startswith("["):
        end = sent_by.find("]")
        host = sent_by[: end + 1]
        rest = sent_by[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = sent_by.partition(":")
    port = port.strip()
    return host.strip(), (int(port) if port.isdigit() else None)


def stamp_via(request: SipRequest, source: Addr) -> None:
    """Add received/rport to the top Via (RFC 3261 §18.2.1, RFC 3581 §4)."""
    first_line = next((v for n, v in request.headers if n == "Via"), None)
    if first_line is None:
        return
    # The top Via is the first element of the first Via header line.
    elements = split_list(first_line)
    if not elements:
        return
    via = elements[0]
    host, _port = _via_sent_by(via)
    span = _via_param_span(via, "rport")
    changed = False
    if span is not None:
        via = f"{via[: span[0]]};rport={source[1]}{via[span[1] :]}"
        changed = True
    if span is not None or not same_host(host, source[0]):
        # RFC 3261 §18.2.1, RFC 5118 §4.5: received carries the bare address.
        rspan = _via_param_span(via, "received")
        if rspan is not None:
            via = via[: rspan[0]] + via[rspan[1] :]
        via = f"{via};received={source[0].split('%', 1)[0]}"
        changed = True
    if changed:
        elements[0] = via
        new_first = ", ".join(elements)
        items = request.headers._items
        for i, (n, v) in enumerate(items):
            if n == "Via" and v is first_line:
                items[i] = (n, new_first)
                break


def response_destination(response: SipResponse, fallback: Addr) -> Addr:
    """Where a UDP response goes: received/rport from the top Via (RFC 3581 §4)."""
    try:
        via = response.top_via
        host, port = _via_sent_by(via)
    except ParseError:
        return fallback
    rspan = _via_param_span(via, "received")
    if rspan is not None:
        value = via[rspan[0] : rspan[1]].partition("=")[2].strip()
        if value:
            host = value
    host = host.strip("[]")
    if ":" in host:  # IPv6, or IPv4-mapped: the node's one form
        with contextlib.suppress(ValueError):
            host = canonical(host)
    pspan = _via_param_span(via, "rport")
    if pspan is not None:
        value = via[pspan[0] : pspan[1]].partition("=")[2].strip()
        if value.isdigit():
            return host, int(value)
        return fallback
    return host, port or 5060


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner.datagram(data, peer(addr))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class _Tcp(asyncio.Protocol):
    """One TCP connection, inbound or outbound."""

    def __init__(self, owner: SipTransport, outbound: bool = False) -> None:
        self.owner = owner
        self.framer = StreamFramer(max_size=owner.limits.max_message)
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)
        self.last_active = 0.0  # last complete message (or ping) either way
        self.greeted = outbound  # an inbound connection must send a message first
        self.outbound = outbound
        self.counted = False
        self.admitted = False  # holds a slot of the guard's connection caps
        self.resume: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        name = transport.get_extra_info("peername")
        self.peer = peer(name) if name else ("", 0)
        self.last_active = self.owner.loop.time()
        if not self.outbound:
            if not self.owner.admit_connection(self.peer[0]):
                self.transport.abort()
                return
            self.admitted = True
        self.counted = True
        self.owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        if not self.counted or self.transport is None or self.transport.is_closing():
            return
        try:
            messages = self.framer.feed(data)
        except ParseError as exc:
            self.owner.framing_error(self, exc)
            return
        pings = self.framer.take_pings() if self.framer.pings else 0
        if pings:
            self.write(b"\r\n")  # RFC 5626 §4.4.1: a CRLF pong for each CRLFCRLF ping
        if messages or pings:
            now = self.owner.loop.time()
            self.last_active = now
            self.greeted = True
            if not self.outbound:
                self.owner.throttle(self, now, len(messages) + pings)
        forward = self.owner.forward_message
        for msg in messages:
            if forward is not None and forward(msg, self.peer):
                continue  # another worker's dialog (offhook.workers)
            self.owner.deliver(msg, self.peer, "tcp")
        if self.framer.error is not None:
            # Bad bytes after good messages: those were handled, now the stream fails.
            self.owner.framing_error(self, self.framer.error)

    def eof_received(self) -> bool:
        # A half-closed socket is closed at once, never kept (CSCed37403).
        if self.framer.buffered:
            self.owner.reject("truncated", self.peer)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.resume is not None:
            self.resume.cancel()
            self.resume = None
        if self.counted:
            self.counted = False
            self.owner.connection_closed(self)

    def resume_reading(self) -> None:
        self.resume = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.last_active = self.owner.loop.time()


class SipTransport:
    """UDP + TCP SIP transport on one address and port."""

    def __init__(
        self,
        on_message: MessageHandler,
        allow: Callable[[str], bool],
        reject: Callable[[str, Addr], None] | None = None,
        limits: TransportLimits | None = None,
    ) -> None:
        self.on_message = on_message
        self.allow = allow
        self._reject = reject
        # The plan's trunks (set by the composition root): their datagrams are
        # held to their own buckets instead of the anonymous per-source one.
        self.trunks: TrunkTable | None = None
        # A look at a datagram before its full parse (sip.shed_peek, set by the
        # composition root): True when it handled the datagram (a shed INVITE).
        self.peek: Callable[[bytes, Addr], bool] | None = None
        # Another worker's dialog (offhook.workers, [node] workers > 1): True when
        # the datagram was passed on to its owner, before its parse.
        self.forward: Callable[[bytes, Addr], bool] | None = None
        # The same for a message framed out of a TCP connection.
        self.forward_message: Callable[[SipMessage, Addr], bool] | None = None
        # A TCP message for a peer whose connection another worker holds: True
        # when it was passed to that worker to write (offhook.workers), which
        # reports back (the callback) when it cannot be written.
        self.relay: Callable[[bytes, Addr, Callable[[], None] | None], bool] | None = None
        # A message of a call between this node's workers (transport ``node``, the
        # node leg): True when it was passed to the worker it is for.
        self.node_send: Callable[[bytes, Addr, Callable[[], None] | None], bool] | None = None
        self._limits = limits or TransportLimits()
        self.guard = ListenerGuard(
            self._limits, allow, lambda reason, host: self.reject(reason, (host, 0))
        )
        self.loop = asyncio.get_running_loop()
        self.udp_endpoints: list[tuple[BindSpec, asyncio.DatagramTransport]] = []
        self.servers: list[asyncio.Server] = []
        self.families: frozenset[int] = frozenset()
        self._resolved: dict[str, tuple[str, float]] = {}
        self._resolving: dict[str, asyncio.Task[str | None]] = {}
        self.connections: dict[Addr, _Tcp] = {}
        self._pending: dict[Addr, list[tuple[bytes, Callable[[], None] | None]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.closed = False  # after close(): what is still sent (timers, BYEs) goes nowhere
        self.local: Addr = ("", 0)
        self._adopted: list[tuple[BindSpec, socket.socket]] = []
        self._adopted_tcp: list[socket.socket] = []

    @property
    def limits(self) -> TransportLimits:
        """The ``[sip]`` limits (a settings reload sets them again, ``node_reload``)."""
        return self._limits

    @limits.setter
    def limits(self, limits: TransportLimits) -> None:
        self._limits = limits
        if self.trunks is not None:  # a trunk's bucket is never below the anonymous one
            self.trunks.set_floor(limits.rate_per_source, limits.rate_burst)

    # --- lifecycle -----------------------------------------------------------
    async def start(
        self,
        host: str | Sequence[str],
        port: int,
        udp: bool = True,
        tcp: bool = True,
        udp_sockets: Sequence[socket.socket] = (),
        tcp_sockets: Sequence[socket.socket] = (),
    ) -> Addr:
        """Listen on every address of ``host`` (one or a list, see net.listen), one port.

        Returns (first address, port). With port 0 the first socket picks it (UDP's;
        when TCP finds that port taken, both pick again).
        ``udp_sockets``: bound UDP sockets to serve instead, one per address of
        ``host`` in ``bind_plan`` order (a worker's, from ``offhook.workers``);
        ``tcp_sockets`` the same for TCP: listening sockets to accept on.
        """
        hosts = listen_list(host)
        asked = port
        for attempt in range(1, PICK_ATTEMPTS + 1):
            port = asked
            if udp_sockets:  # read once serve_adopted() is called (the endpoint exists then)
                self._adopted = list(zip(bind_plan(hosts), udp_sockets, strict=True))
                port = udp_sockets[0].getsockname()[1]
            elif udp:
                self.udp_endpoints, port = await open_datagram_endpoints(
                    lambda: _Udp(self), hosts, port
                )
                for _, transport in self.udp_endpoints:
                    sock = transport.get_extra_info("socket")
                    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                        with contextlib.suppress(OSError):
                            sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
            if not tcp:
                break
            if tcp_sockets:  # accepted on once serve_adopted() is called
                self._adopted_tcp = list(tcp_sockets)
                break
            try:
                self.servers, port = await open_stream_servers(
                    lambda: _Tcp(self), hosts, port, backlog=LISTEN_BACKLOG
                )
                break
            except OSError as exc:
                # Port 0: the port UDP picked may be taken for TCP; pick again, both.
                picked = asked == 0 and udp and not udp_sockets
                if not picked or exc.errno != errno.EADDRINUSE or attempt == PICK_ATTEMPTS:
                    raise
                for _, transport in self.udp_endpoints:
                    transport.close()
                self.udp_endpoints = []
        self.families = served_families(hosts)
        self.local = (bind_plan(hosts)[0].host, port)
        self._schedule_sweep()
        return self.local

    async def serve_adopted(self) -> None:
        """Start reading the sockets given to ``start`` (``udp_sockets``, ``tcp_sockets``)."""
        adopted, self._adopted = self._adopted, []
        for spec, sock in adopted:
            transport, _ = await self.loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock)
            self.udp_endpoints.append((spec, transport))
        listening, self._adopted_tcp = self._adopted_tcp, []
        for sock in listening:
            server = await self.loop.create_server(
                lambda: _Tcp(self), sock=sock, backlog=LISTEN_BACKLOG
            )
            self.servers.append(server)

    async def close(self) -> None:
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for _, transport in self.udp_endpoints:
            transport.close()
        for server in self.servers:
            server.close()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.abort()
        for server in self.servers:
            await server.wait_closed()

    # --- defences ------------------------------------------------------------
    def reject(self, reason: str, peer: Addr) -> None:
        if self._reject is not None:
            self._reject(reason, peer)

    def admit_connection(self, host: str) -> bool:
        """Allow-list, connection caps and rate for a new inbound connection."""
        return self.guard.admit_connection(host, self.loop.time())

    def connection_closed(self, conn: _Tcp) -> None:
        if self.connections.get(conn.peer) is conn:
            del self.connections[conn.peer]
        self._pending.pop(conn.peer, None)
        if conn.admitted:
            conn.admitted = False
            self.guard.release(conn.peer[0])

    def throttle(self, conn: _Tcp, now: float, messages: int) -> None:
        """Charge ``messages`` to the source; over its rate, stop reading for a while."""
        trunks = self.trunks
        quota = trunks.source(conn.peer) if trunks is not None else None
        bucket = quota.datagrams if quota is not None else None
        delay = self.guard.throttle(conn.peer[0], now, messages, bucket)
        transport = conn.transport
        if delay <= 0 or transport is None or transport.is_closing() or conn.resume is not None:
            return
        transport.pause_reading()
        conn.resume = self.loop.call_later(delay, conn.resume_reading)

    def framing_error(self, conn: _Tcp, exc: ParseError) -> None:
        """A bad frame on a stream: answer the request if it can be read, then close."""
        log.info("closing TCP %s:%s: %s", conn.peer[0], conn.peer[1], exc.reason)
        if exc.status_hint == 413:
            self.reject(TOO_LARGE, conn.peer)
        self._answer_bad(conn.framer.rejected, conn.peer, "tcp", exc, conn)
        conn.framer.rejected = b""
        if conn.transport is not None:
            conn.transport.close()  # what was written (the answer) is still sent

    def status(self) -> dict[str, int]:
        """Connections and per-source entries, for the node status."""
        return {"tcp_connections": len(self.connections), **self.guard.status()}

    def _schedule_sweep(self) -> None:
        shortest = min(self.limits.idle_timeout, self.limits.handshake_timeout)
        interval = max(0.25, min(5.0, shortest / 4))
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        idle = now - self.limits.idle_timeout
        handshake = now - self.limits.handshake_timeout
        for conn in list(self.connections.values()):
            transport = conn.transport
            if transport is None or transport.is_closing():
                continue
            if not conn.greeted and conn.last_active < handshake:
                self.reject(HANDSHAKE_TIMEOUT, conn.peer)
                transport.close()
            elif conn.last_active < idle:
                self.reject(IDLE_TIMEOUT, conn.peer)
                transport.close()
        self._schedule_sweep()

    # --- receive -------------------------------------------------------------
    def datagram(self, data: bytes, addr: Addr) -> None:
        trunks = self.trunks
        quota = trunks.source(addr) if trunks is not None else None
        if not self.guard.admit_datagram(
            addr[0],
            self.loop.time(),
            lambda: is_ongoing(data),  # asked only over the rate: drop new work first
            quota.datagrams if quota is not None else None,
        ):
            if quota is not None:
                quota.dropped += 1
            return  # not allowed (no answer, no state) or over its rate (counted)
        if len(data) <= 4 and data.strip(b"\r\n") == b"":
            return  # RFC 5626 keep-alive
        if len(data) > self._limits.max_message:
            # RFC 3261 §21.5.14 513 Message Too Large, when the request can be read.
            self.reject(TOO_LARGE, addr)
            self._answer_bad(data, addr, "udp", ParseError("message too large", 513))
            return
        forward = self.forward
        if forward is not None and forward(data, addr):
            return  # another worker's dialog: passed on unparsed (offhook.workers)
        self.admitted(data, addr)

    def admitted(self, data: bytes, addr: Addr, transport: str = "udp") -> None:
        """A datagram past the defences, or a message another worker passed on (read
        from a datagram or, ``transport`` tcp, from a connection it holds): parse, deliver."""
        peek = self.peek
        if peek is not None and transport != NODE and peek(data, addr):
            return  # shed before the full parse (only while overloaded)
        try:
            msg = parse_message(data, self._limits.max_message)
        except ParseError as exc:
            self._answer_bad(data, addr, transport, exc)
            return
        self.deliver(msg, addr, transport)

    def _answer_bad(
        self,
        data: bytes,
        addr: Addr,
        transport: str,
        exc: ParseError,
        conn: _Tcp | None = None,
    ) -> None:
        """Count a message that failed to parse; answer it when it is a readable request.

        RFC 3261 §18.3: a datagram shorter than its Content-Length is answered
        400; a message too large 413/513 (§21.4.11, §21.5.14). Over TCP the
        answer goes on the connection it came on (``conn``).
        """
        self.reject("malformed", addr)
        try:
            salvaged = salvage_for_400(data)
        except Exception:  # a salvage bug must not escape either
            log.exception("salvage failed")
            salvaged = None
        if salvaged is None or exc.status_hint is None:
            return
        try:
            stamp_via(salvaged, addr)
            resp = make_response(salvaged, exc.status_hint if exc.status_hint >= 400 else 400)
            resp.reason = f"{resp.reason} ({exc.reason})"[:120]
            if conn is not None:
                conn.write(resp.serialize())
            else:
                self.send(resp, response_destination(resp, addr), transport)
        except Exception:
            log.exception("could not answer a malformed request")

    def deliver(self, msg: SipMessage, addr: Addr, transport: str) -> None:
        try:
            if isinstance(msg, SipRequest):
                stamp_via(msg, addr)
            self.on_message(msg, addr, transport)
        except ParseError as exc:
            self.reject("malformed", addr)
            if isinstance(msg, SipRequest) and exc.status_hint is not None:
                try:
                    resp = make_response(msg, exc.status_hint)
                    self.send(resp, response_destination(resp, addr), transport)
                except Exception:
                    log.exception("could not answer a malformed request")
        except Exception:
            # A bug in message handling must never take the listener down.
            log.exception("error handling SIP message from %s:%s", addr[0], addr[1])
            self.reject("internal-error", addr)

    # --- send ----------------------------------------------------------------
    def send(
        self,
        msg: SipMessage | bytes,
        addr: Addr,
        transport: str,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        """Send ``msg``; ``on_error`` is called if it cannot be delivered later.

        Over TCP without a connection to ``addr`` one is opened first; if that
        fails, every message queued for it reports ``on_error`` (RFC 3261
        §17.1.4: the transaction learns of the transport failure at once).
        """
        if self.closed:
            return
        data = msg if isinstance(msg, bytes) else msg.serialize()  # type: ignore[attr-defined]
        if transport == NODE:
            node_send = self.node_send
            if (node_send is None or not node_send(data, addr, on_error)) and on_error:
                self.loop.call_soon(on_error)
            return
        if ip_version(addr[0]) is None:
            self._send_to_name(data, addr, transport, on_error)
            return
        if transport == "tcp":
            conn = self.connections.get(addr)
            if conn is not None:
                conn.write(data)
                return
            relay = self.relay
            if relay is None or not relay(data, addr, on_error):
                self.write_stream(data, addr, on_error)
            return
        if not self.udp_endpoints:
            return
        endpoint, form = pick_endpoint(self.udp_endpoints, addr[0])
        if endpoint is None or form is None:
            log.info("no UDP socket of %s's family to send from", addr[0])
            if on_error is not None:
                self.loop.call_soon(on_error)
            return
        endpoint.sendto(data, (form[0], addr[1]))

    def write_stream(
        self, data: bytes, addr: Addr, on_error: Callable[[], None] | None = None
    ) -> None:
        """Write ``data`` on this process's TCP connection to ``addr``, opened if need be."""
        if self.closed:
            return
        conn = self.connections.get(addr)
        if conn is not None:
            conn.write(data)
            return
        pending = self._pending.get(addr)
        if pending is not None:
            pending.append((data, on_error))
            return
        self._pending[addr] = [(data, on_error)]
        self.loop.create_task(self._connect(addr))

    def _send_to_name(
        self, data: bytes, addr: Addr, transport: str, on_error: Callable[[], None] | None
    ) -> None:
        """A message to a host name: resolved off the event loop (cached), then sent."""
        host = self.cached(addr[0])
        if host is not None:
            self.send(data, (host, addr[1]), transport, on_error)
            return
        self.loop.create_task(self._resolve_and_send(data, addr, transport, on_error))

    async def _resolve_and_send(
        self, data: bytes, addr: Addr, transport: str, on_error: Callable[[], None] | None
    ) -> None:
        resolved = await self.resolve(addr[0])
        if resolved is None:
            if on_error is not None:
                on_error()
            return
        self.send(data, (resolved, addr[1]), transport, on_error)

    def cached(self, name: str) -> str | None:
        """The address ``name`` resolved to, if known (no lookup on the loop).

        An answer past its 60 s is still given, and looked up again in the
        background (serve-stale, RFC 8767): a trunk keeps one address, and
        its requests one Via/Contact family, instead of going out by name
        with a family guessed every time the entry expires. It is forgotten
        an hour after it expired when no lookup could renew it.
        """
        entry = self._resolved.get(name.lower())
        if entry is None:
            return None
        now = self.loop.time()
        if entry[1] <= now:
            if entry[1] + _STALE_MAX <= now:
                return None
            self._lookup(name)
        return entry[0]

    def prefetch(self, name: str) -> None:
        """Resolve ``name`` in the background, so that ``cached`` knows it soon."""
        entry = self._resolved.get(name.lower())
        if entry is None or entry[1] <= self.loop.time():
            self._lookup(name)

    async def resolve(self, name: str) -> str | None:
        """An address of ``name`` of a family this node serves (IPv6 first when it does).

        getaddrinfo runs in the loop's executor, one lookup per name at a
        time however many ask; answers are kept 60 s.
        """
        entry = self._resolved.get(name.lower())
        if entry is not None and entry[1] > self.loop.time():
            return entry[0]
        task = self._lookup(name)
        if task is None:
            return None
        # shield: a caller given up on (cancelled) does not cancel the others' lookup
        return await asyncio.shield(task)

    def _lookup(self, name: str) -> asyncio.Task[str | None] | None:
        """The lookup of ``name`` in flight, or a new one (None: too many in flight)."""
        key = name.lower()
        task = self._resolving.get(key)
        if task is not None:
            return task
        if len(self._resolving) >= _MAX_RESOLVING:
            log.info("cannot resolve %s now: %d lookups in flight", name, len(self._resolving))
            return None
        task = self.loop.create_task(self._getaddrinfo(name, key))
        self._resolving[key] = task
        task.add_done_callback(lambda _: self._resolving.pop(key, None))
        return task

    async def _getaddrinfo(self, name: str, key: str) -> str | None:
        try:
            infos = await asyncio.wait_for(
                self.loop.getaddrinfo(name, None, type=socket.SOCK_DGRAM), timeout=5.0
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            log.info("cannot resolve %s: %s", name, exc)
            return None
        candidates = [peer(info[4])[0] for info in infos]
        # IPv6 first on a node that serves it; never a family it has no socket for.
        order = tuple(v for v in (6, 4) if v in self.families) or (4,)
        for version in order:
            for host in candidates:
                if family(host) == version:
                    if len(self._resolved) >= _MAX_RESOLVED and key not in self._resolved:
                        self._resolved.clear()
                    self._resolved[key] = (host, self.loop.time() + _RESOLVE_TTL)
                    return host
        log.info("%s has no address of a family this node serves", name)
        self._resolved.pop(key, None)
        return None

    async def _connect(self, addr: Addr) -> None:
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Tcp(self, outbound=True), addr[0], addr[1]),
                timeout=5.0,
            )
        except (TimeoutError, OSError) as exc:
            log.info("TCP connect to %s:%s failed: %s", addr[0], addr[1], exc)
            for _, on_error in self._pending.pop(addr, []):
                if on_error is not None:
                    try:
                        on_error()
                    except Exception:
                        log.exception("transport error handler failed")
            return
        for data, _ in self._pending.pop(addr, []):
            proto.write(data)
