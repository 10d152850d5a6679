"""cti.session and cti.scope: what one client gets, numbered, bounded, resumable.

A real ``Hub`` (fed with ``Hub.feed``, no upstream) gives the sessions their
events and its replay ring. Checked: the scope (a user's devices and lines;
``call.ended`` only after a leg of that call was seen), ``seq`` 1, 2, ...
per connection, a queue that overflows for one client alone, resume from
the ring (then live, no gap, no duplicate), resync with a snapshot cut to
the scope when the ring does not reach back, subscribe narrowing (and
refusing what is not the user's), and hypothesis: whatever the order of
events, subscriptions and resumes, every frame is JSON and the ``seq`` of
the events sent runs 1, 2, 3 without a hole.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.cti.client_protocol import Ping, Resume, Subscribe
from offhook.cti.hub import Hub
from offhook.cti.scope import EventFilter, Scope
from offhook.cti.session import Overflowed, Session, SessionCounters

BASE = 1_000

ALICE = Scope(devices=frozenset({"alice"}), lines=frozenset({("1001", ""), ("1010", "")}))


async def _never(after: int | None) -> Any:  # pragma: no cover - the hub is only fed
    raise AssertionError("no upstream in these tests")


def hub(replay: int = 100) -> Hub:
    h = Hub(_never, replay=replay)  # type: ignore[arg-type]
    h.feed([{"id": BASE, "type": "start"}])  # the ring covers everything after BASE
    return h


def call(kind: str, call_id: str, device: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "time": 1.0,
        "node": "n",
        "call_id": call_id,
        "leg_id": f"{call_id}-{device}",
        "device": device,
        "line": extra.pop("line", ""),
        "direction": "outbound",
        "state": kind.split(".")[1],
        "calling": "1002",
        "called": "1001",
        **extra,
    }


def numbered(h: Hub, *events: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        e = {**e, "id": (h.last_id or BASE) + 1}
        h.take(e)
        out.append(e)
    return out


def session(h: Hub, scope: Scope = ALICE, queue: int = 100, snap: Any = None) -> Session:
    async def snapshot() -> dict[str, Any]:
        return (
            snap
            if snap is not None
            else {"last_id": h.last_id, "devices": [], "lines": [], "calls": []}
        )

    s = Session(h, scope, snapshot, queue=queue, user="alice", counters=SessionCounters())
    h.attach(s)
    return s


def drain(s: Session, limit: int = 10_000) -> list[dict[str, Any]]:
    """Every frame the session has now (without waiting for more), on this test's loop."""

    async def take() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(limit):
            if not (s.queued or s.need_resync or s.overflow):
                break
            try:
                # Queued events a snapshot covered are skipped: then it would wait.
                frame = await asyncio.wait_for(s.next_frame(), 0.05)
            except TimeoutError:
                break
            out.append(json.loads(frame))
        return out

    return asyncio.get_event_loop().run_until_complete(take())


@pytest.fixture(autouse=True)
def loop() -> Any:
    """One event loop per test (a session's events belong to the loop that waits on them)."""
    new = asyncio.new_event_loop()
    asyncio.set_event_loop(new)
    yield new
    asyncio.set_event_loop(None)
    new.close()


def test_a_client_sees_its_devices_and_lines_numbered_from_one() -> None:
    h = hub()
    s = session(h)
    s.hello()
    numbered(
        h,
        call("call.offered", "c1", "alice"),
        call("call.offered", "c2", "bob"),  # not hers
        {"type": "line.state", "dn": "1010", "partition": "", "state": "ringing"},
        {"type": "line.state", "dn": "1002", "partition": "", "state": "ringing"},
        {"type": "line.state", "dn": "1010", "partition": "other", "state": "idle"},
        {"type": "mwi.changed", "dn": "1001", "partition": "", "waiting": True},
        {"type": "dnd.changed", "device": "bob", "on": True},
        {"type": "call.ended", "call_id": "c2"},  # bob's call
        {"type": "call.ended", "call_id": "c1"},  # hers: she saw a leg of it
    )
    frames = drain(s)
    assert frames[0]["type"] == "hello" and frames[0]["scope"]["devices"] == ["alice"]
    events = frames[1:]
    assert [e["type"] for e in events] == [
        "call.offered",
        "line.state",
        "mwi.changed",
        "call.ended",
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[0]["call_id"] == "c1" and events[-1]["call_id"] == "c1"
    assert all("seq" not in f for f in frames[:1])
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)


def test_everything_for_a_full_scope() -> None:
    h = hub()
    s = session(h, Scope(everything=True))
    numbered(h, call("call.offered", "c1", "bob"), {"type": "call.ended", "call_id": "c1"})
    assert [f["type"] for f in drain(s)] == ["call.offered", "call.ended"]


