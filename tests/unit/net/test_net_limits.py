"""Bounded LRU, token bucket, connection limiter and auth failure tracker."""

from __future__ import annotations

import pytest

from offhook.net import BoundedLRU, ConnectionLimiter, RateLimiter


def test_lru_evicts_oldest_and_counts() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(3)
    lru["a"], lru["b"], lru["c"] = 1, 2, 3
    assert lru["a"] == 1  # touch a: b is now the oldest
    lru["d"] = 4
    assert list(lru) == ["c", "a", "d"]
    assert "b" not in lru and lru.evictions == 1
    assert lru.peek("c") == 3 and next(iter(lru)) == "c"  # peek does not touch
    assert lru.get("zz") is None and lru.get("zz", 0) == 0
    lru["c"] = 30  # update moves to the end, no eviction
    assert list(lru) == ["a", "d", "c"] and lru.evictions == 1
    del lru["a"]
    assert len(lru) == 2
    with pytest.raises(ValueError):
        BoundedLRU(0)


def test_lru_bound_holds_with_100k_sources() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(1000)
    for i in range(100_000):
        lru[f"198.51.{i >> 8 & 255}.{i & 255}:{i}"] = i
    assert len(lru) == 1000
    assert lru.evictions == 99_000
    assert min(lru.values()) == 99_000


def test_token_bucket_math() -> None:
    rl = RateLimiter(rate_per_second=2.0, burst=3, max_sources=10)
    assert [rl.allow("s", 100.0) for _ in range(4)] == [True, True, True, False]
    assert not rl.allow("s", 100.4)  # 0.8 tokens
    assert rl.allow("s", 100.5)  # 1.0 token
    assert not rl.allow("s", 100.5)
    assert rl.tokens("s", 110.0) == 3.0  # capped at burst
    assert rl.allow("other", 100.5)  # independent bucket
    assert not rl.allow("s", 50.0)  # time going backwards adds nothing
    assert rl.allow("s", 101.0)


def test_rate_limiter_memory_bounded() -> None:
    rl = RateLimiter(1.0, 1, max_sources=500)
    for i in range(100_000):
        rl.allow(i, i / 1_000_000)  # all within one refill time: none is idle
    assert len(rl) == 500 and rl.evictions == 99_500


def test_rate_limiter_forgets_full_buckets() -> None:
    """Sources whose bucket refilled carry nothing: the table keeps the live ones."""
    rl = RateLimiter(rate_per_second=10.0, burst=5, max_sources=10_000)
    for i in range(100_000):  # 1,000 new sources a second; a bucket refills in 0.1 s
        rl.allow(f"10.0.{i >> 8 & 255}.{i & 255}-{i}", i / 1000)
    assert len(rl) <= 110 and rl.evictions == 0
    # An active source keeps its state (no free refill by being forgotten).
    for _ in range(5):
        assert rl.allow("busy", 200.0)
    assert not rl.allow("busy", 200.0)
    for i in range(50):
        rl.allow(f"new{i}", 200.0)
    assert not rl.allow("busy", 200.0)


def test_lru_prune_oldest_skips_live_entries() -> None:
    lru: BoundedLRU[str, int] = BoundedLRU(10)
    for k, v in [("a", 0), ("b", 0), ("c", 1), ("d", 0)]:
        lru[k] = v
    assert lru.prune_oldest(lambda v: v == 0) == 2
    assert list(lru) == ["c", "d"]
    assert lru.prune_oldest(lambda v: v == 0, limit=1) == 0  # c is live: d not looked at
    assert lru.prune_oldest(lambda v: v == 0) == 1  # c stays where it is, d goes
    assert list(lru) == ["c"] and lru.evictions == 0


def test_connection_limiter() -> None:
    cl = ConnectionLimiter(max_total=4, max_per_source=2, max_sources=3)
    assert cl.try_acquire("a") and cl.try_acquire("a")
    assert not cl.try_acquire("a")  # per source
    assert cl.try_acquire("b") and cl.try_acquire("c")
    assert cl.sources == 3 and cl.total == 4
    assert not cl.try_acquire("d")  # total
    cl.release("a")
    assert not cl.try_acquire("d")  # max distinct sources
    assert cl.try_acquire("b")  # existing source still fine
    cl.release("c")
    cl.release("c")  # extra release ignored
    cl.release("nobody")
    assert cl.count("c") == 0 and cl.sources == 2 and cl.total == 3
    assert cl.try_acquire("d")
    for s in ("a", "b", "b", "d"):
        cl.release(s)
    assert cl.total == 0 and cl.sources == 0


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        RateLimiter(1.0, 0, 10)
    with pytest.raises(ValueError):
        ConnectionLimiter(0, 1, 1)
