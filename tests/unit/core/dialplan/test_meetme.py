"""Meet-me conference numbers in digit analysis: en bloc, closest match, overlap, validation."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.clock import FakeClock
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    MeetMe,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.dialplan.overlap import DigitCollector, Verdict
from offhook.core.dialplan.router import (
    CAUSE_INCOMPLETE,
    CAUSE_UNKNOWN,
    DialPlan,
    DialPlanError,
    Outcome,
    OverlapState,
)

BRIDGE = MeetMe("5000", "internal", pin="1234", max_parties=8)
EXEC_BRIDGE = MeetMe("5000", "exec")
OPEN_BRIDGE = MeetMe("5001", "")


def spec(**changes: object) -> DialPlanSpec:
    base = DialPlanSpec(
        partitions=("internal", "exec", "pstn"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal", "pstn")),
            CallingSearchSpace("boss", ("exec", "internal")),
            CallingSearchSpace("pstn-only", ("pstn",)),
        ),
        directory_numbers=(DirectoryNumber("1001", "internal", ("alice",)),),
        meetme=(BRIDGE, EXEC_BRIDGE, OPEN_BRIDGE),
        trunks=(Trunk("carrier", "sip", "192.0.2.1"),),
        route_groups=(RouteGroup("g", (RouteGroupMember("carrier"),)),),
        route_lists=(RouteList("out", ("g",)),),
        route_patterns=(
            RoutePattern("5XXX", "pstn", route_list="out"),
            RoutePattern("9.!", "pstn", route_list="out"),
        ),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def plan() -> DialPlan:
    return DialPlan(spec())


def test_meetme_number_routes_to_its_conference(plan: DialPlan) -> None:
    d = plan.route("staff", "5000", calling="1001")
    assert d.outcome is Outcome.MEETME
    assert d.meetme == BRIDGE and d.meetme.pin == "1234" and d.meetme.max_parties == 8
    assert d.dn is None and d.trunks == () and d.cause == 0
    assert d.routable
    assert (d.called, d.calling) == ("5000", "1001")
    (step,) = d.steps
    assert (step.kind, step.pattern, step.partition) == ("meetme", "5000", "internal")


def test_meetme_defaults() -> None:
    m = MeetMe("6000")
    assert (m.partition, m.pin, m.max_parties) == ("", "", 32)


def test_meetme_beats_a_pattern_matching_more_numbers(plan: DialPlan) -> None:
    # 5XXX in pstn is visible to staff too, but 5000 exactly is the closer match.
    assert plan.route("staff", "5000").outcome is Outcome.MEETME
    assert plan.route("staff", "5002").outcome is Outcome.ROUTE


def test_css_order_picks_the_partition(plan: DialPlan) -> None:
    assert plan.route("boss", "5000").meetme == EXEC_BRIDGE
    assert plan.route("staff", "5000").meetme == BRIDGE


def test_meetme_outside_the_css_does_not_exist(plan: DialPlan) -> None:
    # pstn-only sees pstn and the null partition: 5000 there is the route pattern.
    d = plan.route("pstn-only", "5000")
    assert d.outcome is Outcome.ROUTE and d.meetme is None
    no_patterns = DialPlan(spec(route_patterns=()))
    d = no_patterns.route("pstn-only", "5000")
    assert (d.outcome, d.cause, d.meetme) == (Outcome.UNKNOWN, CAUSE_UNKNOWN, None)


def test_null_partition_meetme_is_seen_by_everyone(plan: DialPlan) -> None:
    for css in ("staff", "boss", "pstn-only", ""):
        d = plan.route(css, "5001")
        assert d.outcome is Outcome.MEETME and d.meetme == OPEN_BRIDGE, css


def test_meetme_prefix_is_incomplete() -> None:
    plan = DialPlan(spec(route_patterns=(), meetme=(BRIDGE,)))
    d = plan.route("staff", "50")
    assert (d.outcome, d.cause) == (Outcome.INCOMPLETE, CAUSE_INCOMPLETE)
    assert plan.route("staff", "50001").outcome is Outcome.UNKNOWN


def test_translation_to_a_meetme_number() -> None:
    plan = DialPlan(
        spec(
            translation_patterns=(
                TranslationPattern(
                    "*5", "internal", "staff", called_transform=Transform(replace="5000")
                ),
            )
        )
    )
    d = plan.route("staff", "*5")
    assert d.outcome is Outcome.MEETME and d.meetme == BRIDGE
    assert [s.kind for s in d.steps] == ["translation", "meetme"]


def test_e164_meetme_number_is_literal() -> None:
    bridge = MeetMe("+15555550100", "internal")
    plan = DialPlan(spec(route_patterns=(), meetme=(bridge,)))
    assert plan.route("staff", "+15555550100").meetme == bridge
    assert plan.route("staff", "15555550100").outcome is Outcome.UNKNOWN


def test_dialplan_without_meetme_still_routes() -> None:
    plan = DialPlan(spec(meetme=()))
    assert plan.route("staff", "5000").outcome is Outcome.ROUTE
    assert plan.route("staff", "1001").outcome is Outcome.DN


# -- overlap ---------------------------------------------------------------


def test_overlap_states(plan: DialPlan) -> None:
    lone = DialPlan(spec(route_patterns=()))
    assert lone.overlap("staff", "5") is OverlapState.NEED_MORE
    assert lone.overlap("staff", "500") is OverlapState.NEED_MORE
    assert lone.overlap("staff", "5000") is OverlapState.ROUTE_NOW
    assert lone.overlap("staff", "5009") is OverlapState.NO_MATCH
    # A longer pattern could still match: complete, T302 decides.
    longer = DialPlan(spec(route_patterns=(RoutePattern("5000X", "internal", block=True),)))
    assert longer.overlap("staff", "5000") is OverlapState.ROUTE_ON_TIMEOUT


def test_collector_routes_a_complete_meetme_number() -> None:
    plan = DialPlan(spec(route_patterns=()))
    clock = FakeClock()
    c = DigitCollector(plan, "staff", t302=15)
    c.start(clock.monotonic())
    for digit in "500":
        assert c.add(digit, clock.monotonic()) is Verdict.COLLECTING
    assert c.add("0", clock.monotonic()) is Verdict.ROUTE
    assert c.digits == "5000" and c.next_timer() is None
    assert plan.route("staff", c.digits).outcome is Outcome.MEETME


def test_collector_routes_a_meetme_number_on_t302() -> None:
    plan = DialPlan(spec(route_patterns=(RoutePattern("5000X", "internal", block=True),)))
    clock = FakeClock()
    c = DigitCollector(plan, "staff", t302=15)
    c.start(clock.monotonic())
    assert c.add("5000", clock.monotonic()) is Verdict.COLLECTING
    deadline = c.next_timer()
    assert deadline is not None
    clock.advance(15)
    assert c.handle_timer(clock.monotonic()) is Verdict.ROUTE
    assert plan.route("staff", c.digits).meetme == BRIDGE


# -- validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("meetme", "message"),
    [
        (MeetMe("1001", "internal"), "already used by directory_numbers[0] (1001)"),
        (MeetMe("5000", "internal"), "already used by meetme[0] (5000)"),
        (MeetMe("5555", "nowhere"), "partition 'nowhere' does not exist"),
        (MeetMe("55a5", "internal"), "is not a number"),
        (MeetMe("5X", "internal"), "is not a number"),
        (MeetMe("", "internal"), "is not a number"),
        (MeetMe("5555", "internal", pin="12a"), "a PIN is 1-16 digits"),
        (MeetMe("5555", "internal", max_parties=1), "fewer than 2"),
    ],
)
def test_invalid_meetme(meetme: MeetMe, message: str) -> None:
    with pytest.raises(DialPlanError) as info:
        DialPlan(spec(meetme=(BRIDGE, meetme)))
    assert info.value.path == f"meetme[1] ({meetme.number})"
    assert message in info.value.message


def test_meetme_equal_to_a_route_pattern_in_its_partition() -> None:
    with pytest.raises(DialPlanError) as info:
        DialPlan(
            spec(route_patterns=(RoutePattern("5000", "internal", block=True),), meetme=(BRIDGE,))
        )
    assert info.value.path == "route_patterns[0] (5000)"
    assert "already used by meetme[0] (5000)" in info.value.message


def test_same_number_as_dn_in_another_partition_is_fine() -> None:
    plan = DialPlan(spec(meetme=(MeetMe("1001", "exec"),)))
    assert plan.route("boss", "1001").outcome is Outcome.MEETME
    assert plan.route("staff", "1001").outcome is Outcome.DN


@settings(max_examples=60, deadline=None)
@given(
    number=st.from_regex(r"[0-9*#]{1,8}", fullmatch=True),
    dialed=st.from_regex(r"[0-9*#]{0,9}", fullmatch=True),
)
def test_exact_number_property(number: str, dialed: str) -> None:
    """A meet-me number matches itself and nothing else; its prefixes are incomplete."""
    plan = DialPlan(DialPlanSpec(meetme=(MeetMe(number),)))
    d = plan.route("", dialed)
    if dialed == number:
        assert d.outcome is Outcome.MEETME and d.meetme == MeetMe(number)
    elif number.startswith(dialed):
        assert d.outcome is Outcome.INCOMPLETE
    else:
        assert d.outcome is Outcome.UNKNOWN and d.meetme is None
