"""ris.control: the control server and its clients over real loopback sockets.

Several requests per connection answered in order; an unknown op or a bad
argument answered with an error on a connection that stays; a line that is
no request answered with an error and closed; handlers sync or async; the
asyncio client keeps one connection, reopens it once the server closed it,
and reports a missing or silent node as ``NodeUnavailable``; the blocking
client; where a client finds the node from the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import socket
import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from offhook.config import Settings
from offhook.net.guard import ListenerLimits
from offhook.ris.control import (
    ControlClient,
    ControlError,
    ControlServer,
    NodeUnavailable,
    control_address,
    control_request,
    request_at,
)
from support.ports import HOST

LIMITS = ListenerLimits(
    max_message=1024,
    idle_timeout=30.0,
    handshake_timeout=30.0,
    max_connections=16,
    max_connections_per_source=8,
    rate_per_source=1e6,
    rate_burst=1e6,
)


async def slow(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(float(args.get("seconds", 0)))
    return {"slept": args.get("seconds", 0)}


def failing(args: dict[str, Any]) -> None:
    raise RuntimeError("secret detail")


def need_int(args: dict[str, Any]) -> int:
    value = args["n"]
    if not isinstance(value, int):
        raise ValueError("n must be a number")
    return value * 2


HANDLERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "echo": lambda args: args,
    "slow": slow,
    "failing": failing,
    "double": need_int,
}


def serve(
    body: Callable[[ControlServer, int], Awaitable[None]],
    limits: ListenerLimits = LIMITS,
) -> list[tuple[str, str]]:
    """Run ``body(server, port)`` against a fresh server; the refusals it counted."""
    refused: list[tuple[str, str]] = []

    async def main() -> None:
        server = ControlServer(
            HANDLERS,
            allow=lambda host: host == HOST,
            reject=lambda reason, peer: refused.append((reason, peer[0])),
            limits=limits,
        )
        port = await server.start(HOST, 0)
        try:
            await asyncio.wait_for(body(server, port), 60)
        finally:
            await server.close()

    asyncio.run(main())
    return refused


PROBE = b'{"op": "echo", "probe": 1}\n'


async def exchange(port: int, data: bytes, expected: int | None = None) -> tuple[list[Any], bool]:
    """Send ``data``; its answers (JSON) and whether the server closed the connection.

    Reads ``expected`` answers (default: one per line of ``data``) or until
    the server closes; then, if it has not, proves the connection still
    serves: a probe request (``PROBE``, counted by the server) is answered.
    Nothing here waits for a quiet period.
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(data)
    await writer.drain()
    answers: list[Any] = []
    want = data.count(b"\n") if expected is None else expected
    try:
        while len(answers) < want:
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                return answers, True
            answers.append(json.loads(line))
        try:
            writer.write(PROBE)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
        except ConnectionError:
            return answers, True
        if not line:
            return answers, True
        assert json.loads(line) == {"ok": True, "result": {"probe": 1}}
        return answers, False
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closed (EOF, or a reset seen as an error); waits at most 30 s."""
    try:
        return await asyncio.wait_for(reader.read(), 30) == b""
    except ConnectionError:
        return True


def test_several_requests_on_one_connection_in_order() -> None:
    async def body(server: ControlServer, port: int) -> None:
        data = (
            b'{"op": "echo", "a": 1}\n\n\r\n'  # blank lines are ignored
            b'{"op": "double", "n": 21}\r\n'
            b'{"op": "slow", "seconds": 0}\n'
            b'{"op": "echo", "b": [1, {"c": null}]}\n'
        )
        answers, closed = await exchange(port, data, expected=4)
        assert answers == [
            {"ok": True, "result": {"a": 1}},
            {"ok": True, "result": 42},
            {"ok": True, "result": {"slept": 0}},
            {"ok": True, "result": {"b": [1, {"c": None}]}},
        ]
        assert not closed and server.requests == 4 + 1  # and the probe

    assert serve(body) == []


def test_errors_are_answered_and_the_connection_stays() -> None:
    async def body(server: ControlServer, port: int) -> None:
        data = (
            b'{"op": "nothing_here"}\n'
            b'{"op": "double"}\n'
            b'{"op": "double", "n": "x"}\n'
            b'{"op": "failing"}\n'
            b'{"op": "echo"}\n'
        )
        answers, closed = await exchange(port, data)
        assert answers == [
            {"ok": False, "error": "unknown op 'nothing_here'"},
            {"ok": False, "error": "missing argument 'n'"},
            {"ok": False, "error": "n must be a number"},
            {"ok": False, "error": "internal error"},  # the exception's text stays in the log
            {"ok": True, "result": {}},
        ]
        assert not closed

    assert serve(body) == []


@pytest.mark.parametrize(
    "line",
    [b"GET /status HTTP/1.0\r\n", b"[1]\n", b'{"op": 7}\n', b"\xff\xfe\n", b"{" * 900 + b"\n"],
)
def test_a_line_that_is_no_request_is_answered_then_closed(line: bytes) -> None:
    async def body(server: ControlServer, port: int) -> None:
        answers, closed = await exchange(port, line + b'{"op": "echo"}\n')
        assert len(answers) == 1 and answers[0]["ok"] is False, answers
        assert closed and server.requests == 0

    assert serve(body) == [("malformed", HOST)]


def test_a_line_over_max_message_is_answered_then_closed() -> None:
    async def body(server: ControlServer, port: int) -> None:
        fits = b'{"op": "echo", "x": "' + b"a" * (1024 - 24) + b'"}\n'
        assert len(fits) - 1 <= 1024
        answers, closed = await exchange(port, fits)
        assert answers[0]["ok"] and not closed
        # No newline needed: the line is refused as soon as it is longer than allowed.
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b'{"op": "echo", "x": "' + b"a" * 2000)
        answer = await asyncio.wait_for(reader.read(), 30)  # until the server closes
        writer.close()
        assert answer == b'{"ok":false,"error":"line longer than 1024 bytes"}\n'

    refused = serve(body)
    assert refused == [("too-large", HOST)]


def test_the_too_large_answer_names_the_limit() -> None:
    async def body(server: ControlServer, port: int) -> None:
        answers, closed = await exchange(port, b"a" * 1500 + b"\n")
        assert answers == [{"ok": False, "error": "line longer than 1024 bytes"}]
        assert closed

    serve(body)


def test_silence_and_a_trickle_are_closed_by_the_handshake_deadline() -> None:
    limits = ListenerLimits(**_short())

    async def body(server: ControlServer, port: int) -> None:
        silent = await asyncio.open_connection(HOST, port)
        trickle = await asyncio.open_connection(HOST, port)
        for byte in b'{"op": "ech':  # one byte at a time: each read is in time, the line not
            trickle[1].write(bytes([byte]))
            await asyncio.sleep(0.05)
            if trickle[1].transport.is_closing():
                break
        assert await closed_by_server(silent[0])
        assert await closed_by_server(trickle[0])
        for _, writer in (silent, trickle):
            writer.close()
        assert server.status()["connections"] == 0

    refused = serve(body, limits)
    assert refused.count(("handshake-timeout", HOST)) == 2


def _short() -> dict[str, Any]:
    return {
        "max_message": 1024,
        "idle_timeout": 0.3,
        "handshake_timeout": 0.3,
        "max_connections": 16,
        "max_connections_per_source": 8,
        "rate_per_source": 1e6,
        "rate_burst": 1e6,
    }


def test_an_idle_connection_is_closed_after_idle_timeout() -> None:
    async def body(server: ControlServer, port: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b'{"op": "echo"}\n')
        assert json.loads(await reader.readline())["ok"]
        assert await asyncio.wait_for(reader.read(), 30) == b""  # then nothing: closed
        writer.close()

    refused = serve(body, ListenerLimits(**_short()))
    assert ("idle-timeout", HOST) in refused


def test_close_ends_open_connections() -> None:
    async def main() -> None:
        server = ControlServer(HANDLERS, allow=lambda host: True, limits=LIMITS)
        port = await server.start(HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b'{"op": "echo"}\n')
        assert json.loads(await reader.readline())["ok"]
        await asyncio.wait_for(server.close(), 30)
        assert await asyncio.wait_for(reader.read(), 30) == b""
        writer.close()

    asyncio.run(main())


def test_the_client_keeps_one_connection_and_reopens_it() -> None:
    async def body(server: ControlServer, port: int) -> None:
        client = ControlClient(HOST, port)
        try:
            assert await client.request("echo", x=1) == {"x": 1}
            assert await client.request("double", n=2) == 4
            assert server.status()["connections"] == 1
            with pytest.raises(ControlError, match="n must be a number"):
                await client.request("double", n="no")
            with pytest.raises(ControlError, match="unknown op"):
                await client.request("nope")
            assert await client.request("echo") == {}
            assert server.status()["connections"] == 1  # errors do not cost the connection
            # The server closes idle connections: the client opens a new one, once.
            for writer in list(server._open):
                writer.close()
            while server.status()["connections"]:
                await asyncio.sleep(0.01)
            assert await client.request("echo", y=2) == {"y": 2}
            assert server.requests == 6
        finally:
            await client.close()

    serve(body)


def test_the_client_reports_a_silent_node_and_recovers() -> None:
    async def body(server: ControlServer, port: int) -> None:
        client = ControlClient(HOST, port, timeout=0.3)
        try:
            with pytest.raises(NodeUnavailable, match="no answer in time"):
                await client.request("slow", seconds=5)
            client.timeout = 30
            assert await client.request("echo", z=3) == {"z": 3}  # on a new connection
        finally:
            await client.close()

    serve(body)


def test_a_request_behind_an_unanswered_one_gives_up_in_its_own_time() -> None:
    """A node that never answers must not make the web process's requests queue up."""

    async def body(server: ControlServer, port: int) -> None:
        client = ControlClient(HOST, port, timeout=3600)
        stuck = asyncio.create_task(client.request("slow", seconds=3600))
        try:
            await asyncio.wait_for(_until(lambda: server.requests == 1), 30)
            client.timeout = 0.2  # read by each request as it starts
            with pytest.raises(NodeUnavailable, match="no answer in time"):
                await client.request("echo", q=1)  # waits behind the stuck one
            assert not stuck.done()
        finally:
            stuck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stuck
        client.timeout = 30
        assert await client.request("echo", q=2) == {"q": 2}  # on a new connection
        await client.close()

    serve(body)


