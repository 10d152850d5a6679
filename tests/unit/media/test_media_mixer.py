"""media.mixer: N-1 sums of known sine waves, automatic gain and the clipping guard."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from offhook.media.mixer import Mixer
from support.audio import dominant_frequencies, has_tone, sine, tone_power

FRAME = 160
# 32 distinct frequencies on 50 Hz bins (whole cycles in a 20 ms frame's multiple).
FREQS = [300.0 + 100.0 * i for i in range(32)]


def _frames(signal: np.ndarray, tick: int) -> np.ndarray:
    return signal[tick * FRAME : (tick + 1) * FRAME]


def test_empty_alone_and_silent() -> None:
    m: Mixer[str] = Mixer()
    assert m.mix({}) == {}
    tone = sine(440, 0.02)
    alone = m.mix({"a": tone})
    assert set(alone) == {"a"} and not alone["a"].any() and alone["a"].dtype == np.int16
    assert len(alone["a"]) == FRAME
    nobody = m.mix({"a": None, "b": None})
    assert all(not v.any() and len(v) == FRAME for v in nobody.values())


def test_n_minus_one_exact() -> None:
    m: Mixer[int] = Mixer()
    rng = np.random.default_rng(1)
    frames = {i: rng.integers(-3000, 3000, FRAME).astype(np.int16) for i in range(5)}
    total = sum(f.astype(np.int32) for f in frames.values())
    out = m.mix(frames)
    for i, f in frames.items():
        assert np.array_equal(out[i].astype(np.int32), total - f.astype(np.int32))
    assert all(m.gain(i) == 1.0 for i in frames)


def test_silent_party_hears_everyone() -> None:
    m: Mixer[str] = Mixer()
    a, b = sine(500, 0.02), sine(700, 0.02)
    out = m.mix({"a": a, "b": b, "listener": None})
    assert np.array_equal(out["listener"], (a.astype(np.int32) + b).astype(np.int16))
    assert np.array_equal(out["a"], b) and np.array_equal(out["b"], a)


def test_nobody_hears_their_own_tone() -> None:
    m: Mixer[int] = Mixer()
    parties = 4
    signals = [sine(FREQS[i * 3], 1.0, amplitude=4000) for i in range(parties)]
    heard: dict[int, list[np.ndarray]] = {i: [] for i in range(parties)}
    for tick in range(50):
        out = m.mix({i: _frames(signals[i], tick) for i in range(parties)})
        for i in range(parties):
            heard[i].append(out[i])
    for i in range(parties):
        audio = np.concatenate(heard[i])
        assert not has_tone(audio, FREQS[i * 3], threshold=1e-4)
        others = [FREQS[j * 3] for j in range(parties) if j != i]
        for f in others:
            assert tone_power(audio, f) == pytest.approx(1 / 3, abs=0.01)
        assert dominant_frequencies(audio, count=3) == pytest.approx(others, abs=1.0)


def test_thirty_two_parties() -> None:
    m: Mixer[int] = Mixer()
    # Quiet enough that 31 of them never approach full scale: sums stay exact.
    signals = [sine(f, 0.4, amplitude=800, phase=i) for i, f in enumerate(FREQS)]
    heard: dict[int, list[np.ndarray]] = {i: [] for i in range(32)}
    for tick in range(20):
        frames = {i: _frames(s, tick) for i, s in enumerate(signals)}
        total = sum(f.astype(np.int32) for f in frames.values())
        out = m.mix(frames)
        for i, f in frames.items():
            assert np.array_equal(out[i].astype(np.int32), total - f)
            heard[i].append(out[i])
    for i in (0, 13, 31):
        audio = np.concatenate(heard[i])
        assert not has_tone(audio, FREQS[i], threshold=1e-4)
        assert has_tone(audio, FREQS[(i + 1) % 32], threshold=1 / 31 * 0.9)


def test_clipping_guard_many_loud_parties() -> None:
    m: Mixer[int] = Mixer()
    loud = [sine(f, 0.4, amplitude=30000, phase=i) for i, f in enumerate(FREQS[:10])]
    for tick in range(20):
        frames = {i: _frames(s, tick) for i, s in enumerate(loud)}
        out = m.mix(frames)
        for i in frames:
            x = out[i].astype(np.int32)
            assert x.min() >= -32768 and x.max() <= 32767
            if tick > 0:
                # After the first frame the gain keeps every sample under the limit.
                assert np.abs(x).max() <= m.limit
        assert 0.0 < m.gain(0) < 0.2
    # No wraparound: the sign of each output sample follows the true sum's.
    frames = {i: _frames(s, 20) for i, s in enumerate(loud)}
    total = sum(f.astype(np.int32) for f in frames.values())
    out = m.mix(frames)
    true = total - frames[0]
    big = np.abs(true) > 20000
    assert np.all(np.sign(out[0][big]) == np.sign(true[big]))


def test_sudden_loud_frame_is_clipped_not_wrapped() -> None:
    m: Mixer[str] = Mixer()
    full = np.full(FRAME, 32767, dtype=np.int16)
    out = m.mix({"a": full, "b": full, "c": full})
    # The gain ramps down over the first samples: those clip at full scale, never wrap.
    assert out["a"].min() > 0 and out["a"].max() <= 32767
    assert int(out["a"][-1]) <= m.limit
    assert m.gain("a") == pytest.approx(m.limit / (2 * 32767))


def test_gain_releases_slowly() -> None:
    m: Mixer[str] = Mixer(release=0.05)
    loud = np.full(FRAME, 30000, dtype=np.int16)
    quiet = np.full(FRAME, 1000, dtype=np.int16)
    m.mix({"a": loud, "b": loud, "c": None})
    low = m.gain("c")
    assert low == pytest.approx(m.limit / 60000)
    gains = []
    for _ in range(200):
        m.mix({"a": quiet, "b": quiet, "c": None})
        gains.append(m.gain("c"))
    assert gains[0] == pytest.approx(low + (1 - low) * 0.05)
    assert all(b >= a for a, b in itertools.pairwise(gains))
    assert gains[10] < 0.8 and gains[-1] == 1.0
    # Back at unity the sums are exact again.
    out = m.mix({"a": quiet, "b": quiet, "c": None})
    assert np.array_equal(out["c"], np.full(FRAME, 2000, dtype=np.int16))


def test_other_frame_sizes() -> None:
    m: Mixer[str] = Mixer(frame=80)
    frames = {"a": np.ones(80, np.int16), "b": np.ones(160, np.int16), "c": np.ones(3, np.int16)}
    out = m.mix(frames)
    assert all(len(v) == 80 for v in out.values())
    assert m.resized == 2
    assert out["a"][:3].tolist() == [2, 2, 2] and out["a"][3:].tolist() == [1] * 77
    with pytest.raises(ValueError):
        Mixer(frame=0)


@settings(max_examples=50)
@given(
    st.lists(
        st.one_of(st.none(), hnp.arrays(np.int16, FRAME)),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 5),
)
def test_any_frames_stay_in_range(frames: list[np.ndarray | None], ticks: int) -> None:
    m: Mixer[int] = Mixer()
    for _ in range(ticks):
        out = m.mix(dict(enumerate(frames)))
        assert set(out) == set(range(len(frames)))
        for v in out.values():
            assert v.dtype == np.int16 and v.shape == (FRAME,)
    present = [f for f in frames if f is not None]
    if len(present) <= 1:
        for i, f in enumerate(frames):
            if f is not None:
                assert not out[i].any()
