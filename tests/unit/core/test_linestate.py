"""Busy lamps: LineStates from leg state changes, fed by hand and by a real CallEngine."""

from __future__ import annotations

import random

from core_harness import FakeDriver, Harness, media
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.core.bus import EventBus
from offhook.core.events import PartyInfo, Setup
from offhook.core.features.linestate import (
    CONTRIBUTION,
    IDLE,
    IDLE_VIEW,
    IN_USE,
    RINGING,
    LineStates,
    LineView,
    merged,
)
from offhook.core.leg import Leg, LegState
from offhook.core.records import LegStateChanged, LineStateChanged


class Feed:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.lines = LineStates(self.bus)
        self.published: list[LineStateChanged] = []
        self.bus.subscribe(LineStateChanged, self.published.append)
        self.state: dict[str, str] = {}

    def leg(
        self, leg_id: str, new: str, *, device: str = "bob", direction: str = "outbound",
        line: str = "1002", partition: str = "",
    ) -> None:  # fmt: skip
        old = self.state.get(leg_id, "idle")
        self.state[leg_id] = new
        self.bus.publish(
            LegStateChanged("c1", leg_id, device, direction, old, new, None, line, partition)
        )

    def states(self) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(e.dn, e.state, e.devices) for e in self.published]


def test_a_called_line_rings_then_is_in_use_then_idle() -> None:
    f = Feed()
    assert f.lines.state("1002") == IDLE
    f.leg("b1", "offered")
    assert f.lines.state("1002") == RINGING
    f.leg("b1", "alerting")  # still ringing: nothing new published
    f.leg("b1", "connected")
    assert f.lines.view("1002").direction == "recipient"
    f.leg("b1", "released")
    assert f.states() == [
        ("1002", RINGING, ("bob",)),
        ("1002", IN_USE, ("bob",)),
        ("1002", IDLE, ()),
    ]
    assert len(f.lines) == 0 and f.lines.tracked_legs == 0


def test_a_calling_line_is_in_use_from_setup_as_initiator() -> None:
    f = Feed()
    f.leg("a1", "setup", device="alice", direction="inbound", line="1001")
    view = f.lines.view("1001")
    assert (view.state, view.devices, view.direction) == (IN_USE, ("alice",), "initiator")
    f.leg("a1", "connected", device="alice", direction="inbound", line="1001")
    assert len(f.published) == 1  # in use all along
    f.leg("a1", "released", device="alice", direction="inbound", line="1001")
    assert f.lines.state("1001") == IDLE


def test_shared_line_rings_on_both_then_in_use_on_the_answering_one() -> None:
    f = Feed()
    f.leg("b1", "offered", device="alice", line="1010")
    f.leg("b2", "offered", device="bob", line="1010")
    assert f.lines.view("1010").devices == ("alice", "bob")
    f.leg("b2", "connected", device="bob", line="1010")
    assert f.lines.view("1010").devices == ("bob",)
    f.leg("b1", "released", device="alice", line="1010")  # the other fork is cancelled
    f.leg("b2", "released", device="bob", line="1010")
    assert f.states() == [
        ("1010", RINGING, ("alice",)),
        ("1010", RINGING, ("alice", "bob")),
        ("1010", IN_USE, ("bob",)),
        ("1010", IDLE, ()),
    ]


def test_in_use_beats_ringing_on_a_line_with_a_waiting_call() -> None:
    f = Feed()
    f.leg("a1", "connected", device="bob", direction="inbound")
    f.leg("b9", "offered", device="bob")
    assert f.lines.state("1002") == IN_USE
    f.leg("a1", "released", device="bob", direction="inbound")
    assert f.lines.state("1002") == RINGING
    assert [s for _, s, _ in f.states()] == [IN_USE, RINGING]


def test_partitions_are_separate_lines() -> None:
    f = Feed()
    f.leg("b1", "offered", partition="p1")
    assert f.lines.state("1002", "p1") == RINGING
    assert f.lines.state("1002") == IDLE
    assert f.published[0].partition == "p1"


def test_legs_without_a_line_are_not_tracked() -> None:
    f = Feed()
    f.leg("t1", "offered", device="carrier", line="")
    f.leg("t1", "connected", device="carrier", line="")
    assert f.published == [] and f.lines.tracked_legs == 0


def test_a_line_learnt_after_the_first_event_and_kept_after() -> None:
    f = Feed()
    f.leg("a1", "setup", direction="inbound", line="")
    f.leg("a1", "proceeding", direction="inbound", line="1002")
    assert f.lines.state("1002") == IN_USE
    f.leg("a1", "released", direction="inbound", line="")  # the line is remembered
    assert f.lines.state("1002") == IDLE and f.lines.tracked_legs == 0


def test_a_leg_moving_to_another_line_leaves_the_first_idle() -> None:
    f = Feed()
    f.leg("b1", "connected", line="1002")
    f.leg("b1", "connected", line="1003")
    assert f.lines.state("1002") == IDLE and f.lines.state("1003") == IN_USE


