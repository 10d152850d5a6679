"""media.jitter: playout order, loss, lateness, wrap, duplicates, resync and the capacity bound."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.media.jitter import JitterBuffer


def _p(seq: int) -> bytes:
    return struct.pack("!I", seq)


def _seq(payload: bytes | None) -> int | None:
    return None if payload is None else struct.unpack("!I", payload)[0]


def _push(jb: JitterBuffer, *seqs: int) -> None:
    for s in seqs:
        jb.push(s % 65536, s * 160, _p(s))


def _pop(jb: JitterBuffer, n: int) -> list[int | None]:
    return [_seq(jb.pop()) for _ in range(n)]


def test_prefill_then_in_order() -> None:
    jb = JitterBuffer(depth=3)
    assert jb.pop() is None
    _push(jb, 10)
    assert jb.pop() is None  # one held, three wanted
    _push(jb, 11)
    assert jb.pop() is None
    _push(jb, 12)
    assert _pop(jb, 1) == [10]
    # One in, one out: the delay stays at the depth.
    for s in range(13, 20):
        _push(jb, s)
        assert _pop(jb, 1) == [s - 2]
    assert jb.played == 8 and jb.lost == 0 and len(jb) == 2


def test_reorder_within_the_depth() -> None:
    jb = JitterBuffer(depth=3)
    _push(jb, 2, 1, 0)  # all arrive backwards before playout starts
    _push(jb, 4, 3)
    assert _pop(jb, 5) == [0, 1, 2, 3, 4]
    assert jb.lost == jb.late == 0


def test_loss_is_a_none_slot() -> None:
    jb = JitterBuffer(depth=2)
    _push(jb, 0, 1, 3, 4)
    assert _pop(jb, 5) == [0, 1, None, 3, 4]
    assert jb.lost == 1 and jb.played == 4


def test_late_packet_dropped() -> None:
    jb = JitterBuffer(depth=2)
    _push(jb, 0, 1, 3)
    assert _pop(jb, 3) == [0, 1, None]  # 2 is lost: its slot has gone
    _push(jb, 2)  # ... and it arrives now
    assert jb.late == 1
    assert _pop(jb, 1) == [3]


def test_duplicates_dropped() -> None:
    jb = JitterBuffer(depth=2)
    _push(jb, 5, 5, 6)
    assert jb.duplicate == 1
    assert _pop(jb, 1) == [5]
    _push(jb, 5)  # a copy of one already played
    assert jb.duplicate == 2 and jb.late == 0
    assert _pop(jb, 2) == [6, None]


def test_sequence_wrap() -> None:
    jb = JitterBuffer(depth=3)
    seqs = list(range(65530, 65536 + 8))
    _push(jb, *seqs[:3])
    out: list[int | None] = []
    for s in seqs[3:]:
        out += _pop(jb, 1)
        _push(jb, s)
    out += _pop(jb, 3)
    assert out == seqs
    # Reordered across the wrap.
    jb = JitterBuffer(depth=4)
    for s in (65535, 1, 0, 2):
        jb.push(s, 0, _p(s))
    assert _pop(jb, 4) == [65535, 0, 1, 2]


def test_underrun_refills() -> None:
    jb = JitterBuffer(depth=2)
    _push(jb, 0, 1)
    assert _pop(jb, 3) == [0, 1, None]
    assert jb.underruns == 1 and not jb.playing
    _push(jb, 2)
    assert _pop(jb, 1) == [None]  # refilling: one held, two wanted
    _push(jb, 3)
    assert _pop(jb, 2) == [2, 3]
    assert jb.lost == 0
    # Packets missing across an underrun are counted lost when playout resumes.
    assert _pop(jb, 1) == [None]
    _push(jb, 7, 8)
    assert _pop(jb, 2) == [7, 8]
    assert jb.lost == 3  # 4, 5 and 6


def test_resync_on_a_restarted_stream() -> None:
    jb = JitterBuffer(depth=2)
    _push(jb, 100, 101)
    assert _pop(jb, 2) == [100, 101]
    # The phone restarted its stream: sequence numbers from somewhere else entirely.
    _push(jb, 40000)
    assert jb.resyncs == 0  # one far packet could be a stray
    _push(jb, 40001)
    assert jb.resyncs == 1
    assert _pop(jb, 2) == [40000, 40001]
    _push(jb, 40002, 40003)
    assert _pop(jb, 2) == [40002, 40003]
    # Backwards by more than the buffer can hold is a restart too.
    _push(jb, 10, 11)
    assert jb.resyncs == 2 and _pop(jb, 2) == [10, 11]


def test_lone_stray_dropped() -> None:
    jb = JitterBuffer(depth=2)
    _push(jb, 0, 1)
    _push(jb, 30000)  # a lone packet far away
    _push(jb, 2)
    assert jb.strays == 1 and jb.resyncs == 0
    assert _pop(jb, 3) == [0, 1, 2]


def test_resync_within_a_capacity_of_one() -> None:
    # Found by fuzz_rtp: a resync kept both confirming packets whatever the capacity.
    jb = JitterBuffer(depth=1, capacity=1)
    _push(jb, 24944)
    assert _pop(jb, 2) == [24944, None]
    _push(jb, 0, 1)
    assert jb.resyncs == 1 and len(jb) == 1 and jb.overflow == 1
    assert _pop(jb, 2) == [1, None]


def test_capacity_bound() -> None:
    jb = JitterBuffer(depth=3, capacity=5)
    _push(jb, *range(0, 5))
    assert len(jb) == 5
    _push(jb, 5, 6)  # full: the oldest go
    assert len(jb) == 5 and jb.overflow == 2
    assert _pop(jb, 5) == [2, 3, 4, 5, 6]
    assert jb.lost == 0
    # Ahead by twice the capacity or more is a jump, not a reason to grow.
    _push(jb, 7, 8, 9, 100)
    assert len(jb) == 3 and jb.strays == 0
    _push(jb, 10)
    assert jb.strays == 1 and _pop(jb, 4) == [7, 8, 9, 10]


def test_reset_and_validation() -> None:
    jb = JitterBuffer()
    _push(jb, 1, 2, 3)
    jb.reset()
    assert len(jb) == 0 and jb.pop() is None
    _push(jb, 50000, 50001, 50002)
    assert _pop(jb, 1) == [50000]
    for depth, capacity in ((0, 5), (4, 3), (1, 5000)):
        with pytest.raises(ValueError):
            JitterBuffer(depth, capacity)


# Arrival streams: mostly sequential, with reordering, loss, duplicates, bursts and jumps.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(-3, 6)),  # offset from the sender's next
        st.tuples(st.just("jump"), st.integers(0, 65535)),
        st.tuples(st.just("pop"), st.integers(1, 4)),
    ),
    max_size=200,
)


@given(operations, st.integers(1, 5), st.integers(0, 10), st.integers(0, 65535))
def test_invariants(ops: list[tuple[str, int]], depth: int, extra: int, start: int) -> None:
    capacity = depth + extra
    jb = JitterBuffer(depth, capacity)
    sender = start
    last_resyncs = 0
    last_played: int | None = None
    for kind, arg in ops:
        if kind == "push":
            seq = (sender + arg) % 65536
            sender = (sender + max(arg, 0) + 1) % 65536
            jb.push(seq, 0, _p(seq))
        elif kind == "jump":
            sender = arg
        else:
            for _ in range(arg):
                got = _seq(jb.pop())
                if jb.resyncs != last_resyncs:
                    last_resyncs, last_played = jb.resyncs, None
                if got is None:
                    continue
                if last_played is not None:
                    # Within a run, playout moves forward (mod 2^16, never by half the space).
                    step = (got - last_played) % 65536
                    assert 0 < step < 32768
                last_played = got
        assert len(jb) <= capacity
    assert jb.played + jb.late + jb.duplicate + jb.overflow + jb.strays <= sum(
        1 for k, _ in ops if k == "push"
    )
