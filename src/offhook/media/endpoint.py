"""One RTP/RTCP endpoint of the media server: a socket pair, who may send, where to send.

Theory of operation. An endpoint is an even UDP port for RTP and the odd
port above it for RTCP (RFC 3550 §11), bound on one address of
``[media] listen``. ``bind`` opens and binds both sockets at once
(synchronously: the control request ``open`` can answer with the port
right away), ``start`` puts them behind asyncio datagram transports
(``_Rtp``/``_Rtcp`` protocols) a moment later; what arrives meanwhile waits
in the kernel's socket buffer.

Who may send: nobody until ``connect`` names the far end. Then a packet is
accepted only from the far end's IP address, compared as the socket writes
it (a dual-stack socket reports an IPv4 peer as ``::ffff:a.b.c.d``: the
expected form is computed once, so the test costs one string comparison).
The port is not checked: a phone behind a NAT, or one that sends from
another port than it announced, is answered where its packets come from
(symmetric RTP, RFC 4961): the send target latches to the source port of
the first accepted packet after ``connect`` (``latched`` counts the moves),
and stays there, so a later stranger on the phone's host cannot take the
stream over. A far end the media server only sends to (``receives`` false:
a held party hearing music) is expected to send nothing: its host's
packets are dropped too. Everything else is dropped and counted
(``dropped_source``), before anything is parsed.

Accepted RTP goes to ``on_rtp(endpoint, data)``; RTCP is only counted (the
media server sends none). The far end's packets never queue here: what the
server does with them (jitter buffer, DTMF detector) is bounded there.
Counters are plain integers: ``counters()`` lists them for ``stats``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from offhook.net.listen import BindSpec

Addr = tuple[str, int]
_MAPPED = "::ffff:"

COUNTERS = (
    "rx_packets",
    "rx_bytes",
    "tx_packets",
    "tx_bytes",
    "dropped_source",
    "rtcp_packets",
    "latched",
    "send_errors",
)


def _bind(spec: BindSpec, port: int) -> socket.socket:
    sock = socket.socket(spec.family, socket.SOCK_DGRAM)
    try:
        if spec.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if spec.v6only else 0)
        host = spec.host.split("%", 1)[0]
        if "%" in spec.host:
            sock.bind(socket.getaddrinfo(spec.host, port, spec.family, socket.SOCK_DGRAM)[0][4])
        else:
            sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Rtp(asyncio.DatagramProtocol):
    __slots__ = ("endpoint",)

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.endpoint.rtp_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.endpoint.send_errors += 1  # ICMP unreachable from an earlier sendto


class _Rtcp(asyncio.DatagramProtocol):
    __slots__ = ("endpoint",)

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.endpoint.rtcp_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class RtpEndpoint:
    """An RTP/RTCP port pair with source filtering and symmetric RTP latching."""

    __slots__ = (
        "_expect",
        "_latch",
        "_receives",
        "_rtcp_sock",
        "_rtp_sock",
        "_starting",
        "closed",
        "dropped_source",
        "dual_stack",
        "far",
        "last_rx",
        "latched",
        "local",
        "on_rtp",
        "rtcp_packets",
        "rtcp_target",
        "rtcp_transport",
        "rx_bytes",
        "rx_packets",
        "send_errors",
        "target",
        "transport",
        "tx_bytes",
        "tx_packets",
    )

    def __init__(self, on_rtp: Callable[[RtpEndpoint, bytes], None]) -> None:
        self.on_rtp = on_rtp
        self.local: Addr = ("", 0)
        self.dual_stack = False
        self.transport: asyncio.DatagramTransport | None = None
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self._rtp_sock: socket.socket | None = None
        self._rtcp_sock: socket.socket | None = None
        self.far: Addr | None = None  # the signalled far end, canonical
        self._expect = ""  # the far end's host as the socket reports it
        self._receives = True  # packets from the far end are expected
        self._latch = False  # the next accepted packet fixes the send target
        self.target: Addr | None = None  # where RTP goes, as sendto takes it
        self.rtcp_target: Addr | None = None
        self.closed = False
        self._starting = False
        self.last_rx = 0.0
        self.rx_packets = self.rx_bytes = self.tx_packets = self.tx_bytes = 0
        self.dropped_source = self.rtcp_packets = self.latched = self.send_errors = 0

    # -- lifecycle -----------------------------------------------------------

    def bind(self, spec: BindSpec, port: int) -> None:
        """Bind RTP on ``port`` (even) and RTCP on ``port + 1`` of ``spec``; OSError if taken."""
        rtp = _bind(spec, port)
        try:
            rtcp = _bind(spec, port + 1)
        except BaseException:
            rtp.close()
            raise
        self._rtp_sock, self._rtcp_sock = rtp, rtcp
        self.local = (spec.host, port)
        self.dual_stack = spec.dual_stack

    async def start(self) -> None:
        """Put the bound sockets behind asyncio transports.

        Released meanwhile (``close`` while this runs): everything is closed
        when it ends. An OSError leaves the endpoint to be closed by the caller.
        """
        loop = asyncio.get_running_loop()
        if self._rtp_sock is None or self._rtcp_sock is None or self.closed:
            return
        self._starting = True
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Rtp(self), sock=self._rtp_sock
            )
            self._rtp_sock, self.transport = None, transport
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Rtcp(self), sock=self._rtcp_sock
            )
            self._rtcp_sock, self.rtcp_transport = None, transport
        finally:
            self._starting = False
            if self.closed:
                self._close_all()

    def close(self) -> None:
        """Close both sockets (idempotent; deferred to the end of a ``start`` under way)."""
        self.closed = True
        if not self._starting:
            self._close_all()

    def _close_all(self) -> None:
        for transport in (self.transport, self.rtcp_transport):
            if transport is not None:
                transport.close()
        for sock in (self._rtp_sock, self._rtcp_sock):
            if sock is not None:
                sock.close()
        self.transport = self.rtcp_transport = None
        self._rtp_sock = self._rtcp_sock = None

    # -- far end ---------------------------------------------------------------

    def _wire(self, host: str) -> str:
        """``host`` as this socket writes peer addresses (mapped IPv4 on a dual-stack socket)."""
        return _MAPPED + host if self.dual_stack and ":" not in host else host

    def connect(self, address: str, port: int, *, receives: bool = True) -> None:
        """Accept packets from ``address`` only; send RTP to ``port`` and RTCP to ``port + 1``
        until the far end's first packet says where it is. ``receives`` false: none expected."""
        self._receives = receives
        if self.far == (address, port):
            return  # the same far end again (a re-INVITE): keep what was latched
        self._latch = True
        wire = self._wire(address)
        self.far = (address, port)
        self._expect = wire
        self.target = (wire, port)
        self.rtcp_target = (wire, port + 1)

    # -- packets ---------------------------------------------------------------

    def rtp_received(self, data: bytes, addr: Any) -> None:
        if addr[0] != self._expect or not self._expect or not self._receives:
            self.dropped_source += 1
            return
        self.rx_packets += 1
        self.rx_bytes += len(data)
        if self._latch:
            self._latch = False
            target = self.target
            if target is None or target[1] != addr[1]:
                self.target = (addr[0], addr[1])
                self.latched += 1
        self.on_rtp(self, data)

    def rtcp_received(self, data: bytes, addr: Any) -> None:
        if addr[0] != self._expect or not self._expect:
            self.dropped_source += 1
            return
        self.rtcp_packets += 1
        target = self.rtcp_target
        if target is None or target[1] != addr[1]:
            self.rtcp_target = (addr[0], addr[1])

    def send(self, data: bytes) -> None:
        """One RTP packet to the far end (dropped while not connected or not started)."""
        transport, target = self.transport, self.target
        if transport is None or target is None:
            return
        try:
            transport.sendto(data, target)
        except OSError:
            self.send_errors += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(data)

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTERS}
