"""Overlap dialing with T302, on a fake clock."""

from __future__ import annotations

import pytest

from offhook.common.clock import FakeClock
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Trunk,
)
from offhook.core.dialplan.overlap import DigitCollector, Verdict
from offhook.core.dialplan.router import DialPlan


@pytest.fixture
def plan() -> DialPlan:
    return DialPlan(
        DialPlanSpec(
            partitions=("internal", "pstn"),
            calling_search_spaces=(CallingSearchSpace("staff", ("internal", "pstn")),),
            directory_numbers=(
                DirectoryNumber("1001", "internal", ("alice",)),
                DirectoryNumber("100", "internal", ("op",)),
            ),
            route_patterns=(
                RoutePattern("9.!", "pstn", route_list="out"),
                RoutePattern("9.911", "pstn", route_list="out", urgent=True),
            ),
            trunks=(Trunk("t", "sip", "192.0.2.1"),),
            route_groups=(RouteGroup("g", (RouteGroupMember("t"),)),),
            route_lists=(RouteList("out", ("g",)),),
        )
    )


def test_unique_match_routes_at_the_last_digit(plan: DialPlan) -> None:
    clock = FakeClock()
    c = DigitCollector(plan, "staff", t302=15)
    c.start(clock.monotonic())
    for d in "100":
        assert c.add(d, clock.monotonic()) is Verdict.COLLECTING  # 100 matches, 1001 could
    assert c.add("1", clock.monotonic()) is Verdict.ROUTE
    assert c.digits == "1001" and c.next_timer() is None


def test_complete_but_longer_possible_routes_when_t302_expires(plan: DialPlan) -> None:
    clock = FakeClock()
    c = DigitCollector(plan, "staff", t302=15)
    c.start(clock.monotonic())
    c.add("100", clock.monotonic())
    assert c.next_timer() == clock.monotonic() + 15
    clock.advance(14.9)
    assert c.handle_timer(clock.monotonic()) is Verdict.COLLECTING
    clock.advance(0.1)
    assert c.handle_timer(clock.monotonic()) is Verdict.ROUTE
    assert c.digits == "100"


def test_each_digit_restarts_t302(plan: DialPlan) -> None:
    clock = FakeClock()
    c = DigitCollector(plan, "staff", t302=5)
    c.start(clock.monotonic())
    c.add("9", clock.monotonic())
    clock.advance(4)
    c.add("5", clock.monotonic())
    clock.advance(4)
    assert c.handle_timer(clock.monotonic()) is Verdict.COLLECTING
    clock.advance(1)
    # 9.! matches 95 and could match longer: T302 routes it
    assert c.handle_timer(clock.monotonic()) is Verdict.ROUTE


def test_urgent_pattern_routes_at_once(plan: DialPlan) -> None:
    c = DigitCollector(plan, "staff")
    assert c.add("9911", 0.0) is Verdict.ROUTE


def test_no_match_is_reorder(plan: DialPlan) -> None:
    c = DigitCollector(plan, "staff")
    assert c.add("2", 0.0) is Verdict.REORDER
    assert c.cause == 1
    assert c.add("3", 0.0) is Verdict.REORDER  # finished collectors ignore digits


def test_incomplete_number_at_t302_is_reorder(plan: DialPlan) -> None:
    c = DigitCollector(plan, "staff", t302=2)
    c.start(0.0)
    c.add("10", 0.0)  # only longer numbers match
    assert c.handle_timer(2.0) is Verdict.REORDER
    assert c.cause == 28


def test_no_digit_at_all_times_out(plan: DialPlan) -> None:
    c = DigitCollector(plan, "staff", t302=15)
    c.start(0.0)
    assert c.handle_timer(15.0) is Verdict.REORDER


def test_css_limits_what_overlap_can_reach(plan: DialPlan) -> None:
    c = DigitCollector(plan, "")  # null partition only: nothing is there
    assert c.add("1", 0.0) is Verdict.REORDER


CODES = frozenset({"*97", "*8", "*78", "#21"})
NUMBER_CODES = frozenset({"*21", "**"})


@pytest.mark.parametrize(
    ("dialled", "verdict"),
    [
        ("*97", Verdict.ROUTE),  # a code routes at once
        ("#21", Verdict.ROUTE),
        ("*211001", Verdict.ROUTE),  # *21 + a complete DN
        ("**1001", Verdict.ROUTE),
        ("*219911", Verdict.ROUTE),  # *21 + an urgent pattern
        ("*5", Verdict.REORDER),  # no code, no pattern
        ("*2", Verdict.COLLECTING),  # still a code's prefix
        ("*21", Verdict.COLLECTING),  # the code needs its number
        ("*21100", Verdict.COLLECTING),  # 100 is complete but 1001 could follow: T302
    ],
)
def test_feature_codes_are_complete_numbers(plan: DialPlan, dialled: str, verdict: Verdict) -> None:
    clock = FakeClock()
    c = DigitCollector(plan, "staff", codes=CODES, number_codes=NUMBER_CODES)
    c.start(clock.monotonic())
    assert c.add(dialled, clock.monotonic()) is verdict
    if verdict is Verdict.ROUTE:
        assert c.digits == dialled


def test_a_code_that_a_longer_code_extends_waits_for_t302(plan: DialPlan) -> None:
    clock = FakeClock()
    c = DigitCollector(plan, "staff", t302=5, codes={"*8", "*88"})
    c.start(clock.monotonic())
    assert c.add("*8", clock.monotonic()) is Verdict.COLLECTING
    clock.advance(5)
    assert c.handle_timer(clock.monotonic()) is Verdict.ROUTE
    assert c.digits == "*8"
