"""media.rtp: RFC 3550 packets (parse, pack, RTCP demultiplexing) and the sender's stream."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.media.rtp import RtpError, RtpPacket, RtpStream, is_rtcp, pack_rtp, parse_rtp

# A hand-assembled packet: V=2, no padding/extension, CC=0, M=1, PT=0, seq 0x1234,
# ts 0xDEADBEEF, SSRC 0x01020304, four bytes of mu-law silence.
SAMPLE = bytes.fromhex("80 80 1234 deadbeef 01020304 ffffffff")


def test_parse_fixed_header() -> None:
    p = parse_rtp(SAMPLE)
    assert p == RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xff" * 4, marker=True)
    assert pack_rtp(p) == SAMPLE


def test_csrc_extension_and_padding() -> None:
    csrc = struct.pack("!II", 7, 8)
    # Extension: profile 0xBEDE, 2 words of data that must be skipped.
    extension = struct.pack("!HH", 0xBEDE, 2) + b"\xaa" * 8
    payload = b"hello"
    padding = b"\0\0\x03"  # 3 bytes, the count itself included
    first = 0x80 | 0x20 | 0x10 | 2
    data = struct.pack("!BBHII", first, 8, 1, 2, 3) + csrc + extension + payload + padding
    p = parse_rtp(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc) == (8, 1, 2, 3)
    assert p.csrc == (7, 8) and p.payload == payload and not p.marker
    # Packing keeps the CSRCs, drops extension and padding.
    assert parse_rtp(pack_rtp(p)) == p


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter"),
        (SAMPLE[:11], "shorter"),
        (bytes([0x40]) + SAMPLE[1:], "version 1"),
        (bytes([0x00]) + SAMPLE[1:], "version 0"),
        (bytes([0x83]) + SAMPLE[1:12] + b"\0" * 8, "CSRCs"),  # 3 CSRCs, 2 present
        (bytes([0x90]) + SAMPLE[1:12] + b"\xbe\xde", "extension cut short"),
        (bytes([0x90]) + SAMPLE[1:12] + b"\xbe\xde\x00\x02" + b"\0" * 7, "extension of 2"),
        (bytes([0xA0]) + SAMPLE[1:12] + b"ab\x00", "padding of 0"),
        (bytes([0xA0]) + SAMPLE[1:12] + b"ab\x04", "padding of 4"),
        (bytes([0xA0]) + SAMPLE[1:12], "padding"),  # the padding count is the SSRC's last byte
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason.split()[0]):
        parse_rtp(data)


def test_padding_may_take_the_whole_payload() -> None:
    data = bytes([0xA0]) + SAMPLE[1:12] + b"\0\0\x03"
    assert parse_rtp(data).payload == b""


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(128, 0, 0, 0, b""),
        RtpPacket(-1, 0, 0, 0, b""),
        RtpPacket(0, 1 << 16, 0, 0, b""),
        RtpPacket(0, 0, 1 << 32, 0, b""),
        RtpPacket(0, 0, 0, -1, b""),
        RtpPacket(0, 0, 0, 0, b"", csrc=(1 << 32,)),
        RtpPacket(0, 0, 0, 0, b"", csrc=tuple(range(16))),
    ],
)
def test_pack_refuses_out_of_range(packet: RtpPacket) -> None:
    with pytest.raises(RtpError):
        pack_rtp(packet)


def test_is_rtcp() -> None:
    assert not is_rtcp(SAMPLE)
    assert not is_rtcp(b"\x80")
    # SR (200), RR (201), SDES (202), BYE (203), APP (204) and the whole 192-223 range.
    for pt in (192, 200, 201, 202, 203, 204, 223):
        assert is_rtcp(bytes([0x80, pt, 0, 1]))
    # RTP payload types 96/127 with the marker bit set are 224/255: still RTP.
    assert not is_rtcp(bytes([0x80, 0x80 | 96]) + SAMPLE[2:])
    assert not is_rtcp(bytes([0x80, 0x80 | 127]) + SAMPLE[2:])
    assert not is_rtcp(bytes([0x40, 200, 0, 1]))  # version 1


def test_stream_numbers_its_packets() -> None:
    s = RtpStream(0, ssrc=42, seq=0xFFFE, timestamp=(1 << 32) - 160)
    first = parse_rtp(s.packet(b"\xff" * 160, marker=True))
    second = parse_rtp(s.packet(b"\xff" * 160))
    third = parse_rtp(s.packet(b"\xff" * 80, samples=80))
    assert [p.sequence for p in (first, second, third)] == [0xFFFE, 0xFFFF, 0]
    assert [p.timestamp for p in (first, second, third)] == [(1 << 32) - 160, 0, 160]
    assert first.marker and not second.marker
    assert {p.ssrc for p in (first, second, third)} == {42}
    assert s.timestamp == 240 and s.sequence == 1
    assert (s.packet_count, s.octet_count) == (3, 400)


def test_stream_skip_and_explicit_timestamp() -> None:
    s = RtpStream(8, ssrc=1, seq=10, timestamp=1000)
    s.skip()
    s.skip(160)
    assert parse_rtp(s.packet(b"x")).timestamp == 1320
    event_start = s.timestamp
    packets = [
        parse_rtp(s.packet_at(b"e", event_start, i == 0, payload_type=101)) for i in range(3)
    ]
    assert [p.timestamp for p in packets] == [event_start] * 3
    assert [p.sequence for p in packets] == [11, 12, 13]
    assert [p.payload_type for p in packets] == [101] * 3
    assert [p.marker for p in packets] == [True, False, False]
    assert s.timestamp == event_start  # packet_at does not move the stream's timestamp
    assert parse_rtp(s.packet(b"a")).payload_type == 8


def test_stream_random_start() -> None:
    streams = [RtpStream(0) for _ in range(8)]
    assert len({s.ssrc for s in streams}) > 1
    assert all(0 <= s.ssrc < 1 << 32 and 0 <= s.sequence < 1 << 16 for s in streams)
    assert all(0 <= s.timestamp < 1 << 32 for s in streams)
    with pytest.raises(RtpError):
        RtpStream(200)
    with pytest.raises(RtpError):
        RtpStream(0, ssrc=1 << 32)


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
)


@given(packets)
def test_round_trip(packet: RtpPacket) -> None:
    data = pack_rtp(packet)
    assert parse_rtp(data) == packet
    assert len(data) == 12 + 4 * len(packet.csrc) + len(packet.payload)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_rtp_error(data: bytes) -> None:
    try:
        p = parse_rtp(data)
    except RtpError:
        return
    assert len(p.payload) <= len(data) - 12
    assert parse_rtp(pack_rtp(p)) == p


@given(st.binary(min_size=12, max_size=300), st.integers(0, 15), st.booleans(), st.booleans())
def test_mutated_headers(body: bytes, count: int, ext: bool, pad: bool) -> None:
    # Version 2 with arbitrary CSRC count / extension / padding bits over random bytes.
    data = bytes([0x80 | count | (0x10 if ext else 0) | (0x20 if pad else 0)]) + body[1:]
    try:
        p = parse_rtp(data)
    except RtpError:
        return
    assert len(p.csrc) == count
