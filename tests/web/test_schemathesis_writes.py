"""Schemathesis against ``/api/v1/openapi.json`` (``web.schema_rig`` says what
is checked): the operations that write (POST, PUT, PATCH, DELETE), each on a
fresh app with the demo plan. Operations that end the test's own access
(logging in and out, tokens, users: revoking or deleting the caller) are left
out: they would turn the following examples into 401s that say nothing about
the operation under test. The live routes are in ``test_schemathesis.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from web.schema_rig import CHECKS, HYPOTHESIS, LIVE, SELF_DEFEATING, SLOW, WRITES, web_schema

__all__ = ["web_schema"]

writes = (
    schemathesis.pytest.from_fixture("web_schema")
    .include(method=WRITES)
    .exclude(path_regex=SELF_DEFEATING)
    .exclude(path_regex=LIVE)
)


@writes.parametrize()
@pytest.mark.timeout(SLOW)
@HYPOTHESIS
def test_api_writes_conform(case: Any, tokens: dict[str, str]) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {tokens['full-admin']}"}, checks=CHECKS
    )
