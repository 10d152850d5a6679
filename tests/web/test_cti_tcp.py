"""The CTI event stream as JSON lines on TCP (``web.cti_tcp``), in-process with a scripted node.

The rig is the WebSocket tests' (``test_cti_ws_app.served``: the real
``WebServer`` and lifespan in a thread, a ``FakeNode`` the test pushes events
into); the client is a plain socket. Covered: the ``auth`` line (hello,
events numbered, subscribe, ping; a bad token is a failed login, a role
without ``cti`` and a malformed first line are refused), the listener's
defences (the allow-list before a byte, a line over ``max_message``, the
handshake and idle timeouts) and a client that falls behind; and a call
between two baresip phones through a running ``offhook serve``.
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from support.ports import free_port
from web.cti_rig import call_events, cti_node, established_call, hang_up
from web.test_cti_ws_app import WAIT, Served, served

Line = dict[str, Any]


class Client:
    """A line-oriented TCP client with a bounded wait for each line."""

    def __init__(self, port: int, timeout: float = WAIT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes | Line) -> None:
        self.sock.sendall(data if isinstance(data, bytes) else json.dumps(data).encode() + b"\n")

    def line(self) -> Line | None:
        """The next line, None when the server closed."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\n")
        data: Line = json.loads(raw)
        return data

    def rest(self) -> list[Line]:
        """Every line up to the close."""
        out = []
        while (item := self.line()) is not None:
            out.append(item)
        return out

    def close(self) -> None:
        self.sock.close()


def tcp_port(s: Served) -> int:
    return int(s.app.state.cti_tcp.port)


def login(s: Served, who: str = "admin", **extra: Any) -> Client:
    client = Client(tcp_port(s))
    client.send({"op": "auth", "token": s.tokens[who], **extra})
    return client


def test_auth_hello_events_subscribe_and_ping(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, tcp=True) as s:
        client = login(s)
        hello = client.line()
        assert hello is not None and hello["type"] == "hello" and hello["scope"]["all"]
        s.node.push(
            {"type": "dnd.changed", "device": "bob", "on": True},
            {"type": "dnd.changed", "device": "alice", "on": False},
        )
        first, second = client.line(), client.line()
        assert first is not None and second is not None
        assert (first["seq"], first["device"]) == (1, "bob")
        assert (second["seq"], second["device"]) == (2, "alice") and second["id"] > first["id"]
        client.send({"op": "subscribe", "devices": ["alice"]})
        subscribed = client.line()
        assert subscribed is not None and subscribed["type"] == "subscribed"
        assert subscribed["devices"] == ["alice"]
        s.node.push(
            {"type": "dnd.changed", "device": "bob", "on": False},
            {"type": "dnd.changed", "device": "alice", "on": True},
        )
        third = client.line()
        assert third is not None and (third["seq"], third["device"]) == (3, "alice")
        client.send(b"\n" * 5000)  # blank lines are nothing, however many
        client.send({"op": "ping"})
        pong = client.line()
        assert pong is not None and pong["type"] == "pong"
        assert s.app.state.cti.clients == 1
        client.close()


def test_a_scoped_token_sees_its_own_devices(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, tcp=True) as s:
        client = login(s, "xavier")  # a user with the device alice
        hello = client.line()
        assert hello is not None and hello["scope"]["devices"] == ["alice"]
        s.node.push(
            {"type": "dnd.changed", "device": "bob", "on": True},
            {"type": "dnd.changed", "device": "alice", "on": True},
        )
        event = client.line()
        assert event is not None and (event["seq"], event["device"]) == (1, "alice")
        client.close()


def test_refusals_of_the_auth_line(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, tcp=True) as s:
        service = s.app.state.cti
        bad = Client(tcp_port(s))
        bad.send({"op": "auth", "token": "not-a-token"})
        assert bad.rest() == [{"type": "error", "reason": "not authenticated"}]
        assert service.refused["401"] == 1
        reader = login(s, "reader")  # read-only: no cti
        assert reader.rest() == [{"type": "error", "reason": "forbidden: needs cti"}]
        for first in (b"hello\n", b'{"op": "subscribe"}\n', b'{"op": "auth", "after": -1}\n'):
            odd = Client(tcp_port(s))
            odd.send(first)
            (error,) = odd.rest()
            assert error["type"] == "error", error
        assert service.clients == 0
        rejections = s.app.state.ctx.rejections.snapshot()
        assert rejections["cti"]["malformed"] >= 2


