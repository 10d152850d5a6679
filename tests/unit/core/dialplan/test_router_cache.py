"""DialPlan.route keeps its decisions per plan snapshot: the same number from the
same partitions gets the same (immutable) decision without a second analysis,
circular route groups still move on with every call, and the table is bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_router import base_spec

from offhook.core.dialplan import router
from offhook.core.dialplan.router import DialPlan, Outcome


def test_the_same_number_gets_the_decision_already_made() -> None:
    plan = DialPlan(base_spec())
    first = plan.route("staff", "1001", calling="1000")
    assert plan.route("staff", "1001", calling="1000") is first
    assert plan.route(("internal", "pstn"), "1001", calling="1000") is first  # same partitions
    other = plan.route("staff", "1001", calling="2000")  # another caller: its own decision
    assert other is not first and other.calling == "2000"
    assert plan.route("lobby", "914155551234").outcome == Outcome.UNKNOWN  # another CSS


def test_a_circular_group_still_rotates_with_every_call() -> None:
    plan = DialPlan(base_spec())
    firsts = [plan.route("staff", "81234").trunks[0].trunk.name for _ in range(4)]
    assert firsts == ["a", "b", "c", "a"]


def test_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router, "ROUTE_CACHE", 8)
    plan = DialPlan(base_spec())
    for n in range(50):
        plan.route("staff", f"9{n:04d}")
        assert len(plan._decisions) <= 8
    assert plan.route("staff", "1001").outcome == Outcome.DN


NUMBERS = st.lists(
    st.tuples(
        st.sampled_from(["staff", "lobby", "boss", ""]),
        st.sampled_from(["1001", "1000", "0", "3001", "4000", "81234", "914155551234", "9", "55"]),
        st.sampled_from(["", "1000", "1001"]),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(NUMBERS)
def test_a_kept_decision_is_what_a_fresh_analysis_gives(
    calls: list[tuple[str, str, str]],
) -> None:
    kept = DialPlan(base_spec())
    fresh = DialPlan(base_spec())  # the same rotation as ``kept``: same calls, in order
    for css, digits, calling in calls:
        expected = fresh._analyse(fresh._searched(css), digits, calling, 10, True)
        assert kept.route(css, digits, calling) == expected
