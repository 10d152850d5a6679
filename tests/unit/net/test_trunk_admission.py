"""Per-trunk limits (``net.trunk_admission``): max_cps, max_calls, the datagram ceiling,
and the table that finds a trunk by source address (kept across plan reloads).

Time is a number the tests pass in; nothing sleeps.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from offhook.net.limits import TokenBucket
from offhook.net.trunk_admission import (
    BURST_SECONDS,
    DEFAULT_MAX_CPS,
    MESSAGES_PER_CALL,
    UNLIMITED_CPS_SIZING,
    Refusal,
    TrunkQuota,
    TrunkSource,
    TrunkTable,
)

ANON_RATE, ANON_BURST = 200.0, 400.0


def quota(**kw: object) -> TrunkQuota:
    return TrunkQuota(TrunkSource("carrier", "192.0.2.10", **kw), ANON_RATE, ANON_BURST)  # type: ignore[arg-type]


def test_defaults_fit_100_calls_per_second() -> None:
    q = quota()
    assert (q.max_cps, q.max_calls) == (DEFAULT_MAX_CPS, 0) == (100, 0)
    assert q.calls is not None and (q.calls.rate, q.calls.burst) == (100.0, 200.0)
    # 20 datagrams a call of max_cps: 2,000/s, burst 4,000 (10x the anonymous bucket).
    assert (q.datagrams.rate, q.datagrams.burst) == (2000.0, 4000.0)


def test_exactly_100_calls_per_second_never_refused() -> None:
    q = quota()
    for i in range(5000):  # 50 s of calls, one every 10 ms
        assert q.admit_call(i / 100, active_calls=0) is None


def test_a_burst_over_max_cps_is_refused_with_retry_after() -> None:
    q = quota(max_cps=10)  # burst 20
    now = 5.0
    answers = [q.admit_call(now, 0) for _ in range(25)]
    assert answers[:20] == [None] * 20
    assert answers[20:] == [Refusal("Trunk Call Rate Exceeded", 1)] * 5
    # A refused call spends nothing: one token is back 0.1 s later.
    assert q.admit_call(now + 0.125, 0) is None
    assert q.admit_call(now + 0.125, 0) is not None


def test_retry_after_is_the_wait_for_the_next_call_rounded_up() -> None:
    q = quota(max_cps=1)  # burst 2
    assert q.admit_call(0.0, 0) is None and q.admit_call(0.0, 0) is None
    refusal = q.admit_call(0.0, 0)
    assert refusal is not None and refusal.retry_after == 1


def test_max_calls_refused_before_the_rate_is_spent() -> None:
    q = quota(max_calls=2, max_cps=1)
    assert q.admit_call(0.0, active_calls=2) == Refusal("Trunk Busy", 1)
    assert q.calls is not None and q.calls.tokens == 2.0  # nothing spent
    assert q.admit_call(0.0, active_calls=1) is None


def test_zero_is_no_limit_but_datagrams_keep_a_ceiling() -> None:
    q = quota(max_cps=0, max_calls=0)
    assert q.calls is None
    assert all(q.admit_call(0.0, 10**6) is None for _ in range(1000))
    assert q.datagrams.rate == UNLIMITED_CPS_SIZING * MESSAGES_PER_CALL
    assert math.isfinite(q.datagrams.burst)


def test_datagram_ceiling_never_below_the_anonymous_bucket() -> None:
    q = quota(max_cps=1)
    assert (q.datagrams.rate, q.datagrams.burst) == (ANON_RATE, ANON_BURST)


@given(
    cps=st.integers(1, 100_000),
    times=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=200),
)
def test_admitted_calls_never_exceed_burst_plus_rate(cps: int, times: list[float]) -> None:
    q = quota(max_cps=cps)
    times.sort()
    admitted = sum(q.admit_call(t, 0) is None for t in times)
    assert admitted <= cps * BURST_SECONDS + cps * (times[-1] - times[0]) + 1e-6


def source(name: str, host: str, port: int = 5060, **kw: object) -> TrunkSource:
    return TrunkSource(name, host, port, **kw)  # type: ignore[arg-type]


def test_table_exact_networks_and_names() -> None:
    table = TrunkTable(ANON_RATE, ANON_BURST)
    table.rebuild(
        [
            source("kam", "[0:0::1]", 5080),
            source("carrier", "192.0.2.10", inbound_addresses=("192.0.2.0/24",)),
            source("byname", "PBX.example", 5070),
        ]
    )
    kam = table.source(("::1", 5080))
    assert kam is not None and kam.name == "kam"
    assert table.source(("::1", 5081)) is None  # another port: a phone on that host
    hit = table.source(("192.0.2.77", 40000))
    assert hit is not None and hit.name == "carrier"
    assert table.source(("198.51.100.1", 5060)) is None
    assert table.source(("203.0.113.5", 5070)) is None  # the name is not resolved yet
    table.resolve_cached = {"pbx.example": "203.0.113.5"}.get
    named = table.source(("203.0.113.5", 5070))
    assert named is not None and named.name == "byname"
    # match() also takes an IPv6 source written otherwise than RFC 5952.
    again = table.match(("0000:0000::0001", 5080))
    assert again is kam


def test_a_plan_without_network_trunks_costs_one_lookup() -> None:
    table = TrunkTable()
    table.rebuild([source("carrier", "192.0.2.10")])
    assert table.source(("192.0.2.10", 5060)) is table.quota("carrier")
    assert table.source(("192.0.2.10", 5061)) is None
    assert not table._slow  # no network, no host name: the dict lookup is all


def test_rebuild_keeps_the_buckets_of_trunks_that_stay() -> None:
    table = TrunkTable(ANON_RATE, ANON_BURST)
    table.rebuild([source("carrier", "192.0.2.10", max_cps=5), source("old", "192.0.2.20")])
    carrier = table.quota("carrier")
    assert carrier is not None
    for _ in range(10):
        assert carrier.admit_call(1.0, 0) is None
    assert carrier.admit_call(1.0, 0) is not None  # burst spent
    # A reload (a new port, a higher rate): the same object, still out of tokens.
    table.rebuild([source("carrier", "192.0.2.10", 5070, max_cps=6)])
    assert table.quota("carrier") is carrier and table.quota("old") is None
    assert carrier.max_cps == 6 and carrier.admit_call(1.0, 0) is not None
    assert table.source(("192.0.2.10", 5070)) is carrier
    assert table.source(("192.0.2.10", 5060)) is None
    assert table.source(("192.0.2.20", 5060)) is None


def test_a_bad_network_is_reported_and_the_trunk_falls_back_to_its_host() -> None:
    heard: list[tuple[str, str]] = []
    table = TrunkTable()
    table.rebuild(
        [source("carrier", "192.0.2.10", inbound_addresses=("not-a-net",))],
        warn=lambda name, why: heard.append((name, why)),
    )
    assert heard and heard[0][0] == "carrier"
    assert table.source(("192.0.2.10", 5060)) is table.quota("carrier")


def test_token_bucket_reserve_and_wait() -> None:
    bucket = TokenBucket(10.0, 5.0, now=0.0)
    assert all(bucket.take(0.0) for _ in range(5))
    assert not bucket.take(0.0)
    assert bucket.take(0.0, reserve=5.0)  # a priority spend goes into debt
    assert bucket.tokens == -1.0
    assert bucket.wait(0.0) == 0.2  # back to one token: 2 tokens at 10/s
    assert not bucket.take(0.1)
    assert bucket.take(0.2)
    assert bucket.charge(0.2, 20.0) == 0.5  # debt floors at -burst


def test_a_lower_or_higher_anonymous_bucket_resizes_the_trunks_floor() -> None:
    table = TrunkTable(ANON_RATE, ANON_BURST)
    table.rebuild([source("small", "192.0.2.10", max_cps=1), source("big", "192.0.2.11")])
    small, big = table.quota("small"), table.quota("big")
    assert small is not None and big is not None
    table.set_floor(500.0, 1000.0)  # a [sip] reload
    assert (small.datagrams.rate, small.datagrams.burst) == (500.0, 1000.0)
    assert (big.datagrams.rate, big.datagrams.burst) == (2000.0, 4000.0)
