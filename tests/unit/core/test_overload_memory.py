"""``core.overload.CallMemory`` with a hand-driven clock: a call admitted once is admitted
again without asking, a shed request's answer is kept for its retransmissions, and the
memory is bounded by age (Timer B) and by size; ``OverloadControl`` reports it. And the
urgent sample (``URGENT`` times a threshold) that overloads a node at once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from offhook.core.overload import (
    MEMORY_TTL,
    URGENT,
    CallMemory,
    OverloadControl,
    OverloadPolicy,
    Threshold,
)


def test_an_admitted_call_follows_and_stays_remembered() -> None:
    memory = CallMemory()
    assert not memory.follows("a@x", 0.0)
    memory.admitted("a@x", 0.0)
    assert memory.follows("a@x", 1.0)
    assert memory.follows("a@x", 2.0)  # a challenge can come again (another hop's)
    assert memory.followed == 2
    assert memory.answer(("a@x", 1), 2.0) is None  # admitted is not an answer


def test_a_shed_request_keeps_its_answer_per_call_and_sequence_number() -> None:
    memory = CallMemory()
    answer = object()
    memory.shed(("b@x", 1), answer, 0.0)
    assert memory.answer(("b@x", 1), 5.0) is answer
    assert memory.answer(("b@x", 2), 5.0) is None  # a new request of that call is not it
    assert not memory.follows("b@x", 5.0)  # nor was the call admitted


def test_decisions_are_forgotten_after_timer_b() -> None:
    memory = CallMemory()
    memory.admitted("a@x", 0.0)
    memory.shed(("b@x", 1), "503", 0.0)
    assert memory.follows("a@x", MEMORY_TTL - 0.001)
    assert not memory.follows("a@x", MEMORY_TTL)
    assert memory.answer(("b@x", 1), MEMORY_TTL) is None
    assert len(memory) == 0


def test_expired_entries_go_as_new_ones_come() -> None:
    memory = CallMemory(ttl=1.0)
    for i in range(10):
        memory.admitted(f"old{i}", 0.0)
    for i in range(10):
        memory.admitted(f"new{i}", 5.0)
    assert len(memory) == 10  # each new entry took up to two expired ones with it
    assert all(memory.follows(f"new{i}", 5.5) for i in range(10))


def test_the_oldest_go_first_when_full() -> None:
    memory = CallMemory(size=3)
    for i in range(5):
        memory.admitted(f"c{i}", float(i))
    assert len(memory) == 3
    assert not memory.follows("c0", 5.0) and not memory.follows("c1", 5.0)
    assert memory.follows("c4", 5.0)


def test_control_status_reports_the_memory() -> None:
    control = OverloadControl(OverloadPolicy(), 0.0)
    control.memory.admitted("a", 0.0)
    control.memory.follows("a", 0.1)
    control.memory.resent += 1
    assert control.status(0.2)["memory"] == {
        "remembered": 1,
        "followed": 1,
        "resent": 1,
        "absorbed": 0,
    }


@given(
    st.lists(
        st.tuples(st.sampled_from(["admit", "shed", "ask"]), st.integers(0, 20), st.floats(0, 5)),
        max_size=200,
    ),
    st.integers(1, 16),
)
def test_property_bounded_and_never_an_answer_for_an_admitted_call(
    ops: list[tuple[str, int, float]], size: int
) -> None:
    memory = CallMemory(size=size, ttl=10.0)
    now = 0.0
    admitted: dict[str, float] = {}
    for op, n, step in ops:
        now += step
        key = f"c{n}"
        if op == "admit":
            memory.admitted(key, now)
            admitted[key] = now
        elif op == "shed":
            memory.shed((key, 1), ("503", key), now)
        else:
            answer = memory.answer((key, 1), now)
            assert answer is None or answer == ("503", key)
            if memory.follows(key, now):
                assert key in admitted and now - admitted[key] < 10.0
        assert len(memory) <= size


def test_an_urgent_sample_overloads_at_once_without_waiting_for_the_window() -> None:
    control = OverloadControl(OverloadPolicy(window=0.5, sustain=2), 0.0)
    assert not control.observe(0.1, {"queue": 0.01})  # no queue threshold: ignored
    policy = OverloadPolicy(
        thresholds={"queue": Threshold(0.02, 0.005), "cpu": Threshold(0.9, 0.7)},
        window=0.5,
        sustain=2,
    )
    control = OverloadControl(policy, 0.0)
    assert not control.observe(0.1, {"queue": 0.05, "cpu": 1.0})  # over, not urgent
    assert not control.overloaded
    assert control.observe(0.2, {"queue": URGENT * 0.02, "cpu": 1.0})  # urgent: decided
    assert control.overloaded and control.admit_ratio == 0.5  # cut by half at most
    # Overloaded, an urgent sample waits for the window like any other.
    assert not control.observe(0.3, {"queue": 1.0})
    assert control.admit_ratio == 0.5
    assert control.observe(0.75, {"queue": 1.0})
    assert control.admit_ratio == 0.25


def test_a_signal_that_cannot_reach_urgent_keeps_the_spike_filter() -> None:
    policy = OverloadPolicy(window=0.5, sustain=2)  # cpu 0.9: 4x is out of reach
    control = OverloadControl(policy, 0.0)
    assert control.observe(0.5, {"cpu": 1.0, "lag": 0.2})
    assert not control.overloaded  # a spike
    assert control.observe(1.0, {"cpu": 1.0, "lag": 0.2})
    assert control.overloaded