def test_the_table_covers_every_live_state() -> None:
    live = [s.value for s in LegState if s not in (LegState.IDLE, LegState.RELEASED)]
    for direction in ("inbound", "outbound"):
        for state in live:
            if (direction, state) == ("inbound", "offered") or (direction, state) == (
                "outbound",
                "setup",
            ):
                continue  # never happens: each direction has its own first state
            assert (direction, state) in CONTRIBUTION, (direction, state)


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["l1", "l2", "l3", "l4"]),
        st.sampled_from([s.value for s in LegState]),
        st.sampled_from(["inbound", "outbound"]),
        st.sampled_from(["", "1001", "1002"]),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_any_event_sequence_ends_idle_once_every_leg_is_released(
    events: list[tuple[str, str, str, str]],
) -> None:
    f = Feed()
    directions: dict[str, str] = {}
    for leg_id, state, direction, line in events:
        directions.setdefault(leg_id, direction)
        f.leg(leg_id, state, direction=directions[leg_id], line=line)
        assert f.lines.tracked_legs <= 4  # bounded by the live legs
        for (dn, part), view in f.lines.busy_lines().items():
            assert view.state in (RINGING, IN_USE) and view.devices, (dn, part, view)
    for leg_id in directions:
        f.leg(leg_id, "released", direction=directions[leg_id], line="")
    assert len(f.lines) == 0 and f.lines.tracked_legs == 0
    # What was published last for each line is what the tracker says now: idle.
    last: dict[str, str] = {}
    for e in f.published:
        last[e.dn] = e.state
    assert all(s == IDLE for s in last.values()), last


# -- with a real engine: the legs' own state changes drive the lamps ----------------


def _lines_on(h: Harness) -> LineStates:
    lines = h.engine.lines  # the engine's own tracker

    def set_line(driver: FakeDriver, leg: Leg) -> None:
        # What routing does for a fork: the DN rung (Leg.line), before it is offered.
        assert leg.call is not None
        leg.line = (leg.call.setup.called, "")

    h.factory.hook = set_line
    return lines


def _call(h: Harness, device: str, dn: str, called: str) -> tuple[Leg, FakeDriver]:
    driver = FakeDriver(device)
    leg = h.engine.inbound_leg(driver, device)
    driver.leg = leg
    leg.line = (dn, "")  # the caller's line
    h.engine.setup(leg, Setup(PartyInfo(dn), called, media("10.0.0.1")))
    return leg, driver


def test_engine_call_lights_both_lines_and_clears_them() -> None:
    h = Harness()
    h.device("alice", "1001")
    h.device("bob", "1002")
    h.register("alice")
    h.register("bob")
    lines = _lines_on(h)
    a, _ = _call(h, "alice", "1001", "1002")
    assert lines.state("1001") == IN_USE and lines.state("1002") == RINGING
    b, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    h.engine.on_connect(b, media("10.0.0.2"))
    assert lines.view("1002").devices == ("bob",) and lines.state("1002") == IN_USE
    h.engine.on_release(a)
    assert lines.state("1001") == IDLE and lines.state("1002") == IDLE
    published = [(e.dn, e.state) for e in h.of(LineStateChanged)]
    assert published == [
        ("1001", IN_USE),
        ("1002", RINGING),
        ("1002", IN_USE),
        ("1001", IDLE),
        ("1002", IDLE),
    ], published
    assert lines.tracked_legs == 0


def test_engine_unanswered_shared_line_fork_cancelled_goes_idle() -> None:
    h = Harness()
    h.device("alice", "1001")
    h.device("bob", "1010")
    h.device("carol", "1010")
    for name in ("alice", "bob", "carol"):
        h.register(name)
    lines = _lines_on(h)
    a, _ = _call(h, "alice", "1001", "1010")
    assert lines.view("1010").devices == ("bob", "carol")
    h.engine.on_release(a)  # the caller gives up
    assert lines.state("1010") == IDLE and len(lines) == 0
    assert h.of(LineStateChanged)[-1].state == IDLE
    assert lines.tracked_legs == 0
    assert b_states(h) == ["offered", "released"]


def b_states(h: Harness) -> list[str]:
    return [e.new for e in h.of(LegStateChanged) if e.device == "bob"]


# -- the incremental tally against the definition: a view from every live leg ------


def _defined_view(
    legs: dict[str, tuple[tuple[str, str], str, str, str]], line: tuple[str, str]
) -> tuple[str, tuple[str, ...], str]:
    """The module docstring's definition, from scratch: the strongest contribution
    of the line's legs, the devices of the legs making it, and its direction."""
    rank = {RINGING: 1, IN_USE: 2}
    on_line = [(d, dr, c) for ln, d, dr, c in legs.values() if ln == line]
    if not on_line:
        return (IDLE, (), "")
    best = max(rank[c] for _, _, c in on_line)
    making = [(d, dr, c) for d, dr, c in on_line if rank[c] == best]
    state = making[0][2]
    devices = tuple(sorted({d for d, _, _ in making}))
    inbound = any(dr == "inbound" for _, dr, _ in making)
    return (state, devices, "initiator" if state == IN_USE and inbound else "recipient")


