from __future__ import annotations

from collections.abc import Iterator

import pytest
from core_harness import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture(autouse=True)
def _no_engine_bugs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Engine bugs are logged, not raised: make any such log fail the test."""
    yield
    bugs = [r for r in caplog.records if r.getMessage() in ("call control bug",)]
    assert not bugs, bugs
