"""Minimal RTCP (RFC 3550 §6): parse compound packets, write SR, RR, SDES and BYE.

``parse_rtcp`` splits a compound packet into its parts (sender and receiver
reports with their report blocks, source descriptions, BYE; any other packet
type is kept as ``OtherRtcp``), checking every length against the datagram;
malformed input raises ``RtcpError`` (a ``ValueError``). ``pack_rtcp`` writes
any of those objects back, and ``pack_sr`` / ``pack_bye`` / ``pack_sdes``
build what a media server sends: a sender report with at most one report
block, its CNAME, and a BYE when a stream ends (§6.1: a compound packet is
these concatenated). Time arrives as an argument (``ntp_timestamp``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE = 200, 201, 202, 203
CNAME = 1
MAX_PARTS = 64  # parts of one compound packet; a datagram holds fewer anyway
_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SENDER = struct.Struct("!IQIII")
_NTP_EPOCH = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_U32 = 1 << 32


class RtcpError(ValueError):
    """Bytes that are not a well-formed RTCP compound packet, or a field out of range."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception statistics about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0-255: lost share since the last report, x 256
    cumulative_lost: int  # signed 24 bits
    highest_sequence: int  # extended highest sequence number received
    jitter: int
    last_sr: int  # middle 32 bits of the last SR's NTP timestamp
    delay_since_last_sr: int  # in 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...]  # (item type, text), CNAME is type 1

    @property
    def cname(self) -> str | None:
        for kind, text in self.items:
            if kind == CNAME:
                return text.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: bytes | None = None


