"""The tests' port helper (``support.ports``) in a long session on a narrow range."""

from __future__ import annotations

import pytest

from support import ports


def test_a_narrow_range_never_runs_dry_and_recent_ports_are_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OFFHOOK_TEST_PORTS", "27800-28000")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1")
    monkeypatch.setattr(ports, "_handed_out", {})
    drawn = [ports.free_port() for _ in range(600)]  # three times the range
    assert all(27800 <= p < 28000 for p in drawn)
    # What was handed out lately (the last quarter of the range) is never drawn again.
    for i, port in enumerate(drawn):
        assert port not in drawn[max(0, i - 50) : i], (i, port)
