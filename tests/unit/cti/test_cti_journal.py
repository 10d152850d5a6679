"""cti.journal: node-wide ids, the bounded ring, streams (replay, resync, overflow), commands."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.cti.journal import MAX_TAGS, OVERFLOW, Journal, Subscriber
from offhook.ris.control_codec import StreamStart, parse_event

RUN = 1_700_000_000_000_000  # a run's first id: its start in microseconds


def ev(kind: str = "line.state", **fields: Any) -> dict[str, Any]:
    return {"id": 0, "type": kind, "time": 1.0, "node": "n", **fields}


def call_ev(call_id: str, kind: str = "call.ringing", **fields: Any) -> dict[str, Any]:
    return ev(kind, call_id=call_id, **fields)


def lines(sub: Subscriber) -> tuple[list[dict[str, Any]], bool]:
    data, ended = sub.take()
    return [parse_event(line) for line in data.splitlines()], ended


def ids(sub: Subscriber) -> list[int]:
    return [e["id"] for e in lines(sub)[0]]


def test_ids_start_at_the_runs_first_id_and_grow_by_one() -> None:
    j = Journal(RUN)
    assert (j.first_id, j.last_id, len(j)) == (RUN, RUN - 1, 0)
    events = [ev() for _ in range(3)]
    for e in events:
        j.record(e)
    assert [e["id"] for e in events] == [RUN, RUN + 1, RUN + 2]
    assert (j.first_id, j.last_id, len(j)) == (RUN, RUN + 2, 3)
    j.record(None)  # what CTI does not show
    assert j.last_id == RUN + 2


def test_the_ring_keeps_the_last_capacity_events() -> None:
    j = Journal(RUN, capacity=3)
    for _ in range(5):
        j.record(ev())
    assert (len(j), j.first_id, j.last_id) == (3, RUN + 2, RUN + 4)
    assert j.status()["held"] == 3
    with pytest.raises(ValueError, match="positive"):
        Journal(RUN, capacity=0)


def test_a_stream_without_after_gets_new_events_only() -> None:
    j = Journal(RUN)
    j.record(ev())
    sub, start = j.subscribe(None)
    assert start == StreamStart(RUN, RUN, False)
    assert sub.take() == (b"", False)
    j.record(ev())
    j.record(ev())
    assert ids(sub) == [RUN + 1, RUN + 2]


def test_resume_after_a_held_id_replays_then_goes_on_live_without_gap() -> None:
    j = Journal(RUN, capacity=10)
    for _ in range(5):
        j.record(ev())
    sub, start = j.subscribe(RUN + 1)
    assert start == StreamStart(RUN, RUN + 4, False)
    j.record(ev())
    assert ids(sub) == [RUN + 2, RUN + 3, RUN + 4, RUN + 5]
    # the id before the oldest held, and the last one, still need no resync
    sub2, start2 = j.subscribe(RUN - 1)
    assert not start2.resync and ids(sub2) == list(range(RUN, RUN + 6))
    sub3, start3 = j.subscribe(RUN + 5)
    assert not start3.resync and sub3.take() == (b"", False)


@pytest.mark.parametrize(
    ("after", "why"),
    [
        (RUN + 1, "too old: the ring no longer holds the next one"),
        (RUN - 1000, "from the run before"),
        (RUN + 99, "from no id given yet (another run)"),
        (-1, "nonsense"),
    ],
)
def test_resume_after_an_id_not_held_is_told_to_resync(after: int, why: str) -> None:
    j = Journal(RUN, capacity=3)
    for _ in range(6):
        j.record(ev())
    sub, start = j.subscribe(after)
    assert start == StreamStart(RUN + 3, RUN + 5, True), why
    assert sub.take() == (b"", False)  # no replay: new events only
    j.record(ev())
    assert ids(sub) == [RUN + 6]


def test_each_event_is_serialised_once_for_every_stream() -> None:
    j = Journal(RUN)
    a, _ = j.subscribe()
    b, _ = j.subscribe()
    j.record(ev(dn="1001"))
    (data_a, _), (data_b, _) = a.take(), b.take()
    assert data_a is data_b  # the same bytes object
    assert json.loads(data_a) == {
        "id": RUN,
        "type": "line.state",
        "time": 1.0,
        "node": "n",
        "dn": "1001",
    }
    # a replay uses (and keeps) the encoding too
    c, _ = j.subscribe(RUN - 1)
    assert c.take()[0] == data_a


def test_a_subscriber_that_falls_behind_gets_overflow_and_ends_alone() -> None:
    j = Journal(RUN, queue_bytes=400)
    slow, _ = j.subscribe()
    fast, _ = j.subscribe()
    woken: list[int] = []
    slow.set_waker(lambda: woken.append(1))
    got: list[int] = []
    for _ in range(20):
        j.record(ev(pad="x" * 50))
        got += ids(fast)  # fast takes each as it comes
    assert got == list(range(RUN, RUN + 20))
    assert slow.overflowed and slow.ended
    data, ended = slow.take()
    assert (data, ended) == (OVERFLOW, True)  # the last line; what was queued is dropped
    assert parse_event(OVERFLOW)["type"] == "overflow"
    assert woken  # its connection was woken to write it
    assert (j.subscribers, j.overflows) == (1, 1)
    j.record(ev())
    assert slow.take() == (b"", True) and ids(fast) == [RUN + 20]


def test_a_replay_is_queued_whatever_its_size_then_the_bound_applies() -> None:
    j = Journal(RUN, queue_bytes=200)
    for _ in range(10):
        j.record(ev(pad="y" * 40))
    sub, _ = j.subscribe(RUN - 1)
    assert sub.queued > 200 and not sub.ended
    assert len(ids(sub)) == 10 and sub.queued == 0
    j.record(ev())
    assert ids(sub) == [RUN + 10]


def test_close_ends_a_stream_and_the_waker_fires_only_when_set() -> None:
    j = Journal(RUN)
    sub, _ = j.subscribe()
    j.record(ev())
    woken: list[int] = []
    sub.set_waker(lambda: woken.append(1))  # something queued: woken at once
    assert woken == [1]
    sub.set_waker(None)
    j.record(ev())
    assert woken == [1]
    sub.close()
    assert sub.take() == (b"", True) and j.subscribers == 0 and j.overflows == 0
    sub.close()  # twice is harmless
    j.record(ev())
    assert sub.take() == (b"", True)


def test_a_commands_calls_carry_its_id_until_they_end() -> None:
    j = Journal(RUN)
    before = call_ev("k1")
    j.record(before)
    with j.command("k1") as c1:
        assert c1 == "c1"
        during = [call_ev("k1"), call_ev("k2", "call.initiated"), ev("line.state", dn="1")]
        for e in during:
            j.record(e)
    after = [call_ev("k1"), call_ev("k2"), call_ev("k3")]
    for e in after:
        j.record(e)
    assert "command" not in before
    assert [e.get("command") for e in during] == ["c1", "c1", None]
    assert [e.get("command") for e in after] == ["c1", "c1", None]
    ended = call_ev("k1", "call.ended")
    j.record(ended)
    assert ended["command"] == "c1" and j.command_of("k1") is None
    later = call_ev("k1")
    j.record(later)
    assert "command" not in later
    assert j.command_of("k2") == "c1"


def test_a_later_command_on_a_call_takes_over_and_tag_names_a_call() -> None:
    j = Journal(RUN)
    with j.command("k1"):
        pass
    with j.command() as c2:
        j.tag("k1", c2)
    e = call_ev("k1")
    j.record(e)
    assert e["command"] == "c2"
    with j.command("k1") as c3:
        with j.command() as c4:  # nested: the inner one runs now
            inner = call_ev("k9")
            j.record(inner)
        outer = call_ev("k8")
        j.record(outer)
    assert (inner["command"], outer["command"]) == (c4, c3)


def test_a_transfer_passes_its_calls_command_to_the_new_call() -> None:
    j = Journal(RUN)
    j.tag("k1", "c7")
    moved = call_ev("k1", "call.transferred", new_call_id="k5")
    j.record(moved)
    nxt = call_ev("k5", "call.answered")
    j.record(nxt)
    assert moved["command"] == nxt["command"] == "c7"


def test_a_tagged_leg_moving_into_another_call_tags_that_call() -> None:
    j = Journal(RUN)
    with j.command() as c1:
        j.record(call_ev("k1", "call.offered", leg_id="L1"))
    j.record(call_ev("k1", "call.ended"))  # the picking call ends: its leg lives on
    assert j.command_of("k1") is None
    moved = call_ev("k2", "call.answered", leg_id="L1")  # L1 now answers in k2
    j.record(moved)
    other = call_ev("k2", "call.cleared", leg_id="L2")
    j.record(other)
    assert moved["command"] == other["command"] == c1
    gone = call_ev("k2", "call.cleared", leg_id="L1")
    j.record(gone)
    j.record(call_ev("k2", "call.ended"))
    assert j.status()["tagged_legs"] == 0 and j.status()["tagged_calls"] == 0
    untagged = call_ev("k3", "call.offered", leg_id="L1")  # a leg id seen again, later
    j.record(untagged)
    assert "command" not in untagged


def test_tags_are_bounded() -> None:
    j = Journal(RUN)
    for n in range(MAX_TAGS + 10):
        j.tag(f"k{n}", "c1")
    assert j.status()["tagged_calls"] == MAX_TAGS
    assert j.command_of("k0") is None and j.command_of(f"k{MAX_TAGS + 9}") == "c1"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("record"), st.integers(0, 60)),
            st.tuples(st.just("subscribe"), st.integers(-3, 25)),
            st.tuples(st.just("take"), st.integers(0, 5)),
        ),
        max_size=60,
    ),
    st.integers(1, 12),
    st.integers(60, 600),
)
def test_every_stream_gets_a_gapless_run_of_ids_or_overflows(
    steps: list[tuple[str, int]], capacity: int, queue_bytes: int
) -> None:
    j = Journal(RUN, capacity=capacity, queue_bytes=queue_bytes)
    subs: list[tuple[Subscriber, list[int], int]] = []  # (sub, ids got, first expected)
    for op, n in steps:
        if op == "record":
            j.record(ev(pad="z" * n))
        elif op == "subscribe":
            after = RUN + n - 3
            sub, start = j.subscribe(after)
            assert start.last_id == j.last_id and start.first_id == j.first_id
            held = start.first_id - 1 <= after <= start.last_id
            assert start.resync is not held
            subs.append((sub, [], after + 1 if held else start.last_id + 1))
        elif subs:
            sub, got, _ = subs[n % len(subs)]
            events, _ = lines(sub)
            got += [e["id"] for e in events if "id" in e]
    for sub, got, first in subs:
        events, ended = lines(sub)
        got += [e["id"] for e in events if "id" in e]
        assert got == list(range(first, first + len(got)))
        if not sub.overflowed:
            assert not ended and got == list(range(first, j.last_id + 1))
        else:
            assert ended  # its last line was the overflow (taken now or before)
