"""The control endpoint's streaming op (``events``) and its client, over real loopback sockets.

A ``ControlServer`` serving a ``cti.journal.Journal``'s streams: events in
order with replay and resync; a client that does not read is dropped (its
queue overflows or its writes stall) while another client on the same
journal gets every event; the listener's caps still count stream
connections; the idle timeout does not end a stream, but a byte from the
client or its half-close does; ``close()`` ends every stream. The
``EventStream`` client: refusals, a node that goes away, an overflow line,
an event line over its limit.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from offhook.cti.journal import Journal
from offhook.net.guard import ListenerLimits
from offhook.ris.control import STALLED, ControlError, ControlServer, NodeUnavailable, Streaming
from offhook.ris.control_codec import encode_request
from offhook.ris.event_client import EventStream
from support.ports import HOST

RUN = 1_800_000_000_000_000
LIMITS = ListenerLimits(
    max_message=1024,
    idle_timeout=30.0,
    handshake_timeout=30.0,
    max_connections=16,
    max_connections_per_source=16,
    rate_per_source=1e6,
    rate_burst=1e6,
)
WAIT = 60.0  # the longest any condition below is waited for (never reached when it works)


def event(n: int = 0, pad: int = 0) -> dict[str, Any]:
    return {"id": 0, "type": "line.state", "time": 1.0, "node": "n", "dn": str(n), "pad": "p" * pad}


def events_op(journal: Journal) -> Callable[[dict[str, Any]], Streaming]:
    def op(args: dict[str, Any]) -> Streaming:
        sub, start = journal.subscribe(args.get("after"))
        return Streaming(start._asdict(), sub)

    return op


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (yielding to the loop) until ``condition()``; fail after ``WAIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


Body = Callable[[ControlServer, int, Journal], Awaitable[None]]


def serve(
    body: Body,
    limits: ListenerLimits = LIMITS,
    *,
    queue_bytes: int = 1 << 20,
    capacity: int = 1000,
) -> list[str]:
    """Run ``body(server, port, journal)``; the refusals the server counted."""
    refused: list[str] = []

    async def main() -> None:
        journal = Journal(RUN, capacity=capacity, queue_bytes=queue_bytes)
        server = ControlServer(
            {"events": events_op(journal), "echo": lambda args: args},
            allow=lambda host: host == HOST,
            reject=lambda reason, peer: refused.append(reason),
            limits=limits,
        )
        port = await server.start(HOST, 0)
        try:
            await asyncio.wait_for(body(server, port, journal), 2 * WAIT)
        finally:
            await server.close()
            assert server.status()["connections"] == 0
            assert journal.subscribers == 0  # every stream's subscription ended with it

    asyncio.run(main())
    return refused


async def collect(stream: EventStream, into: list[dict[str, Any]]) -> None:
    async for ev in stream:
        into.append(ev)


def test_a_stream_delivers_events_in_order_and_resumes_after_an_id() -> None:
    async def body(server: ControlServer, port: int, journal: Journal) -> None:
        journal.record(event(0))
        got: list[dict[str, Any]] = []
        async with EventStream(HOST, port) as stream:
            assert stream.start == (RUN, RUN, False)
            reader = asyncio.create_task(collect(stream, got))
            await until(lambda: journal.subscribers == 1, "subscribed")
            for n in range(1, 6):
                journal.record(event(n))
            await until(lambda: len(got) == 5, "five events")
            reader.cancel()
        assert [e["id"] for e in got] == list(range(RUN + 1, RUN + 6))
        assert [e["dn"] for e in got] == ["1", "2", "3", "4", "5"]
        assert stream.last_id == RUN + 5 and stream.received == 5
        await until(lambda: journal.subscribers == 0, "the closed stream let go")
        journal.record(event(6))  # missed while away
        journal.record(event(7))
        again: list[dict[str, Any]] = []
        async with EventStream(HOST, port, after=RUN + 5) as stream:
            assert stream.start == (RUN, RUN + 7, False)
            reader = asyncio.create_task(collect(stream, again))
            await until(lambda: len(again) == 2, "the replay")
            journal.record(event(8))
            await until(lambda: len(again) == 3, "the next live event")
            reader.cancel()
        assert [e["id"] for e in again] == [RUN + 6, RUN + 7, RUN + 8]

    assert serve(body) == []


def test_an_id_no_longer_held_is_told_to_resync() -> None:
    async def body(server: ControlServer, port: int, journal: Journal) -> None:
        for n in range(10):
            journal.record(event(n))
        async with EventStream(HOST, port, after=RUN + 1) as stream:
            assert stream.start == (RUN + 7, RUN + 9, True)
        async with EventStream(HOST, port, after=RUN - 5_000_000) as stream:  # the run before
            assert stream.start.resync

    serve(body, capacity=3)


def test_a_client_that_never_reads_is_dropped_and_the_others_get_everything() -> None:
    limits = ListenerLimits(
        max_message=1024,
        idle_timeout=2.0,
        handshake_timeout=30.0,
        max_connections=16,
        max_connections_per_source=16,
        rate_per_source=1e6,
        rate_burst=1e6,
    )

    async def body(server: ControlServer, port: int, journal: Journal) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, encode_request("events", {"after": None}))
        await until(lambda: journal.subscribers == 1, "the silent client subscribed")
        got: list[dict[str, Any]] = []
        async with EventStream(HOST, port) as stream:
            reader = asyncio.create_task(collect(stream, got))
            await until(lambda: journal.subscribers == 2, "the reading client subscribed")
            sent = 0
            while journal.subscribers == 2:  # until the silent one is dropped
                assert sent < 200_000, "the silent client was never dropped"
                journal.record(event(sent, pad=1000))
                sent += 1
                if sent % 20 == 0:
                    await asyncio.sleep(0)  # the loop writes; the reader reads
            await until(lambda: server.status()["connections"] == 1, "the silent one closed")
            journal.record(event(-1))  # a marker: the last event
            sent += 1
            await until(lambda: len(got) == sent, "every event reached the reading client")
            reader.cancel()
        assert [e["id"] for e in got] == list(range(RUN, RUN + sent))
        assert journal.overflows == 1
        sock.close()

    refused = serve(body, limits, queue_bytes=256 << 10)
    assert set(refused) <= {STALLED}  # reset when even the overflow line did not go


def test_stream_connections_count_against_the_caps() -> None:
    limits = ListenerLimits(
        max_message=1024,
        idle_timeout=30.0,
        handshake_timeout=30.0,
        max_connections=2,
        max_connections_per_source=2,
        rate_per_source=1e6,
        rate_burst=1e6,
    )

    async def body(server: ControlServer, port: int, journal: Journal) -> None:
        async with EventStream(HOST, port), EventStream(HOST, port):
            assert server.status()["connections"] == 2
            with pytest.raises(NodeUnavailable):
                async with EventStream(HOST, port):
                    pass
        await until(lambda: server.status()["connections"] == 0, "both streams closed")
        async with EventStream(HOST, port) as stream:  # a slot is free again
            assert not stream.start.resync

    refused = serve(body, limits)
    assert refused and set(refused) <= {"max-connections", "max-connections-per-source"}


def test_the_idle_timeout_does_not_end_a_stream_but_the_client_sending_does() -> None:
    limits = ListenerLimits(
        max_message=1024,
        idle_timeout=0.2,
        handshake_timeout=30.0,
        max_connections=16,
        max_connections_per_source=16,
        rate_per_source=1e6,
        rate_burst=1e6,
    )

    async def body(server: ControlServer, port: int, journal: Journal) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(encode_request("events", {"after": None}))
        assert b'"ok":true' in await reader.readline()
        await asyncio.sleep(1.0)  # five idle timeouts without a byte either way
        journal.record(event(1))
        line = await asyncio.wait_for(reader.readline(), WAIT)
        assert b'"dn":"1"' in line
        writer.write(b"\n")  # a streaming client sends nothing: this ends it
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
        # Its half-close ends a stream too.
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(encode_request("events", {"after": None}))
        await reader.readline()
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
        await until(lambda: server.status()["connections"] == 0, "both closed")
        # A request sent behind the events request ends it at once (after the answer).
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(encode_request("events", {}) + encode_request("echo", {}))
        assert b'"first_id"' in await reader.readline()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()

    serve(body, limits)


def test_close_ends_every_stream() -> None:
    async def body(server: ControlServer, port: int, journal: Journal) -> None:
        streams = [EventStream(HOST, port) for _ in range(3)]
        for stream in streams:
            await stream.open()
        await until(lambda: journal.subscribers == 3, "three streams")
        await server.close()
        for stream in streams:
            with pytest.raises(NodeUnavailable, match=r"closed the event stream|reset"):
                await asyncio.wait_for(stream.__anext__(), WAIT)
            await stream.close()

    serve(body)


def test_event_stream_refusals() -> None:
    async def main() -> None:
        probe = socket.socket()
        probe.bind((HOST, 0))
        free = probe.getsockname()[1]
        probe.close()
        with pytest.raises(NodeUnavailable):
            async with EventStream(HOST, free, timeout=5):
                pass
        server = ControlServer({"echo": lambda args: args}, allow=lambda host: True, limits=LIMITS)
        port = await server.start(HOST, 0)
        try:
            with pytest.raises(ControlError, match="unknown op 'events'"):
                async with EventStream(HOST, port):
                    pass
        finally:
            await server.close()

    asyncio.run(main())


async def fake_node(lines: list[bytes]) -> tuple[asyncio.Server, int]:
    """A node that answers any request with ``lines`` and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"".join(lines))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    return server, server.sockets[0].getsockname()[1]


