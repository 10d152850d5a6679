"""Settings reloads reach the defences: AllowList, RateLimiter, ListenerGuard and AuthGuard
take new networks, limits and thresholds in place (``node_reload`` on SIGHUP)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.net import AllowList, ListenerGuard, ListenerLimits, RateLimiter
from offhook.net.authguard import AuthGuard, AuthPolicy


def test_allow_list_update_reaches_every_bound_check() -> None:
    acl = AllowList(["127.0.0.0/8"])
    check = acl.allows  # what a listener holds
    assert check("127.0.0.1") and not check("10.1.2.3")
    acl.update(["10.0.0.0/8", "::1/128"])
    assert not check("127.0.0.1")
    assert check("10.1.2.3") and check("::1") and check("::ffff:10.0.0.1")
    assert [str(n) for n in acl.networks] == ["10.0.0.0/8", "::1/128"]


def test_allow_list_invalid_update_changes_nothing() -> None:
    acl = AllowList(["127.0.0.0/8"])
    with pytest.raises(ValueError):
        acl.update(["10.0.0.1/8"])  # host bits set
    with pytest.raises(ValueError):
        acl.update("10.0.0.0/8")  # a single string
    assert acl.allows("127.0.0.1") and not acl.allows("10.0.0.1")


@given(st.lists(st.ip_addresses().map(str), max_size=8), st.ip_addresses().map(str))
def test_allow_list_update_equals_a_new_list(hosts: list[str], probe: str) -> None:
    acl = AllowList(["0.0.0.0/0"])
    acl.update(hosts)
    assert acl.allows(probe) == AllowList(hosts).allows(probe)


def test_rate_limiter_update() -> None:
    rates = RateLimiter(1.0, 10.0, max_sources=4)
    for _ in range(10):
        assert rates.allow("a", 0.0)
    assert not rates.allow("a", 0.0)
    rates.update(100.0, 5.0, max_sources=2)
    assert rates.allow("a", 0.05)  # 5 tokens a 0.05 s at the new rate
    assert rates.tokens("b", 0.0) == 5.0  # a new source starts with the new burst
    for source in "bcd":
        rates.allow(source, 1.0)
    assert len(rates) == 2  # the smaller table forgot the oldest
    with pytest.raises(ValueError):
        rates.update(1.0, 0.5)


def test_listener_guard_update_limits_and_allow() -> None:
    refused: list[tuple[str, str]] = []
    guard = ListenerGuard(
        ListenerLimits(max_connections=4, max_connections_per_source=2),
        AllowList(["127.0.0.1/32"]).allows,
        lambda reason, host: refused.append((reason, host)),
    )
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert not guard.admit_connection("127.0.0.1", 0.0)
    guard.update(ListenerLimits(max_connections=8, max_connections_per_source=3))
    assert guard.admit_connection("127.0.0.1", 0.0)
    assert guard.limits.max_connections == 8
    assert not guard.admit_connection("192.0.2.1", 0.0)
    guard.update(allow=AllowList(["192.0.2.0/24"]).allows)
    assert guard.admit_connection("192.0.2.1", 0.0)
    assert not guard.admit_connection("127.0.0.2", 0.0)
    assert guard.connections.total == 4  # the open ones stay
    assert refused == [
        ("max-connections-per-source", "127.0.0.1"),
        ("acl", "192.0.2.1"),
        ("acl", "127.0.0.2"),
    ]


def test_listener_guard_lower_rate() -> None:
    guard = ListenerGuard(ListenerLimits(rate_per_source=100.0, rate_burst=100.0))
    assert guard.admit_datagram("127.0.0.1", 0.0)
    guard.update(ListenerLimits(rate_per_source=1.0, rate_burst=1.0))
    assert guard.admit_datagram("127.0.0.1", 0.0)  # the bucket holds the new burst at most
    assert not guard.admit_datagram("127.0.0.1", 0.0)
    assert guard.admit_datagram("127.0.0.1", 1.0)


def test_auth_guard_update_policy() -> None:
    guard = AuthGuard(AuthPolicy(block_after=5, throttle_after=2))
    for i in range(3):
        guard.failure("192.0.2.1", "alice", float(i))
    assert not guard.is_blocked("192.0.2.1", 3.0)
    guard.update_policy(AuthPolicy(block_after=4, throttle_after=2, max_tracked_sources=1))
    guard.failure("192.0.2.1", "alice", 3.0)
    assert guard.is_blocked("192.0.2.1", 3.0)
    guard.failure("192.0.2.2", None, 4.0)
    assert guard.status(4.0)["tracked_sources"] == 1
