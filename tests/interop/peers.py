"""Which interop peers are present, and what a missing one means.

A missing peer binary skips its test with the reason, except under
``CI=true``, where it is a failure: CI must never go green by skipping
interop.  ``require_binary(name)`` is the one place that rule lives.
"""

from __future__ import annotations

import os
import shutil

import pytest

from support.capture import tshark_can_capture

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
