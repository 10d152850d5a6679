"""Floods of the CTI WebSocket: 1,000 connections, and malformed frames from many sources.

A real ``offhook serve`` with its web process (a child, as in production)
and two baresip phones. Before each flood an application connects (a
full-admin token) and the phones register; during it, alice calls bob.

- 1,000 WebSocket connections at once, from 40 loopback addresses
  (127.0.0.2-41, 25 each) with five users' tokens: at most ``[cti]
  max_clients`` are accepted and none of a user beyond ``max_clients_per_user``;
  every other one is refused (HTTP 503/429 before the upgrade, or reset by
  the listener's connection caps). All are held open together; the call
  completes, the application sees it, the web process's resident memory
  grows by less than ``RSS_BOUND``; once they are gone the client count is
  back to one and a new client is accepted.
- Malformed input after the upgrade from 120 loopback addresses
  (127.0.0.10-129), each sending one of: text that is no JSON, an unknown
  op, a binary frame, a frame larger than ``[cti] max_message`` (declared,
  nothing sent after the header), fragments that add up past it, an unmasked frame, a
  reserved opcode, invalid UTF-8, random bytes. Every connection is closed
  by the server (after an error frame where the protocol allows one) with
  the close code of its fault, or reset; the listener counts them
  (``offhook_web_refused``); memory stays bounded; the call completes and
  the application gets its events.

Every wait is bounded; nothing is timed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from support.ports import HOST
from web.cti_rig import (
    WAIT,
    Watcher,
    cti_node,
    established_call,
    frame,
    hang_up,
    rss_kib,
    web_pid,
)

CONNECTIONS = 1_000
SOURCES = 40
USERS = 5
MAX_CLIENTS = 64
PER_USER = 16
RSS_BOUND = 48 << 10  # KiB
MALFORMED_SOURCES = 120
BATCH = 40


async def _open(
    port: int, token: str, source: str
) -> tuple[int, asyncio.StreamReader | None, asyncio.StreamWriter | None]:
    """One WebSocket handshake: (HTTP status or 0 when reset/refused, reader, writer)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, port, local_addr=(source, 0)), WAIT
        )
    except (OSError, TimeoutError):
        return 0, None, None
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /cti/v1/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.transport.abort()
        return 0, None, None
    status = int(head.split(b" ", 2)[1])
    if status != 101:
        writer.transport.abort()
        return status, None, None
    return status, reader, writer


async def _close_code(reader: asyncio.StreamReader) -> tuple[int | None, list[int]]:
    """Read server frames until the end: (the close code, or None when reset or no close
    frame; the opcodes seen before it)."""
    opcodes: list[int] = []
    try:
        async with asyncio.timeout(WAIT):
            while True:
                first, second = await reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await reader.readexactly(8))
                payload = await reader.readexactly(length)
                opcode = first & 0x0F
                if opcode == 0x8:
                    return (
                        struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    ), opcodes
                opcodes.append(opcode)
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        return None, opcodes


def test_a_thousand_websocket_connections_are_capped_and_calls_go_on(tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "web": {"rate_per_source": 1000.0, "rate_burst": 1000.0},
        "cti": {
            "max_clients": MAX_CLIENTS,
            "max_clients_per_user": PER_USER,
            "ping_interval": 300,  # the flood's clients never answer a ping
        },
    }
    with cti_node(tmp_path, **config) as node:
        admin, _ = node.user("root", "full-admin")
        tokens = [node.user(f"app{n}", "cti-app", ("alice",))[0] for n in range(USERS)]
        web = web_pid(node.server.pid)
        alice, bob = node.phone("alice"), node.phone("bob")
        with Watcher(node.ws_url, admin) as app, alice, bob:
            alice.wait_registered()
            bob.wait_registered()
            before = rss_kib(web)

            async def flood() -> None:
                port = node.server.web_port
                attempts = [
                    _open(port, tokens[n % USERS], f"127.0.0.{2 + n % SOURCES}")
                    for n in range(CONNECTIONS)
                ]
                results = await asyncio.gather(*attempts)
                try:
                    statuses = Counter(status for status, _, _ in results)
                    accepted = statuses[101]
                    assert 0 < accepted <= MAX_CLIENTS - 1, statuses  # the app holds one
                    assert sum(statuses.values()) == CONNECTIONS
                    assert set(statuses) <= {101, 429, 503, 0}, statuses
                    metrics = node.metrics(admin)
                    assert metrics["offhook_cti_clients"] == accepted + 1
                    assert metrics["offhook_cti_refused_total{reason=max-clients}"] >= 1
                    # During the flood, held open: a call, seen by the application.
                    await asyncio.to_thread(established_call, alice, bob, node.dial_uri("1002"))
                    await asyncio.to_thread(hang_up, alice, bob)
                    await asyncio.to_thread(
                        app.wait, lambda: bool(app.of_type("call.ended")), "the call's end"
                    )
                    grown = rss_kib(web) - before
                    assert grown < RSS_BOUND, f"web process grew {grown} KiB"
                finally:
                    for _, _, writer in results:
                        if writer is not None:
                            writer.transport.abort()

            asyncio.run(flood())

            def one_left() -> bool:
                return node.metrics(admin)["offhook_cti_clients"] == 1

            app.wait(one_left, "the flood's clients gone")
            with Watcher(node.ws_url, tokens[0]) as later:
                assert later.frames[0]["type"] == "hello"
            assert app.closed is None
            offered = [e for e in app.events if e["type"] == "call.offered"]
            assert [e["device"] for e in offered] == ["bob"]


