"""Schemathesis against ``/api/v1/openapi.json`` (``web.schema_rig`` says what
is checked): the operations that read, on a fresh app with the demo plan, and
the live routes (node status, registrations, calls, trunk state, real-time
information, readiness, CTI), with a real node running (``offhook serve``) so
that they answer from it rather than 503. The writes are in
``test_schemathesis_writes.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI

from offhook.ris.control import ControlClient
from offhook.web.app import create_app
from support.server import OffhookServer
from web.live_node import node_settings
from web.rig import PASSWORD
from web.schema_rig import CHECKS, HYPOTHESIS, LIVE, SLOW, WRITES, web_schema

__all__ = ["web_schema"]

reads = (
    schemathesis.pytest.from_fixture("web_schema").exclude(method=WRITES).exclude(path_regex=LIVE)
)


@reads.parametrize()
@pytest.mark.timeout(SLOW)
@HYPOTHESIS
def test_api_conforms(case: Any, tokens: dict[str, str]) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {tokens['full-admin']}"}, checks=CHECKS
    )


@pytest.fixture(scope="module")
def running_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    """A running node and an app over it (the module's live operations share it)."""
    server = OffhookServer(Path(tmp_path_factory.mktemp("schemathesis-node")))
    server.start()
    try:
        # /readyz is 503 until the media server is connected: a true 503, not one to check.
        deadline = time.monotonic() + 60
        while not server.control("ready")["ready"] and time.monotonic() < deadline:
            time.sleep(0.2)
        control = ControlClient(server.admin_host, server.admin_port, timeout=10.0)
        app = create_app(node_settings(server), control=control)
        app.state.ctx.users.add("root", "full-admin", PASSWORD)
        _, token = app.state.ctx.users.create_token("root", "schemathesis")
        yield app, token
        app.state.ctx.engine.dispose()
    finally:
        server.stop()


@pytest.fixture
def live_schema(running_node: tuple[FastAPI, str]) -> Any:
    app, token = running_node
    signed_in = {"Authorization": f"Bearer {token}"}
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=signed_in)


live = schemathesis.pytest.from_fixture("live_schema").include(path_regex=LIVE)


@live.parametrize()
@pytest.mark.timeout(SLOW)
@HYPOTHESIS
def test_live_api_conforms(case: Any, running_node: tuple[FastAPI, str]) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {running_node[1]}"}, checks=CHECKS)
