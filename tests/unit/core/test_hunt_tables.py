"""The hunt's decision tables and distribution, as pure functions walked with a fake clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.clock import FakeClock
from offhook.core.causes import Cause
from offhook.core.directory import HuntDistribution, HuntStep, LineGroup, PlanSnapshot
from offhook.core.features.hunt import (
    NEXT,
    Failure,
    HuntMemory,
    Move,
    failure_of,
    final_cause,
    member_order,
    next_move,
)

MEMBERS = ("1002", "1003", "1004", "1005")


def group(distribution: HuntDistribution, **kw: HuntStep) -> LineGroup:
    return LineGroup("sales", MEMBERS, distribution, 10.0, **kw)


# ------------------------------------------------------------ tables
def test_next_table_covers_every_case() -> None:
    assert set(NEXT) == set(itertools.product(HuntStep, (True, False), (True, False)))


@pytest.mark.parametrize(
    ("step", "member_left", "group_left", "move"),
    [
        (HuntStep.NEXT_MEMBER, True, False, Move.MEMBER),
        (HuntStep.NEXT_MEMBER, False, True, Move.GROUP),
        (HuntStep.NEXT_MEMBER, False, False, Move.FINAL),
        (HuntStep.NEXT_GROUP, True, True, Move.GROUP),
        (HuntStep.NEXT_GROUP, True, False, Move.FINAL),
        (HuntStep.STOP, True, True, Move.FINAL),
    ],
)
def test_next_move(step: HuntStep, member_left: bool, group_left: bool, move: Move) -> None:
    g = LineGroup("g", MEMBERS, on_no_answer=step, on_busy=step, on_unavailable=step)
    for cause in (Cause.NO_ANSWER, Cause.USER_BUSY, Cause.SUBSCRIBER_ABSENT):
        assert next_move(g, cause, member_left, group_left) is move


def test_each_failure_reads_its_own_step() -> None:
    g = LineGroup(
        "g",
        MEMBERS,
        on_no_answer=HuntStep.NEXT_MEMBER,
        on_busy=HuntStep.NEXT_GROUP,
        on_unavailable=HuntStep.STOP,
    )
    assert next_move(g, Cause.NO_ANSWER, True, True) is Move.MEMBER
    assert next_move(g, Cause.NO_USER_RESPONDING, True, True) is Move.MEMBER
    assert next_move(g, Cause.USER_BUSY, True, True) is Move.GROUP
    assert next_move(g, Cause.SUBSCRIBER_ABSENT, True, True) is Move.FINAL
    assert next_move(g, Cause.TEMPORARY_FAILURE, True, True) is Move.FINAL


def test_failure_of_causes() -> None:
    assert failure_of(Cause.USER_BUSY) is Failure.BUSY
    assert failure_of(Cause.NO_ANSWER) is Failure.NO_ANSWER
    assert failure_of(Cause.SUBSCRIBER_ABSENT) is Failure.UNAVAILABLE
    assert failure_of(Cause.DESTINATION_OUT_OF_ORDER) is Failure.UNAVAILABLE


@pytest.mark.parametrize(
    ("causes", "final"),
    [
        ([], Cause.USER_BUSY),
        ([17, 17], Cause.USER_BUSY),
        ([17, 19], Cause.NO_ANSWER),
        ([20, 18], Cause.NO_ANSWER),
        ([20, 20], Cause.SUBSCRIBER_ABSENT),
        ([20, 17], Cause.USER_BUSY),
        ([41, 20], Cause.SUBSCRIBER_ABSENT),
    ],
)
def test_final_cause(causes: list[int], final: int) -> None:
    assert final_cause(causes) == final


# ------------------------------------------------------------ distributions
def test_top_down_and_broadcast_keep_the_list_order() -> None:
    for distribution in (HuntDistribution.TOP_DOWN, HuntDistribution.BROADCAST):
        assert member_order(group(distribution), last="1003") == MEMBERS


def test_circular_starts_after_the_last_member() -> None:
    g = group(HuntDistribution.CIRCULAR)
    assert member_order(g) == MEMBERS
    assert member_order(g, last="1003") == ("1004", "1005", "1002", "1003")
    assert member_order(g, last="1005") == MEMBERS
    assert member_order(g, last="1999") == MEMBERS  # a member no longer in the group


def test_longest_idle_orders_by_last_activity_busy_last() -> None:
    g = group(HuntDistribution.LONGEST_IDLE)
    times = {"1002": 30.0, "1003": 10.0, "1005": 20.0}  # 1004 never active
    assert member_order(g, last_active=times) == ("1004", "1003", "1005", "1002")
    assert member_order(g, last_active=times, busy={"1004"}) == ("1003", "1005", "1002", "1004")
    assert member_order(g) == MEMBERS  # ties keep the list order


@given(
    distribution=st.sampled_from(list(HuntDistribution)),
    members=st.lists(st.sampled_from(["1", "2", "3", "4", "5", "6"]), unique=True, max_size=6),
    last=st.one_of(st.none(), st.sampled_from(["1", "2", "3", "9"])),
    times=st.dictionaries(st.sampled_from(["1", "2", "3", "4"]), st.floats(0, 1e6)),
    busy=st.sets(st.sampled_from(["1", "2", "5"])),
)
def test_every_member_is_offered_once(
    distribution: HuntDistribution,
    members: list[str],
    last: str | None,
    times: dict[str, float],
    busy: set[str],
) -> None:
    g = LineGroup("g", tuple(members), distribution)
    order = member_order(g, last=last, last_active=times, busy=busy)
    assert sorted(order) == sorted(members)


# ------------------------------------------------------------ the node's memory
def plan(*groups: LineGroup) -> PlanSnapshot:
    return PlanSnapshot.build([], line_groups={g.name: g for g in groups})


def test_memory_walks_circular_and_longest_idle_with_a_clock() -> None:
    clock = FakeClock()
    circular = LineGroup("c", MEMBERS, HuntDistribution.CIRCULAR)
    idle = LineGroup("i", MEMBERS, HuntDistribution.LONGEST_IDLE)
    mem = HuntMemory()
    mem.sync(plan(circular, idle))
    for dn in ("1005", "1002", "1004", "1003"):
        clock.advance(1)
        mem.active(dn, clock.monotonic())
    assert mem.order(idle) == ("1005", "1002", "1004", "1003")
    clock.advance(1)
    mem.offered("c", "1005", clock.monotonic())
    assert mem.order(circular) == MEMBERS
    assert mem.order(idle) == ("1002", "1004", "1003", "1005")
    clock.advance(1)
    mem.offered("c", "1002", clock.monotonic())
    assert mem.order(circular) == ("1003", "1004", "1005", "1002")
    assert mem.order(idle, busy={"1004"}) == ("1003", "1005", "1002", "1004")


def test_memory_keeps_only_the_plans_groups_and_members() -> None:
    mem = HuntMemory()
    mem.sync(plan(LineGroup("a", ("1002", "1003"), HuntDistribution.CIRCULAR)))
    mem.active("1999", 1.0)  # not a member: not kept
    mem.offered("a", "1002", 2.0)
    mem.offered("b", "1003", 3.0)  # no such group
    assert mem.last_active == {"1002": 2.0, "1003": 3.0}
    assert mem.last_offered == {"a": "1002"}
    mem.sync(plan(LineGroup("b", ("1003",))))
    assert mem.last_active == {"1003": 3.0}
    assert mem.last_offered == {}
