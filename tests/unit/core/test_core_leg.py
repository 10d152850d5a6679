"""The leg transition tables, exhaustively: every (state, event) pair."""

from __future__ import annotations

import itertools

import pytest

from offhook.common.clock import FakeClock
from offhook.core.leg import (
    INBOUND_TRANSITIONS,
    OUTBOUND_TRANSITIONS,
    TRANSITIONS,
    Direction,
    InvalidTransition,
    Leg,
    LegEvent,
    LegState,
)

S, E = LegState, LegEvent

EXPECTED_INBOUND = {
    (S.IDLE, E.SETUP): S.SETUP,
    (S.IDLE, E.RELEASE): S.RELEASED,
    (S.SETUP, E.PROGRESS): S.PROCEEDING,
    (S.SETUP, E.ALERT): S.ALERTING,
    (S.SETUP, E.CONNECT): S.CONNECTED,
    (S.SETUP, E.DIGITS): S.SETUP,
    (S.SETUP, E.RELEASE): S.RELEASED,
    (S.PROCEEDING, E.PROGRESS): S.PROCEEDING,
    (S.PROCEEDING, E.ALERT): S.ALERTING,
    (S.PROCEEDING, E.CONNECT): S.CONNECTED,
    (S.PROCEEDING, E.DIGITS): S.PROCEEDING,
    (S.PROCEEDING, E.RELEASE): S.RELEASED,
    (S.ALERTING, E.PROGRESS): S.ALERTING,
    (S.ALERTING, E.ALERT): S.ALERTING,
    (S.ALERTING, E.CONNECT): S.CONNECTED,
    (S.ALERTING, E.DIGITS): S.ALERTING,
    (S.ALERTING, E.RELEASE): S.RELEASED,
    (S.CONNECTED, E.MEDIA): S.CONNECTED,
    (S.CONNECTED, E.DIGITS): S.CONNECTED,
    (S.CONNECTED, E.RELEASE): S.RELEASED,
}
EXPECTED_OUTBOUND = {
    (S.OFFERED if s is S.SETUP else s, E.OFFER if e is E.SETUP else e): (
        S.OFFERED if t is S.SETUP else t
    )
    for (s, e), t in EXPECTED_INBOUND.items()
}


def test_tables_are_what_the_design_says() -> None:
    assert dict(INBOUND_TRANSITIONS) == EXPECTED_INBOUND
    assert dict(OUTBOUND_TRANSITIONS) == EXPECTED_OUTBOUND
    assert TRANSITIONS[Direction.INBOUND] is INBOUND_TRANSITIONS


def test_released_is_final_and_reachable_from_every_other_state() -> None:
    for table in (INBOUND_TRANSITIONS, OUTBOUND_TRANSITIONS):
        assert not [k for k in table if k[0] is S.RELEASED]
        states = {s for s, _ in table}
        assert all(table[(s, E.RELEASE)] is S.RELEASED for s in states)


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize(("state", "event"), list(itertools.product(LegState, LegEvent)))
def test_every_pair_is_allowed_per_table_or_raises(
    direction: Direction, state: LegState, event: LegEvent
) -> None:
    clock = FakeClock()
    leg = Leg("L1", direction, "dev", clock)
    leg.state = state
    table = TRANSITIONS[direction]
    expected = table.get((state, event))
    assert leg.can(event) is (expected is not None)
    if expected is None:
        with pytest.raises(InvalidTransition) as info:
            leg.fire(event)
        assert leg.state is state
        assert info.value.state is state and info.value.event is event
    else:
        assert leg.fire(event) is state
        assert leg.state is expected


def test_timestamps_come_from_the_clock() -> None:
    clock = FakeClock(start=10.0, wall_start=1000.0)
    leg = Leg("L1", Direction.OUTBOUND, "dev", clock)
    assert leg.created_at == 1000.0
    leg.fire(E.OFFER)
    clock.advance(5)
    leg.fire(E.CONNECT)
    assert leg.answered_at == 1005.0
    clock.advance(7)
    leg.fire(E.RELEASE)
    assert leg.released_at == 1012.0 and leg.released
