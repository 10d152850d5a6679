"""CSCef47060 for the web admin: 50,000 failed logins leave memory flat, admins get in.

On CallManager 3.3-4.1 each failed login to the administration pages
leaked memory until the server stopped answering. Here the web app takes
50,000 failed logins in two waves of 25,000, each from 2,500 loopback
addresses (127.x.y.z: the app sees each as its own source, exactly as
uvicorn reports the peer) that each try ten passwords, against real
accounts and made-up ones alike, as a password sprayer would. The
``[auth]`` tables are set smaller than the number of attackers, so they
are full after the first wave and evict during the second.

What must hold (figures printed):

- memory allocated during the second wave and still held after it
  (tracemalloc) stays under ``RETAINED_BOUND``, and the resident size
  grows by less than ``RSS_BOUND``: the failure tables, sessions and
  metrics are bounded, a failed login leaves nothing behind;
- each source was blocked after ``block_after`` failures: its later
  attempts got 429 without a hash;
- a real admin, from an address that did not attack, logs in afterwards
  (accounts are never locked) and the session works.

Requests go straight into the ASGI app (no sockets: 50,000 TCP
connections would measure the kernel, not the app); nothing here is timed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from offhook.config import Settings
from offhook.db.engine import create_engine_for, upgrade
from offhook.web.app import create_app
from offhook.web.deps import WebContext
from web.rig import PASSWORD, anyio_backend, make_settings

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend"]

WAVE_SOURCES = 2_500
TRIES_PER_SOURCE = 10
BLOCK_AFTER = 5
CONCURRENCY = 64
RETAINED_BOUND = 1 << 20  # bytes still held from the second wave's allocations
RSS_BOUND = 24 << 20
ACCOUNTS = ("full-admin", "operator", "admin", "root")


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _login(app: FastAPI, host: str, username: str, password: str) -> int:
    """One POST /api/v1/login straight into the ASGI app; the answer's status."""
    body = json.dumps({"username": username, "password": password}).encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/login",
        "raw_path": b"/api/v1/login",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": (host, 50000),
        "server": ("127.0.0.1", 8080),
    }
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def _source(n: int) -> str:
    return f"127.{1 + n // (254 * 254)}.{1 + (n // 254) % 254}.{1 + n % 254}"


async def _attacker(app: FastAPI, n: int, answers: Counter[int]) -> None:
    host = _source(n)
    for attempt in range(TRIES_PER_SOURCE):
        account = ACCOUNTS[attempt % len(ACCOUNTS)] if n % 2 else f"made-up-{n}-{attempt}"
        answers[await _login(app, host, account, f"guess-{n}-{attempt}")] += 1


async def _wave(app: FastAPI, first: int) -> Counter[int]:
    answers: Counter[int] = Counter()
    sources = iter(range(first, first + WAVE_SOURCES))

    async def worker() -> None:
        for n in sources:
            await _attacker(app, n, answers)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answers


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        f"sqlite:///{tmp_path / 'web.db'}",
        auth={
            "throttle_after": 3,
            "throttle_delay": 0,
            "block_after": BLOCK_AFTER,
            "block_for": 600,
            "account_alert_after": 1_000_000,
            "max_tracked_sources": 1_000,
            "max_tracked_accounts": 500,
        },
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine_for(settings.database.url)
    upgrade(engine)
    yield engine
    engine.dispose()


async def test_50000_failed_logins_memory_flat_admin_logs_in(
    settings: Settings, engine: Engine
) -> None:
    app = create_app(settings, engine=engine)
    context: WebContext = app.state.ctx
    context.users.add("full-admin", "full-admin", PASSWORD)

    warm = await _wave(app, 0)
    gc.collect()
    rss_before = _rss()
    tracemalloc.start()
    try:
        second = await _wave(app, WAVE_SOURCES)
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    gc.collect()
    rss_after = _rss()

    total = sum(warm.values()) + sum(second.values())
    status = context.login_guard.guard.status(context.clock())
    print(
        f"\nCSCef47060 web: {total} failed logins; wave 1 {dict(warm)}, wave 2 {dict(second)}"
        f"\n  retained after wave 2: {retained / 1024:.0f} KiB (peak {peak / 1024:.0f} KiB)"
        f"\n  RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
        f"\n  guard: {status}"
        f"\n  sessions: {len(context.sessions)}"
    )
    assert total == 2 * WAVE_SOURCES * TRIES_PER_SOURCE == 50_000
    for answers in (warm, second):
        assert set(answers) == {401, 429}
        assert answers[401] == WAVE_SOURCES * BLOCK_AFTER  # hashed until blocked
    assert retained < RETAINED_BOUND
    assert rss_after - rss_before < RSS_BOUND
    assert status["tracked_sources"] <= 1_000 and status["tracked_accounts"] <= 500
    assert len(context.sessions) == 0

    assert await _login(app, "127.0.0.1", "full-admin", PASSWORD) == 200
