"""CSCed37403: idle and half-closed sockets must not pile up (RISDC sockets in CLOSE_WAIT).

CallManager 3.3-4.1 did not time out its RIS data collector's sockets: idle
and half-closed connections stayed in CLOSE_WAIT and held non-paged memory
until the server fell over. Here a real ``offhook serve`` (small timeouts,
connection caps large enough for the test) gets, on every TCP listener
(SIP over TCP, SCCP, provisioning HTTP, the node's control endpoint), 2,000
connections at once from one source:

- idle ones that never send a byte,
- ones that send part of a message and then nothing (a slow trickle),
- ones that send one whole message and then nothing,
- half-closed ones (``shutdown(SHUT_WR)``, half of them after a partial
  message),
- ones that send part of a frame and die with a reset (``SO_LINGER`` 0).

Every connection the client keeps must be closed by the server (EOF or
reset seen by the client) within the listener's timeouts plus a generous
grace; afterwards the server process has as many descriptors as before the
storm, and none of its sockets on the listener's port is ESTABLISHED or in
CLOSE_WAIT (``/proc/net/tcp``). The refusals are counted per listener and
reason in ``offhook status``. Nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support.netprobe import (
    abort,
    closed_by_peer,
    fd_count,
    open_connections,
    raise_nofile,
    server_holds,
    wait_until,
)
from support.server import OffhookServer

CONNECTIONS = 2000  # per listener
GRACE = 60.0  # seconds on top of a listener's timeouts: generous, the machine is shared
FD_SLACK = 2  # descriptors the node may open lazily (a database connection, ...)

HANDSHAKE = 4.0
IDLE = 5.0
SCCP_KEEPALIVE = 5
SCCP_IDLE = 11.0  # above two keepalives
SCCP_REGISTER = 6.0

_ROOM = {
    "max_connections": 3000,
    "max_connections_per_source": 3000,
    "rate_per_source": 100000.0,
    "rate_burst": 100000.0,
}
CONFIG: dict[str, dict[str, Any]] = {
    "sip": {**_ROOM, "idle_timeout": IDLE, "handshake_timeout": HANDSHAKE},
    "sccp": {
        **_ROOM,
        "keepalive": SCCP_KEEPALIVE,
        "idle_timeout": SCCP_IDLE,
        "handshake_timeout": HANDSHAKE,
        "register_timeout": SCCP_REGISTER,
    },
    "tftp": {**_ROOM, "idle_timeout": IDLE, "handshake_timeout": HANDSHAKE},
    "admin": {**_ROOM, "idle_timeout": IDLE, "handshake_timeout": HANDSHAKE},
}


def _sip(lport: int = 5060) -> bytes:
    return (
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{lport};branch=z9hG4bK-idle{lport}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=t{lport}\r\n"
        "To: <sip:127.0.0.1>\r\n"
        f"Call-ID: idle-{lport}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@dataclass(frozen=True)
class Listener:
    name: str  # the rejection counters' listener name
    port_attr: str  # OffhookServer attribute holding the port
    partial: bytes  # the start of a message, never finished
    whole: bytes  # one complete message
    closes_within: float  # the longest timeout that applies to a connection here

    def port(self, server: OffhookServer) -> int:
        return int(getattr(server, self.port_attr))


LISTENERS = [
    Listener(
        "sip",
        "sip_port",
        _sip()[:60],
        _sip(),
        max(HANDSHAKE, IDLE),
    ),
    Listener(
        "sccp",
        "sccp_port",
        struct.pack("<III", 200, 0, 0x0001) + b"SEP00",  # Register, 200 bytes announced
        struct.pack("<III", 4, 0, 0x0000),  # KeepAlive (unregistered: closed)
        max(HANDSHAKE, SCCP_REGISTER, SCCP_IDLE),
    ),
    Listener(
        "tftp-http",
        "tftp_http_port",
        b"GET /XMLDefault.cnf.xml HTTP/1.1\r\nHost: 127",
        b"GET /XMLDefault.cnf.xml HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        max(HANDSHAKE, IDLE),
    ),
    Listener(
        "admin",
        "admin_port",
        b'{"op": "sta',
        b'{"op": "nothing_here"}\n',  # answered (an error), the connection stays
        max(HANDSHAKE, IDLE),
    ),
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OffhookServer, int]]:
    """One node for the module, and its descriptor count once warmed up."""
    raise_nofile(4 * CONNECTIONS + 1024)  # this process; the node inherits it
    server = OffhookServer(tmp_path_factory.mktemp("cscd37403"), extra_config=CONFIG)
    server.start()
    try:
        # Warm up every listener once (lazily opened descriptors), then count.
        for listener in LISTENERS:
            with socket.create_connection(("127.0.0.1", listener.port(server)), 5) as s:
                s.sendall(listener.whole)
                s.settimeout(10)
                while s.recv(65536):
                    pass
        server.status()
        time.sleep(1.0)
        yield server, fd_count(server.pid)
    finally:
        server.stop()


def _quietly(fn: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):
        fn(*args)


def _rejections(server: OffhookServer, listener: str) -> dict[str, int]:
    counts: dict[str, int] = server.status()["counters"]["rejections"].get(listener, {})
    return counts


@pytest.mark.parametrize("listener", LISTENERS, ids=[x.name for x in LISTENERS])
def test_idle_half_closed_and_aborted_connections_are_all_closed(
    node: tuple[OffhookServer, int], listener: Listener
) -> None:
    server, baseline = node
    port = listener.port(server)
    before = _rejections(server, listener.name)

    socks = open_connections(port, CONNECTIONS)
    fifth = CONNECTIONS // 5
    idle = socks[:fifth]
    trickle = socks[fifth : 2 * fifth]
    spoke = socks[2 * fifth : 3 * fifth]
    half = socks[3 * fifth : 4 * fifth]
    aborted = socks[4 * fifth :]
    try:
        # The node may already have closed a connection (its timeouts run while
        # the others are still being opened): that is the outcome wanted.
        for s in trickle:
            _quietly(s.send, listener.partial)
        for s in spoke:
            _quietly(s.send, listener.whole)
        for i, s in enumerate(half):
            if i % 2:
                _quietly(s.send, listener.partial)
            _quietly(s.shutdown, socket.SHUT_WR)
        for s in aborted:
            _quietly(s.send, listener.partial)
            abort(s)
        peak = [fd_count(server.pid)]
        kept = idle + trickle + spoke + half
        deadline = time.monotonic() + listener.closes_within + GRACE
        closed, still_open = closed_by_peer(
            kept, deadline, tick=lambda: peak.append(fd_count(server.pid))
        )
        assert not still_open, (
            f"{listener.name}: {len(still_open)} of {len(kept)} connections still open "
            f"{listener.closes_within + GRACE:.0f} s after the storm"
        )
        assert len(closed) == len(kept)
    finally:
        for s in socks:
            s.close()

    # The process is back to its baseline, and holds no socket on the port.
    assert wait_until(lambda: fd_count(server.pid) <= baseline + FD_SLACK, GRACE), (
        f"{listener.name}: {fd_count(server.pid)} descriptors, baseline {baseline}"
    )
    assert wait_until(lambda: not server_holds(port), GRACE), (
        f"{listener.name}: server sockets left on port {port}: {server_holds(port)}"
    )
    final = fd_count(server.pid)
    print(
        f"CSCed37403 {listener.name}: {CONNECTIONS} connections; server fds baseline "
        f"{baseline}, peak {max(peak)}, after {final}; CLOSE_WAIT/ESTABLISHED left: 0"
    )

    # Refusals counted per listener and reason: the silent ones timed out.
    after = _rejections(server, listener.name)
    timed_out = sum(
        after.get(r, 0) - before.get(r, 0)
        for r in ("handshake-timeout", "idle-timeout", "register-timeout")
    )
    assert timed_out >= len(idle) + len(trickle), (listener.name, before, after)
    if listener.name == "sip":
        assert after.get("idle-timeout", 0) - before.get("idle-timeout", 0) >= len(spoke)


def test_node_still_serves_after_the_storms(node: tuple[OffhookServer, int]) -> None:
    server, _ = node
    from support.server import sip_options_ping

    assert sip_options_ping(server.sip_port, timeout=2.0) is not None
    status = server.status()
    listeners = status["listeners"]
    assert listeners["sip"]["connections"] == 0 and listeners["sip"]["tcp_connections"] == 0
    assert status["sccp"]["connections"] == 0
    assert status["tftp"]["http_connections"] == 0
