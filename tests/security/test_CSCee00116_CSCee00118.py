"""CSCee00116 / CSCee00118: a crafted length must not make the node allocate it.

CallManager's CTI manager grew past 1 GB, and ccm.exe jumped by 500 MB per
packet, because a length field in a crafted packet was allocated as given.
Here every framed protocol of the node gets length fields at 0, 1, max-1,
max, max+1, 0x7FFFFFFF and 0xFFFFFFFF, and lengths that run past the end of
the datagram or stream:

- SCCP: the u32 length of the frame header;
- SIP over TCP: Content-Length (the framer checks it against ``max_message``
  before it buffers a body byte), and over UDP: Content-Length past the end
  of the datagram, and datagrams over ``max_message``;
- TFTP: oversize datagrams, and options with values out of range (blksize
  0 and above 65464, tsize and timeout absurd);
- provisioning HTTP: Content-Length on a GET, and a request head larger
  than ``max_message``; the node's control endpoint (``[admin]``, JSON
  lines): a line longer than ``max_message``.

The connection is closed or the message rejected (SIP answers 400, 413 or
513 as RFC 3261 §18.3, §21.4.11 and §21.5.14 say), and memory stays bounded
while 10,000 such frames are handled: measured with ``tracemalloc`` in this
process, driving the framers, parsers and listener objects directly (with
stand-in transports), and as the resident memory of a real ``offhook serve``
(``/proc/PID/status`` VmRSS and its peak VmHWM) before and after 10,000
frames sent to it over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import select
import socket
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from offhook.common.errors import ParseError
from offhook.common.location import MemoryLocationStore
from offhook.net.guard import ListenerLimits
from offhook.net.listen import BindSpec
from offhook.ris.control_codec import BadRequest, LineBuffer, LineTooLong, parse_request
from offhook.sccp.aio import SccpLimits, SccpListener
from offhook.sccp.codec import SccpFramer
from offhook.sccp.connection import PhoneConnection
from offhook.sccp.link import PhoneLink
from offhook.sccp.messages import Message
from offhook.sip.aio import SipTransport, _Tcp
from offhook.sip.codec import StreamFramer, parse_message
from offhook.tftp.aio import TftpServer
from offhook.tftp.files import FileSource
from offhook.tftp.http import _body_length
from offhook.tftp.protocol import (
    MAX_BLKSIZE,
    MAX_DATAGRAM,
    OAck,
    Opcode,
    ReadSession,
    Request,
    parse_packet,
)
from support.netprobe import (
    abort,
    hwm_kib,
    raise_nofile,
    received_before_close,
    rss_kib,
    wait_until,
)
from support.server import OffhookServer

FRAMES = 10_000
MAX = 4096  # max_message of SIP, SCCP and the admin endpoint in this module
HTTP_MAX = 8192  # [tftp] max_message: the HTTP request head
PEAK_BOUND = 1 << 20  # bytes tracemalloc may see at the peak of 10,000 frames
RETAINED_BOUND = 64 << 10  # bytes still allocated afterwards
RSS_BOUND_KIB = 10 << 10  # 10 MiB of resident memory growth for the real node


def crafted(maximum: int) -> list[int]:
    """The length values of the advisory test: around the maximum, and absurd."""
    return [0, 1, maximum - 1, maximum, maximum + 1, 0x7FFFFFFF, 0xFFFFFFFF]


def measure(run: Callable[[int], None], frames: int = FRAMES) -> tuple[int, int]:
    """(peak, retained) bytes tracemalloc sees while ``run(i)`` handles ``frames`` frames."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for i in range(frames):
            run(i)
        peak = tracemalloc.get_traced_memory()[1] - base
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return peak, retained