def test_repeated_bad_tokens_block_the_source(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, tcp=True) as s:
        block_after = s.app.state.ctx.login_guard.guard.policy.block_after
        for _ in range(block_after):
            bad = Client(tcp_port(s))
            bad.send({"op": "auth", "token": "wrong"})
            bad.rest()
        good = login(s)
        assert good.rest() == [{"type": "error", "reason": "too many failed logins"}]


def test_a_line_over_max_message_closes_the_connection(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, tcp=True, max_message=512) as s:
        client = login(s)
        assert client.line() is not None  # hello
        client.send(b'{"op": "subscribe", "devices": ["' + b"a" * 2000 + b'"]}\n')
        assert client.rest() == [{"type": "error", "reason": "line too long"}]
        assert s.app.state.ctx.rejections.snapshot()["cti"]["too-large"] == 1


def test_handshake_and_idle_timeouts(web_engine: Engine, tmp_path: Path) -> None:
    # The handshake deadline runs from the server's accept: the quiet client must get
    # its auth line in within it even on a loaded machine (the client shares this
    # process, and its GIL, with the server's thread), so it is not made short.
    with served(web_engine, tmp_path, tcp=True, handshake_timeout=3.0, idle_timeout=0.6) as s:
        silent = Client(tcp_port(s))
        (error,) = silent.rest()  # never authenticated
        assert error["type"] == "error" and "idle" in error["reason"]
        quiet = login(s)
        lines = quiet.rest()  # authenticated, then sent nothing
        assert [x["type"] for x in lines] == ["hello", "error"]
        assert s.app.state.ctx.rejections.snapshot()["cti"]["idle-timeout"] == 2


def test_a_source_outside_the_allow_list_gets_nothing(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, tcp=True, allow=["192.0.2.0/24"]) as s:
        client = Client(tcp_port(s))
        client.send({"op": "auth", "token": s.tokens["admin"]})
        # Reset before a byte was read, or closed: either way nothing is answered.
        with contextlib.suppress(ConnectionResetError):
            assert client.rest() == []
        assert s.app.state.ctx.rejections.snapshot()["cti"]["acl"] == 1


def test_a_burst_beyond_the_queue_overflows_that_client_alone(
    web_engine: Engine, tmp_path: Path
) -> None:
    with served(web_engine, tmp_path, tcp=True, client_queue=8) as s:
        small, other = login(s), login(s, "xavier")
        assert small.line() is not None and other.line() is not None  # hello
        s.node.push(*[{"type": "dnd.changed", "device": "bob", "on": True}] * 50)
        lines = small.rest()
        assert lines[-1]["type"] == "overflow", lines[-3:]
        s.node.push({"type": "dnd.changed", "device": "alice", "on": True})
        event = other.line()
        assert event is not None and (event["seq"], event["device"]) == (1, "alice")
        assert s.app.state.cti.counters.overflows == 1


def test_a_live_call_on_the_tcp_listener(tmp_path: Path) -> None:
    """Against ``offhook serve`` with its web process and two baresip phones: a TCP
    client sees bob's leg offered, ringing, answered, cleared, in order, numbered."""
    port = free_port()
    with cti_node(tmp_path, cti={"port": port}) as node:
        token, _ = node.user("root", "full-admin")
        alice, bob = node.phone("alice"), node.phone("bob")
        client = Client(port)
        client.send({"op": "auth", "token": token})
        hello = client.line()
        assert hello is not None and hello["type"] == "hello", hello
        with alice, bob:
            alice.wait_registered()
            bob.wait_registered()
            established_call(alice, bob, node.dial_uri("1002"))
            hang_up(alice, bob)
            frames: list[Line] = []
            while not any(f["type"] == "call.ended" for f in frames):
                frame = client.line()
                assert frame is not None, frames
                frames.append(frame)
        client.close()
    assert call_events(frames, "bob")[:4] == [
        "call.offered",
        "call.ringing",
        "call.answered",
        "call.cleared",
    ]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
