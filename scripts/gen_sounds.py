"""Generate the packaged sounds (src/offhook/media/sounds/*.wav).

    python scripts/gen_sounds.py [--no-speech]

Writes 8 kHz mono 16-bit WAV files for every name in ``offhook.media.sounds``:
the tones from ``offhook.media.tones``, and the spoken prompts through
espeak-ng (``apt-get install espeak-ng``) resampled to 8 kHz with
``offhook.media.sources.resample``. Without espeak-ng (or with
``--no-speech``) "not-in-service" is the special information tone alone and
"enter-pin" a two-note prompt chime. The output is committed; run this
again only to change the sounds.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from numpy.typing import NDArray

from offhook.media import sounds, tones
from offhook.media.sources import resample

RATE = tones.RATE
SPEECH_PEAK = 0.5  # of full scale: -6 dBFS peaks, speech about -20 dBm0 on average
VOICE = ["-v", "en-us", "-s", "150"]


def _silence(seconds: float) -> NDArray[np.int16]:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def speak(text: str) -> NDArray[np.int16] | None:
    """``text`` spoken by espeak-ng at 8 kHz, or None when espeak-ng is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([exe, *VOICE, "-w", str(wav), text], check=True, timeout=60)
        data, rate = soundfile.read(str(wav), dtype="float64", always_2d=True)
    mono = data.mean(axis=1)
    audio = resample(mono, int(rate)).astype(np.float64)
    # Trim espeak's leading and trailing silence, then set the level.
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    if len(loud) == 0:
        return None
    audio = audio[loud[0] : loud[-1] + 1]
    audio *= SPEECH_PEAK / np.abs(audio).max()
    return np.rint(audio * 32767).astype(np.int16)


def chime() -> NDArray[np.int16]:
    """Two soft rising notes (G5, C6): the prompt when no speech synthesiser is available."""
    t = np.arange(round(0.25 * RATE)) / RATE
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / 0.12)
    notes = [np.sin(2 * np.pi * tones.note_freq(m) * t) * envelope * 8000 for m in (79, 84)]
    wave: NDArray[np.float64] = np.rint(np.concatenate(notes))
    return wave.astype(np.int16)


def build(use_speech: bool) -> dict[str, NDArray[np.int16]]:
    said = {name: (speak(text) if use_speech else None) for name, text in sounds.TEXTS.items()}
    not_in_service = [tones.sit()]
    if said["not-in-service"] is not None:
        # tones.sit() ends in a second of silence; half of it is enough before speech.
        not_in_service = [tones.sit()[: -round(0.51 * RATE)], said["not-in-service"]]
    pin = said["enter-pin"]
    out = {
        "ringback": tones.ringback(),
        "busy": tones.busy(),
        "reorder": tones.reorder(),
        "not-in-service": np.concatenate([*not_in_service, _silence(0.5)]),
        "enter-pin": np.concatenate([pin if pin is not None else chime(), _silence(0.5)]),
        "moh": tones.moh_pattern(),
    }
    # Whole 20 ms frames: a player never plays a partial last frame.
    out = {name: np.concatenate([x, _silence((-len(x) % 160) / RATE)]) for name, x in out.items()}
    if set(out) != set(sounds.NAMES):
        raise SystemExit(f"generator and sounds.NAMES disagree: {sorted(out)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-speech", action="store_true", help="tone prompts only")
    parser.add_argument("--out", type=Path, default=sounds.DIRECTORY)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, samples in build(not args.no_speech).items():
        target = args.out / f"{name}.wav"
        soundfile.write(str(target), samples, RATE, subtype="PCM_16", format="WAV")
        size = target.stat().st_size
        total += size
        sys.stderr.write(f"{target}: {len(samples) / RATE:.2f} s, {size} bytes\n")
    sys.stderr.write(f"total {total} bytes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
