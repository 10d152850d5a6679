"""Schemathesis against ``/api/v1/openapi.json``: every operation of the API,
called as a full-admin with requests generated from the OpenAPI document (a
bounded number of examples per operation, derandomized so that a CI run is
reproducible). No answer may be a server error, and every answer must be one
the document describes: a documented status code, content type, headers and a
body that matches the response schema.

The app runs in-process (schemathesis's ASGI transport) on a real database
with the demo plan, a fresh one per operation. The live routes (node status,
registrations, calls, trunk state) are called with a real node running
(``offhook serve``), so that they answer from it rather than 503. Operations
that end the test's own access (logging in and out, tokens, users: revoking
or deleting the caller) are left out of the writes: they would turn the
following examples into 401s that say nothing about the operation under test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks

from offhook.ris.control import ControlClient
from offhook.web.app import create_app
from support.server import OffhookServer
from web.live_node import node_settings
from web.rig import PASSWORD

MAX_EXAMPLES = 5
SLOW = 1200
"""pytest-timeout's bound, for each test as a whole: it runs every operation of the API
(~160 of them, five examples each; ~8 minutes on a loaded 2-core machine)."""

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

_SELF_DEFEATING = r"^/api/v1/(login|logout|tokens|users)"
# Answered from the running node (503 without one): live state, readiness,
# real-time information and CTI (whose commands a running node refuses with 409
# when the generated call or device does not exist).
_LIVE = r"^/api/v1/(status|registrations|calls|trunks/state|ris/.+|cti/.+)$|^/readyz$"

HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def web_schema(web_app: FastAPI, tokens: dict[str, str]) -> Any:
    signed_in = {"Authorization": f"Bearer {tokens['full-admin']}"}  # the document is not public
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", web_app, headers=signed_in)


schema = (
    schemathesis.pytest.from_fixture("web_schema")
    .exclude(path_regex=_SELF_DEFEATING, method=["POST", "PUT", "PATCH", "DELETE"])
    .exclude(path_regex=_LIVE)
)


@schema.parametrize()
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


live = schemathesis.pytest.from_fixture("live_schema").include(path_regex=_LIVE)


@live.parametrize()
@pytest.mark.timeout(SLOW)
@HYPOTHESIS
def test_live_api_conforms(case: Any, running_node: tuple[FastAPI, str]) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {running_node[1]}"}, checks=CHECKS)
