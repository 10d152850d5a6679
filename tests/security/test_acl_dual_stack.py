"""Allow-lists on dual-stack listeners: IPv6 and IPv4 entries, both stacks, every listener.

A dual-stack socket (``listen = "::"``) sees an IPv4 client as
``::ffff:127.0.0.1``; the node turns that back into ``127.0.0.1`` as it
arrives, so an IPv4 entry admits it and an IPv6 entry does not. Two real
``offhook serve`` nodes, every listener on ``"::"`` (SCCP, TFTP,
provisioning HTTP, admin; SIP has its own tests):

- ``v6_only``: ``allow = ["::1/128"]`` everywhere: ``::1`` registers a
  phone, fetches its cnf.xml over TFTP and HTTP and reads the status;
  ``127.0.0.1`` gets nothing from any of them (no TFTP datagram; every TCP
  connection closed or reset before a byte of answer);
- ``v4_only``: ``allow = ["127.0.0.0/8"]``: ``127.0.0.1`` (mapped on the
  wire) is admitted and shows as ``127.0.0.1`` in ``offhook status``;
  ``::1`` gets nothing.

Each refusal is counted under ``acl`` for its listener, and the per-source
tables hold exactly what they held before the refused client came. Only
loopback addresses are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from offhook.ris.control import request_at
from offhook.tftp.protocol import Data, Error, ErrorCode, OAck, Opcode, Request, parse_packet
from support.netprobe import received_before_close
from support.ports import HOST, HOST6
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

ROUNDS = 10  # refused attempts per listener
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
RRQ = Request(Opcode.RRQ, f"{PHONE}.cnf.xml", "octet").encode()
SCCP_REGISTER = struct.pack("<III", 4 + 28, 0, 0x0001) + PHONE.encode().ljust(28, b"\0")
LISTENERS = ("sccp", "tftp", "tftp-http", "admin")


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_answer(host: str, port: int, data: bytes, wait: float) -> bytes | None:
    """Send ``data`` from ``host`` to ``host:port``; the first datagram back (None: nothing)."""
    with socket.socket(family(host), socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.sendto(data, (host, port))
        ready, _, _ = select.select([s], [], [], wait)
        if not ready:
            return None
        try:
            answer, source = s.recvfrom(65536)
        except ConnectionRefusedError:  # an ICMP error is an answer too
            return b"<icmp>"
        # A transfer that answered is ended at once, so it does not linger in the tables.
        s.sendto(Error(ErrorCode.NOT_DEFINED, "enough").encode(), source)
        return answer


def tcp_answer(host: str, port: int, data: bytes) -> bytes | None:
    """What the node sends back before it closes (b"": nothing; None: still open)."""
    with socket.socket(family(host), socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect((host, port))
        with contextlib.suppress(OSError):  # already reset: fine
            s.sendall(data)
        return received_before_close(s, 30.0)


def status_over(host: str, port: int) -> dict[str, Any]:
    """The ``status`` op of the control endpoint from ``host`` (IPv4 arrives mapped on ``::``)."""
    data: dict[str, Any] = request_at(host, port, "status", timeout=10)
    return data


def tables(status: dict[str, Any]) -> dict[str, Any]:
    """Every per-source table of the listeners under test."""
    return {name: status["listeners"][name] for name in LISTENERS}


def settled(node: OffhookServer, insider: str) -> dict[str, Any]:
    """The status once no transfer or connection of earlier steps is open."""
    for _ in range(100):
        status = status_over(insider, node.admin_port)
        listeners = tables(status)
        if all(listeners[name]["connections"] == 0 for name in ("sccp", "tftp", "tftp-http")):
            return status
        time.sleep(0.1)
    raise AssertionError(f"listeners still busy: {tables(status)}")


def refused_everywhere(node: OffhookServer, outsider: str, insider: str) -> None:
    """``outsider`` gets nothing from any listener; the refusals cost no state."""
    before = settled(node, insider)
    for _ in range(ROUNDS):
        assert udp_answer(outsider, node.tftp_port, RRQ, 0.3) is None
        assert tcp_answer(outsider, node.sccp_port, SCCP_REGISTER) == b""
        get = f"GET /{PHONE}.cnf.xml HTTP/1.1\r\n\r\n".encode()
        assert tcp_answer(outsider, node.tftp_http_port, get) == b""
        assert tcp_answer(outsider, node.admin_port, b'{"op": "status"}\n') == b""
    after = status_over(insider, node.admin_port)
    refused, earlier = after["counters"]["rejections"], before["counters"]["rejections"]
    for name in LISTENERS:
        got = refused[name]["acl"] - earlier.get(name, {}).get("acl", 0)
        assert got == ROUNDS, (name, refused)
    assert tables(after) == tables(before), (tables(before), tables(after))
    assert "::ffff:" not in json.dumps(after)


def served_everywhere(node: OffhookServer, insider: str) -> dict[str, Any]:
    """``insider`` registers a phone, fetches its cnf.xml (TFTP, HTTP), reads the status."""
    answer = udp_answer(insider, node.tftp_port, RRQ, 5.0)
    assert answer is not None and isinstance(parse_packet(answer), Data | OAck)
    http = tcp_answer(
        insider, node.tftp_http_port, f"GET /{PHONE}.cnf.xml HTTP/1.1\r\n\r\n".encode()
    )
    assert http is not None and http.startswith(b"HTTP/1.1 200")
    assert f"<processNodeName>{insider}</processNodeName>".encode() in http

    async def register() -> str:
        async with SccpPhone(PHONE, node.sccp_port, insider) as phone:
            await phone.register()
            status = await asyncio.to_thread(status_over, insider, node.admin_port)
            source: str = next(r["source"] for r in status["registrations"])
            await phone.unregister()
            return source

    source = asyncio.run(register())
    return {"source": source}


def dual_stack_node(
    factory: pytest.TempPathFactory, name: str, allow: list[str]
) -> Iterator[OffhookServer]:
    config: dict[str, dict[str, Any]] = {
        section: {"allow": allow} for section in ("sccp", "tftp", "admin")
    }
    config["sip"] = {"external_host": [HOST, HOST6]}  # what phones are told, per family
    server = OffhookServer(factory.mktemp(name), PLAN, listen="::", extra_config=config)
    with server:
        yield server


@pytest.fixture(scope="module")
def v6_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    yield from dual_stack_node(tmp_path_factory, "acl6", ["::1/128"])


@pytest.fixture(scope="module")
def v4_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    yield from dual_stack_node(tmp_path_factory, "acl4", ["127.0.0.0/8"])


def test_ipv6_entry_admits_ipv6_and_refuses_ipv4_on_a_dual_stack_listener(
    v6_only: OffhookServer,
) -> None:
    served = served_everywhere(v6_only, HOST6)
    assert served["source"].startswith("[::1]:")
    refused_everywhere(v6_only, HOST, HOST6)


def test_ipv4_entry_admits_mapped_ipv4_as_ipv4_and_refuses_ipv6(v4_only: OffhookServer) -> None:
    served = served_everywhere(v4_only, HOST)
    assert served["source"].startswith("127.0.0.1:")  # never ::ffff:127.0.0.1
    refused_everywhere(v4_only, HOST6, HOST)