async def ameasure(run: Callable[[int], None], frames: int = FRAMES) -> tuple[int, int]:
    """``measure`` inside the event loop: it runs every 100 frames, as it would
    between connections in a node (cancelled timers are dropped then)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for i in range(frames):
            run(i)
            if i % 100 == 99:
                await asyncio.sleep(0)
        await asyncio.sleep(0)
        peak = tracemalloc.get_traced_memory()[1] - base
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return peak, retained


def report(what: str, peak: int, retained: int) -> None:
    print(f"tracemalloc {what}: {FRAMES} frames, peak {peak} B, retained {retained} B")
    assert peak < PEAK_BOUND, (what, peak)
    assert retained < RETAINED_BOUND, (what, retained)


def sip_head(content_length: int, transport: str = "UDP", tag: str = "x") -> bytes:
    return (
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={tag}\r\n"
        "To: <sip:127.0.0.1>\r\n"
        f"Call-ID: crafted-{tag}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def sccp_frame(length: int) -> bytes:
    """A frame header announcing ``length`` (+ at most 64 bytes of it)."""
    body = b"\x00" * min(max(length - 4, 0), 64)
    return struct.pack("<III", length, 0, 0x0001) + body


# -- stand-in transports (in-process) -----------------------------------------


class FakeStream:
    """Enough of an ``asyncio.Transport`` for a listener's protocol object."""

    def __init__(self, protocol: Any, peer: tuple[str, int]) -> None:
        self.protocol = protocol
        self.peer = peer
        self.closed = False
        self.written = 0
        self.head = b""  # the first bytes written (the answer's status line)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 5060)}.get(name, default)

    def write(self, data: bytes) -> None:
        if not self.head:
            self.head = bytes(data[:32])
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.protocol.connection_lost(None)

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class FakeDatagrams:
    def __init__(self) -> None:
        self.sent = 0
        self.statuses: set[bytes] = set()

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent += 1
        self.statuses.add(bytes(data[:12]))

    def close(self) -> None:
        pass


class NoHandler:
    """A PhoneHandler that does nothing (no phone ever registers here)."""

    def attach(self, link: PhoneLink, now: float) -> None:
        pass

    def detach(self, link: PhoneLink, reason: str, now: float) -> None:
        pass

    def on_message(self, link: PhoneLink, msg: Message, now: float) -> None:
        pass

    def next_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


# -- in-process: framers and parsers ------------------------------------------


def test_sccp_framer_never_takes_a_length_it_is_given() -> None:
    lengths = crafted(MAX)
    for length in lengths:
        framer = SccpFramer(MAX)
        frame = sccp_frame(length)
        if length < 4 or length > MAX:
            with pytest.raises(ParseError):
                framer.feed(frame)
            assert framer.buffered == 0
        else:
            assert framer.feed(frame[:-1] if length <= 64 + 4 else frame) == []
            assert framer.buffered <= 8 + 64 + 4

    def run(i: int) -> None:
        with contextlib.suppress(ParseError):
            SccpFramer(MAX).feed(sccp_frame(lengths[i % len(lengths)]))

    report("SCCP framer", *measure(run))


def test_sip_stream_framer_checks_content_length_before_the_body() -> None:
    lengths = crafted(MAX)
    for length in lengths:
        framer = StreamFramer(MAX)
        head = sip_head(length, "TCP")
        if len(head) + length <= MAX:
            got = framer.feed(head)
            assert (got == []) == (length > 0)  # complete only without a body
            assert framer.buffered <= len(head)
        else:
            with pytest.raises(ParseError) as info:
                framer.feed(head + b"x" * 16)
            assert info.value.status_hint in (400, 413)
            assert framer.buffered == 0 and len(framer.rejected) <= MAX

    def run(i: int) -> None:
        with contextlib.suppress(ParseError):
            StreamFramer(MAX).feed(sip_head(lengths[i % len(lengths)], "TCP") + b"x" * 16)

    report("SIP stream framer", *measure(run))


def test_sip_datagram_content_length_past_the_end_is_400() -> None:
    for length in crafted(MAX)[1:]:
        with pytest.raises(ParseError) as info:
            parse_message(sip_head(length), MAX)
        assert info.value.status_hint == 400, length  # RFC 3261 §18.3
    assert parse_message(sip_head(0) + b"ignored", MAX).body == b""


