"""tests/support/audio.py: the measuring tools the media tests rely on, checked on known signals."""

from __future__ import annotations

import numpy as np
import pytest

from offhook.media import g711
from support.audio import (
    decode_rtp_payloads,
    dominant_frequencies,
    has_tone,
    rms,
    sine,
    tone_power,
)


def test_sine() -> None:
    s = sine(1000, 0.5, amplitude=1000)
    assert s.dtype == np.int16 and len(s) == 4000
    assert s.max() == 1000 and s.min() == -1000
    assert rms(s) == pytest.approx(1000 / np.sqrt(2), rel=1e-3)


def test_dominant_frequencies() -> None:
    dual = sine(350, 1.0, amplitude=5000).astype(np.int32) + sine(440, 1.0, amplitude=5000)
    assert dominant_frequencies(dual) == pytest.approx([350.0, 440.0], abs=0.5)
    # Off-bin frequencies and a short window, through G.711.
    odd = sine(913.8, 0.33, amplitude=8000)
    heard = g711.decode("PCMU", g711.encode("PCMU", odd))
    assert dominant_frequencies(heard, count=1) == pytest.approx([913.8], abs=1.0)
    assert dominant_frequencies(np.zeros(800, np.int16)) == []
    # A weaker third tone is found when three are asked for.
    triple = dual + sine(1400, 1.0, amplitude=1000)
    assert dominant_frequencies(triple, count=3) == pytest.approx([350, 440, 1400], abs=0.5)


def test_tone_power() -> None:
    pure = sine(1000, 0.2)
    assert tone_power(pure, 1000) == pytest.approx(1.0, abs=0.01)
    assert tone_power(pure, 1200) < 0.01
    dual = sine(480, 1.0).astype(np.int32) + sine(620, 1.0)
    assert tone_power(dual, 480) == pytest.approx(0.5, abs=0.01)
    assert tone_power(dual, 620) == pytest.approx(0.5, abs=0.01)
    assert has_tone(dual, 480) and not has_tone(dual, 440)
    assert tone_power(np.zeros(100, np.int16), 1000) == 0.0
    assert tone_power(np.zeros(0, np.int16), 1000) == 0.0


def test_decode_rtp_payloads() -> None:
    a = sine(700, 0.02, amplitude=3000)
    b = sine(700, 0.02, amplitude=3000, phase=1.0)
    event = b"\x01\x8a\x03\x20"  # an RFC 4733 payload: not audio, skipped
    payloads = [(0, g711.encode("PCMU", a)), (101, event), (8, g711.encode("PCMA", b))]
    audio = decode_rtp_payloads(payloads)
    assert len(audio) == 320 and audio.dtype == np.int16
    assert np.abs(audio[:160].astype(int) - a).max() < 200
    assert np.abs(audio[160:].astype(int) - b).max() < 200
    assert len(decode_rtp_payloads([])) == 0
