"""Fixtures for interop tests against real third-party peers.

A peer binary that is missing makes its tests skip with the reason, except
under ``CI=true``, where a missing peer is a failure: CI must never go green
by skipping interop.  ``require_binary(name)`` is the one place that rule
lives.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# ``tests/`` on sys.path so ``support`` and ``interop`` import the same way
# whatever pytest's import mode (a site-packages ``tests`` package from PyPI
# sippy shadows ``tests.*``).
_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from interop.peers import require_binary, require_capture  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.interop)


@pytest.fixture
def baresip_bin() -> str:
    return require_binary("baresip")


@pytest.fixture
def sipp_bin() -> str:
    return require_binary("sipp")


@pytest.fixture
def capture_ok() -> None:
    require_capture()


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
