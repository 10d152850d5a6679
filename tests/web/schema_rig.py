"""Shared parts of the schemathesis tests against ``/api/v1/openapi.json``
(``test_schemathesis.py``: reads and the live routes; ``test_schemathesis_writes.py``:
writes; two files, so that the two halves run side by side): every operation of the API,
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

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks

__all__ = ["CHECKS", "HYPOTHESIS", "LIVE", "SELF_DEFEATING", "SLOW", "WRITES", "web_schema"]


MAX_EXAMPLES = 5
SLOW = 1200
"""pytest-timeout's bound, for each test as a whole: it runs every operation of the API
(each half of ~160 operations, five examples each: minutes on a loaded 2-core machine)."""
WRITES = ["POST", "PUT", "PATCH", "DELETE"]

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

SELF_DEFEATING = r"^/api/v1/(login|logout|tokens|users)"
# Answered from the running node (503 without one): live state, readiness,
# real-time information and CTI (whose commands a running node refuses with 409
# when the generated call or device does not exist).
LIVE = r"^/api/v1/(status|registrations|calls|trunks/state|ris/.+|cti/.+)$|^/readyz$"

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
