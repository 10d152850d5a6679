"""The allow-list on every listener: a refused source gets nothing, and costs nothing.

The advisory's only defence was router access lists in front of every
CallManager port. offhook has the list in every listener: here a real
``offhook serve`` allows ``127.0.0.1/32`` only, on SIP (UDP and TCP), SCCP,
TFTP, provisioning HTTP and the admin endpoint. A client bound to
``127.0.0.2``:

- gets no datagram back over UDP (SIP, TFTP);
- over TCP, sees its connection closed or reset before a single byte of
  answer (SIP, SCCP, HTTP, admin);
- leaves no state in the node: the refusals are counted under ``acl`` for
  each listener, and the per-source tables (connection counts, rate
  buckets) hold exactly what they held before it came.

Meanwhile ``127.0.0.1`` still registers an SCCP phone, gets SIP answers,
fetches its configuration over TFTP and HTTP, and reads the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from offhook.tftp.protocol import Data, OAck, Opcode, Request, parse_packet
from support.netprobe import received_before_close
from support.sccp_phone import SccpPhone
from support.server import OffhookServer, sip_options_ping

OUTSIDER = "127.0.0.2"
ROUNDS = 25  # attempts per listener and transport
ONLY = ["127.0.0.1/32"]
PHONE = "SEP00112233AABB"
PLAN: dict[str, Any] = {
    "devices": [
        {
            "name": PHONE,
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": "2001", "display": "Desk"}],
        }
    ]
}


def _options(tag: str, transport: str) -> bytes:
    return (
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {OUTSIDER}:5060;branch=z9hG4bK{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:outsider@{OUTSIDER}>;tag={tag}\r\n"
        "To: <sip:127.0.0.1>\r\n"
        f"Call-ID: acl-{tag}@{OUTSIDER}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _udp_answer(source: str, port: int, data: bytes, wait: float) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.sendto(data, ("127.0.0.1", port))
        ready, _, _ = select.select([s], [], [], wait)
        if not ready:
            return None
        try:
            return s.recv(65536)
        except ConnectionRefusedError:  # an ICMP error is an answer too
            return b"<icmp>"


def _tcp_answer(source: str, port: int, data: bytes) -> bytes | None:
    """What the node sends back before it closes (b"": nothing; None: still open)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((source, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        with contextlib.suppress(OSError):  # already reset: fine
            s.sendall(data)
        return received_before_close(s, 30.0)


def _tables(status: dict[str, Any]) -> dict[str, Any]:
    """Every per-source table size the node reports."""
    listeners = status["listeners"]
    return {
        "sip": listeners["sip"],
        "sccp": {k: status["sccp"][k] for k in ("connections", "rate_sources")},
        "tftp": {
            k: status["tftp"][k]
            for k in ("active_transfers", "http_connections", "rate_sources", "http_rate_sources")
        },
        "admin_rate_sources": listeners["admin"]["rate_sources"],
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    config = {name: {"allow": ONLY} for name in ("sip", "sccp", "tftp", "admin")}
    server = OffhookServer(tmp_path_factory.mktemp("acl"), PLAN, extra_config=config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_outsider_gets_no_answer_and_leaves_no_state(node: OffhookServer) -> None:
    before = node.status()
    tables_before = _tables(before)
    refused_before = before["counters"]["rejections"]

    rrq = Request(Opcode.RRQ, "XMLDefault.cnf.xml", "octet", (("blksize", "1024"),)).encode()
    sccp_register = struct.pack("<III", 4 + 28, 0, 0x0001) + PHONE.encode().ljust(28, b"\0")
    for i in range(ROUNDS):
        assert _udp_answer(OUTSIDER, node.sip_port, _options(f"u{i}", "UDP"), 0.3) is None
        assert _udp_answer(OUTSIDER, node.tftp_port, rrq, 0.3) is None
        assert _tcp_answer(OUTSIDER, node.sip_port, _options(f"t{i}", "TCP")) == b""
        assert _tcp_answer(OUTSIDER, node.sccp_port, sccp_register) == b""
        assert (
            _tcp_answer(OUTSIDER, node.tftp_http_port, b"GET /XMLDefault.cnf.xml HTTP/1.1\r\n\r\n")
            == b""
        )
        assert _tcp_answer(OUTSIDER, node.admin_port, b'{"op": "status"}\n') == b""

    after = node.status()
    refused = after["counters"]["rejections"]
    for listener, count in (
        ("sip", 2 * ROUNDS),  # UDP and TCP
        ("sccp", ROUNDS),
        ("tftp", ROUNDS),
        ("tftp-http", ROUNDS),
        ("admin", ROUNDS),
    ):
        got = refused[listener]["acl"] - refused_before.get(listener, {}).get("acl", 0)
        assert got == count, (listener, refused)
    # No per-source state for the outsider: the tables are what they were.
    assert _tables(after) == tables_before, (tables_before, _tables(after))


def test_allowed_source_still_served(node: OffhookServer) -> None:
    assert sip_options_ping(node.sip_port, timeout=2.0) is not None
    answer = _udp_answer(
        "127.0.0.1",
        node.tftp_port,
        Request(Opcode.RRQ, f"{PHONE}.cnf.xml", "octet").encode(),
        5.0,
    )
    assert answer is not None and isinstance(parse_packet(answer), Data | OAck)
    http = _tcp_answer(
        "127.0.0.1", node.tftp_http_port, f"GET /{PHONE}.cnf.xml HTTP/1.1\r\n\r\n".encode()
    )
    assert http is not None and http.startswith(b"HTTP/1.1 200")

    async def register() -> None:
        phone = SccpPhone(PHONE, node.sccp_port)
        try:
            await phone.register()
        finally:
            await phone.close()

    asyncio.run(register())  # RegisterAck and the whole 7960 sequence
    assert node.status()["plan_version"] >= 1  # and the admin endpoint answers