Attack = Callable[[asyncio.StreamReader, asyncio.StreamWriter, random.Random], Awaitable[None]]


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def _text(data: bytes) -> Attack:
    async def attack(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
        await _send(w, frame(0x1, data))

    return attack


async def _binary(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
    await _send(w, frame(0x2, b"\x00\x01\x02"))


async def _too_large(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
    # The header declares a megabyte; nothing of it follows.
    await _send(w, struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 20) + os.urandom(4))


async def _fragments(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
    await _send(w, frame(0x1, b"{" + b" " * 999, fin=False))
    for _ in range(8):  # 9,000 bytes in all, over a 4,096-byte message bound
        await _send(w, frame(0x0, b" " * 1000, fin=False))


async def _unmasked(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
    await _send(w, frame(0x1, b'{"op": "ping"}', masked=False))


async def _reserved(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
    await _send(w, frame(0x3, b"x"))


async def _garbage(r: Any, w: asyncio.StreamWriter, rng: random.Random) -> None:
    await _send(w, bytes(rng.getrandbits(8) for _ in range(rng.randrange(2, 512))))


# attack name -> (attack, the close codes it may end with; None: reset or no close frame)
ATTACKS: dict[str, tuple[Attack, set[int | None]]] = {
    "not-json": (_text(b"{op: ping"), {1008}),
    "unknown-op": (_text(b'{"op": "shutdown"}'), {1008}),
    "binary": (_binary, {1003}),
    "too-large": (_too_large, {1009}),
    # The server closes with input still unread: its kernel may reset, and a reset
    # discards the close frame the client had not read yet.
    "fragments": (_fragments, {1009, None}),
    "unmasked": (_unmasked, {1002}),
    "reserved-opcode": (_reserved, {1002}),
    "bad-utf8": (_text(b"\xff\xfe\xfd"), {1007}),
    "garbage": (_garbage, set()),  # any end: a close of any code, a reset
}


def test_malformed_frames_from_many_sources_close_only_their_connections(tmp_path: Path) -> None:
    config: dict[str, Any] = {
        # Pings every 2 s: a frame left unfinished (random bytes) ends at the keepalive.
        "cti": {
            "max_clients": 1000,
            "max_clients_per_user": 1000,
            "ping_interval": 2,
            "ping_timeout": 2,
        }
    }
    with cti_node(tmp_path, **config) as node:
        admin, _ = node.user("root", "full-admin")
        token, _ = node.user("app", "cti-app", ("alice",))
        web = web_pid(node.server.pid)
        alice, bob = node.phone("alice"), node.phone("bob")
        with Watcher(node.ws_url, admin) as app, alice, bob:
            alice.wait_registered()
            bob.wait_registered()
            before = rss_kib(web)
            refused_before = node.metrics(admin)
            names = sorted(ATTACKS)
            outcomes: Counter[tuple[str, int | None]] = Counter()

            async def one(n: int) -> None:
                name = names[n % len(names)]
                attack, expected = ATTACKS[name]
                status, reader, writer = await _open(
                    node.server.web_port, token, f"127.0.0.{10 + n % MALFORMED_SOURCES}"
                )
                assert status == 101 and reader is not None and writer is not None, status
                try:
                    with contextlib.suppress(ConnectionError):
                        # The server may close before the attack is all sent.
                        await attack(reader, writer, random.Random(n))
                    code, opcodes = await _close_code(reader)
                finally:
                    writer.transport.abort()
                outcomes[(name, code)] += 1
                assert not expected or code in expected, (name, code, opcodes)
                if name in {"not-json", "unknown-op", "binary"}:
                    assert 0x1 in opcodes  # the error frame came before the close

            async def flood() -> None:
                total = MALFORMED_SOURCES * 3
                for start in range(0, total, BATCH):
                    await asyncio.gather(*(one(n) for n in range(start, min(total, start + BATCH))))
                # A call while the last wave is being refused.
                await asyncio.to_thread(established_call, alice, bob, node.dial_uri("1002"))
                await asyncio.to_thread(hang_up, alice, bob)

            asyncio.run(flood())
            app.wait(lambda: bool(app.of_type("call.ended")), "the call seen by the application")
            grown = rss_kib(web) - before
            assert grown < RSS_BOUND, f"web process grew {grown} KiB"
            after = node.metrics(admin)

            def counted(reason: str) -> float:
                key = f"offhook_web_refused_total{{reason={reason}}}"
                return after.get(key, 0.0) - refused_before.get(key, 0.0)

            per_attack = 3 * MALFORMED_SOURCES // len(ATTACKS)
            # not-json, unknown-op, binary, unmasked, reserved-opcode (bad UTF-8: uvicorn's)
            assert counted("malformed") >= 5 * per_attack, after
            assert counted("too-large") >= 2 * per_attack, after
            app.wait(lambda: node.metrics(admin)["offhook_cti_clients"] == 1, "all gone")
            assert app.closed is None
            assert {name for name, _ in outcomes} == set(ATTACKS)
