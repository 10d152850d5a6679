"""The notifier's subscription state machine and its bounded table (sip.subscriptions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.sip.subscriptions import (
    LIVE,
    TRANSITIONS,
    Action,
    Admission,
    Limits,
    SubEvent,
    Subscription,
    SubscriptionTable,
    SubState,
)

S, E, A = SubState, SubEvent, Action


def sub(key: str, device: str = "alice", package: str = "dialog", dn: str = "1002",
        expires_at: float = 100.0) -> Subscription[None]:  # fmt: skip
    return Subscription(key, device, package, (dn, ""), expires_at, None)


def test_every_state_but_ended_answers_every_event() -> None:
    for state in SubState:
        for event in SubEvent:
            if state is S.ENDED:
                assert (state, event) not in TRANSITIONS
            else:
                assert (state, event) in TRANSITIONS, (state, event)


@pytest.mark.parametrize(
    ("events", "actions", "final"),
    [
        # start, answered, a change, answered
        ([E.CHANGE, E.ANSWERED, E.CHANGE, E.ANSWERED], [A.NOTIFY, None, A.NOTIFY, None], S.IDLE),
        # changes while a NOTIFY is outstanding coalesce into one
        ([E.CHANGE, E.CHANGE, E.CHANGE, E.ANSWERED, E.ANSWERED],
         [A.NOTIFY, None, None, A.NOTIFY, None], S.IDLE),
        # unsubscribe while idle: the final NOTIFY, then gone
        ([E.CHANGE, E.ANSWERED, E.END, E.ANSWERED], [A.NOTIFY, None, A.FINAL, A.DROP], S.ENDED),
        # unsubscribe while a NOTIFY is outstanding: the final one waits for its answer
        ([E.CHANGE, E.END, E.CHANGE, E.ANSWERED, E.ANSWERED],
         [A.NOTIFY, None, None, A.FINAL, A.DROP], S.ENDED),
        # the subscriber is gone: a NOTIFY fails
        ([E.CHANGE, E.FAILED], [A.NOTIFY, A.DROP], S.ENDED),
        ([E.CHANGE, E.CHANGE, E.FAILED], [A.NOTIFY, None, A.DROP], S.ENDED),
        # the final NOTIFY fails: gone all the same
        ([E.END, E.FAILED], [A.FINAL, A.DROP], S.ENDED),
        # a fetch (Expires: 0): one terminated NOTIFY
        ([E.END, E.END, E.ANSWERED], [A.FINAL, None, A.DROP], S.ENDED),
    ],
)  # fmt: skip
def test_walks(events: list[SubEvent], actions: list[Action | None], final: SubState) -> None:
    table: SubscriptionTable[None] = SubscriptionTable()
    s = sub("k")
    table.add(s)
    assert [table.fire(s, e) for e in events] == actions
    assert s.state is final
    assert (table.get("k") is None) == (final is S.ENDED)
    assert s.version == sum(1 for a in actions if a in (A.NOTIFY, A.FINAL))


def test_ended_is_inert() -> None:
    table: SubscriptionTable[None] = SubscriptionTable()
    s = sub("k")
    table.add(s)
    table.fire(s, E.FAILED)
    assert table.fire(s, E.CHANGE) is None and len(table) == 0


def test_watchers_devices_and_same() -> None:
    table: SubscriptionTable[None] = SubscriptionTable()
    table.add(sub("a", "alice", "dialog", "1002"))
    table.add(sub("b", "bob", "dialog", "1002"))
    table.add(sub("c", "alice", "presence", "1002"))
    assert {s.key for s in table.watching("dialog", ("1002", ""))} == {"a", "b"}
    assert table.of_device("alice") == 2 and table.devices() == 2
    same = table.same("alice", "dialog", ("1002", ""))
    assert same is not None and same.key == "a"
    assert table.same("alice", "dialog", ("1003", "")) is None
    with pytest.raises(ValueError):
        table.add(sub("a"))
    table.remove(same)
    assert table.watching("dialog", ("1002", ""))[0].key == "b"
    assert table.of_device("alice") == 1


def test_limits_per_device_and_total() -> None:
    table: SubscriptionTable[None] = SubscriptionTable(Limits(per_device=2, total=3))
    table.add(sub("a1", "alice", dn="1"))
    assert table.admit("alice") is Admission.OK
    table.add(sub("a2", "alice", dn="2"))
    assert table.admit("alice") is Admission.DEVICE_FULL
    assert table.admit("alice", replacing=True) is Admission.OK
    table.add(sub("b1", "bob", dn="1"))
    assert table.admit("carol") is Admission.FULL
    assert table.admit("bob", replacing=True) is Admission.OK


def test_expiry_heap_follows_refreshes_and_removals() -> None:
    table: SubscriptionTable[None] = SubscriptionTable()
    a, b = sub("a", expires_at=50.0), sub("b", expires_at=80.0)
    table.add(a)
    table.add(b)
    assert table.next_timer() == 50.0
    table.refresh(a, 120.0)
    assert table.next_timer() == 80.0
    assert table.expired(79.0) == []
    assert table.expired(80.0) == [b]
    table.fire(b, E.END)  # what the notifier does: the final NOTIFY
    assert table.next_timer() == 120.0  # b is closing: its expiry no longer counts
    table.remove(a)
    assert table.next_timer() is None


OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "fire", "refresh", "expire", "remove"]),
        st.integers(0, 7),  # which subscription
        st.sampled_from(list(SubEvent)),
        st.integers(0, 3),  # which device
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_table_stays_bounded_and_consistent(ops: list[tuple[str, int, SubEvent, int]]) -> None:
    limits = Limits(per_device=2, total=5)
    table: SubscriptionTable[None] = SubscriptionTable(limits)
    now = 0.0
    for op, n, event, d in ops:
        now += 1.0
        key = f"s{n}"
        existing = table.get(key)
        if op == "add" and existing is None:
            device = f"dev{d}"
            if table.admit(device) is Admission.OK:
                table.add(sub(key, device, dn=str(n), expires_at=now + 5))
        elif existing is not None and op == "fire":
            table.fire(existing, event)
        elif existing is not None and op == "refresh" and existing.live:
            table.refresh(existing, now + 5)
        elif existing is not None and op == "remove":
            table.remove(existing)
        elif op == "expire":
            for s in table.expired(now):
                assert s.live
                table.fire(s, E.END)
        assert len(table) <= limits.total
        assert all(table.of_device(f"dev{i}") <= limits.per_device for i in range(4))
        assert sum(table.of_device(f"dev{i}") for i in range(4)) == len(table)
        for s in table:
            assert s.state is not S.ENDED
            assert s in table.watching(s.package, s.resource)
        when = table.next_timer()
        live = [s.expires_at for s in table if s.state in LIVE]
        assert when == (min(live) if live else None)
