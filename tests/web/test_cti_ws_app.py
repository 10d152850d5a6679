"""The CTI WebSocket and commands in-process: a real uvicorn listener, a scripted node.

The web app is served by the real ``WebServer`` (listener guard, guarded
WebSocket protocol, lifespan) in a thread, on loopback; the node is a
script: the hub's upstream is a queue the test fills (``FakeNode.push``),
and the control client answers ``cti_snapshot`` and the command ops from a
table (``FakeControl``), recording what it was asked. So every branch can
be reached at once, with no phones:

- the refusals before the upgrade (401 no or bad token, 403 no ``cti``,
  400 a bad ``?after=``, 429 a user over ``max_clients_per_user``, 503 over
  ``max_clients`` and with CTI off);
- hello, events numbered, subscribe, ping, resume from the ring, resync
  from the snapshot (and 1011 when the node gives none);
- a burst larger than the client queue: overflow, then 1013; the other
  client goes on;
- malformed messages: error then 1008, binary 1003, too large 1009;
- each REST command asks the node the op of the design with the right
  arguments; a refusal is 409 with its reason, a node down is 503, another
  user's device is 403; the snapshot is cut to the scope.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from offhook.config_cti import CtiSettings
from offhook.cti.hub import Hub
from offhook.ris.control import ControlError, NodeUnavailable
from offhook.ris.control_codec import StreamStart
from offhook.web.app import create_app
from offhook.web.server import WebServer, bind_sockets
from web.rig import client_for, make_settings

BASE = 5000
WAIT = 30.0


class FakeNode:
    """The hub's upstream: events the test pushes, from another thread."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue[dict[str, Any]] | None = None
        self.connected = threading.Event()
        self.next_id = BASE + 1

    @asynccontextmanager
    async def connect(self, after: int | None) -> AsyncIterator[Any]:
        self.loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queue = queue

        class Stream:
            start = StreamStart(BASE, BASE, False)

            def __aiter__(self) -> Stream:
                return self

            async def __anext__(self) -> dict[str, Any]:
                return await queue.get()

        self.connected.set()
        yield Stream()

    def push(self, *events: dict[str, Any]) -> list[int]:
        assert self.connected.wait(WAIT) and self.loop is not None and self.queue is not None
        ids, batch = [], []
        for event in events:
            batch.append({"time": 1.0, "node": "n", **event, "id": self.next_id})
            ids.append(self.next_id)
            self.next_id += 1
        queue = self.queue
        # All in one loop turn, as a burst from the node is: the hub takes them
        # before any client's writer runs.
        self.loop.call_soon_threadsafe(lambda: [queue.put_nowait(e) for e in batch])
        return ids


@dataclass
class FakeControl:
    """The node's control endpoint: answers from ``answers``, records the requests."""

    answers: dict[str, Any] = field(default_factory=dict)
    asked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def request(self, op: str, **args: Any) -> Any:
        self.asked.append((op, args))
        answer = self.answers.get(op, {"command": "c1"})
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Served:
    app: FastAPI
    node: FakeNode
    control: FakeControl
    port: int
    tokens: dict[str, str]

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/cti/v1/events" + (f"?{query}" if query else "")

    def ws(self, who: str = "admin", query: str = "", **kw: Any) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return connect(self.url(query), additional_headers=headers, open_timeout=WAIT, **kw)


def recv(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ws.recv(timeout=WAIT))
    return data


