"""DTMF as RFC 4733 telephone-events: the payload, a receiver that reports each
digit once, and what a sender puts in the packets of one event.

An event payload is four octets (RFC 4733 §2.3): the event code (0-9, *, #,
A-D are 0-15, §3.2), the end bit, a reserved bit, the volume (0-63, -dBm0)
and the duration in timestamp units (samples at 8 kHz) since the event's
start. Every packet of one event carries the event's start timestamp as its
RTP timestamp, so the receiver tells events apart by it. The sender marks
the first packet (RTP marker bit), repeats the state every packet interval
while the key is held, and sends the final (end) packet three times
(§2.5.1.4).

``DtmfSender`` drives an ``RtpStream`` for the media server: one call of
``tick()`` per 20 ms slot returns the telephone-event packet of that slot
(the stream's timestamp still advances, so the audio that follows lines up),
or None when no event is being sent (the slot is the caller's audio).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from offhook.media.rtp import RtpPacket, RtpStream

EVENTS = "0123456789*#ABCD"
RATE = 8000
FRAME = 160  # samples in a 20 ms packet interval
END_REPEATS = 3
MAX_VOLUME = 63
MAX_DURATION_MS = 8000  # the 16-bit duration field holds 8.19 s at 8 kHz
INTER_DIGIT_MS = 60
_PAYLOAD = struct.Struct("!BBH")
_RECENT = 16  # event timestamps remembered to ignore stragglers of earlier events


class DtmfError(ValueError):
    """A telephone-event payload that is not four well-formed octets, or a bad digit."""


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    event: int
    end: bool
    volume: int
    duration: int


def parse_event(payload: bytes) -> DtmfEvent:
    """Parse an RFC 4733 event payload (exactly four octets)."""
    if len(payload) != _PAYLOAD.size:
        raise DtmfError(f"telephone-event payload of {len(payload)} bytes, not 4")
    event, flags, duration = _PAYLOAD.unpack(payload)
    return DtmfEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def pack_event(ev: DtmfEvent) -> bytes:
    """The four octets of ``ev`` (the reserved bit zero); DtmfError on a field out of range."""
    if not 0 <= ev.event <= 0xFF:
        raise DtmfError(f"event code {ev.event} is not 0-255")
    if not 0 <= ev.volume <= MAX_VOLUME:
        raise DtmfError(f"volume {ev.volume} is not 0-63")
    if not 0 <= ev.duration <= 0xFFFF:
        raise DtmfError(f"duration {ev.duration} is not 16 bits")
    return _PAYLOAD.pack(ev.event, (0x80 if ev.end else 0) | ev.volume, ev.duration)


def digit_for(event: int) -> str | None:
    """The DTMF digit of an event code, or None for codes beyond 15 (RFC 4733 §3.2)."""
    return EVENTS[event] if 0 <= event < len(EVENTS) else None


def event_for(digit: str) -> int:
    """The event code of a DTMF digit (``0-9 * # A-D``, letters in any case)."""
    code = EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return code


def dtmf_packets(digit: str, duration_ms: int = 100, volume: int = 10) -> list[tuple[bytes, bool]]:
    """The payloads of one event, one per 20 ms, each with its RTP marker bit.

    Updates carry the duration so far (160, 320, ...); the last ``END_REPEATS``
    are the same end packet with the full duration. Only the first is marked.
    All are sent with the event's start timestamp.
    """
    if not 0 < duration_ms <= MAX_DURATION_MS:
        raise DtmfError(f"event duration {duration_ms} ms is not 1-{MAX_DURATION_MS}")
    code = event_for(digit)
    slots = -(-duration_ms * RATE // 1000 // FRAME)  # 20 ms slots, rounded up
    updates = [pack_event(DtmfEvent(code, False, volume, n * FRAME)) for n in range(1, slots)]
    end = pack_event(DtmfEvent(code, True, volume, slots * FRAME))
    payloads = [*updates, *[end] * END_REPEATS]
    return [(p, i == 0) for i, p in enumerate(payloads)]


class DtmfDetector:
    """Reports each received RFC 4733 DTMF event once (sans-IO).

    ``feed`` returns the digit on the first packet seen of an event (whatever
    packet that is: the start may be lost) and None for the rest of it: the
    updates, the repeated end packets, and stragglers of recent events. A new
    RTP timestamp is a new event, except the next segment of an event longer
    than the duration field holds (RFC 4733 §2.5.1.3: same code, not ended,
    at the previous start plus its duration). Events other than 0-15 and
    payloads that do not parse are ignored and counted.
    """

    __slots__ = ("_last", "_recent", "ignored", "payload_type", "reported")

    def __init__(self, payload_type: int | None = None) -> None:
        self.payload_type = payload_type
        self._recent: deque[int] = deque(maxlen=_RECENT)
        # (timestamp, event, ended, duration) of the latest event's latest packet.
        self._last: tuple[int, int, bool, int] | None = None
        self.reported = 0
        self.ignored = 0

    def feed(self, packet: RtpPacket) -> str | None:
        if self.payload_type is not None and packet.payload_type != self.payload_type:
            return None
        try:
            ev = parse_event(packet.payload)
        except DtmfError:
            self.ignored += 1
            return None
        digit = digit_for(ev.event)
        if digit is None:
            self.ignored += 1
            return None
        ts = packet.timestamp
        last = self._last
        if last is not None and last[0] == ts:
            self._last = (ts, ev.event, last[2] or ev.end, max(last[3], ev.duration))
            return None
        if ts in self._recent:
            return None
        self._recent.append(ts)
        self._last = (ts, ev.event, ev.end, ev.duration)
        if last is not None and self._continues(last, ts, ev.event):
            return None
        self.reported += 1
        return digit

    @staticmethod
    def _continues(last: tuple[int, int, bool, int], ts: int, event: int) -> bool:
        start, code, ended, duration = last
        return not ended and code == event and ts == (start + duration) % (1 << 32)


class DtmfSender:
    """Sends queued digits as telephone-events on an ``RtpStream``, one slot a tick."""

    __slots__ = ("_pending", "_queue", "_start", "duration_ms", "payload_type", "stream", "volume")

    def __init__(
        self,
        stream: RtpStream,
        payload_type: int,
        duration_ms: int = 100,
        volume: int = 10,
    ) -> None:
        self.stream = stream
        self.payload_type = payload_type
        self.duration_ms = duration_ms
        self.volume = volume
        self._queue: deque[str] = deque()
        # The packets of the event in progress, then the silent gap after it (None slots).
        self._pending: deque[tuple[bytes, bool] | None] = deque()
        self._start = 0

    def queue(self, digits: str) -> None:
        """Append digits to send; DtmfError (nothing queued) if one is not a DTMF digit."""
        for d in digits:
            event_for(d)
        self._queue.extend(digits)

    @property
    def busy(self) -> bool:
        """An event, its trailing gap or more digits are still to send."""
        return bool(self._pending or self._queue)

    def tick(self) -> bytes | None:
        """This 20 ms slot's packet, or None: send audio (or nothing) as usual."""
        if not self._pending and self._queue:
            digit = self._queue.popleft()
            self._start = self.stream.timestamp
            self._pending.extend(dtmf_packets(digit, self.duration_ms, self.volume))
            self._pending.extend([None] * (INTER_DIGIT_MS // 20))
        if not self._pending:
            return None
        slot = self._pending.popleft()
        if slot is None:
            return None
        payload, marker = slot
        data = self.stream.packet_at(payload, self._start, marker, self.payload_type)
        self.stream.skip(FRAME)
        return data