def test_concurrent_requests_of_one_client_each_get_their_answer() -> None:
    async def body(server: ControlServer, port: int) -> None:
        client = ControlClient(HOST, port)
        try:
            results = await asyncio.gather(*(client.request("double", n=i) for i in range(20)))
            assert results == [2 * i for i in range(20)]
        finally:
            await client.close()

    serve(body)


def test_one_client_in_two_event_loops() -> None:
    """A web app built in one loop and served in another: the client follows.

    The connection of the loop left behind is shut down at once: the node
    frees its slot (with two per source, five loops one after another would
    otherwise be refused from the third on).
    """
    server_box: list[ControlServer] = []
    limits = dataclasses.replace(LIMITS, max_connections_per_source=2)

    async def start() -> ControlServer:
        server = ControlServer(HANDLERS, allow=lambda h: True, limits=limits)
        await server.start(HOST, 0)
        server_box.append(server)
        return server

    ready = threading.Event()
    stop: list[asyncio.AbstractEventLoop] = []
    left: list[list[asyncio.Task[Any]]] = []

    def serve_in_thread() -> None:
        loop = asyncio.new_event_loop()
        stop.append(loop)
        server = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        left.append(list(asyncio.all_tasks(loop)))
        loop.close()

    thread = threading.Thread(target=serve_in_thread)
    thread.start()
    try:
        assert ready.wait(30)
        port = server_box[0].servers[0].sockets[0].getsockname()[1]
        client = ControlClient(HOST, port)
        for n in range(5):  # a new loop each time
            assert asyncio.run(client.request("echo", n=n)) == {"n": n}

        async def last() -> None:
            assert await client.request("echo", n=5) == {"n": 5}
            await client.close()

        asyncio.run(last())
    finally:
        stop[0].call_soon_threadsafe(stop[0].stop)
        thread.join(30)
    assert left == [[]]  # close() left no handler behind
    # The transports of the closed loops are shut down but only their loops could
    # close them: collected here, not in some later test's warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_close_waits_for_every_handler() -> None:
    """Nothing of a closed server runs on: idle, half-sent and busy connections alike."""

    async def main() -> None:
        server = ControlServer(HANDLERS, allow=lambda h: True, limits=LIMITS)
        port = await server.start(HOST, 0)
        idle = await asyncio.open_connection(HOST, port)
        half = await asyncio.open_connection(HOST, port)
        half[1].write(b'{"op": "ec')
        busy = await asyncio.open_connection(HOST, port)
        busy[1].write(b'{"op": "slow", "seconds": 3600}\n')
        await busy[1].drain()
        await asyncio.wait_for(_until(lambda: server.requests == 1), 30)
        await server.close()
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        for _, writer in (idle, half, busy):
            writer.close()

    asyncio.run(main())


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_no_node_is_node_unavailable() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused

        async def main() -> None:
            client = ControlClient(HOST, port)
            with pytest.raises(NodeUnavailable, match=f"no node answering on {HOST}:{port}"):
                await client.request("status")
            await client.close()

        asyncio.run(main())
        with pytest.raises(NodeUnavailable):
            request_at(HOST, port, "status", timeout=2)
        assert issubclass(NodeUnavailable, ConnectionError)


