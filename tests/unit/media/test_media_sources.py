"""media.sources: decoding files to 8 kHz (resampling, mono, limits, cache) and Broadcast."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from offhook.media import g711, sources
from offhook.media.sources import AudioError, Broadcast, Resampler, load_audio, resample
from support.audio import dominant_frequencies, rms, sine, tone_power


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    sources.clear_cache()


def _tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def _write(path: Path, data: np.ndarray, rate: int, **kw: str) -> Path:
    soundfile.write(str(path), data, rate, **kw)
    return path


@pytest.mark.parametrize(
    ("rate", "fmt"),
    [
        (44100, "WAV"),
        (48000, "FLAC"),
        (22050, "OGG"),
        (16000, "WAV"),
        (11025, "WAV"),
        (6000, "WAV"),
    ],
)
def test_formats_and_rates(tmp_path: Path, rate: int, fmt: str) -> None:
    path = _write(tmp_path / f"a.{fmt.lower()}", _tone(1000, rate, 1.0), rate, format=fmt)
    pcm = load_audio(path)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 8000) <= 1
    middle = pcm[400:-400]
    assert dominant_frequencies(middle, count=1) == pytest.approx([1000.0], abs=1.0)
    # Level kept: 0.5 of full scale (OGG is lossy: a little looser).
    assert rms(middle) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.02 if fmt != "OGG" else 0.1)


def test_8khz_passes_through_exactly(tmp_path: Path) -> None:
    pcm = sine(440, 0.5, amplitude=12000)
    path = _write(tmp_path / "n.wav", pcm, 8000, subtype="PCM_16")
    assert np.array_equal(load_audio(path), pcm)


def test_no_aliasing(tmp_path: Path) -> None:
    # 5 kHz and 6 kHz at 44.1 kHz are above the 4 kHz Nyquist of the result: they must
    # vanish, not fold back to 3 kHz and 2 kHz.
    data = _tone(5000, 44100, 1.0, 0.4) + _tone(6000, 44100, 1.0, 0.4) + _tone(700, 44100, 1.0, 0.1)
    pcm = load_audio(_write(tmp_path / "hi.wav", data, 44100, subtype="FLOAT"))
    middle = pcm[400:-400]
    assert tone_power(middle, 700) > 0.99
    assert tone_power(middle, 3000) < 1e-6 and tone_power(middle, 2000) < 1e-6


def test_stereo_mixed_to_mono(tmp_path: Path) -> None:
    left, right = _tone(500, 16000, 1.0, 0.6), _tone(1500, 16000, 1.0, 0.6)
    pcm = load_audio(_write(tmp_path / "s.wav", np.column_stack([left, right]), 16000))
    middle = pcm[400:-400]
    assert dominant_frequencies(middle) == pytest.approx([500.0, 1500.0], abs=1.0)
    assert tone_power(middle, 500) == pytest.approx(0.5, abs=0.02)
    assert rms(middle) == pytest.approx(0.3 * 32767, rel=0.02)  # each at half: 0.3 peak


def test_streaming_equals_whole() -> None:
    x = np.random.default_rng(3).standard_normal(30000)
    for rate in (44100, 44099, 6000):
        whole = resample(x, rate)
        r = Resampler(rate)
        parts, pos = [], 0
        for size in (1, 9, 4000, 123, 20000, 5867):
            parts.append(r.feed(x[pos : pos + size]))
            pos += size
        parts.append(r.flush(len(x)))
        assert np.allclose(np.concatenate(parts), whole, atol=1e-5)
        assert len(whole) == -(-len(x) * 8000 // rate)


def test_cache(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.wav", _tone(300, 16000, 0.5), 16000)
    first = load_audio(path)
    assert load_audio(str(path)) is first
    assert not first.flags.writeable
    # A changed file is decoded again.
    _write(path, _tone(900, 16000, 0.7), 16000)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_audio(path)
    assert again is not first and abs(len(again) - 5600) <= 1


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AudioError):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError):
        load_audio(tmp_path)
    garbage = tmp_path / "g.wav"
    garbage.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 3)
    with pytest.raises(AudioError):
        load_audio(garbage)
    empty = _write(tmp_path / "e.wav", np.zeros(0), 8000)
    with pytest.raises(AudioError, match="no audio"):
        load_audio(empty)
    monkeypatch.setattr(sources, "MAX_SECONDS", 1)
    long = _write(tmp_path / "l.wav", np.zeros(16000 * 2), 16000)
    with pytest.raises(AudioError, match="long"):
        load_audio(long)
    odd = _write(tmp_path / "r.wav", np.zeros(100), 500)
    with pytest.raises(AudioError, match="rate"):
        load_audio(odd)


def test_broadcast_shares_the_position() -> None:
    samples = np.arange(1000, dtype=np.int16)  # not a whole number of frames
    b = Broadcast(samples)
    assert np.array_equal(b.frame_at(0), samples[:160])
    assert np.array_equal(b.frame_at(2), samples[320:480])
    assert b.frame_at(2) is b.frame_at(2)
    # Tick 6 starts at 960: wraps around to the beginning.
    assert b.frame_at(6).tolist() == [*range(960, 1000), *range(0, 120)]
    # Tick 7 starts where 6 ended.
    assert b.frame_at(7).tolist() == list(range(120, 280))
    frame = b.frame_at(3)
    with pytest.raises(ValueError):
        frame[0] = 1
    tiny = Broadcast(np.array([1, 2, 3], dtype=np.int16))
    assert tiny.frame_at(1).tolist() == [(160 + i) % 3 + 1 for i in range(160)]
    with pytest.raises(ValueError):
        Broadcast(np.zeros(0, dtype=np.int16))


def test_broadcast_encodes_once_per_codec_per_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = g711.encode

    def counting(codec: str, pcm: np.ndarray) -> bytes:
        calls.append(codec)
        return real(codec, pcm)

    monkeypatch.setattr(g711, "encode", counting)
    b = Broadcast(sine(440, 1.0))
    for tick in range(5):
        payloads = {b.payload_at(tick, codec) for _ in range(100) for codec in ("PCMU", "PCMA")}
        assert len(payloads) == 2
    assert calls == ["PCMU", "PCMA"] * 5
    assert b.payload_at(4, "PCMU") == real("PCMU", b.frame_at(4))
    assert len(b.payload_at(5, "PCMA")) == 160
