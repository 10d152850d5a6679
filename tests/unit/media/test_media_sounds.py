"""media.sounds: the packaged WAV files exist, are 8 kHz mono 16-bit, and hold what they say."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from offhook.media import sounds, tones
from offhook.media.sources import load_audio
from support.audio import dominant_frequencies, has_tone, rms, tone_power

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", sounds.NAMES)
def test_files(name: str) -> None:
    path = sounds.path(name)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (
        8000,
        1,
        "PCM_16",
        "WAV",
    )
    pcm = load_audio(path)
    assert len(pcm) == info.frames and rms(pcm) > 500
    assert info.frames % 160 == 0  # whole 20 ms frames


def test_total_size_and_package_data() -> None:
    assert sum(sounds.path(n).stat().st_size for n in sounds.NAMES) < 500_000
    assert sorted(p.stem for p in sounds.DIRECTORY.glob("*.wav")) == sorted(sounds.NAMES)
    with (ROOT / "pyproject.toml").open("rb") as f:
        data = tomllib.load(f)
    assert "media/sounds/*.wav" in data["tool"]["setuptools"]["package-data"]["offhook"]


@pytest.mark.parametrize("name", ["ringback", "busy", "reorder"])
def test_tones_are_the_tone_generator(name: str) -> None:
    assert np.array_equal(load_audio(sounds.path(name)), tones.TONES[name]())


def test_moh() -> None:
    assert np.array_equal(load_audio(sounds.path("moh")), tones.moh_pattern())


def test_not_in_service_starts_with_sit() -> None:
    pcm = load_audio(sounds.path("not-in-service"))
    for i, f in enumerate(tones.SIT):
        segment = pcm[round((i * 0.330 + 0.01) * 8000) : round(((i + 1) * 0.330 - 0.01) * 8000)]
        assert dominant_frequencies(segment, count=1) == pytest.approx([f], abs=1.5)
    after = pcm[round(0.99 * 8000) :]
    assert len(after) > 0.5 * 8000
    if rms(after) > 300:
        # The announcement: speech, with its energy spread over the voice band
        # (no single tone dominates, unlike the SIT).
        assert max(tone_power(after, f) for f in tones.SIT) < 0.05
        assert not has_tone(after, 1000, threshold=0.2)


def test_enter_pin_prompt() -> None:
    pcm = load_audio(sounds.path("enter-pin"))
    assert 0.4 < len(pcm) / 8000 < 8
    assert np.abs(pcm.astype(np.int32)).max() < 32767


def test_unknown_name() -> None:
    with pytest.raises(KeyError):
        sounds.path("../../etc/passwd")
    assert set(sounds.TEXTS) <= set(sounds.NAMES)
