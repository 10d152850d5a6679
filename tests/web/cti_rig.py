"""What the CTI tests share: a real node with its web process, phones, users and WebSocket clients.

``cti_node(tmp_path)`` runs ``offhook serve`` with ``[web]`` on (the web
process is its child, as in production) and a plan of four SIP phones
(alice 1001, bob 1002, carol 1003: baresip plays them; carol and dave 1004
are SIPp's UAC and UAS for a call load). Users and API
tokens are made in the node's database through ``UserStore``, as ``offhook
user add`` and ``offhook token create`` do (the web process reads the same
database on every check).

``Watcher`` is one CTI client: the ``websockets`` library on its own event
loop in a thread (the phones are driven synchronously), keeping every
frame it receives and how the connection ended; ``send`` writes a client
message from the test's thread. Waits are bounded (``WAIT``) and poll a
condition, never a duration.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from interop.baresip import Baresip
from interop.peers import require_binary
from offhook.db.engine import create_engine_for
from offhook.db.users import UserStore, password_hasher
from support.ports import HOST
from support.server import OffhookServer, device, plan_of

__all__ = [
    "DNS",
    "PASSWORDS",
    "WAIT",
    "CtiNode",
    "Watcher",
    "call_events",
    "cti_node",
    "established_call",
    "frame",
    "hang_up",
    "raw_ws",
    "rss_kib",
    "web_pid",
]

PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "bob-Secret-2",
    "carol": "carol-Secret-3",
    "dave": "dave-Secret-4",
}
DNS = {"alice": "1001", "bob": "1002", "carol": "1003", "dave": "1004"}
LOAD = {"carol", "dave"}
"""SIPp's devices: load generators, no concurrent-call limit."""
PLAN = plan_of(
    [
        device(name, PASSWORDS[name], DNS[name], max_calls=0)
        if name in LOAD
        else device(name, PASSWORDS[name], DNS[name])
        for name in DNS
    ]
)
WAIT = 30.0
USER_PASSWORD = "cti-Tests-Secret-1"


