"""What a listener hears: frequencies and tone levels in decoded audio, for tests.

The interop and unit tests judge media by its content: decode the G.711
payloads a phone received (``decode_rtp_payloads``), then ask which
frequencies dominate (``dominant_frequencies``, an FFT with a Hann window and
parabolic peak interpolation) or how much of the power sits at one frequency
(``tone_power``: the single-bin DFT the Goertzel algorithm computes, at any
frequency, as a share of the total power; a pure sine gives about 1.0, each
of two equal tones about 0.5, silence 0.0).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from offhook.media import g711

RATE = 8000


def sine(
    freq: float, seconds: float, rate: int = RATE, amplitude: float = 8000.0, phase: float = 0.0
) -> NDArray[np.int16]:
    """``seconds`` of a sine at ``freq`` Hz, as int16 samples."""
    n = np.arange(round(seconds * rate))
    wave = amplitude * np.sin(2 * np.pi * freq * n / rate + phase)
    return np.round(wave).astype(np.int16)


def _float(samples: NDArray[Any]) -> NDArray[np.float64]:
    return np.asarray(samples, dtype=np.float64)


def dominant_frequencies(samples: NDArray[Any], rate: int = RATE, count: int = 2) -> list[float]:
    """The ``count`` strongest spectral peaks (Hz, ascending), at least 20 Hz apart.

    Fewer are returned when the signal has fewer peaks (silence has none).
    """
    x = _float(samples)
    if len(x) < 16 or not np.any(x):
        return []
    x = x - x.mean()
    size = max(len(x), rate)  # zero-pad to at least 1 Hz bins
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=size))
    bin_hz = rate / size
    # Local maxima, strongest first.
    inner = spectrum[1:-1]
    peaks = np.flatnonzero((inner > spectrum[:-2]) & (inner >= spectrum[2:])) + 1
    peaks = peaks[np.argsort(spectrum[peaks])[::-1]]
    floor = spectrum.max() * 1e-3
    chosen: list[float] = []
    for k in peaks:
        if spectrum[k] < floor or len(chosen) == count:
            break
        # Parabolic interpolation on the log magnitude around the peak bin.
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c else 0.0
        freq = float((k + shift) * bin_hz)
        if all(abs(freq - f) >= 20.0 for f in chosen):
            chosen.append(freq)
    return sorted(chosen)


def tone_power(samples: NDArray[Any], freq: float, rate: int = RATE) -> float:
    """The share (0-1) of the signal's power at ``freq`` (a Goertzel / single-bin DFT)."""
    x = _float(samples)
    energy = float(np.dot(x, x))
    if len(x) == 0 or energy == 0.0:
        return 0.0
    n = np.arange(len(x))
    w = 2 * np.pi * freq / rate
    re = float(np.dot(x, np.cos(w * n)))
    im = float(np.dot(x, np.sin(w * n)))
    return min(1.0, 2.0 * (re * re + im * im) / (len(x) * energy))


def has_tone(samples: NDArray[Any], freq: float, rate: int = RATE, threshold: float = 0.1) -> bool:
    """At least ``threshold`` of the power is at ``freq``."""
    return tone_power(samples, freq, rate) >= threshold


def rms(samples: NDArray[Any]) -> float:
    """Root mean square level (0 for no samples)."""
    x = _float(samples)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def decode_rtp_payloads(payloads: Iterable[tuple[int, bytes]]) -> NDArray[np.int16]:
    """Concatenate the audio of (payload type, payload) pairs: PT 0 (mu-law) and 8 (A-law).

    Other payload types (telephone-events, comfort noise) carry no G.711 audio
    and are skipped.
    """
    parts = [g711.decode(g711.CODECS[pt], payload) for pt, payload in payloads if pt in g711.CODECS]
    if not parts:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(parts)