def test_tftp_bad_options_and_oversize_datagrams() -> None:
    with pytest.raises(ParseError):
        parse_packet(b"\x00\x01" + b"a" * MAX_DATAGRAM)
    bad = (
        ("blksize", "0"),
        ("blksize", "7"),
        ("blksize", str(MAX_BLKSIZE + 1)),
        ("blksize", "65536"),
        ("blksize", "4294967296"),
        ("tsize", "99999999999999999999"),
        ("timeout", "0"),
        ("timeout", "256"),
    )
    for option in bad:
        session = ReadSession(Request(Opcode.RRQ, "f", "octet", (option,)), b"x" * 5000, 0.0)
        sent = [parse_packet(d) for d in session.datagrams_to_send()]
        assert 8 <= session.blksize <= 1468 and 1 <= session.timeout <= 255
        for pkt in sent:
            if isinstance(pkt, OAck):
                assert option not in pkt.options or option[0] == "tsize"

    def run(i: int) -> None:
        option = bad[i % len(bad)]
        ReadSession(Request(Opcode.RRQ, "f", "octet", (option,)), b"x" * 600, 0.0)
        with contextlib.suppress(ParseError):
            parse_packet(b"\x00\x01" + b"b" * (MAX_DATAGRAM + (i % 3)))

    report("TFTP options", *measure(run))