@dataclass
class CtiNode:
    server: OffhookServer
    engine: Engine
    users: UserStore
    tmp_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.server.web_port}/cti/v1/events"

    def user(self, name: str, role: str, devices: tuple[str, ...] = ()) -> tuple[str, int]:
        """A new user and an API token of theirs: (token, token id)."""
        self.users.add(name, role, USER_PASSWORD, devices=devices)
        record, token = self.users.create_token(name, "cti tests")
        return token, record.id

    def phone(self, name: str) -> Baresip:
        require_binary("baresip")
        return Baresip(
            self.tmp_path,
            name,
            aor=f"sip:{name}@{HOST}:{self.server.sip_port}",
            password=PASSWORDS[name],
            regint=120,
        )

    def dial_uri(self, number: str) -> str:
        return f"sip:{number}@{HOST}:{self.server.sip_port}"

    def api(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(
            method, f"{self.server.web_url}{path}", headers=headers, timeout=WAIT, **kw
        )

    def metrics(self, token: str) -> dict[str, float]:
        """``/metrics`` of the web process, parsed (prometheus-client's parser): name -> value."""
        answer = self.api("GET", "/metrics", token)
        assert answer.status_code == 200, answer.text
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                key = sample.name
                if sample.labels:
                    labels = sorted(sample.labels.items())
                    key += "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"
                out[key] = sample.value
        return out


@contextmanager
def cti_node(tmp_path: Path, **config: dict[str, Any]) -> Iterator[CtiNode]:
    """A running node with its web process (``config``: extra settings sections)."""
    require_binary("baresip")
    server = OffhookServer(tmp_path, PLAN, extra_config=config or None, web=True)
    server.start(timeout=60)
    engine = create_engine_for(f"sqlite:///{server.db_path}")
    try:
        yield CtiNode(server, engine, UserStore(engine, password_hasher(1, 8, 1)), tmp_path)
    finally:
        engine.dispose()
        server.stop()


def established_call(caller: Baresip, callee: Baresip, uri: str) -> None:
    """``caller`` calls ``uri``, ``callee`` answers (events after now only)."""
    since_caller, since_callee = caller.mark(), callee.mark()
    caller.dial(uri)
    callee.wait_event("CALL_INCOMING", timeout=WAIT, since=since_callee)
    caller.wait_event(
        "CALL_RINGING", "CALL_PROGRESS", "CALL_ESTABLISHED", timeout=WAIT, since=since_caller
    )
    callee.accept()
    caller.wait_event("CALL_ESTABLISHED", timeout=WAIT, since=since_caller)
    callee.wait_event("CALL_ESTABLISHED", timeout=WAIT, since=since_callee)


def hang_up(caller: Baresip, callee: Baresip) -> None:
    """``caller`` hangs up; until ``callee`` saw the call close."""
    mark = callee.mark()
    caller.hangup()
    callee.wait_event("CALL_CLOSED", timeout=WAIT, since=mark)


def call_events(frames: list[dict[str, Any]], device: str) -> list[str]:
    """The call event types of ``device``'s legs, in order."""
    return [
        f["type"]
        for f in frames
        if "id" in f and f.get("device") == device and f["type"].startswith("call.")
    ]


class Watcher:
    """One CTI WebSocket client in a thread of its own (see the module doc)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        query: str = "",
        header: bool = True,
        max_queue: int | None = 16,
    ) -> None:
        self.url = url + (("?" + query) if query else "")
        if token is not None and not header:
            self.url += ("&" if query else "?") + f"token={token}"
        self.headers = {"Authorization": f"Bearer {token}"} if token and header else {}
        self.max_queue = max_queue
        self.frames: list[dict[str, Any]] = []
        self.closed: int | None = None
        """The close code once the connection ended (1006: no close frame)."""
        self.refused: int | None = None
        """The HTTP status when the upgrade was refused."""
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="cti-watcher")

    def __enter__(self) -> Watcher:
        self._thread.start()
        self.wait(
            lambda: bool(self.frames) or self.refused is not None or self.closed is not None,
            "connected (hello) or refused",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(WAIT)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._follow())
        finally:
            self._loop.close()

    async def _follow(self) -> None:
        self._task = asyncio.current_task()
        try:
            async with connect(
                self.url,
                additional_headers=self.headers,
                max_queue=self.max_queue,
                open_timeout=WAIT,
                close_timeout=5,
            ) as ws:
                self._ws = ws
                async for message in ws:
                    with self._cond:
                        self.frames.append(json.loads(message))
                        self._cond.notify_all()
        except InvalidStatus as exc:
            with self._cond:
                self.refused = exc.response.status_code
                self._cond.notify_all()
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            with self._cond:
                self.error = exc
                self._cond.notify_all()
        finally:
            opened = self._ws
            with self._cond:
                if opened is not None and opened.close_code is not None:
                    self.closed = opened.close_code
                elif opened is not None:
                    self.closed = 1006
                self._cond.notify_all()

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        """Send one message (a dict as JSON text) from the test's thread."""
        ws = self._ws
        assert ws is not None, "not connected"
        data = json.dumps(message) if isinstance(message, dict) else message
        future = asyncio.run_coroutine_threadsafe(ws.send(data), self._loop)
        with contextlib.suppress(ConnectionClosed):
            future.result(WAIT)

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    raise AssertionError(
                        f"never happened: {what} (error {self.error!r}, closed {self.closed}, "
                        f"refused {self.refused}, frames {self.frames[-5:]})"
                    )
                self._cond.wait(min(left, 0.5))

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [f for f in self.frames if "id" in f]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._cond:
            return [f for f in self.frames if f.get("type") == kind]


def raw_ws(
    host: str,
    port: int,
    token: str,
    *,
    source: str = HOST,
    rcvbuf: int | None = None,
    timeout: float = WAIT,
) -> tuple[socket.socket, int, bytes]:
    """A WebSocket opened by hand: (socket, HTTP status, bytes read past the head).

    ``rcvbuf`` shrinks the socket's receive buffer (set before connecting: the
    window the server sees); ``source`` is the local address (127.0.0.x).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        head = (
            f"GET /cti/v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(1)  # byte by byte: nothing of the stream is read past the head
            if not chunk:
                return sock, 0, data
            data += chunk
        status = int(data.split(b" ", 2)[1])
        return sock, status, b""
    except BaseException:
        sock.close()
        raise


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    """One client frame (RFC 6455 §5.2): masked as a client must, unless told not to."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def web_pid(node_pid: int) -> int:
    """The node's web child process (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != node_pid:
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if any(b"web" in part for part in cmdline):
                return int(entry.name)
    pytest.fail("no web process among the node's children")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
