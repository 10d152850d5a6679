"""The announcements and tones shipped with the package (``media/sounds/*.wav``).

8 kHz mono 16-bit WAV files written by ``scripts/gen_sounds.py`` and
committed: the tones come from ``media.tones``, the spoken prompts from
espeak-ng when it was installed where the files were generated (else the
prompts are tone patterns, see ``TEXTS``). The media server plays them as
``announce:NAME``.

- ``ringback``, ``busy``, ``reorder``: one cadence period of the tone;
- ``not-in-service``: the special information tone, then "The number you
  have dialled is not in service.";
- ``enter-pin``: "Please enter the conference PIN followed by the pound key.";
- ``moh``: the built-in music on hold phrase.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent / "sounds"
NAMES = ("ringback", "busy", "reorder", "not-in-service", "enter-pin", "moh")
TEXTS = {
    "not-in-service": "The number you have dialled is not in service.",
    "enter-pin": "Please enter the conference PIN followed by the pound key.",
}


def path(name: str) -> Path:
    """The WAV file of ``name`` (one of ``NAMES``); KeyError for another name."""
    if name not in NAMES:
        raise KeyError(f"no packaged sound {name!r} (one of {', '.join(NAMES)})")
    return DIRECTORY / f"{name}.wav"
