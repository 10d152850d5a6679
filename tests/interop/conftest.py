"""Fixtures for interop tests against real third-party peers.

A peer binary that is missing makes its tests skip with the reason, except
under ``CI=true``, where a missing peer is a failure: CI must never go green
by skipping interop.  ``require_binary(name)`` is the one place that rule
lives.
"""

from __future__ import annotations

import os
import shutil
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

from support.capture import tshark_can_capture  # noqa: E402

INSTALL_HINT = "run scripts/install-deps.sh as root"

PACKAGES = {
    "baresip": "baresip-core",
    "sipp": "sip-tester",
    "tshark": "tshark",
    "b2bua_simple": "sippy (pip)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_binary(name: str) -> str:
    """Path of ``name``; skip the test if missing, or fail under CI=true."""
    path = shutil.which(name)
    if path is not None:
        return path
    pkg = PACKAGES.get(name, name)
    reason = f"interop peer {name!r} not installed (package {pkg}; {INSTALL_HINT})"
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")


def require_capture() -> None:
    """Skip (or fail under CI) when tshark cannot capture on loopback."""
    require_binary("tshark")
    reason = tshark_can_capture()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)


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
