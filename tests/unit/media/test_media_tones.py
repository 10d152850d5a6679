"""media.tones: each tone's frequencies and cadence, heard through G.711, and seamless loops."""

from __future__ import annotations

import numpy as np
import pytest

from offhook.media import g711, tones
from support.audio import dominant_frequencies, has_tone, rms, tone_power

RATE = 8000


def _heard(samples: np.ndarray, codec: str = "PCMU") -> np.ndarray:
    return g711.decode(codec, g711.encode(codec, samples))


def _window(x: np.ndarray, start: float, end: float) -> np.ndarray:
    return x[round(start * RATE) : round(end * RATE)]


@pytest.mark.parametrize(
    ("name", "freqs", "on", "off"),
    [
        ("dial", (350.0, 440.0), 1.0, 0.0),
        ("ringback", (440.0, 480.0), 2.0, 4.0),
        ("busy", (480.0, 620.0), 0.5, 0.5),
        ("reorder", (480.0, 620.0), 0.25, 0.25),
    ],
)
def test_dual_tones(name: str, freqs: tuple[float, float], on: float, off: float) -> None:
    x = tones.TONES[name]()
    assert x.dtype == np.int16 and len(x) == round((on + off) * RATE)
    for codec in ("PCMU", "PCMA"):
        burst = _heard(_window(x, 0.01, on - 0.01), codec)
        assert dominant_frequencies(burst) == pytest.approx(list(freqs), abs=1.0)
        for f in freqs:
            assert tone_power(burst, f) == pytest.approx(0.5, abs=0.05)
    if off:
        assert not _window(x, on, on + off).any()
        # Ramped, not cut: the first and last samples of the burst are near zero.
        assert abs(int(x[0])) < 100 and abs(int(x[round(on * RATE) - 1])) < 300


def test_levels() -> None:
    # -13 dBm0 a frequency: a 0 dBm0 sine has an rms of about 15,770 on the 16-bit scale.
    per_frequency = 15770 * 10 ** (-13 / 20)
    for name, make in tones.TONES.items():
        x = make()
        pair = 1 if name == "sit" else 2
        # The confirmation tone's 0.1 s bursts spend a tenth of their time in ramps.
        rel = 0.08 if name == "confirm" else 0.03
        assert rms(x[x != 0]) == pytest.approx(per_frequency * np.sqrt(pair), rel=rel)
        assert np.abs(x.astype(np.int32)).max() < 11000


def test_dial_loops_seamlessly() -> None:
    x = tones.dial()
    twice = np.concatenate([x, x]).astype(np.int32)
    t = np.arange(2 * len(x)) / RATE
    ideal = sum(tones.LEVEL * np.sin(2 * np.pi * f * t) for f in tones.DIAL)
    # The concatenation is the continuous tone: no step at the loop point.
    assert np.abs(twice - ideal).max() <= 1.0


def test_sit() -> None:
    x = tones.sit()
    assert len(x) == round((3 * 0.330 + 1.01) * RATE)
    for i, f in enumerate(tones.SIT):
        seg = _heard(_window(x, i * 0.330 + 0.01, (i + 1) * 0.330 - 0.01))
        assert dominant_frequencies(seg, count=1) == pytest.approx([f], abs=1.5)
        assert has_tone(seg, f, threshold=0.9)
        for other in tones.SIT:
            if other != f:
                assert tone_power(seg, other) < 0.01
    assert not _window(x, 0.990, 2.0).any()


def test_moh_pattern() -> None:
    x = tones.moh_pattern()
    assert x.dtype == np.int16
    step = tones.MOH_NOTE_S
    assert len(x) == round(len(tones.MOH_MELODY) * step * RATE)
    assert 1500 < rms(x) < 4000 and np.abs(x.astype(np.int32)).max() <= 9000
    # Each melody note is the strongest new frequency at its onset.
    heard = _heard(x)
    for i, midi in enumerate(tones.MOH_MELODY):
        onset = _window(heard, i * step + 0.01, i * step + 0.2)
        assert has_tone(onset, tones.note_freq(midi), threshold=0.15), (i, midi)
    # The first bar holds its bass note as well.
    bar = _window(heard, 0.0, 4 * step)
    assert has_tone(bar, tones.note_freq(tones.MOH_BASS[0]), threshold=0.02)
    # Seamless loop: no jump at the wrap bigger than the signal's own sample-to-sample steps.
    steps = np.abs(np.diff(x.astype(np.int32)))
    assert abs(int(x[0]) - int(x[-1])) <= steps.max()
    assert tones.note_freq(69) == 440.0 and tones.note_freq(72) == pytest.approx(523.25, abs=0.01)


def test_whole_frames() -> None:
    # A player loops them frame by frame: every period is a whole number of 20 ms frames.
    for make in [*tones.TONES.values(), tones.moh_pattern]:
        assert len(make()) % 160 == 0, make


def test_each_call_is_a_fresh_array() -> None:
    a = tones.busy()
    a[:] = 0
    assert tones.busy().any()
    assert set(tones.TONES) == {"dial", "ringback", "busy", "reorder", "sit", "confirm"}