@dataclass(frozen=True, slots=True)
class OtherRtcp:
    """A packet type this module does not interpret (APP, feedback, XR, ...)."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | OtherRtcp


def ntp_timestamp(unix_seconds: float) -> int:
    """64-bit NTP timestamp (RFC 3550 §4) of a Unix time."""
    return round((unix_seconds + _NTP_EPOCH) * _U32) % (1 << 64)


def _blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if offset + count * _BLOCK.size > len(body):
        raise RtcpError(f"{count} report blocks do not fit in {len(body)} bytes")
    blocks = []
    for i in range(count):
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(
            body, offset + i * _BLOCK.size
        )
        cumulative = int.from_bytes(lost, "big", signed=True)
        blocks.append(ReportBlock(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _sdes(body: bytes, count: int) -> SourceDescription:
    chunks = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtcpError("SDES chunk cut short")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtcpError("SDES items not terminated")
            kind = body[offset]
            if kind == 0:
                # The end of the list, then padding to the next 32-bit boundary
                # (the header's 4 bytes keep the body's alignment).
                offset = (offset + 4) & ~3
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpError("SDES item cut short")
            size = body[offset + 1]
            items.append((kind, bytes(body[offset + 2 : offset + 2 + size])))
            offset += 2 + size
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if offset > len(body):
        raise RtcpError("SDES chunk padding cut short")
    return SourceDescription(tuple(chunks))


def _bye(body: bytes, count: int) -> Bye:
    if 4 * count > len(body):
        raise RtcpError(f"BYE of {count} sources in {len(body)} bytes")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    rest = body[4 * count :]
    reason = None
    if rest:
        if 1 + rest[0] > len(rest):
            raise RtcpError("BYE reason cut short")
        reason = bytes(rest[1 : 1 + rest[0]])
    return Bye(tuple(ssrcs), reason)


def _one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < _SENDER.size:
            raise RtcpError("sender report cut short")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER.unpack_from(body)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _blocks(body, _SENDER.size, count))
    if packet_type == RR:
        if len(body) < 4:
            raise RtcpError("receiver report cut short")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _blocks(body, 4, count))
    if packet_type == SDES:
        return _sdes(body, count)
    if packet_type == BYE:
        return _bye(body, count)
    return OtherRtcp(packet_type, count, bytes(body))


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """The packets of an RTCP compound packet; ``RtcpError`` when malformed."""
    parts: list[RtcpPacket] = []
    offset = 0
    if len(data) < _HEADER.size:
        raise RtcpError(f"RTCP packet of {len(data)} bytes")
    while offset < len(data):
        if len(parts) == MAX_PARTS:
            raise RtcpError(f"more than {MAX_PARTS} packets in one compound packet")
        if offset + _HEADER.size > len(data):
            raise RtcpError("RTCP header cut short")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtcpError(f"RTCP version {first >> 6}, not 2")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise RtcpError(f"RTCP packet of {4 * (words + 1)} bytes past the datagram's end")
        body_end = end
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or end - padding < offset + _HEADER.size:
                raise RtcpError(f"RTCP padding of {padding} bytes does not fit")
            body_end -= padding
        parts.append(_one(packet_type, first & 0x1F, data[offset + _HEADER.size : body_end]))
        offset = end
    return parts


def _u32(name: str, value: int) -> None:
    if not 0 <= value < _U32:
        raise RtcpError(f"{name} {value} is not 32 bits")


def _wrap(packet_type: int, count: int, body: bytes) -> bytes:
    if not 0 <= count <= 31:
        raise RtcpError(f"RTCP count {count} is not 0-31")
    if not 0 <= packet_type <= 255:
        raise RtcpError(f"RTCP packet type {packet_type}")
    padding = 0x20 if len(body) % 4 else 0
    if padding:  # only an uninterpreted body can be uneven: pad it (RFC 3550 §6.4.1)
        size = 4 - len(body) % 4
        body += b"\0" * (size - 1) + bytes([size])
    if len(body) > 4 * 0xFFFF:
        raise RtcpError(f"RTCP body of {len(body)} bytes")
    return _HEADER.pack(0x80 | padding | count, packet_type, len(body) // 4) + body


def _pack_blocks(blocks: tuple[ReportBlock, ...]) -> bytes:
    out = b""
    for b in blocks:
        if not 0 <= b.fraction_lost <= 255 or not -(1 << 23) <= b.cumulative_lost < 1 << 23:
            raise RtcpError(f"report block loss {b.fraction_lost}/{b.cumulative_lost}")
        for name in ("ssrc", "highest_sequence", "jitter", "last_sr", "delay_since_last_sr"):
            _u32(name, getattr(b, name))
        lost = b.cumulative_lost.to_bytes(3, "big", signed=True)
        out += _BLOCK.pack(
            b.ssrc,
            b.fraction_lost,
            lost,
            b.highest_sequence,
            b.jitter,
            b.last_sr,
            b.delay_since_last_sr,
        )
    return out


def _pack_sdes(sdes: SourceDescription) -> bytes:
    body = b""
    for chunk in sdes.chunks:
        _u32("SSRC", chunk.ssrc)
        body += struct.pack("!I", chunk.ssrc)
        for kind, text in chunk.items:
            if not 1 <= kind <= 255 or len(text) > 255:
                raise RtcpError(f"SDES item {kind} of {len(text)} bytes")
            body += bytes([kind, len(text)]) + text
        body += b"\0" * (4 - len(body) % 4)  # the terminating null item, then padding
    return _wrap(SDES, len(sdes.chunks), body)


def pack_rtcp(packet: RtcpPacket) -> bytes:
    """The wire form of one RTCP packet (concatenate them for a compound packet)."""
    if isinstance(packet, SenderReport):
        for name in ("ssrc", "rtp_timestamp", "packet_count", "octet_count"):
            _u32(name, getattr(packet, name))
        if not 0 <= packet.ntp_timestamp < 1 << 64:
            raise RtcpError(f"NTP timestamp {packet.ntp_timestamp} is not 64 bits")
        head = _SENDER.pack(
            packet.ssrc,
            packet.ntp_timestamp,
            packet.rtp_timestamp,
            packet.packet_count,
            packet.octet_count,
        )
        return _wrap(SR, len(packet.reports), head + _pack_blocks(packet.reports))
    if isinstance(packet, ReceiverReport):
        _u32("SSRC", packet.ssrc)
        body = struct.pack("!I", packet.ssrc) + _pack_blocks(packet.reports)
        return _wrap(RR, len(packet.reports), body)
    if isinstance(packet, SourceDescription):
        return _pack_sdes(packet)
    if isinstance(packet, Bye):
        for ssrc in packet.ssrcs:
            _u32("SSRC", ssrc)
        body = struct.pack(f"!{len(packet.ssrcs)}I", *packet.ssrcs)
        if packet.reason is not None:
            if len(packet.reason) > 255:
                raise RtcpError(f"BYE reason of {len(packet.reason)} bytes")
            reason = bytes([len(packet.reason)]) + packet.reason
            body += reason + b"\0" * (-len(reason) % 4)
        return _wrap(BYE, len(packet.ssrcs), body)
    return _wrap(packet.packet_type, packet.count, packet.body)


def pack_sr(
    ssrc: int,
    ntp: int,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    report: ReportBlock | None = None,
) -> bytes:
    """A sender report with at most one report block."""
    reports = (report,) if report is not None else ()
    return pack_rtcp(SenderReport(ssrc, ntp, rtp_timestamp, packet_count, octet_count, reports))


def pack_sdes(ssrc: int, cname: str) -> bytes:
    """An SDES packet carrying the CNAME of ``ssrc`` (required in every compound packet)."""
    text = cname.encode("utf-8")
    return pack_rtcp(SourceDescription((SdesChunk(ssrc, ((CNAME, text),)),)))


def pack_bye(ssrc: int, reason: str | None = None) -> bytes:
    """A BYE for ``ssrc``, with an optional reason."""
    encoded = reason.encode("utf-8")[:255] if reason is not None else None
    return pack_rtcp(Bye((ssrc,), encoded))
