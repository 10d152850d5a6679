"""The session store: random ids, idle and absolute timeouts, a bound, no reuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.web.sessions import MAX_ID_LENGTH, SessionStore


def test_ids_and_csrf_tokens_are_fresh_and_long() -> None:
    store = SessionStore(idle=60, absolute=600, max_sessions=100)
    sessions = [store.create("alice", 0.0) for _ in range(50)]
    ids = {s.id for s in sessions}
    tokens = {s.csrf_token for s in sessions}
    assert len(ids) == len(tokens) == 50
    assert not ids & tokens
    assert all(len(i) >= 43 for i in ids)  # 32 random bytes, URL-safe base64


def test_idle_and_absolute_timeouts() -> None:
    store = SessionStore(idle=60, absolute=150, max_sessions=10)
    s = store.create("bob", 0.0)
    assert store.get(s.id, 59.9) is s
    assert store.get(s.id, 119.8) is s  # each use restarts the idle clock
    assert store.get(s.id, 150.0) is None  # absolute, though used 30 s ago
    assert len(store) == 0
    t = store.create("bob", 200.0)
    assert store.get(t.id, 260.0) is None  # idle


def test_bounded_least_recently_used_goes_first() -> None:
    store = SessionStore(idle=1000, absolute=1000, max_sessions=3)
    a, b, c = (store.create(n, 0.0) for n in "abc")
    assert store.get(a.id, 1.0) is a  # a is now the most recent
    d = store.create("d", 2.0)
    assert len(store) == 3 and store.evicted == 1
    assert store.get(b.id, 3.0) is None
    assert {store.get(x.id, 3.0) is not None for x in (a, c, d)} == {True}


def test_expired_sessions_are_pruned_before_evicting() -> None:
    store = SessionStore(idle=10, absolute=1000, max_sessions=2)
    store.create("old", 0.0)
    live = store.create("live", 5.0)
    store.create("new", 12.0)  # "old" is idle-expired: pruned, nothing live evicted
    assert store.evicted == 0
    assert store.get(live.id, 13.0) is live


def test_delete_and_delete_user() -> None:
    store = SessionStore(idle=100, absolute=100, max_sessions=10)
    a1, a2, b = store.create("a", 0.0), store.create("a", 0.0), store.create("b", 0.0)
    assert store.delete_user("a") == 2
    assert store.get(a1.id, 1.0) is None and store.get(a2.id, 1.0) is None
    assert store.delete(b.id) and not store.delete(b.id)


@given(st.text(max_size=300))
def test_unknown_ids_find_nothing(session_id: str) -> None:
    store = SessionStore(idle=100, absolute=100, max_sessions=10)
    store.create("a", 0.0)
    assert store.get(session_id, 1.0) is None
    assert store.get("x" * (MAX_ID_LENGTH + 1), 1.0) is None


@pytest.mark.parametrize("args", [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_bad_limits_refused(args: tuple[float, float, int]) -> None:
    with pytest.raises(ValueError):
        SessionStore(*args)


def test_one_user_cannot_push_the_others_out() -> None:
    store = SessionStore(idle=10_000, absolute=10_000, max_sessions=20, max_per_user=4)
    admins = [store.create(f"admin{n}", 0.0) for n in range(10)]
    mallory = [store.create("mallory", 1.0 + n) for n in range(1000)]
    assert all(store.get(a.id, 1500.0) is a for a in admins)  # all still there
    live = [m for m in mallory if store.get(m.id, 1500.0) is not None]
    assert live == mallory[-4:]  # mallory keeps her newest four
    assert len(store) == 14