def test_http_content_length_is_refused_not_read() -> None:
    def head(value: str) -> bytes:
        return f"GET /x HTTP/1.1\r\nContent-Length: {value}\r\n\r\n".encode()

    assert _body_length(b"GET /x HTTP/1.1\r\n\r\n") == 0
    assert _body_length(head("0")) == 0
    for length in crafted(HTTP_MAX)[1:]:
        assert _body_length(head(str(length))) == length  # refused with 413
    for value in ("-1", "1e9", "99999999999999999999", "0x10"):
        assert _body_length(head(value)) is None  # refused with 400
    assert _body_length(b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")


# -- in-process: the listener objects ------------------------------------------


def test_listener_objects_bound_what_crafted_lengths_cost(tmp_path: Path) -> None:
    """SIP (UDP and TCP), SCCP, TFTP and the admin endpoint's listener objects,
    each fed 10,000 crafted frames through stand-in transports."""
    lengths = crafted(MAX)
    results: dict[str, tuple[int, int]] = {}
    rejected: list[str] = []

    async def main() -> None:
        limits = ListenerLimits(max_message=MAX, rate_per_source=1e9, rate_burst=1e9)
        sip = SipTransport(
            lambda msg, addr, t: None,
            lambda host: True,
            reject=lambda reason, peer: None,
            limits=limits,
        )
        udp = FakeDatagrams()
        sip.udp_endpoints = [(BindSpec("127.0.0.1", socket.AF_INET), udp)]  # type: ignore[list-item]

        def sip_udp(i: int) -> None:
            length = lengths[i % len(lengths)]
            if i % 8 == 7:
                sip.datagram(sip_head(0) + b"p" * (MAX + i % 100), ("127.0.0.1", 5999))
            else:
                sip.datagram(sip_head(length) + b"x", ("127.0.0.1", 5999))

        results["SIP UDP listener"] = await ameasure(sip_udp)
        assert {s[8:11] for s in udp.statuses} <= {b"200", b"400", b"513"}
        assert {b"400", b"513"} <= {s[8:11] for s in udp.statuses}
        answers: set[bytes] = set()

        def sip_tcp(i: int) -> None:
            conn = _Tcp(sip)
            fake = FakeStream(conn, ("127.0.0.1", 40000 + i % 20000))
            conn.connection_made(fake)  # type: ignore[arg-type]
            conn.data_received(sip_head(lengths[i % len(lengths)], "TCP", str(i)) + b"x" * 8)
            if not fake.closed:
                conn.eof_received()  # the stream ends before the body does
                fake.close()
            answers.add(fake.head[8:11])

        results["SIP TCP listener"] = await ameasure(sip_tcp)
        assert answers <= {b"", b"200", b"400", b"413"} and {b"400", b"413"} <= answers
        assert not sip.connections and sip.guard.connections.total == 0

        sccp = SccpListener(
            NoHandler(),
            lambda name: None,
            MemoryLocationStore(),
            lambda host: True,
            reject=lambda reason, peer: rejected.append(reason) if len(rejected) < 10 else None,
            limits=SccpLimits(max_message=MAX, rate_per_source=1e9, rate_burst=1e9),
        )

        def sccp_conn(i: int) -> None:
            conn = PhoneConnection(sccp)
            fake = FakeStream(conn, ("127.0.0.1", 40000 + i % 20000))
            conn.connection_made(fake)  # type: ignore[arg-type]
            conn.data_received(sccp_frame(lengths[i % len(lengths)]))
            if not fake.closed:
                conn.eof_received()
                fake.close()

        results["SCCP listener"] = await ameasure(sccp_conn)
        assert not sccp.connections and sccp.limiter.total == 0
        assert "framing" in rejected

        tftp_rejects: list[str] = []
        tftp = TftpServer(
            FileSource(tmp_path),
            "127.0.0.1",
            0,
            on_reject=lambda reason, host: (
                tftp_rejects.append(reason) if len(tftp_rejects) < 10 else None
            ),
        )

        def tftp_request(i: int) -> None:
            size = (513, 1500, MAX_DATAGRAM + 1, 65507)[i % 4]
            tftp._on_request(b"\x00\x01" + b"f" * size, ("127.0.0.1", 6000))

        results["TFTP listener"] = await ameasure(tftp_request)
        assert set(tftp_rejects) == {"oversize"} and tftp.active_transfers == 0

        def admin_line(i: int) -> None:
            lines = LineBuffer(MAX)
            try:
                lines.feed(b'{"op": "status", "x": "' + b"a" * (MAX + i % 64))
            except LineTooLong:
                assert lines.buffered == 0
            else:
                raise AssertionError("an oversize line was accepted")
            try:
                parse_request(b'{"op": "status", "x": ' + b"[" * (200 + i % 64))
            except BadRequest:
                pass
            else:
                raise AssertionError("a malformed line was accepted")

        results["admin (control) listener"] = await ameasure(admin_line)

    asyncio.run(main())
    for what, (peak, retained) in results.items():
        report(what, peak, retained)


# -- a real offhook serve ------------------------------------------------------

_ROOM = {
    "max_connections": 2000,
    "max_connections_per_source": 2000,
    "rate_per_source": 100000.0,
    "rate_burst": 100000.0,
}
CONFIG: dict[str, dict[str, Any]] = {
    "sip": {**_ROOM, "max_message": MAX},
    "sccp": {**_ROOM, "max_message": MAX},
    "tftp": {**_ROOM, "max_message": HTTP_MAX, "max_transfers": 64, "max_transfers_per_source": 64},
    "admin": {**_ROOM, "max_message": MAX},
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    raise_nofile(8192)
    server = OffhookServer(tmp_path_factory.mktemp("cscee00116"), extra_config=CONFIG)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _tcp_frames(port: int, frames: list[bytes], batch: int = 100) -> None:
    """Each frame on its own connection, ``batch`` connections at a time; every
    fourth one dies with a reset, the others close normally."""
    for start in range(0, len(frames), batch):
        socks = []
        for frame in frames[start : start + batch]:
            s = socket.create_connection(("127.0.0.1", port), 10)
            with contextlib.suppress(OSError):
                s.sendall(frame)
            socks.append(s)
        for i, s in enumerate(socks):
            if i % 4 == 3:
                abort(s)
            else:
                s.close()


def _udp_frames(port: int, frames: list[bytes], batch: int = 50) -> int:
    """Send datagrams in batches, reading what comes back between them; the
    number of answers."""
    answers = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for start in range(0, len(frames), batch):
            for frame in frames[start : start + batch]:
                with contextlib.suppress(OSError):  # EMSGSIZE for a datagram over 64 KiB
                    s.sendto(frame, ("127.0.0.1", port))
            got = 0
            while got < batch:  # pace on the answers; stop when they stop coming
                ready, _, _ = select.select([s], [], [], 0.3)
                if not ready:
                    break
                s.recv(65536)
                got += 1
            answers += got
    return answers


def _exchange_tcp(port: int, data: bytes) -> bytes | None:
    """Send ``data``, half-close, and return what arrives before the server closes."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        return received_before_close(s, 30.0)


def _exchange_udp(port: int, data: bytes, wait: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(data, ("127.0.0.1", port))
        ready, _, _ = select.select([s], [], [], wait)
        return s.recv(65536) if ready else None


def _status_line(answer: bytes | None) -> bytes:
    return (answer or b"").split(b"\r\n", 1)[0]


def test_real_node_closes_or_rejects_each_crafted_length(node: OffhookServer) -> None:
    lengths = crafted(MAX)
    # SCCP: a bad length closes the connection without a byte in answer; a
    # plausible one waits for the rest, and the stream's end closes it.
    for length in lengths:
        assert _exchange_tcp(node.sccp_port, sccp_frame(length)) == b"", length
    # SIP over TCP: 0 is a complete request; 1 runs past the stream's end
    # (closed, nothing to answer); the rest are answered 400 or 413, then closed.
    for length in lengths:
        line = _status_line(_exchange_tcp(node.sip_port, sip_head(length, "TCP", f"t{length}")))
        if length == 0:
            assert line.startswith(b"SIP/2.0 "), line
        elif length == 1:
            assert line == b"", line
        else:
            assert line[:11] in (b"SIP/2.0 400", b"SIP/2.0 413", b"SIP/2.0 513"), (length, line)
    # SIP over UDP: Content-Length past the datagram is 400, a datagram over
    # max_message 513 (RFC 3261 §18.3, §21.5.14).
    for length in lengths[1:]:
        line = _status_line(_exchange_udp(node.sip_port, sip_head(length, tag=f"u{length}")))
        assert line.startswith(b"SIP/2.0 400"), (length, line)
    pad = b"X-Pad: " + b"p" * MAX + b"\r\nMax-Forwards"
    big = sip_head(0, tag="big").replace(b"Max-Forwards", pad)
    assert _status_line(_exchange_udp(node.sip_port, big)).startswith(b"SIP/2.0 513")
    # TFTP: an oversize request gets nothing; absurd options are left out of the OACK.
    assert _exchange_udp(node.tftp_port, b"\x00\x01" + b"f" * 600 + b"\x00octet\x00", 1.0) is None
    for name, value in (("blksize", "0"), ("blksize", "65536"), ("timeout", "256")):
        rrq = Request(Opcode.RRQ, "XMLDefault.cnf.xml", "octet", ((name, value),)).encode()
        answer = _exchange_udp(node.tftp_port, rrq)
        assert answer is not None
        packet = parse_packet(answer)
        assert not isinstance(packet, OAck) or (name, value) not in packet.options
    # Provisioning HTTP: a body is refused (413) or unreadable (400); a head over
    # max_message is 431.
    for length in lengths[1:]:
        request = f"GET /XMLDefault.cnf.xml HTTP/1.1\r\nContent-Length: {length}\r\n\r\n"
        line = _status_line(_exchange_tcp(node.tftp_http_port, request.encode()))
        assert line.startswith(b"HTTP/1.1 413"), (length, line)
    head = b"GET /XMLDefault.cnf.xml HTTP/1.1\r\nX: " + b"a" * HTTP_MAX + b"\r\n\r\n"
    assert _status_line(_exchange_tcp(node.tftp_http_port, head)).startswith(b"HTTP/1.1 431")
    # The control endpoint: a line over max_message is answered with an error, and closed.
    line = b'{"op": "status", "x": "' + b"a" * MAX + b'"}\n'
    answer = _exchange_tcp(node.admin_port, line)
    assert answer == b'{"ok":false,"error":"line longer than %d bytes"}\n' % MAX, answer

    rejections = node.status()["counters"]["rejections"]
    assert rejections["sccp"]["framing"] >= 4
    # Over TCP 0 is fine and 1 merely truncated; over UDP every length past 0 and
    # the oversize datagram are refused.
    assert rejections["sip"]["malformed"] >= (len(lengths) - 2) + len(lengths)
    assert rejections["sip"]["too-large"] >= 1
    assert rejections["tftp"]["too-large"] >= 1
    assert rejections["tftp-http"]["too-large"] >= 1
    assert rejections["admin"]["too-large"] >= 1


def test_real_node_memory_stays_bounded_over_10000_crafted_frames(node: OffhookServer) -> None:
    lengths = crafted(MAX)
    cycle = itertools.cycle(range(len(lengths)))
    sip_udp = [
        sip_head(lengths[next(cycle)], tag=f"m{i}")
        if i % 5
        else sip_head(0, tag=f"m{i}") + b"p" * (MAX + 1)
        for i in range(2500)
    ]
    sip_tcp = [sip_head(lengths[i % len(lengths)], "TCP", f"c{i}") + b"x" * 32 for i in range(1500)]
    sccp = [sccp_frame(lengths[i % len(lengths)]) for i in range(2500)]
    options = (("blksize", "0"), ("blksize", "65536"), ("tsize", "9" * 20), ("timeout", "0"))
    tftp = [
        b"\x00\x01" + b"f" * (600 + i % 1000)
        if i % 2
        else Request(Opcode.RRQ, f"nofile{i}", "octet", (options[i % 4],)).encode()
        for i in range(2000)
    ]
    http = [
        f"GET /x HTTP/1.1\r\nContent-Length: {lengths[i % len(lengths)]}\r\n\r\n".encode()
        if i % 2
        else b"GET /x HTTP/1.1\r\nX: " + b"a" * (HTTP_MAX + 1) + b"\r\n\r\n"
        for i in range(1000)
    ]
    admin = [b'{"op": "status", "x": "' + b"a" * (MAX + 1) for _ in range(500)]
    total = sum(map(len, (sip_udp, sip_tcp, sccp, tftp, http, admin)))
    assert total == FRAMES

    # Warm up every path once, so that the first allocations are in the baseline.
    _udp_frames(node.sip_port, sip_udp[:10])
    _tcp_frames(node.sip_port, sip_tcp[:10])
    _tcp_frames(node.sccp_port, sccp[:10])
    _udp_frames(node.tftp_port, tftp[:10])
    _tcp_frames(node.tftp_http_port, http[:10])
    _tcp_frames(node.admin_port, admin[:10])
    assert wait_until(lambda: _quiet(node), 60.0)
    rss0, hwm0 = rss_kib(node.pid), hwm_kib(node.pid)

    answers = _udp_frames(node.sip_port, sip_udp)
    _tcp_frames(node.sip_port, sip_tcp)
    _tcp_frames(node.sccp_port, sccp)
    _udp_frames(node.tftp_port, tftp)
    _tcp_frames(node.tftp_http_port, http)
    _tcp_frames(node.admin_port, admin)
    assert wait_until(lambda: _quiet(node), 60.0), node.status()
    rss1, hwm1 = rss_kib(node.pid), hwm_kib(node.pid)
    print(
        f"offhook serve RSS over {FRAMES} crafted frames: {rss0} -> {rss1} KiB "
        f"(+{rss1 - rss0}), peak {hwm0} -> {hwm1} KiB (+{hwm1 - hwm0}); "
        f"SIP UDP answers {answers}/{len(sip_udp)}"
    )
    assert rss1 - rss0 < RSS_BOUND_KIB
    assert hwm1 - hwm0 < RSS_BOUND_KIB
    assert answers > 0
    from support.server import sip_options_ping

    assert sip_options_ping(node.sip_port, timeout=2.0) is not None


def _quiet(node: OffhookServer) -> bool:
    """No connection or transfer left open on any listener."""
    status = node.status()
    tftp = status["tftp"]
    return bool(
        status["listeners"]["sip"]["tcp_connections"] == 0
        and status["sccp"]["connections"] == 0
        and tftp["active_transfers"] == 0
        and tftp["http_connections"] == 0
    )
