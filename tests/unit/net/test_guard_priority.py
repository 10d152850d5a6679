"""The listener guard drops new work before work under way, and stays bounded.

``ListenerGuard.admit_datagram(host, now, ongoing, bucket)``: over its rate a
source's datagram of work under way (a response, an in-dialog request:
``ongoing()`` True) may draw on a reserve of one burst, so responses and
in-dialog requests are never dropped while new out-of-dialog requests still
pass; an anonymous flood, whatever it claims, is still bounded by the
source's rate plus two bursts. A trunk's own bucket is used instead of the
per-source one when given.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from offhook.net.guard import RATE_LIMIT, ListenerGuard, ListenerLimits
from offhook.net.limits import TokenBucket

HOST = "198.51.100.7"


def guard(rate: float = 10.0, burst: float = 20.0) -> tuple[ListenerGuard, list[str]]:
    refused: list[str] = []
    g = ListenerGuard(
        ListenerLimits(rate_per_source=rate, rate_burst=burst),
        reject=lambda reason, host: refused.append(reason),
    )
    return g, refused


def test_responses_pass_after_new_requests_are_dropped() -> None:
    g, refused = guard()
    asked: list[bool] = []

    def new() -> bool:
        asked.append(False)
        return False

    # 30 new requests at once: the burst of 20 passes, 10 are dropped.
    passed = [g.admit_datagram(HOST, 0.0, new) for _ in range(30)]
    assert passed == [True] * 20 + [False] * 10
    assert refused == [RATE_LIMIT] * 10
    assert len(asked) == 10  # the peek is asked only over the rate
    # Now responses / in-dialog requests: a whole burst more passes.
    assert all(g.admit_datagram(HOST, 0.0, lambda: True) for _ in range(20))
    # and a new request still does not.
    assert not g.admit_datagram(HOST, 0.0, new)
    # The reserve is bounded: past it, even work under way is dropped.
    assert not g.admit_datagram(HOST, 0.0, lambda: True)


def test_without_a_peek_the_old_behaviour() -> None:
    g, _ = guard(burst=5)
    assert [g.admit_datagram(HOST, 0.0) for _ in range(6)] == [True] * 5 + [False]


def test_trunk_bucket_replaces_the_per_source_one() -> None:
    g, refused = guard(rate=1, burst=1)
    trunk = TokenBucket(1000.0, 2000.0)
    assert all(g.admit_datagram(HOST, 0.0, None, trunk) for _ in range(2000))
    assert not g.admit_datagram(HOST, 0.0, lambda: False, trunk)
    assert g.admit_datagram(HOST, 0.0, lambda: True, trunk)  # the trunk's own reserve
    assert refused == [RATE_LIMIT]
    assert len(g.rates) == 0  # no anonymous bucket was made for it
    assert g.throttle(HOST, 0.0, 10, trunk) > 0  # streams: the trunk's bucket too


def test_allow_list_still_first_for_trunks() -> None:
    g = ListenerGuard(ListenerLimits(), allow=lambda host: False)
    assert not g.admit_datagram(HOST, 0.0, lambda: True, TokenBucket(10.0, 10.0))


events = st.lists(
    st.tuples(st.floats(0, 0.5, allow_nan=False), st.booleans()), min_size=1, max_size=400
)


@given(events)
def test_work_under_way_is_never_dropped_while_new_work_passes(
    steps: list[tuple[float, bool]],
) -> None:
    """At any instant, if a new request would pass, so would work under way; and
    whenever work under way is dropped, a new request at that instant is too."""
    g, _ = guard(rate=50.0, burst=10.0)
    now = 0.0
    for dt, ongoing in steps:
        now += dt
        tokens = g.rates.tokens(HOST, now)
        ok = g.admit_datagram(HOST, now, lambda o=ongoing: o)  # type: ignore[misc]
        if not ongoing and ok:
            assert tokens >= 1  # new work passed only with a token in hand
        if ongoing and not ok:
            assert tokens < 1  # so a new request now would have been dropped too
            assert tokens - 1 < -g.rates.burst  # and the whole reserve was spent


@given(events)
def test_a_flood_is_bounded_whatever_it_claims(steps: list[tuple[float, bool]]) -> None:
    rate, burst = 50.0, 10.0
    g, _ = guard(rate=rate, burst=burst)
    now = 0.0
    admitted = 0
    for dt, ongoing in steps:
        now += dt
        admitted += g.admit_datagram(HOST, now, lambda o=ongoing: o)  # type: ignore[misc]
    assert admitted <= 2 * burst + rate * now + 1e-6
