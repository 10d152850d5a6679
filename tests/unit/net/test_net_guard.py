"""ListenerGuard: allow-list first (no state for refused sources), caps, rate, reasons."""

from __future__ import annotations

import pytest

from offhook.net import AllowList, ListenerGuard, ListenerLimits, RateLimiter


def make(**limits: float) -> tuple[ListenerGuard, list[tuple[str, str]]]:
    refused: list[tuple[str, str]] = []
    guard = ListenerGuard(
        ListenerLimits(**limits),  # type: ignore[arg-type]
        AllowList(["127.0.0.1/32"]).allows,
        lambda reason, host: refused.append((reason, host)),
    )
    return guard, refused


def test_refused_source_leaves_no_state() -> None:
    guard, refused = make()
    for i in range(1000):
        assert not guard.admit_connection("127.0.0.2", float(i))
        assert not guard.admit_datagram("127.0.0.2", float(i))
        assert not guard.allowed("127.0.0.2")
    assert refused == [("acl", "127.0.0.2")] * 3000
    assert guard.status() == {"connections": 0, "connection_sources": 0, "rate_sources": 0}


def test_connection_reset_before_accept_is_not_an_acl_refusal() -> None:
    """A socket reset by its peer before the listener saw it has no peer address."""
    guard, refused = make()
    assert not guard.admit_connection("", 0.0)
    assert refused == [("gone-before-accept", "")]
    assert guard.status() == {"connections": 0, "connection_sources": 0, "rate_sources": 0}


def test_connection_caps_and_release() -> None:
    guard, refused = make(max_connections=3, max_connections_per_source=2)
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert not guard.admit_connection("127.0.0.1", 0.0)
    assert refused[-1] == ("max-connections-per-source", "127.0.0.1")
    guard.release("127.0.0.1")
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert guard.status()["connections"] == 2


def test_datagram_rate() -> None:
    guard, refused = make(rate_per_source=1.0, rate_burst=2.0)
    assert [guard.admit_datagram("127.0.0.1", 0.0) for _ in range(3)] == [True, True, False]
    assert refused == [("rate-limit", "127.0.0.1")]
    assert guard.admit_datagram("127.0.0.1", 1.0)


def test_connection_over_rate_releases_its_slot() -> None:
    guard, refused = make(rate_per_source=1.0, rate_burst=1.0)
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert not guard.admit_connection("127.0.0.1", 0.0)
    assert refused == [("rate-limit", "127.0.0.1")]
    assert guard.connections.count("127.0.0.1") == 1


def test_stream_throttle_is_back_pressure() -> None:
    guard, refused = make(rate_per_source=10.0, rate_burst=10.0)
    assert guard.throttle("127.0.0.1", 0.0, 10) == 0.0
    assert guard.throttle("127.0.0.1", 0.0, 5) == pytest.approx(0.5)
    assert refused == [("rate-limit", "127.0.0.1")]
    assert guard.throttle("127.0.0.1", 1.0, 0) == 0.0
    assert guard.throttle("127.0.0.1", 1.0, 1) == 0.0  # 0.5 s of debt paid, 4 tokens back


def test_charge_debt_is_bounded() -> None:
    rl = RateLimiter(2.0, 4, max_sources=10)
    assert rl.charge("s", 0.0, 1_000_000) == pytest.approx(2.0)  # never below -burst
    assert rl.charge("s", 2.0, 0) == 0.0


def test_limits_of_a_settings_section() -> None:
    from offhook.config import SccpSettings

    limits = ListenerLimits.of(SccpSettings(), max_sources=7)
    assert limits.max_message == 4096 and limits.max_connections == 20000
    assert limits.idle_timeout == 90.0 and limits.max_sources == 7
