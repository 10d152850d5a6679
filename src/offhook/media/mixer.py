"""The conference mix: each party hears the sum of the others (N-1), without clipping.

One ``Mixer`` per bridge; ``mix`` is called once a tick with every party's
decoded frame (None for a party with nothing this tick: silent, lost, or
listen-only). The sums are computed on linear int32 samples in one array
operation: the total of all frames, minus each party's own row.

A sum of several loud talkers exceeds int16. Each listener has an automatic
gain: when its mix would pass ``limit``, the gain drops at once to what
fits (reached over the first ``ramp`` samples of the frame, so the change is
not a click), and recovers slowly afterwards (``release``: the share of the
way back to unity gain taken each frame). Whatever still exceeds int16 (the
start of a sudden loud frame) is clipped, never wrapped around.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

K = TypeVar("K", bound=Hashable)

FRAME = 160  # 20 ms at 8 kHz
LIMIT = 32000  # a little under full scale (and mu-law's 32124)
_UNITY = 1.0 - 1e-3  # a gain this close to 1 is 1 (exact sums again)


class Mixer(Generic[K]):
    __slots__ = ("_gain", "frame", "limit", "ramp", "release", "resized")

    def __init__(
        self,
        frame: int = FRAME,
        limit: int = LIMIT,
        release: float = 0.05,
        ramp: int | None = None,
    ) -> None:
        if frame < 1 or not 0 < limit <= 32767 or not 0.0 < release <= 1.0:
            raise ValueError(f"mixer frame {frame}, limit {limit}, release {release}")
        self.frame = frame
        self.limit = limit
        self.release = release
        self.ramp = max(1, min(frame, frame // 4 if ramp is None else ramp))
        self._gain: dict[K, float] = {}
        self.resized = 0  # frames of another length, padded or cut to ``frame``

    def gain(self, key: K) -> float:
        """The listener's current gain (1.0: unattenuated)."""
        return self._gain.get(key, 1.0)

    def _fit(self, samples: NDArray[np.int16]) -> NDArray[Any]:
        if len(samples) == self.frame:
            return samples
        self.resized += 1
        out = np.zeros(self.frame, dtype=np.int16)
        n = min(len(samples), self.frame)
        out[:n] = samples[:n]
        return out

    def mix(self, frames: Mapping[K, NDArray[np.int16] | None]) -> dict[K, NDArray[np.int16]]:
        """Each key's N-1 mix (``frame`` int16 samples); {} for no parties."""
        if not frames:
            self._gain.clear()
            return {}
        keys = list(frames)
        present = [f for f in frames.values() if f is not None]
        # Row i of ``rows`` is party i's own frame; the extra last row (zeros) is what
        # a party without a frame takes off the total.
        rows = np.zeros((len(present) + 1, self.frame), dtype=np.int32)
        if present:
            rows[:-1] = np.stack([self._fit(f) for f in present])
        has = np.array([f is not None for f in frames.values()])
        own = np.where(has, np.cumsum(has) - 1, len(present))
        total = rows.sum(axis=0)
        sums = total[np.newaxis, :] - rows[own]
        gains = self._apply_gain(keys, sums)
        if gains is None:
            out = sums.astype(np.int16)
        else:
            out = np.clip(np.rint(sums * gains), -32768, 32767).astype(np.int16)
        return {k: out[n] for n, k in enumerate(keys)}

    def _apply_gain(self, keys: list[K], sums: NDArray[np.int32]) -> NDArray[np.float64] | None:
        """The per-sample gain of every row, or None when every row is at unity."""
        old = np.array([self._gain.get(k, 1.0) for k in keys])
        peaks = np.abs(sums).max(axis=1)
        if not np.any(old < 1.0) and int(peaks.max()) <= self.limit:
            self._gain = {}
            return None
        fits = np.minimum(1.0, self.limit / np.maximum(peaks, 1))
        recovered = old + (1.0 - old) * self.release
        new = np.where(fits < old, fits, np.minimum(recovered, fits))
        new = np.where(new >= _UNITY, 1.0, new)
        self._gain = {k: float(g) for k, g in zip(keys, new, strict=True) if g < 1.0}
        # Old gain to new over the first ``ramp`` samples, then the new gain.
        shape = np.minimum(np.arange(1, self.frame + 1) / self.ramp, 1.0)
        ramped: NDArray[np.float64] = old[:, np.newaxis] + (new - old)[:, np.newaxis] * shape
        return ramped