START = b'{"ok":true,"result":{"first_id":5,"last_id":9,"resync":false}}\n'


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ([b'{"ok":false,"error":"after must be an event id or null"}\n'], "after must be"),
        ([b'{"ok":true,"result":[1]}\n'], "an object"),
        ([b'{"ok":true,"result":{"first_id":"5","last_id":9,"resync":false}}\n'], "expected"),
        ([b"not json\n"], "bad answer"),
        ([START, b"[1, 2]\n"], "an event is a JSON object"),
        ([START, b'{"id": 10, "pad": "' + b"x" * 300 + b'"}\n'], "longer than 200"),
    ],
)
def test_a_node_saying_nonsense_is_a_control_error(lines: list[bytes], error: str) -> None:
    async def main() -> None:
        server, port = await fake_node(lines)
        async with server:
            with pytest.raises(ControlError, match=error):
                async with EventStream(HOST, port, max_line=200) as stream:
                    async for _ in stream:
                        pass

    asyncio.run(main())


def test_an_overflow_line_ends_the_iteration_and_an_end_without_it_is_unavailable() -> None:
    async def main() -> None:
        overflow = b'{"type":"overflow","reason":"the stream fell behind"}\n'
        server, port = await fake_node([START, b'{"id":10}\n', b"\n", overflow])
        async with server, EventStream(HOST, port) as stream:
            assert stream.start == (5, 9, False)
            assert [e async for e in stream] == [
                {"id": 10},
                {"type": "overflow", "reason": "the stream fell behind"},
            ]
            assert stream.last_id == 10
        server, port = await fake_node([START, b'{"id":10}\n'])
        async with server, EventStream(HOST, port, after=9) as stream:
            assert await stream.__anext__() == {"id": 10}
            with pytest.raises(NodeUnavailable, match="closed the event stream"):
                await stream.__anext__()

    asyncio.run(main())