EVENTS_WIDE = st.lists(
    st.tuples(
        st.sampled_from(["l1", "l2", "l3", "l4", "l5", "l6"]),
        st.sampled_from([s.value for s in LegState]),
        st.sampled_from(["inbound", "outbound"]),
        st.sampled_from(["", "1001", "1002"]),
        st.sampled_from(["alice", "bob", "carol"]),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS_WIDE)
def test_every_view_and_event_is_what_the_definition_says(
    events: list[tuple[str, str, str, str, str]],
) -> None:
    f = Feed()
    legs: dict[str, tuple[tuple[str, str], str, str, str]] = {}
    shown: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    for leg_id, state, direction, dn, device in events:
        before = len(f.published)
        f.leg(leg_id, state, device=device, direction=direction, line=dn)
        # What the definition keeps of this leg (device and direction of its first
        # event on a line; a new line, or no contribution, starts over).
        contribution = CONTRIBUTION.get((direction, state))
        known = legs.get(leg_id)
        line = (dn, "") if dn else (known[0] if known else None)
        if contribution is None or line is None:
            legs.pop(leg_id, None)
        elif known is not None and known[0] == line:
            legs[leg_id] = (line, known[1], known[2], contribution)
        else:
            legs[leg_id] = (line, device, direction, contribution)
        expected_events: list[tuple[str, str, tuple[str, ...]]] = []
        for ln in sorted({("1001", ""), ("1002", "")}):
            state_now, devices, dirn = _defined_view(legs, ln)
            view = f.lines.view(*ln)
            assert (view.state, view.devices) == (state_now, devices), (ln, legs)
            if state_now != IDLE:
                assert view.direction == dirn
            if shown.get(ln, (IDLE, ())) != (state_now, devices):
                expected_events.append((ln[0], state_now, devices))
                shown[ln] = (state_now, devices)
        got = [(e.dn, e.state, e.devices) for e in f.published[before:]]
        assert sorted(got) == sorted(expected_events)
    assert f.lines.tracked_legs == len(legs)


def test_other_workers_views_are_merged_and_forgotten() -> None:
    """With workers: a line shows the strongest of this worker's view and the others';
    only this worker's own view is shared, and a gone worker's views go idle."""
    f = Feed()
    shared: list[tuple[tuple[str, str], str, tuple[str, ...]]] = []
    f.lines.share = lambda line, view: shared.append((line, view.state, view.devices))
    f.lines.remote("1", "1002", "", LineView(RINGING, ("bob",), "recipient"))
    assert f.lines.view("1002") == LineView(RINGING, ("bob",), "recipient")
    assert shared == [] and f.lines.local_views() == {}  # not ours: never shared back
    f.leg("b1", "connected", device="bob2")
    assert f.lines.view("1002") == LineView(IN_USE, ("bob2",), "recipient")
    f.lines.remote("2", "1002", "", LineView(IN_USE, ("carl",), "initiator"))
    assert f.lines.view("1002") == LineView(IN_USE, ("bob2", "carl"), "initiator")
    f.leg("b1", "released")
    assert f.lines.view("1002") == LineView(IN_USE, ("carl",), "initiator")
    assert shared == [(("1002", ""), IN_USE, ("bob2",)), (("1002", ""), IDLE, ())]
    f.lines.forget_peer("2")
    assert f.lines.view("1002") == LineView(RINGING, ("bob",), "recipient")
    f.lines.remote("1", "1002", "", IDLE_VIEW)
    f.lines.remote("3", "1002", "", IDLE_VIEW)  # never shared anything: nothing happens
    assert f.states() == [
        ("1002", RINGING, ("bob",)),
        ("1002", IN_USE, ("bob2",)),
        ("1002", IN_USE, ("bob2", "carl")),
        ("1002", IN_USE, ("carl",)),
        ("1002", RINGING, ("bob",)),
        ("1002", IDLE, ()),
    ]
    assert len(f.lines) == 0 and f.lines.local_views() == {}


VIEWS = st.builds(
    LineView,
    st.sampled_from([IDLE, RINGING, IN_USE]),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True).map(
        lambda d: tuple(sorted(d))
    ),
    st.sampled_from(["initiator", "recipient"]),
)


@given(st.lists(VIEWS, max_size=5), st.randoms())
def test_a_merged_view_is_the_strongest_whatever_the_order(
    views: list[LineView], rnd: random.Random
) -> None:
    view = merged(views)
    shuffled = list(views)
    rnd.shuffle(shuffled)
    assert merged(shuffled) == view
    strongest = [v for v in views if v.state == view.state]
    if view.state == IDLE:
        assert view == IDLE_VIEW
    else:
        assert set(view.devices) == {d for v in strongest for d in v.devices}
