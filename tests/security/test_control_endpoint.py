"""The node's control endpoint (``[admin]``, JSON lines) under abuse.

What the HTTP admin endpoint it replaced had to withstand, on the new
protocol (a ``ris.control.ControlServer`` over real loopback sockets, with
the defences of ``[admin]``):

- an outsider (a source the allow-list refuses) is reset before a byte is
  read and leaves no state behind: no connection or rate entry, only the
  ``acl`` count;
- a line longer than ``max_message`` is answered with one error line and
  the connection closed, whether or not its newline ever comes, and the
  server never holds more than ``max_message`` bytes of it;
- 5,000 connections of oversize lines, malformed lines, deep nesting,
  unknown ops and resets leave memory flat (``tracemalloc``: what is
  retained after the storm, against a bound) and the per-source tables
  empty, and a real client is answered afterwards;
- the per-source connection cap refuses the ninth concurrent connection of
  one source.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import socket
import struct
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from offhook.net.guard import ListenerLimits
from offhook.ris.control import ControlClient, ControlServer

HOST = "127.0.0.1"
OUTSIDER = "127.0.0.2"
MAX = 4096
STORM = 5000
RETAINED_BOUND = 256 * 1024  # bytes tracemalloc may see retained after the storm
LIMITS = ListenerLimits(
    max_message=MAX,
    idle_timeout=10.0,
    handshake_timeout=10.0,
    max_connections=256,
    max_connections_per_source=8,
    rate_per_source=1e6,
    rate_burst=1e6,
)


def status_op(args: dict[str, Any]) -> dict[str, Any]:
    return {"node": "test", "registrations": []}


def run(
    body: Callable[[ControlServer, int], Awaitable[None]], limits: ListenerLimits = LIMITS
) -> dict[str, int]:
    """``body(server, port)`` against a fresh server allowing 127.0.0.1; the refusals."""
    refused: dict[str, int] = {}

    def count(reason: str, peer: tuple[str, int]) -> None:
        refused[reason] = refused.get(reason, 0) + 1

    async def main() -> None:
        server = ControlServer(
            {"status": status_op}, allow=lambda h: h == HOST, reject=count, limits=limits
        )
        port = await server.start(HOST, 0)
        try:
            await asyncio.wait_for(body(server, port), 240)
        finally:
            await server.close()

    asyncio.run(main())
    return refused


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def _closed_answer(port: int, data: bytes, source: str = HOST) -> bytes:
    """Send ``data`` from ``source``; everything received until the server closes."""

    def exchange() -> bytes:
        with socket.socket() as s:
            s.bind((source, 0))
            s.settimeout(30)
            s.connect((HOST, port))
            with contextlib.suppress(OSError):
                s.sendall(data)
            out = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := s.recv(65536):
                    out += chunk
            return out

    return await asyncio.to_thread(exchange)


def test_an_outsider_is_reset_and_leaves_no_state() -> None:
    async def body(server: ControlServer, port: int) -> None:
        empty = server.status()
        for line in (b'{"op": "status"}\n', b"x" * (MAX * 2), b""):
            assert await _closed_answer(port, line, OUTSIDER) == b""
        assert server.status() == empty
        assert server.requests == 0

    assert run(body) == {"acl": 3}


def test_an_oversize_line_is_answered_once_and_closed() -> None:
    error = b'{"ok":false,"error":"line longer than %d bytes"}\n' % MAX

    async def body(server: ControlServer, port: int) -> None:
        with_newline = b'{"op": "status", "x": "' + b"a" * MAX + b'"}\n'
        assert await _closed_answer(port, with_newline) == error
        without = b'{"op": "status", "x": "' + b"a" * (MAX * 4)  # its end never comes
        assert await _closed_answer(port, without) == error
        # After a good request on the same connection: answered, then the error.
        both = b'{"op": "status"}\n' + b"b" * (MAX + 1)
        answer = await _closed_answer(port, both)
        assert answer.startswith(b'{"ok":true') and answer.endswith(error)
        assert server.requests == 1

    assert run(body) == {"too-large": 3}


def test_memory_stays_flat_over_a_storm_of_bad_lines() -> None:
    junk = [
        b'{"op": "status", "x": "' + b"a" * (MAX + 100),  # oversize, never ended
        b"GET /status HTTP/1.0\r\n\r\n",  # HTTP at it: malformed
        b'{"op": "status", "x": ' + b"[" * 2000 + b"\n",  # nesting
        b'{"op": "nope"}\n{"op": "status"}\n' + b"\xff" * 100 + b"\n",
        b'{"op": "sta',  # half a line, then a reset
    ]

    async def storm(port: int, count: int) -> None:
        def send() -> None:
            for start in range(0, count, 100):
                socks = []
                for i in range(start, min(count, start + 100)):
                    s = socket.create_connection((HOST, port), 30)
                    with contextlib.suppress(OSError):
                        s.sendall(junk[i % len(junk)])
                    socks.append(s)
                for i, s in enumerate(socks):
                    if i % 5 == 4:
                        _reset(s)
                    else:
                        with contextlib.suppress(OSError):
                            s.shutdown(socket.SHUT_WR)
                            s.settimeout(30)
                            while s.recv(65536):
                                pass
                        s.close()

        await asyncio.to_thread(send)

    async def settle(server: ControlServer) -> None:
        while server.status()["connections"]:
            await asyncio.sleep(0.05)

    async def body(server: ControlServer, port: int) -> None:
        await storm(port, 200)  # warm every path up
        await settle(server)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await storm(port, STORM)
            await settle(server)
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        print(f"control endpoint: {STORM} bad connections, {retained} bytes retained")
        assert retained < RETAINED_BOUND
        tables = server.status()
        assert tables["connections"] == tables["connection_sources"] == 0
        assert tables["rate_sources"] <= 1  # the one source of the storm, at most
        client = ControlClient(HOST, port)
        try:
            assert (await client.request("status"))["node"] == "test"
        finally:
            await client.close()

    room = dataclasses.replace(LIMITS, max_connections_per_source=200)
    refused = run(body, room)
    assert refused["too-large"] >= STORM // 5 and refused["malformed"] >= STORM // 5


def test_the_per_source_cap_refuses_the_ninth_connection() -> None:
    async def body(server: ControlServer, port: int) -> None:
        held = [await asyncio.open_connection(HOST, port) for _ in range(8)]
        while server.status()["connections"] < 8:
            await asyncio.sleep(0.01)
        assert await _closed_answer(port, b'{"op": "status"}\n') == b""
        for reader, writer in held:
            writer.write(b'{"op": "status"}\n')
            assert (await reader.readline()).startswith(b'{"ok":true')
            writer.close()

    assert run(body) == {"max-connections-per-source": 1}