def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Frames up to and including the first of type ``kind``."""
    out = [recv(ws)]
    while out[-1]["type"] != kind:
        out.append(recv(ws))
    return out


def closed(ws: ClientConnection) -> tuple[int | None, list[dict[str, Any]]]:
    """Read to the end: (the close code, the frames before it)."""
    frames = []
    try:
        while True:
            frames.append(json.loads(ws.recv(timeout=WAIT)))
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd is not None else None), frames


@contextmanager
def served(engine: Engine, tmp_path: Path, tcp: bool = False, **cti: Any) -> Iterator[Served]:
    """The web app with a scripted node; ``tcp``: with the JSON-lines CTI listener too
    (``app.state.cti_tcp``, on a port of its own)."""
    base = make_settings(f"sqlite:///{tmp_path / 'web.db'}", max_connections_per_source=64)
    settings = base.model_copy(update={"cti": CtiSettings(**cti)})
    control = FakeControl()
    app = create_app(settings, engine=engine, control=control)
    app.state.cti_sockets = bind_sockets(["127.0.0.1"], 0) if tcp else []
    node = FakeNode()
    service = app.state.cti
    service.hub = Hub(node.connect, replay=50, backoff_min=0.01, backoff_max=0.05)
    service.follows = True
    users = app.state.ctx.users
    tokens = {}
    for name, role, devices in (
        ("admin", "full-admin", ()),
        ("xavier", "user", ("alice",)),
        ("app", "cti-app", ("bob",)),
        ("reader", "read-only", ()),
    ):
        if users.get(name) is None:
            users.add(name, role, "a-long-Password-1", devices=devices)
        tokens[name] = users.create_token(name, "t")[1]
    sockets = bind_sockets(["127.0.0.1"], 0)
    ready = threading.Event()
    servers: list[WebServer] = []

    def run() -> None:
        server = WebServer(app, settings, sockets, on_ready=lambda s: ready.set())
        servers.append(server)
        asyncio.run(server.serve(sockets=[]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(WAIT), "the web server did not start"
    try:
        yield Served(app, node, control, int(sockets[0].getsockname()[1]), tokens)
    finally:
        servers[0].should_exit = True
        thread.join(WAIT)
        for sock in sockets + app.state.cti_sockets:
            sock.close()


@pytest.fixture
def web(web_engine: Engine, tmp_path: Path) -> Iterator[Served]:
    with served(web_engine, tmp_path) as s:
        yield s


def refused(s: Served, who: str, query: str = "") -> int:
    with pytest.raises(InvalidStatus) as info:
        s.ws(who, query).close()
    return info.value.response.status_code


def test_refusals_before_the_upgrade(web: Served) -> None:
    assert refused(web, "") == 401
    web.tokens["bogus"] = "ofh_" + "x" * 43
    assert refused(web, "bogus") == 401
    assert refused(web, "reader") == 403
    assert refused(web, "admin", "after=-1") == 400
    assert refused(web, "admin", "after=%C2%B2") == 400  # a digit, but not ASCII
    counts = web.app.state.cti.refused
    assert counts["401"] == 2 and counts["403"] == 1 and counts["malformed"] == 2


def test_client_caps_and_cti_off(web_engine: Engine, tmp_path: Path) -> None:
    with served(web_engine, tmp_path, max_clients=2, max_clients_per_user=1) as s:
        with s.ws("admin") as first:
            assert recv(first)["type"] == "hello"
            assert refused(s, "admin") == 429
            with s.ws("xavier") as second:
                assert recv(second)["type"] == "hello"
                assert refused(s, "app") == 503
        assert s.app.state.cti.refused["max-clients"] == 1
    with served(web_engine, tmp_path / "off", enabled=False) as s:
        assert refused(s, "admin") == 503
        answer = httpx.post(
            f"http://127.0.0.1:{s.port}/api/v1/cti/devices/bob/calls",
            json={"number": "1"},
            headers={"Authorization": f"Bearer {s.tokens['admin']}"},
        )
        assert answer.status_code == 503


def test_events_subscribe_ping_resume_and_resync(web: Served) -> None:
    with web.ws("xavier") as ws:
        hello = recv(ws)
        assert hello["type"] == "hello" and hello["scope"]["devices"] == ["alice"]
        ids = web.node.push(
            {"type": "call.offered", "call_id": "c1", "device": "alice", "line": "1001"},
            {"type": "call.offered", "call_id": "c2", "device": "bob", "line": "1002"},
            {"type": "line.state", "dn": "1010", "partition": "", "state": "ringing"},
            {"type": "call.ended", "call_id": "c2"},
            {"type": "call.ended", "call_id": "c1"},
        )
        got = [recv(ws) for _ in range(3)]
        assert [(f["id"], f["seq"]) for f in got] == [(ids[0], 1), (ids[2], 2), (ids[4], 3)]
        ws.send(json.dumps({"op": "subscribe", "lines": ["1010"]}))
        assert recv(ws) == {"type": "subscribed", "all": False, "devices": [], "lines": ["1010"]}
        (c3,) = web.node.push(
            {"type": "call.offered", "call_id": "c3", "device": "alice", "line": "1001"}
        )
        ws.send(json.dumps({"op": "ping"}))
        assert recv(ws)["type"] == "pong"  # c3 is on 1001: not subscribed
        ws.send(json.dumps({"op": "subscribe", "all": True}))
        assert recv(ws)["all"] is True
        ws.send(json.dumps({"op": "resume", "after": ids[1]}))
        frames = until(ws, "call.offered")
        assert frames[0] == {"type": "resumed", "after": ids[1], "events": 3}
        # c1's end too: the client saw c1 offered before ``after``.
        assert [(f["id"], f["seq"]) for f in frames[1:]] == [(ids[2], 4), (ids[4], 5), (c3, 6)]
        web.control.answers["cti_snapshot"] = {
            "last_id": web.node.next_id,  # the next event pushed is in it
            "devices": [{"device": "alice", "registered": True}, {"device": "bob"}],
            "lines": [],
            "calls": [],
        }
        ws.send(json.dumps({"op": "resume", "after": 3}))
        resync = recv(ws)
        assert resync["type"] == "resync"
        assert resync["snapshot"]["devices"] == [{"device": "alice", "registered": True}]
        later = web.node.push(
            {"type": "dnd.changed", "device": "alice", "on": True},  # covered by the snapshot
            {"type": "dnd.changed", "device": "alice", "on": False},
        )
        assert recv(ws)["id"] == later[1]
    with web.ws("admin", query=f"after={ids[2]}") as again:
        assert [f["type"] for f in [recv(again), recv(again)]] == ["hello", "resumed"]
        assert recv(again)["id"] == ids[3]
        web.control.answers["cti_snapshot"] = NodeUnavailable("down")
        again.send(json.dumps({"op": "resume", "after": 1}))
        code, frames = closed(again)
        assert code == 1011 and frames[-1]["reason"] == "node unavailable: no snapshot"


def test_a_burst_beyond_the_queue_overflows_that_client_alone(
    web_engine: Engine, tmp_path: Path
) -> None:
    with served(web_engine, tmp_path, client_queue=8) as s:
        with s.ws("admin") as small, s.ws("xavier") as other:
            assert recv(small)["type"] == recv(other)["type"] == "hello"
            s.node.push(*[{"type": "dnd.changed", "device": "bob", "on": True}] * 50)
            code, frames = closed(small)
            assert code == 1013 and frames[-1]["type"] == "overflow"
            s.node.push({"type": "dnd.changed", "device": "alice", "on": True})
            assert recv(other)["seq"] == 1
        service = s.app.state.cti
        assert service.counters.overflows == 1 and service.counters.dropped >= 8


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("{nope", 1008, "not JSON"),
        ('{"op": "kill"}', 1008, "op is one of"),
        ('{"op": "resume", "after": "x"}', 1008, "after is an event id"),
        (b"\x00\x01", 1003, "binary frames are not taken"),
        ('{"op": "subscribe", "devices": ["' + "a" * 5000 + '"]}', 1009, None),
    ],
)
def test_a_malformed_message_ends_that_connection(
    web: Served, message: str | bytes, code: int, reason: str | None
) -> None:
    with web.ws("admin") as ws, web.ws("app") as bystander:
        recv(ws)
        recv(bystander)
        ws.send(message)
        got, frames = closed(ws)
        assert got == code
        if reason is not None:
            assert frames[-1]["type"] == "error" and reason in frames[-1]["reason"]
        web.node.push({"type": "dnd.changed", "device": "bob", "on": True})
        assert recv(bystander)["device"] == "bob"


K1 = {"device": "bob", "call_id": "k1"}
PORT_MEDIA = {"address": "10.0.0.1", "port": 4000}
COMMANDS: list[tuple[str, str, dict[str, Any] | None, str, dict[str, Any]]] = [
    (
        "POST",
        "/devices/bob/calls",
        {"number": "1002"},
        "cti_make_call",
        {"device": "bob", "number": "1002", "line": "", "auto_answer": False},
    ),
    (
        "POST",
        "/devices/bob/calls",
        {"number": "9", "media": PORT_MEDIA},
        "cti_make_call",
        {
            "device": "bob",
            "number": "9",
            "line": "",
            "auto_answer": False,
            "media": {**PORT_MEDIA, "codec": "PCMU"},
        },
    ),
    ("POST", "/devices/bob/calls/k1/answer", None, "cti_answer", K1),
    ("POST", "/devices/bob/calls/k1/hangup", None, "cti_hangup", K1),
    ("POST", "/devices/bob/calls/k1/hold", None, "cti_hold", K1),
    ("POST", "/devices/bob/calls/k1/resume", None, "cti_resume", K1),
    ("POST", "/devices/bob/calls/k1/park", None, "cti_park", K1),
    (
        "POST",
        "/devices/bob/calls/k1/transfer",
        {"target": "13"},
        "cti_transfer",
        {**K1, "target": "13"},
    ),
    (
        "POST",
        "/devices/bob/calls/k1/consult",
        {"number": "13"},
        "cti_consult",
        {**K1, "number": "13"},
    ),
    (
        "POST",
        "/devices/bob/calls/k1/complete_transfer",
        {"other_call_id": "k2"},
        "cti_complete_transfer",
        {**K1, "other_call_id": "k2"},
    ),
    (
        "POST",
        "/devices/bob/calls/k1/conference",
        {"other_call_id": "k2"},
        "cti_conference",
        {**K1, "other_call_id": "k2"},
    ),
    (
        "POST",
        "/devices/bob/calls/k1/redirect",
        {"target": "13"},
        "cti_redirect",
        {**K1, "target": "13"},
    ),
    ("POST", "/devices/bob/calls/k1/dtmf", {"digits": "12#"}, "cti_dtmf", {**K1, "digits": "12#"}),
    (
        "POST",
        "/devices/bob/pickup",
        {},
        "cti_pickup",
        {"device": "bob", "number": "", "auto_answer": False},
    ),
    ("PUT", "/devices/bob/dnd", {"enabled": True}, "dnd", {"device": "bob", "enabled": True}),
    (
        "PUT",
        "/lines/1002/forward_all",
        {"destination": "1003"},
        "forward_all",
        {"device": "bob", "dn": "1002", "destination": "1003"},
    ),
    (
        "PUT",
        "/lines/1002/mwi",
        {"waiting": True, "new": 2},
        "cti_mwi",
        {"dn": "1002", "waiting": True, "new": 2, "old": 0},
    ),
]


async def test_each_command_is_its_node_op(web_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'w.db'}")
    control = FakeControl({"forward_all": {"cause": None}, "dnd": {}})
    app = create_app(settings, engine=web_engine, control=control)
    users = app.state.ctx.users
    users.add("app", "cti-app", "a-long-Password-1", devices=("bob",))
    token = users.create_token("app", "t")[1]
    headers = {"Authorization": f"Bearer {token}"}
    async with client_for(app) as client:
        for method, path, body, op, args in COMMANDS:
            control.asked.clear()
            extra: dict[str, Any] = {"json": body} if body is not None else {}
            answer = await client.request(method, f"/api/v1/cti{path}", headers=headers, **extra)
            assert answer.status_code == 200, (path, answer.text)
            assert control.asked == [(op, args)], path
        control.answers["cti_hold"] = ControlError("no such call")
        refused = await client.post("/api/v1/cti/devices/bob/calls/k9/hold", headers=headers)
        assert refused.status_code == 409 and refused.json() == {"detail": "no such call"}
        control.answers["cti_hold"] = NodeUnavailable("gone")
        down = await client.post("/api/v1/cti/devices/bob/calls/k9/hold", headers=headers)
        assert down.status_code == 503
        control.answers["forward_all"] = {"cause": 1}
        fwd = await client.put(
            "/api/v1/cti/lines/1002/forward_all", headers=headers, json={"destination": "9"}
        )
        assert fwd.status_code == 409
        for path in ("/devices/alice/calls/k1/hold", "/devices/alice/pickup"):
            other = await client.post(f"/api/v1/cti{path}", headers=headers, json={})
            assert other.status_code == 403 and "not yours" in other.text
        for path, put in (
            ("/lines/1001/mwi", {"waiting": True}),
            ("/lines/1001/forward_all", {"destination": ""}),
        ):
            other = await client.put(f"/api/v1/cti{path}", headers=headers, json=put)
            assert other.status_code == 403, path
        control.answers["cti_snapshot"] = {
            "last_id": 9,
            "devices": [{"device": "alice"}, {"device": "bob"}],
            "lines": [{"dn": "1001", "partition": ""}, {"dn": "1002", "partition": ""}],
            "calls": [{"call_id": "k1", "legs": [{"device": "alice"}, {"device": "bob"}]}],
        }
        snap = (await client.get("/api/v1/cti/snapshot", headers=headers)).json()
        assert snap["devices"] == [{"device": "bob"}]
        assert snap["lines"] == [{"dn": "1002", "partition": ""}]
        assert snap["calls"] == [{"call_id": "k1", "legs": [{"device": "bob"}]}]
