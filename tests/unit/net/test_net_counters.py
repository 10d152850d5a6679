"""RejectionCounters: per (listener, reason) counts, snapshot, bounded keys."""

from __future__ import annotations

from offhook.net import Reason, RejectionCounters


def test_counts_and_snapshot() -> None:
    c = RejectionCounters()
    c.increment("sip-udp", Reason.ACL)
    c.increment("sip-udp", Reason.ACL)
    c.increment("sip-udp", "too_large", 3)
    c.increment("sccp", Reason.CONNECTIONS)
    assert c.get("sip-udp", "acl") == 2
    assert c.get("sip-udp", Reason.TOO_LARGE) == 3
    assert c.get("sccp", "rate") == 0
    snap = c.snapshot()
    assert snap == {"sip-udp": {"acl": 2, "too_large": 3}, "sccp": {"connections": 1}}
    snap["sip-udp"]["acl"] = 99  # a copy
    assert c.get("sip-udp", "acl") == 2
    assert c.total() == 6 and c.total("sccp") == 1
    c.reset()
    assert c.snapshot() == {}


def test_instances_are_independent() -> None:
    a, b = RejectionCounters(), RejectionCounters()
    a.increment("x", "acl")
    assert b.snapshot() == {}


def test_keys_are_bounded() -> None:
    c = RejectionCounters(max_keys=10)
    for i in range(10_000):
        c.increment(f"listener{i % 3}", f"reason{i}")
    assert len([1 for v in c.snapshot().values() for _ in v]) <= 10 + 64
    assert c.total() <= 10_000
    assert c.get("listener0", "other") > 0