def test_a_client_that_falls_behind_overflows_alone() -> None:
    h = hub()
    slow = session(h, Scope(everything=True), queue=10)
    fast = session(h, Scope(everything=True), queue=1000)
    numbered(h, *[{"type": "dnd.changed", "device": "x", "on": True}] * 11)
    assert slow.overflow is not None and slow.done.is_set()
    assert slow.counters.overflows == 1 and slow.counters.dropped == 11
    with pytest.raises(Overflowed):
        asyncio.get_event_loop().run_until_complete(slow.next_frame())
    numbered(h, {"type": "dnd.changed", "device": "x", "on": False})  # ignored by slow
    assert slow.queued == 0
    got = drain(fast)
    assert [f["seq"] for f in got] == list(range(1, 13))


def test_resume_replays_from_the_ring_then_live() -> None:
    h = hub()
    first = numbered(
        h, *[{"type": "dnd.changed", "device": "alice", "on": n % 2 == 0} for n in range(5)]
    )
    s = session(h)
    s.hello()
    s.handle(Resume(first[1]["id"]))  # she saw the first two
    numbered(h, {"type": "dnd.changed", "device": "alice", "on": True})
    frames = drain(s)
    assert [f["type"] for f in frames[:2]] == ["hello", "resumed"]
    assert frames[1] == {"type": "resumed", "after": first[1]["id"], "events": 3}
    events = frames[2:]
    assert [e["id"] for e in events] == [
        first[2]["id"],
        first[3]["id"],
        first[4]["id"],
        first[4]["id"] + 1,
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert s.counters.replayed == 3


def test_resume_drops_what_was_queued_and_keeps_numbering() -> None:
    h = hub()
    s = session(h)
    numbered(h, *[{"type": "dnd.changed", "device": "alice", "on": True}] * 2)
    assert [f["seq"] for f in drain(s)] == [1, 2]
    old = numbered(h, *[{"type": "dnd.changed", "device": "alice", "on": False}] * 3)
    s.resume(old[0]["id"])  # the two not yet taken come once, from the replay
    frames = drain(s)
    assert frames[0]["type"] == "resumed"
    assert [(f["id"], f["seq"]) for f in frames[1:]] == [(old[1]["id"], 3), (old[2]["id"], 4)]


def test_a_resume_too_old_gets_a_snapshot_cut_to_the_scope() -> None:
    h = hub(replay=3)
    numbered(h, *[{"type": "dnd.changed", "device": "alice", "on": True}] * 6)
    snap = {
        "last_id": h.last_id,
        "devices": [
            {"device": "alice", "protocol": "sip", "registered": True},
            {"device": "bob", "protocol": "sip", "registered": True},
        ],
        "lines": [
            {"dn": "1001", "partition": "", "state": "in-use", "devices": ["alice"]},
            {"dn": "1002", "partition": "", "state": "idle", "devices": ["bob"]},
        ],
        "calls": [
            {
                "call_id": "c9",
                "calling": "1001",
                "called": "1002",
                "state": "connected",
                "legs": [
                    {"leg_id": "a", "device": "alice", "line": "1001", "direction": "inbound"},
                    {"leg_id": "b", "device": "bob", "line": "1002", "direction": "outbound"},
                ],
            },
            {"call_id": "c8", "calling": "1003", "called": "1002", "legs": [{"device": "bob"}]},
        ],
    }
    s = session(h, snap=snap)
    s.resume(BASE)  # left the ring long ago
    numbered(h, {"type": "call.ended", "call_id": "c9"})
    frames = drain(s)
    assert frames[0]["type"] == "resync"
    got = frames[0]["snapshot"]
    assert [d["device"] for d in got["devices"]] == ["alice"]
    assert [ln["dn"] for ln in got["lines"]] == ["1001"]
    assert [c["call_id"] for c in got["calls"]] == ["c9"]
    assert [leg["device"] for leg in got["calls"][0]["legs"]] == ["alice"]
    # The call she was in when she resynchronised: its end follows, numbered 1.
    assert [(f["type"], f["seq"]) for f in frames[1:]] == [("call.ended", 1)]
    assert s.counters.resyncs == 1


def test_events_the_snapshot_covers_are_not_sent_again() -> None:
    h = hub()
    s = session(h, snap={"last_id": BASE + 2, "devices": [], "lines": [], "calls": []})
    s.gap()  # the hub lost events upstream
    numbered(h, *[{"type": "dnd.changed", "device": "alice", "on": True}] * 3)
    frames = drain(s)
    assert frames[0]["type"] == "resync"
    assert [(f["id"], f["seq"]) for f in frames[1:]] == [(BASE + 3, 1)]


def test_subscribe_narrows_and_refuses_what_is_not_yours() -> None:
    h = hub()
    s = session(h)
    s.handle(Subscribe(("bob",), None))
    s.handle(Subscribe(None, ("1002",)))
    s.handle(Subscribe(None, ("1010",)))
    numbered(
        h,
        call("call.offered", "c1", "alice", line="1001"),
        call("call.offered", "c2", "alice", line="1010"),
        {"type": "line.state", "dn": "1001", "partition": "", "state": "idle"},
        {"type": "line.state", "dn": "1010", "partition": "", "state": "idle"},
    )
    s.handle(Ping())
    frames = drain(s)
    assert frames[0] == {"type": "error", "reason": "not yours", "devices": ["bob"], "lines": []}
    assert frames[1] == {"type": "error", "reason": "not yours", "devices": [], "lines": ["1002"]}
    assert frames[2] == {"type": "subscribed", "all": False, "devices": [], "lines": ["1010"]}
    assert [(f.get("call_id"), f.get("dn")) for f in frames[3:5]] == [("c2", None), (None, "1010")]
    assert frames[5]["type"] == "pong"
    s.handle(Subscribe(None, None))
    assert drain(s) == [{"type": "subscribed", "all": True, "devices": [], "lines": []}]


def test_the_filter_forgets_the_oldest_calls_first() -> None:
    f = EventFilter(Scope(everything=True), max_calls=3)
    for n in range(5):
        assert f.admits({"type": "call.offered", "call_id": f"c{n}", "device": "d"})
    assert not f.admits({"type": "call.ended", "call_id": "c0"})
    assert f.admits({"type": "call.ended", "call_id": "c4"})
    assert not f.admits({"type": "call.ended", "call_id": "c4"})  # once


_EVENTS = st.one_of(
    st.builds(
        lambda kind, c, d: call(kind, f"c{c}", d),
        st.sampled_from(["call.offered", "call.ringing", "call.answered", "call.cleared"]),
        st.integers(0, 5),
        st.sampled_from(["alice", "bob"]),
    ),
    st.builds(lambda c: {"type": "call.ended", "call_id": f"c{c}"}, st.integers(0, 5)),
    st.builds(
        lambda dn: {"type": "line.state", "dn": dn, "partition": "", "state": "idle"},
        st.sampled_from(["1001", "1002", "1010"]),
    ),
)
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("event"), _EVENTS),
        st.tuples(st.just("resume"), st.integers(0, 40)),
        st.tuples(
            st.just("subscribe"),
            st.tuples(
                st.none() | st.lists(st.sampled_from(["alice", "bob"]), max_size=2).map(tuple),
                st.none() | st.lists(st.sampled_from(["1001", "1010"]), max_size=2).map(tuple),
            ),
        ),
        st.tuples(st.just("drain"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_STEPS, st.integers(4, 50))
def test_frames_are_json_and_seq_has_no_hole(steps: list[tuple[str, Any]], queue: int) -> None:
    loop = asyncio.new_event_loop()  # one per example
    asyncio.set_event_loop(loop)
    try:
        _steps(steps, queue)
    finally:
        loop.close()


def _steps(steps: list[tuple[str, Any]], queue: int) -> None:
    h = hub(replay=10)
    s = session(h, queue=queue)
    frames: list[dict[str, Any]] = []
    for kind, arg in steps:
        if kind == "event":
            numbered(h, arg)
        elif kind == "resume":
            s.resume(BASE + arg)
        elif kind == "subscribe":
            s.handle(Subscribe(*arg))
        else:
            frames += drain(s)
        if s.overflow is not None:
            break
    if s.overflow is None:
        frames += drain(s)
    seqs = [f["seq"] for f in frames if "id" in f]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(("seq" in f) == ("id" in f) for f in frames)
    assert s.queued <= queue + h.ring_size
    assert s.counters.delivered == len(seqs)


def test_a_new_connection_resuming_gets_the_end_of_a_call_it_saw_before() -> None:
    h = hub()
    before = numbered(h, call("call.offered", "c1", "alice"), call("call.offered", "c0", "alice"))
    numbered(h, {"type": "call.ended", "call_id": "c0"}, {"type": "call.ended", "call_id": "c1"})
    s = session(h)  # a new connection: it never saw c1 here
    s.resume(before[1]["id"])  # the old one saw both offers, neither end
    frames = drain(s)
    assert frames[0] == {"type": "resumed", "after": before[1]["id"], "events": 2}
    assert [f["call_id"] for f in frames[1:]] == ["c0", "c1"]
    other = session(h)
    other.resume(before[1]["id"] + 1)  # saw c0 end already: c1's only
    assert [f.get("call_id") for f in drain(other)[1:]] == ["c1"]


def test_frames_ready_together_are_taken_together_in_order() -> None:
    h = hub()
    s = session(h)
    s.hello()
    numbered(h, *[{"type": "dnd.changed", "device": "alice", "on": True}] * 5)
    take = asyncio.get_event_loop().run_until_complete
    first = [json.loads(f) for f in take(s.next_frames(4))]
    assert [f.get("seq") for f in first] == [None, 1, 2, 3]  # hello, then events
    rest = [json.loads(f) for f in take(s.next_frames(10))]
    assert [f["seq"] for f in rest] == [4, 5]
    s.gap()  # a resync is due: it comes alone
    numbered(h, {"type": "dnd.changed", "device": "alice", "on": False})
    assert [json.loads(f)["type"] for f in take(s.next_frames(10))] == ["resync"]
