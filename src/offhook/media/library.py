"""What the media server plays: tones, music on hold sources and announcements.

Every play source of the control protocol (``moh:NAME``, ``tone:NAME``,
``announce:NAME``) resolves to a ``Track``: 8 kHz samples decoded once and
a ``sources.Broadcast`` over them that hands out 20 ms frames by position.

- Music on hold is *shared*: a listener hears the track at the server's
  tick, whenever it started listening, so every listener of a source hears
  the same frame and a frame is encoded once per codec per tick however
  many listen. ``moh:default`` always exists: a source named ``default``
  when one was loaded, else the built-in pattern; an unknown name plays it
  (a missing file must not leave a held party in silence).
- Tones and announcements start at their beginning for each listener
  (ringback starts with its ring, an announcement with its first word);
  listeners that start on the same tick still share the encoding.

The ``sources`` request replaces the music on hold set: files are decoded
in a worker thread (the 20 ms tick never waits for a disk), each bounded by
``sources.MAX_SECONDS`` and all of them by ``MAX_TOTAL_SECONDS``, so a
large or hostile file list cannot grow the process without bound.
Announcements (``sounds.NAMES``) are decoded on first use and kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from offhook.media import sounds, tones
from offhook.media.control import DEFAULT_MOH, Source, SourceFile
from offhook.media.sources import AudioError, Broadcast, load_audio

log = logging.getLogger("offhook.media.library")

RATE = 8000
FRAME = 160
MAX_TOTAL_SECONDS = 3600
"""All music on hold files together (57.6 MB of samples; one file may have
``sources.MAX_SECONDS``)."""


@dataclass(eq=False, slots=True)
class Track:
    """Decoded audio ready to play; ``shared``: positions follow the server's tick."""

    key: str
    samples: NDArray[np.int16]
    shared: bool
    broadcast: Broadcast = field(init=False)
    frames: int = field(init=False)

    def __post_init__(self) -> None:
        if len(self.samples) < FRAME:
            self.samples = np.concatenate(
                [self.samples, np.zeros(FRAME - len(self.samples), dtype=np.int16)]
            )
        self.broadcast = Broadcast(self.samples)
        self.frames = -(-len(self.samples) // FRAME)


def _load_file(path: str, budget: float) -> NDArray[np.int16]:
    """One music on hold file, decoded to 8 kHz (worker thread); AudioError on refusal."""
    samples = load_audio(Path(path))
    if len(samples) > budget * RATE:
        raise AudioError(
            f"{len(samples) / RATE:.0f} s long: the sources together may last {MAX_TOTAL_SECONDS} s"
        )
    return samples


class SourceLibrary:
    """The tracks the media server can play; see the module docstring."""

    __slots__ = ("_announcements", "_moh", "_tones", "default_moh")

    def __init__(self) -> None:
        self._tones = {
            name: Track(f"tone:{name}", make(), False) for name, make in tones.TONES.items()
        }
        self.default_moh = Track(f"moh:{DEFAULT_MOH}", tones.moh_pattern(), True)
        self._moh: dict[str, Track] = {}
        self._announcements: dict[str, Track] = {}

    @property
    def moh_names(self) -> list[str]:
        return [DEFAULT_MOH, *(name for name in self._moh if name != DEFAULT_MOH)]

    def track(self, source: Source) -> Track | None:
        """The track of ``source``; None for an announcement or tone that does not exist.

        An announcement's first use decodes its file (a short packaged
        prompt) on the caller's thread.
        """
        if source.kind == "moh":
            found = self._moh.get(source.name) or self._moh.get(DEFAULT_MOH)
            return found or self.default_moh
        if source.kind == "tone":
            return self._tones.get(source.name)
        found = self._announcements.get(source.name)
        if found is None and source.name in sounds.NAMES:
            try:
                samples = load_audio(sounds.path(source.name))
            except AudioError as exc:
                log.error("announcement %s cannot be read: %s", source.name, exc)
                return None
            found = Track(f"announce:{source.name}", samples, False)
            self._announcements[source.name] = found
        return found

    async def load(self, files: Sequence[SourceFile]) -> tuple[list[str], dict[str, str]]:
        """Replace the music on hold set with ``files``; (names loaded, {name: error})."""
        loop = asyncio.get_running_loop()
        loaded: dict[str, Track] = {}
        errors: dict[str, str] = {}
        budget = float(MAX_TOTAL_SECONDS)
        for item in files:
            try:
                samples = await loop.run_in_executor(None, _load_file, item.path, budget)
            except AudioError as exc:
                errors[item.name] = str(exc)
                continue
            except (OSError, ValueError, MemoryError) as exc:
                errors[item.name] = f"cannot read {item.path}: {exc}"
                continue
            budget -= len(samples) / RATE
            loaded[item.name] = Track(f"moh:{item.name}", samples, True)
        self._moh = loaded
        for name, text in errors.items():
            log.warning("music on hold source %s not loaded: %s", name, text)
        return list(loaded), errors