def test_the_blocking_client() -> None:
    async def body(server: ControlServer, port: int) -> None:
        assert await asyncio.to_thread(request_at, HOST, port, "echo", a=[1]) == {"a": [1]}
        with pytest.raises(ControlError, match="missing argument"):
            await asyncio.to_thread(request_at, HOST, port, "double")
        with pytest.raises(ControlError, match="answer longer than 10 bytes"):
            await asyncio.to_thread(request_at, HOST, port, "echo", max_answer=10, x="y" * 50)

    serve(body)


def test_a_refused_source_gets_a_reset_and_no_answer() -> None:
    async def body(server: ControlServer, port: int) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            s.connect((HOST, port))
            s.sendall(b'{"op": "echo"}\n')
            s.settimeout(10)
            try:
                data = await asyncio.to_thread(s.recv, 100)
            except ConnectionResetError:
                data = b""
            assert data == b""
        assert server.status() == {"connections": 0, "connection_sources": 0, "rate_sources": 0}

    assert serve(body) == [("acl", "127.0.0.2")]


def test_where_clients_find_the_node() -> None:
    assert control_address(Settings()) == ("127.0.0.1", 5099)
    assert control_address(Settings(admin={"listen": ["::"], "port": 7})) == ("::1", 7)
    assert control_address(Settings(admin={"listen": ["0.0.0.0", "::1"]}))[0] == "127.0.0.1"
    assert control_address(Settings(admin={"listen": ["::1"]}))[0] == "::1"
    off = Settings(admin={"enabled": False})
    with pytest.raises(NodeUnavailable, match="enabled = false"):
        control_address(off)
    with pytest.raises(NodeUnavailable):
        control_request(off, "status")
    with pytest.raises(NodeUnavailable):
        ControlClient.from_settings(off)
