from __future__ import annotations

import pytest
from core_harness import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()
