"""A real ``offhook serve`` node and a web app on its database and control endpoint.

For the tests that need the running node: a plan change made over the API
reaching it, and the live routes answering from it. The web app runs
in-process (``create_app`` over ``httpx.ASGITransport``) with the node's
database, realm and ``[admin]`` control address; a full-admin token is made
through the app's ``UserStore``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from offhook.config import Settings
from offhook.ris.control import ControlClient
from offhook.web.app import create_app
from support.server import OffhookServer
from web.rig import PASSWORD, client_for

RELOAD_TIMEOUT = 60.0
"""Generous: the node polls plan_version once a second; a loaded CI box is slow."""


@dataclass
class LiveNode:
    server: OffhookServer
    app: FastAPI
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def until(
        self, check: Callable[[], Awaitable[bool]], timeout: float = RELOAD_TIMEOUT
    ) -> None:
        """Until ``check()`` holds (a state change, not a timing: fails only after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await check():
            assert loop.time() < deadline, "the node never reached the expected state"
            await asyncio.sleep(0.1)

    async def status(self) -> dict[str, Any]:
        answer = await self.client.get("/api/v1/status", headers=self.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


def node_settings(server: OffhookServer) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{server.db_path}"},
            "sip": {"realm": server.realm},
            "admin": {"listen": server.admin_host, "port": server.admin_port},
            "web": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8,
                "argon2_parallelism": 1,
                "secure_cookies": "never",
                "hosts": ["testserver"],
            },
        }
    )


@asynccontextmanager
async def live_node(workdir: Path, **server_args: Any) -> AsyncIterator[LiveNode]:
    """A running node (the demo plan unless ``plan=`` is given) and the app over it."""
    server = OffhookServer(workdir, **server_args)
    await asyncio.to_thread(server.start)
    try:
        control = ControlClient(server.admin_host, server.admin_port, timeout=10.0)
        app = create_app(node_settings(server), control=control)
        users = app.state.ctx.users
        users.add("root", "full-admin", PASSWORD)
        _, token = users.create_token("root", "live tests")
        async with client_for(app) as client:
            yield LiveNode(server, app, client, {"Authorization": f"Bearer {token}"})
        await control.close()
        app.state.ctx.engine.dispose()
    finally:
        await asyncio.to_thread(server.stop)
