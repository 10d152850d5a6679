"""A fixed-delay jitter buffer for one received RTP stream (sans-IO).

Packets are ``push``-ed as they arrive and ``pop``-ped once per 20 ms tick
by the mixer, in sequence order. Sequence numbers are unwrapped to an
ever-increasing count around the playout point (the 16-bit wrap is
invisible). The buffer:

- waits until ``depth`` packets are held before playing (``depth`` x 20 ms
  of delay absorbs that much jitter), and again after it ran dry;
- plays each sequence number in its slot: a missing one whose successors
  are already here is lost (its slot is None); one that arrives after its
  slot has gone is late and dropped; one seen twice is a duplicate;
- resynchronises when two consecutive packets land far from the playout
  point (a phone that restarted its stream, RFC 3550 A.1's "two sequential
  packets" rule): it starts over from them; a lone far packet is dropped
  (``strays``);
- never holds more than ``capacity`` packets: when full, the oldest is
  dropped (the sender runs faster than we play, or a burst).

Timestamps are accepted for the callers' convenience and kept with the
packet; playout is by sequence number, one packet a slot.
"""

from __future__ import annotations

from collections import deque

_SEQ_MOD = 1 << 16
_HALF = 1 << 15
_MAX_CAPACITY = 4096  # held packets span less than a quarter of the sequence space


class JitterBuffer:
    __slots__ = (
        "_floor",
        "_held",
        "_played_recent",
        "_playing",
        "_started",
        "_stray",
        "capacity",
        "depth",
        "duplicate",
        "late",
        "lost",
        "overflow",
        "played",
        "resyncs",
        "strays",
        "underruns",
    )

    def __init__(self, depth: int = 3, capacity: int = 50) -> None:
        if not 1 <= depth <= capacity <= _MAX_CAPACITY:
            raise ValueError(
                f"jitter buffer depth {depth}, capacity {capacity}: need 1 <= depth <= capacity"
                f" <= {_MAX_CAPACITY}"
            )
        self.depth = depth
        self.capacity = capacity
        # Unwrapped sequence number -> (timestamp, payload).
        self._held: dict[int, tuple[int, bytes]] = {}
        # The next slot to play: everything before it was played or given up.
        self._floor: int | None = None
        self._playing = False
        # Something was played since the last (re)synchronisation.
        self._started = False
        # A packet far from the playout point, kept until the next one says whether
        # the stream really moved: (raw sequence, unwrapped, timestamp, payload).
        self._stray: tuple[int, int, int, bytes] | None = None
        self._played_recent: deque[int] = deque(maxlen=capacity)
        self.lost = 0
        self.late = 0
        self.duplicate = 0
        self.overflow = 0
        self.played = 0
        self.underruns = 0
        self.resyncs = 0
        self.strays = 0

    def __len__(self) -> int:
        return len(self._held)

    @property
    def playing(self) -> bool:
        """Prefilled and playing out (False while (re)filling)."""
        return self._playing

    def reset(self) -> None:
        """Forget everything held (a new SSRC); the counters stay."""
        self._held.clear()
        self._floor = None
        self._playing = self._started = False
        self._stray = None
        self._played_recent.clear()

    def push(self, sequence: int, timestamp: int, payload: bytes) -> None:
        seq = sequence % _SEQ_MOD
        if self._floor is None:
            self._floor = seq
        floor = self._floor
        ext = floor + ((seq - floor + _HALF) % _SEQ_MOD - _HALF)
        rel = ext - floor
        # Behind the playout point by more than the buffer could ever hold, or ahead
        # by more than twice that (a burst up to capacity is absorbed, the oldest
        # dropped): not this stream's next packets, unless the next one confirms.
        if rel >= 2 * self.capacity or rel < -self.capacity:
            self._far(seq, ext, timestamp, payload)
            return
        if self._stray is not None:
            self._stray = None
            self.strays += 1  # a lone packet far away: dropped
        if rel < 0:
            if self._started:
                if ext in self._played_recent:
                    self.duplicate += 1
                else:
                    self.late += 1
                return
            self._floor = ext  # still filling: an earlier packet, reordered
        if ext in self._held:
            self.duplicate += 1
            return
        self._store(ext, timestamp, payload)

    def _store(self, ext: int, timestamp: int, payload: bytes) -> None:
        if len(self._held) >= self.capacity:
            oldest = min(self._held)
            self.overflow += 1
            if ext < oldest:
                return
            del self._held[oldest]
            if self._floor is not None and self._floor <= oldest:
                self._floor = oldest + 1
        self._held[ext] = (timestamp, payload)

    def _far(self, seq: int, ext: int, timestamp: int, payload: bytes) -> None:
        stray = self._stray
        if stray is not None and (seq - stray[0]) % _SEQ_MOD == 1:
            self._held.clear()
            self._held[stray[1]] = (stray[2], stray[3])
            self._floor = stray[1]
            self._store(stray[1] + 1, timestamp, payload)
            self._playing = self._started = False
            self._stray = None
            self.resyncs += 1
            return
        if stray is not None:
            self.strays += 1
        self._stray = (seq, ext, timestamp, payload)

    def pop(self) -> bytes | None:
        """This tick's payload, or None (filling, lost, or run dry)."""
        if not self._playing:
            if len(self._held) < self.depth:
                return None
            first = min(self._held)
            if self._floor is not None and self._started and first > self._floor:
                self.lost += first - self._floor
            self._floor = first
            self._playing = True
        floor = self._floor
        if floor is None:
            return None
        entry = self._held.pop(floor, None)
        if entry is not None:
            self._floor = floor + 1
            self._started = True
            self._played_recent.append(floor)
            self.played += 1
            return entry[1]
        if not self._held:
            # Ran dry: the slot waits for its packet (or the next ones) and refills.
            self._playing = False
            self.underruns += 1
            return None
        self._floor = floor + 1
        self.lost += 1
        return None
