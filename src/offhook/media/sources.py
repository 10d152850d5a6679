"""Audio sources for the media server: files decoded to 8 kHz, and shared playback.

``load_audio`` reads a WAV, FLAC or OGG file (anything libsndfile reads)
with ``soundfile``, block by block: each block is mixed to mono and fed to
a streaming resampler, so memory follows the 8 kHz result, not the source.
The resampler is a windowed-sinc polyphase filter (Kaiser window, cutoff
just under the lower of the two Nyquist frequencies, so nothing above 4 kHz
folds back into the telephone band). Decoded files are cached by resolved
path, modification time and size; a file that changes is decoded again.
Unreadable, empty, over-long (``MAX_SECONDS``) or absurd files
(``MAX_CHANNELS``, rates outside ``MIN_RATE``-``MAX_RATE``) raise ``AudioError``.

``Broadcast`` plays samples in a loop at a position shared by every
listener: the frame of global tick ``t`` is the same for all of them, and
its encoded payload is computed once per codec per tick.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from numpy.typing import NDArray

from offhook.media import g711

RATE = 8000
FRAME = 160
MAX_SECONDS = 30 * 60
MAX_CHANNELS = 32
MIN_RATE = 1000
MAX_RATE = 192_000
CACHE_ENTRIES = 16
MAX_PHASES = 512
_BLOCK = 1 << 16  # source frames read at a time
_GATHER = 1 << 20  # input samples gathered at once by the resampler
# Resampling filter: zero crossings on each side of the centre, the cutoff as a
# share of the lower Nyquist frequency, and the Kaiser window's beta (about
# -80 dB stop band).
_ZEROS = 12
_ROLLOFF = 0.92
_BETA = 8.0


class AudioError(ValueError):
    """A file that cannot be used as a source (unreadable, empty, too long)."""


class Resampler:
    """Streaming rational resampler ``in_rate`` -> ``out_rate`` (float samples).

    Output sample n sits at input position n * in_rate / out_rate; it is the
    sum of the inputs around it weighted by a Kaiser-windowed sinc. The
    position's fractional part takes one of ``up`` values (``up`` / ``down``
    is the reduced rate ratio), so the weights form a table of ``up`` rows;
    for odd rates whose ``up`` exceeds ``MAX_PHASES`` the position is rounded
    to 1/``MAX_PHASES`` of an input sample (a timing error far below what
    G.711 resolves).
    """

    __slots__ = ("_bank", "_base", "_buf", "_next", "down", "half", "phases", "up")

    def __init__(self, in_rate: int, out_rate: int = RATE) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates {in_rate} -> {out_rate}")
        g = math.gcd(in_rate, out_rate)
        self.up, self.down = out_rate // g, in_rate // g
        self.phases = min(self.up, MAX_PHASES)
        scale = min(1.0, self.up / self.down) * _ROLLOFF  # cutoff / input Nyquist
        self.half = math.ceil(_ZEROS / scale)  # taps on each side
        offsets = np.arange(-self.half + 1, self.half + 1)  # input k0 + j, j in offsets
        frac = np.arange(self.phases) / self.phases
        t = offsets[np.newaxis, :] - frac[:, np.newaxis]  # tap distance from the position
        window = np.i0(_BETA * np.sqrt(np.clip(1.0 - (t / self.half) ** 2, 0.0, 1.0)))
        self._bank = (scale * np.sinc(scale * t) * window / np.i0(_BETA)).astype(np.float32)
        # Input samples from absolute index ``_base`` on; zeros stand before the start.
        self._buf = np.zeros(self.half, dtype=np.float32)
        self._base = -self.half
        self._next = 0  # the next output sample's index

    def _position(self, n: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        # Input position of output n in 1/phases units, rounded: (whole sample, phase).
        if self.phases == self.up:
            scaled = n * self.down
        else:
            scaled = (2 * n * self.down * self.phases + self.up) // (2 * self.up)
        return scaled // self.phases, scaled % self.phases

    def _run(self, available: int) -> NDArray[np.float32]:
        # Outputs whose last tap (k0 + half) lies below ``available``.
        limit = available - self.half - 1  # the largest usable k0
        last = ((limit + 1) * self.up - 1) // self.down
        while last >= self._next and self._position(np.array([last]))[0][0] > limit:
            last -= 1  # rounding moved the position past the limit
        if last < self._next:
            return np.zeros(0, dtype=np.float32)
        taps = np.arange(-self.half + 1, self.half + 1)
        step = max(1, _GATHER // len(taps))
        parts = []
        for first in range(self._next, last + 1, step):
            n = np.arange(first, min(first + step, last + 1), dtype=np.int64)
            k0, phase = self._position(n)
            index = (k0 - self._base)[:, np.newaxis] + taps
            parts.append(np.einsum("ij,ij->i", self._buf[index], self._bank[phase]))
        self._next = last + 1
        keep = int(self._position(np.array([self._next]))[0][0]) - self.half + 1
        if keep > self._base:
            self._buf = self._buf[keep - self._base :]
            self._base = keep
        return np.concatenate(parts).astype(np.float32)

    def feed(self, samples: NDArray[Any]) -> NDArray[np.float32]:
        """Take mono input; return every output it completes."""
        self._buf = np.concatenate([self._buf, np.asarray(samples, dtype=np.float32)])
        return self._run(self._base + len(self._buf))

    def flush(self, total_in: int) -> NDArray[np.float32]:
        """The remaining outputs of an input of ``total_in`` samples (zeros after it)."""
        wanted = -(-total_in * self.up // self.down)  # outputs positioned within the input
        pad = np.zeros(2 * self.half + 2, dtype=np.float32)
        self._buf = np.concatenate([self._buf, pad])
        done = self._next
        out = self._run(self._base + len(self._buf))
        return out[: max(0, wanted - done)]


def resample(samples: NDArray[Any], in_rate: int, out_rate: int = RATE) -> NDArray[np.float32]:
    """Resample a whole mono signal (float in, float32 out)."""
    if in_rate == out_rate:
        return np.asarray(samples, dtype=np.float32)
    r = Resampler(in_rate, out_rate)
    head = r.feed(samples)
    return np.concatenate([head, r.flush(len(samples))])


def _to_int16(x: NDArray[np.float32]) -> NDArray[np.int16]:
    scaled: NDArray[np.float32] = np.clip(np.rint(x * 32767.0), -32768, 32767)
    return scaled.astype(np.int16)


_cache: OrderedDict[tuple[str, int, int], NDArray[np.int16]] = OrderedDict()
_cache_lock = threading.Lock()


def load_audio(path: str | Path) -> NDArray[np.int16]:
    """The file as 8 kHz mono int16 samples (cached; the array is read-only)."""
    try:
        resolved = Path(path).resolve(strict=True)
        st = resolved.stat()
    except (OSError, RuntimeError) as exc:
        raise AudioError(f"cannot read {path}: {exc}") from None
    if not resolved.is_file():
        raise AudioError(f"{path} is not a file")
    key = (str(resolved), st.st_mtime_ns, st.st_size)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    samples = _decode(resolved)
    samples.flags.writeable = False
    with _cache_lock:
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]  # an earlier version of the same file
        _cache[key] = samples
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return samples


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _decode(path: Path) -> NDArray[np.int16]:
    try:
        with soundfile.SoundFile(str(path)) as f:
            return _decode_open(path, f)
    except AudioError:
        raise
    except (RuntimeError, OSError, ValueError, EOFError, TypeError, MemoryError) as exc:
        # soundfile reports bad files as LibsndfileError (a RuntimeError), and some
        # malformed headers as ValueError or TypeError.
        raise AudioError(f"cannot decode {path.name}: {exc}") from None


def _decode_open(path: Path, f: Any) -> NDArray[np.int16]:
    rate, channels = int(f.samplerate), int(f.channels)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path.name}: sample rate {rate} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{path.name}: {channels} channels")
    frames = int(f.frames)
    if frames > MAX_SECONDS * rate:
        raise AudioError(f"{path.name}: {frames / rate:.0f} s long, more than {MAX_SECONDS} s")
    resampler = Resampler(rate) if rate != RATE else None
    parts: list[NDArray[np.int16]] = []
    total_in = 0
    limit_in = MAX_SECONDS * rate
    while True:
        block = f.read(_BLOCK, dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        total_in += len(block)
        if total_in > limit_in:  # the header lied about the length
            raise AudioError(f"{path.name}: more than {MAX_SECONDS} s long")
        mono = block.mean(axis=1, dtype=np.float32)
        parts.append(_to_int16(resampler.feed(mono) if resampler else mono))
    if resampler is not None and total_in:
        parts.append(_to_int16(resampler.flush(total_in)))
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    if len(samples) == 0:
        raise AudioError(f"{path.name}: no audio")
    return samples


class Broadcast:
    """A looping source at a shared position: every listener of tick t hears one frame."""

    __slots__ = ("_frame_cache", "_payloads", "frame", "samples")

    def __init__(self, samples: NDArray[np.int16], frame: int = FRAME) -> None:
        if len(samples) == 0 or frame < 1:
            raise ValueError("a broadcast needs samples and a positive frame size")
        view = np.asarray(samples, dtype=np.int16).view()
        view.flags.writeable = False
        self.samples: NDArray[np.int16] = view
        self.frame = frame
        self._frame_cache: tuple[int, NDArray[np.int16]] | None = None
        self._payloads: dict[str, tuple[int, bytes]] = {}

    def frame_at(self, tick: int) -> NDArray[np.int16]:
        """The ``frame`` samples of global 20 ms tick ``tick`` (read-only)."""
        cached = self._frame_cache
        if cached is not None and cached[0] == tick:
            return cached[1]
        n = len(self.samples)
        start = tick * self.frame % n
        if start + self.frame <= n:
            out = self.samples[start : start + self.frame]
        else:
            out = np.take(self.samples, np.arange(start, start + self.frame), mode="wrap")
            out.flags.writeable = False
        self._frame_cache = (tick, out)
        return out

    def payload_at(self, tick: int, codec: str) -> bytes:
        """The G.711 payload of tick ``tick``, encoded once per codec per tick."""
        cached = self._payloads.get(codec)
        if cached is not None and cached[0] == tick:
            return cached[1]
        payload = g711.encode(codec, self.frame_at(tick))
        self._payloads[codec] = (tick, payload)
        return payload
