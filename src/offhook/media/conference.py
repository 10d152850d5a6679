"""Conference bridges of the media server: each party hears the others (N-1).

Theory of operation. A party's received audio packets go into its own
``JitterBuffer`` as they arrive (``Party.push``; only 20 ms payloads of
the party's audio payload type: RFC 4733 events go to the DTMF detector,
never into a bridge). Once per 20 ms tick, ``Bridge.mix`` pops one packet
per party (None when it has nothing to play: not sending, lost, buffer
still filling), decodes it, hands every frame to ``mixer.Mixer`` (which
gives each party the sum of the others, with gain so the sum does not clip,
and leaves out silent parties) and encodes each party's mix in the party's
codec. Parties that hear the same mix in the same codec (those that
contributed nothing hear everyone) share one encoding.

A bridge holds at most ``MAX_PARTIES`` parties; a jitter buffer at most
``JITTER_CAPACITY`` packets, so a party flooding its endpoint costs a
bounded amount of memory and the flood is dropped (and counted) there.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from offhook.media import g711
from offhook.media.jitter import JitterBuffer
from offhook.media.mixer import Mixer

MAX_PARTIES = 64
FRAME_BYTES = 160
"""A 20 ms G.711 payload."""
JITTER_DEPTH = 3
JITTER_CAPACITY = 50


class Party:
    """One party of a bridge: its codec, jitter buffer and whether it is heard."""

    __slots__ = ("codec", "jitter", "speaks", "wrong_size")

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.jitter = JitterBuffer(JITTER_DEPTH, JITTER_CAPACITY)
        self.speaks = True  # False while the media server does not receive from it
        self.wrong_size = 0

    def push(self, sequence: int, timestamp: int, payload: bytes) -> None:
        """A received audio packet (payloads other than 20 ms are counted and dropped)."""
        if len(payload) != FRAME_BYTES:
            self.wrong_size += 1
            return
        self.jitter.push(sequence, timestamp, payload)

    def counters(self) -> dict[str, int]:
        j = self.jitter
        return {
            "jitter_lost": j.lost,
            "jitter_late": j.late,
            "jitter_overflow": j.overflow,
            "jitter_underruns": j.underruns,
            "jitter_resyncs": j.resyncs,
            "wrong_size": self.wrong_size,
        }


class Bridge:
    """A named conference: parties by key, mixed once a tick."""

    __slots__ = ("_mixer", "max_parties", "name", "parties")

    def __init__(self, name: str, max_parties: int = MAX_PARTIES) -> None:
        self.name = name
        self.max_parties = max_parties
        self.parties: dict[Hashable, Party] = {}
        self._mixer: Mixer[Hashable] = Mixer()

    def __len__(self) -> int:
        return len(self.parties)

    @property
    def full(self) -> bool:
        return len(self.parties) >= self.max_parties

    def add(self, key: Hashable, party: Party) -> None:
        self.parties[key] = party

    def remove(self, key: Hashable) -> Party | None:
        return self.parties.pop(key, None)

    def mix(self) -> dict[Hashable, bytes]:
        """This tick's payload for every party (each in its own codec)."""
        frames: dict[Hashable, NDArray[np.int16] | None] = {}
        for key, party in self.parties.items():
            payload = party.jitter.pop()
            if payload is None or not party.speaks:
                frames[key] = None
            else:
                frames[key] = g711.decode(party.codec, payload)
        mixed = self._mixer.mix(frames)
        out: dict[Hashable, bytes] = {}
        encoded: dict[tuple[int, str], bytes] = {}
        for key, party in self.parties.items():
            frame: Any = mixed.get(key)
            if frame is None:
                continue
            cache = (id(frame), party.codec)
            data = encoded.get(cache)
            if data is None:
                data = encoded[cache] = g711.encode(party.codec, frame)
            out[key] = data
        return out
