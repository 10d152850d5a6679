"""RTP packets (RFC 3550 §5.1) and a sans-IO sender's state (RFC 3551 audio).

``parse_rtp`` reads a version 2 packet: the fixed header, the CSRC list, a
header extension (skipped, RFC 3550 §5.3.1) and padding (removed, §5.1);
every length is checked against the datagram, and anything malformed raises
``RtpError`` (a ``ValueError``). ``pack_rtp`` writes a packet without
padding or extension. ``is_rtcp`` tells RTCP from RTP on a shared port
(RFC 5761 §4). ``RtpStream`` numbers the packets one source sends: sequence
numbers advance by one (mod 2^16), timestamps by the samples each packet
carries (mod 2^32), both starting at random values (RFC 3550 §5.1).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

VERSION = 2
HEADER_SIZE = 12
MAX_CSRC = 15
_HEADER = struct.Struct("!BBHII")
_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
_random = random.SystemRandom()


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP version 2 packet, or a field out of range."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrc: tuple[int, ...] = ()


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; ``RtpError`` when it is not one."""
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpError(f"RTP packet of {size} bytes: shorter than the 12-byte header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != VERSION:
        raise RtpError(f"RTP version {first >> 6}, not 2")
    count = first & 0x0F
    offset = HEADER_SIZE + 4 * count
    if offset > size:
        raise RtpError(f"{count} CSRCs do not fit in {size} bytes")
    csrc = struct.unpack_from(f"!{count}I", data, HEADER_SIZE) if count else ()
    if first & 0x10:
        if offset + 4 > size:
            raise RtpError("header extension cut short")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
        if offset > size:
            raise RtpError(f"header extension of {words} words does not fit in {size} bytes")
    end = size
    if first & 0x20:
        padding = data[-1]
        # The last octet counts the padding, itself included (RFC 3550 §5.1).
        if padding == 0 or size - padding < offset:
            raise RtpError(f"padding of {padding} bytes does not fit")
        end -= padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrc=tuple(csrc),
    )


def _check(packet: RtpPacket) -> None:
    if not 0 <= packet.payload_type <= 0x7F:
        raise RtpError(f"payload type {packet.payload_type} is not 0-127")
    if not 0 <= packet.sequence < _SEQ_MOD:
        raise RtpError(f"sequence number {packet.sequence} is not 16 bits")
    if not 0 <= packet.timestamp < _TS_MOD:
        raise RtpError(f"timestamp {packet.timestamp} is not 32 bits")
    if len(packet.csrc) > MAX_CSRC:
        raise RtpError(f"{len(packet.csrc)} CSRCs: at most 15")
    for source in (packet.ssrc, *packet.csrc):
        if not 0 <= source < _TS_MOD:
            raise RtpError(f"source identifier {source} is not 32 bits")


def pack_rtp(packet: RtpPacket) -> bytes:
    """The wire form of ``packet`` (no padding, no extension); ``RtpError`` on a bad field."""
    _check(packet)
    first = (VERSION << 6) | len(packet.csrc)
    second = (0x80 if packet.marker else 0) | packet.payload_type
    header = _HEADER.pack(first, second, packet.sequence, packet.timestamp, packet.ssrc)
    if packet.csrc:
        header += struct.pack(f"!{len(packet.csrc)}I", *packet.csrc)
    return header + packet.payload


def is_rtcp(data: bytes) -> bool:
    """RTCP rather than RTP on a multiplexed port: RFC 5761 §4 (packet types 192-223)."""
    return len(data) >= 2 and data[0] >> 6 == VERSION and 192 <= data[1] <= 223


class RtpStream:
    """What one RTP source sends: its SSRC, next sequence number and timestamp.

    ``packet`` returns the next packet and advances both counters; ``skip``
    advances the timestamp alone (a 20 ms slot sent as nothing);
    ``packet_at`` sends at an explicit timestamp without moving the
    stream's own (RFC 4733 events: every packet of an event carries the
    event's start timestamp while the sequence number advances). A payload
    type other than the stream's (telephone-event) may be given per packet.
    """

    __slots__ = ("octet_count", "packet_count", "payload_type", "sequence", "ssrc", "timestamp")

    def __init__(
        self,
        payload_type: int,
        ssrc: int | None = None,
        seq: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        if not 0 <= payload_type <= 0x7F:
            raise RtpError(f"payload type {payload_type} is not 0-127")
        self.payload_type = payload_type
        self.ssrc = _random.getrandbits(32) if ssrc is None else ssrc
        self.sequence = _random.getrandbits(16) if seq is None else seq % _SEQ_MOD
        self.timestamp = _random.getrandbits(32) if timestamp is None else timestamp % _TS_MOD
        # RFC 3550 §6.4.1 sender's packet and (payload) octet counts, for a sender report.
        self.packet_count = 0
        self.octet_count = 0
        if not 0 <= self.ssrc < _TS_MOD:
            raise RtpError(f"SSRC {self.ssrc} is not 32 bits")

    def packet(
        self,
        payload: bytes,
        samples: int = 160,
        marker: bool = False,
        payload_type: int | None = None,
    ) -> bytes:
        """The next packet at the stream's timestamp, which then moves on by ``samples``."""
        data = self.packet_at(payload, self.timestamp, marker, payload_type)
        self.skip(samples)
        return data

    def packet_at(
        self,
        payload: bytes,
        timestamp: int,
        marker: bool = False,
        payload_type: int | None = None,
    ) -> bytes:
        """The next packet at ``timestamp``; the stream's own timestamp does not move."""
        pt = self.payload_type if payload_type is None else payload_type
        data = pack_rtp(
            RtpPacket(pt, self.sequence, timestamp % _TS_MOD, self.ssrc, payload, marker)
        )
        self.sequence = (self.sequence + 1) % _SEQ_MOD
        self.packet_count = (self.packet_count + 1) % _TS_MOD
        self.octet_count = (self.octet_count + len(payload)) % _TS_MOD
        return data

    def skip(self, samples: int = 160) -> None:
        """Advance the timestamp by ``samples`` without sending anything."""
        self.timestamp = (self.timestamp + samples) % _TS_MOD
