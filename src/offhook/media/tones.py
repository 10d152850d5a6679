"""Call-progress tones and the built-in music on hold, generated at 8 kHz.

Each function returns one cadence period as int16 samples, a whole number
of 20 ms frames, so a player that loops the array plays the tone without a
seam: continuous tones hold whole
cycles of every frequency, and interrupted ones start and end each burst
with a short raised-cosine ramp (no click) and end the period in silence.

| tone       | frequencies (Hz)         | cadence                              |
|------------|--------------------------|--------------------------------------|
| `dial`     | 350 + 440                | continuous (1 s period)              |
| `ringback` | 440 + 480                | 2 s on, 4 s off                      |
| `busy`     | 480 + 620                | 0.5 s on, 0.5 s off                  |
| `reorder`  | 480 + 620                | 0.25 s on, 0.25 s off                |
| `sit`      | 913.8, 1370.6, 1776.7    | 330 ms each in turn, then 1.01 s silence |

The dual tones are the North American precise tones (ANSI T1.401); the
special information tone follows ITU-T E.180 (three rising tones of 330 ms
then about a second of silence) with the North American frequencies of the
"number not in service" pattern. Every frequency is at -13 dBm0 (the
dial tone level of the precise tone plan; the pairs are at -10 dBm0).

``moh_pattern`` is the music on hold played when no file is configured: a
gentle 4-bar phrase in C major (``MOH_MELODY``, 0.4 s a note, with a soft
note an octave or more below on each bar, ``MOH_BASS``), each note a sine
with a little second and third harmonic, a quick attack and a slow decay;
notes ring over the loop point into the beginning, so it loops seamlessly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

RATE = 8000
# The 16-bit rms of a 0 dBm0 sine: G.711's full-scale sine (peak 32124) is +3.17 dBm0.
DBM0_RMS = 32124 / np.sqrt(2) / 10 ** (3.17 / 20)
LEVEL_DBM0 = -13.0
LEVEL = float(DBM0_RMS * np.sqrt(2) * 10 ** (LEVEL_DBM0 / 20))  # peak of one frequency
RAMP_S = 0.005  # raised-cosine on/off ramps

DIAL = (350.0, 440.0)
RINGBACK = (440.0, 480.0)
BUSY = (480.0, 620.0)
REORDER = BUSY
SIT = (913.8, 1370.6, 1776.7)
SIT_TONE_S = 0.330
SIT_SILENCE_S = 1.01  # E.180: 1 s +- 250 ms; this makes the period 2 s, whole 20 ms frames


def _times(seconds: float) -> NDArray[np.float64]:
    return np.arange(round(seconds * RATE)) / RATE


def _sum_of_sines(freqs: Sequence[float], seconds: float) -> NDArray[np.float64]:
    t = _times(seconds)
    wave = np.zeros_like(t)
    for f in freqs:
        wave += LEVEL * np.sin(2 * np.pi * f * t)
    return wave


def _ramped(wave: NDArray[np.float64]) -> NDArray[np.float64]:
    n = min(round(RAMP_S * RATE), len(wave) // 2)
    if n:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        wave = wave.copy()
        wave[:n] *= ramp
        wave[-n:] *= ramp[::-1]
    return wave


def _int16(wave: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.rint(wave), -32768, 32767).astype(np.int16)


def _cadence(freqs: Sequence[float], on_s: float, off_s: float) -> NDArray[np.int16]:
    burst = _ramped(_sum_of_sines(freqs, on_s))
    return _int16(np.concatenate([burst, np.zeros(round(off_s * RATE))]))


def dial() -> NDArray[np.int16]:
    """350 + 440 Hz, continuous: one second (whole cycles of both)."""
    return _int16(_sum_of_sines(DIAL, 1.0))


def ringback() -> NDArray[np.int16]:
    """440 + 480 Hz, 2 s on, 4 s off."""
    return _cadence(RINGBACK, 2.0, 4.0)


def busy() -> NDArray[np.int16]:
    """480 + 620 Hz, 0.5 s on, 0.5 s off."""
    return _cadence(BUSY, 0.5, 0.5)


def reorder() -> NDArray[np.int16]:
    """480 + 620 Hz, 0.25 s on, 0.25 s off (fast busy)."""
    return _cadence(REORDER, 0.25, 0.25)


def sit() -> NDArray[np.int16]:
    """The special information tone: 913.8, 1370.6, 1776.7 Hz, 330 ms each, then silence."""
    parts = [_ramped(_sum_of_sines([f], SIT_TONE_S)) for f in SIT]
    return _int16(np.concatenate([*parts, np.zeros(round(SIT_SILENCE_S * RATE))]))


def confirm() -> NDArray[np.int16]:
    """Confirmation tone: 350 + 440 Hz, three bursts of 0.1 s on, 0.1 s off (a feature was set)."""
    burst = _cadence(DIAL, 0.1, 0.1)
    return np.concatenate([burst, burst, burst, np.zeros(round(0.4 * RATE), dtype=np.int16)])


def note_freq(midi: int) -> float:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return float(440.0 * 2.0 ** ((midi - 69) / 12))


MOH_NOTE_S = 0.4
# MIDI notes of the melody, four a bar (C5 = 72): I - ii - V - I in C major.
MOH_MELODY = (
    *(72, 76, 79, 76),  # C E G E
    *(77, 81, 77, 74),  # F A F D
    *(79, 74, 71, 74),  # G D B D
    *(72, 67, 64, 60),  # C G E C
)
# One soft lower note a bar: C4, D4, G3, C4.
MOH_BASS = (60, 62, 55, 60)


def _pluck(freq: float, seconds: float, level: float) -> NDArray[np.float64]:
    t = _times(seconds)
    tone = np.sin(2 * np.pi * freq * t)
    tone += 0.3 * np.sin(4 * np.pi * freq * t) + 0.1 * np.sin(6 * np.pi * freq * t)
    attack = np.minimum(t / 0.012, 1.0)
    decay = np.exp(-t / 0.35)
    release = np.minimum((seconds - t) / 0.05, 1.0)
    result: NDArray[np.float64] = level * tone * attack * decay * release
    return result


def moh_pattern() -> NDArray[np.int16]:
    """The built-in music on hold: ``MOH_MELODY`` over ``MOH_BASS``, 6.4 s, looping."""
    step = round(MOH_NOTE_S * RATE)
    length = step * len(MOH_MELODY)
    out = np.zeros(length)
    ring = 1.2  # seconds each note sounds (it overlaps the next ones)

    def add(start: int, wave: NDArray[np.float64]) -> None:
        # Wrapped around the end of the period: the loop point has no seam.
        index = (start + np.arange(len(wave))) % length
        np.add.at(out, index, wave)

    for i, midi in enumerate(MOH_MELODY):
        add(i * step, _pluck(note_freq(midi), ring, 1.0))
    for bar, midi in enumerate(MOH_BASS):
        add(bar * 4 * step, _pluck(note_freq(midi), 4 * MOH_NOTE_S, 0.6))
    out *= 9000.0 / np.abs(out).max()  # peaks about -11 dBFS: soft, clear of clipping
    return _int16(out)


TONES: dict[str, Callable[[], NDArray[np.int16]]] = {
    "dial": dial,
    "ringback": ringback,
    "busy": busy,
    "reorder": reorder,
    "sit": sit,
    "confirm": confirm,
}
