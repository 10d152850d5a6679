"""media.rtcp: RFC 3550 compound packets (SR, RR, SDES, BYE, others), parse and pack."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.media.rtcp import (
    Bye,
    OtherRtcp,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_timestamp,
    pack_bye,
    pack_rtcp,
    pack_sdes,
    pack_sr,
    parse_rtcp,
)
from offhook.media.rtp import is_rtcp

BLOCK = ReportBlock(0xCAFE, 25, -3, 70000, 12, 0x12345678, 65536)


def test_sender_report_layout() -> None:
    data = pack_sr(0x01020304, 0x0102030405060708, 160, 2, 320, BLOCK)
    # V=2, RC=1, PT=200, length 12 words (52 bytes).
    assert data[:4] == bytes([0x81, 200, 0, 12]) and len(data) == 52
    assert struct.unpack("!IQIII", data[4:28]) == (0x01020304, 0x0102030405060708, 160, 2, 320)
    # Report block: SSRC, fraction 25, cumulative -3 as 24-bit two's complement, ...
    assert data[28:36] == bytes.fromhex("0000cafe 19 fffffd")
    assert is_rtcp(data)
    (sr,) = parse_rtcp(data)
    assert sr == SenderReport(0x01020304, 0x0102030405060708, 160, 2, 320, (BLOCK,))
    assert pack_sr(1, 2, 3, 4, 5)[:4] == bytes([0x80, 200, 0, 6])


def test_compound_sr_sdes_bye() -> None:
    data = (
        pack_sr(7, ntp_timestamp(0.0), 0, 0, 0)
        + pack_sdes(7, "media@offhook")
        + pack_bye(7, "done")
    )
    sr, sdes, bye = parse_rtcp(data)
    assert isinstance(sr, SenderReport) and sr.ntp_timestamp == 2_208_988_800 << 32
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].ssrc == 7
    assert sdes.chunks[0].cname == "media@offhook"
    assert bye == Bye((7,), b"done")
    assert parse_rtcp(pack_bye(9)) == [Bye((9,), None)]
    assert len(pack_sdes(7, "abcd")) % 4 == 0


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0.5) == (2_208_988_800 << 32) + (1 << 31)
    middle = ntp_timestamp(1.25) >> 16 & 0xFFFFFFFF  # the LSR a receiver echoes
    assert middle & 0xFFFF == 0x4000


def test_receiver_report_and_other_types() -> None:
    rr = ReceiverReport(5, (BLOCK, BLOCK))
    app = OtherRtcp(204, 3, b"name\x00\x00\x00\x01")
    odd = OtherRtcp(205, 1, b"abcde")  # not whole words: packed with padding
    data = pack_rtcp(rr) + pack_rtcp(app) + pack_rtcp(odd)
    assert parse_rtcp(data) == [rr, app, odd]
    assert data[len(data) - 12] & 0x20  # the padding bit of the last packet


def test_sdes_chunks() -> None:
    sdes = SourceDescription(
        (
            SdesChunk(1, ((1, b"a@b"), (2, b"name"), (6, b""))),
            SdesChunk(2, ()),
            SdesChunk(3, ((1, b"x" * 255),)),
        )
    )
    assert parse_rtcp(pack_rtcp(sdes)) == [sdes]
    assert sdes.chunks[1].cname is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "bytes"),
        (b"\x80\xc8\x00", "bytes"),
        (b"\x40\xc8\x00\x00", "version"),
        (b"\x80\xc8\x00\x06" + b"\0" * 20, "past"),  # says 28 bytes, has 24
        (b"\x80\xc8\x00\x01" + b"\0" * 4, "sender report"),
        (b"\x81\xc9\x00\x01" + b"\0" * 4, "report blocks"),  # RC=1, no block
        (b"\x82\xcb\x00\x01" + b"\0" * 4, "BYE"),  # two sources, one present
        (b"\x81\xcb\x00\x02" + b"\0" * 4 + b"\x09abc", "reason"),
        (b"\x81\xca\x00\x02" + b"\0" * 4 + b"\x01\x09abc", "SDES item"),
        (b"\x81\xca\x00\x02" + b"\0" * 4 + b"\x01\x02ab", "terminated"),
        (b"\x82\xca\x00\x02" + b"\0" * 4 + b"\x00\0\0\0", "SDES chunk"),
        (b"\xa0\xcc\x00\x01" + b"\0\0\0\0", "padding"),
        (b"\xa0\xcc\x00\x01" + b"\0\0\0\x09", "padding"),
        (b"\x80\xcc\x00\x00" * 65, "more than"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason):
        parse_rtcp(data)


@pytest.mark.parametrize(
    "packet",
    [
        SenderReport(1 << 32, 0, 0, 0, 0),
        SenderReport(1, 1 << 64, 0, 0, 0),
        SenderReport(1, 0, 0, 0, 0, (BLOCK,) * 32),
        ReceiverReport(1, (ReportBlock(1, 256, 0, 0, 0, 0, 0),)),
        ReceiverReport(1, (ReportBlock(1, 0, 1 << 23, 0, 0, 0, 0),)),
        SourceDescription((SdesChunk(1, ((0, b"x"),)),)),
        SourceDescription((SdesChunk(1, ((1, b"x" * 256),)),)),
        Bye((1,), b"x" * 256),
        OtherRtcp(256, 0, b""),
    ],
)
def test_pack_refuses_out_of_range(packet: object) -> None:
    with pytest.raises(RtcpError):
        pack_rtcp(packet)  # type: ignore[arg-type]


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
block_lists = st.lists(blocks, max_size=4).map(tuple)
packets = st.one_of(
    st.builds(SenderReport, u32, st.integers(0, (1 << 64) - 1), u32, u32, u32, block_lists),
    st.builds(ReceiverReport, u32, block_lists),
    st.builds(
        SourceDescription,
        st.lists(
            st.builds(
                SdesChunk,
                u32,
                st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=40)), max_size=3).map(
                    tuple
                ),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Bye, st.lists(u32, max_size=4).map(tuple), st.none() | st.binary(max_size=40)),
    st.builds(OtherRtcp, st.integers(204, 255), st.integers(0, 31), st.binary(max_size=40)),
)


@given(st.lists(packets, min_size=1, max_size=5))
def test_round_trip(parts: list[object]) -> None:
    data = b"".join(pack_rtcp(p) for p in parts)  # type: ignore[arg-type]
    assert len(data) % 4 == 0
    assert parse_rtcp(data) == parts


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_rtcp_error(data: bytes) -> None:
    try:
        parts = parse_rtcp(data)
    except RtcpError:
        return
    again = b"".join(pack_rtcp(p) for p in parts)
    assert parse_rtcp(again) == parts


@given(
    st.binary(min_size=4, max_size=200), st.sampled_from([200, 201, 202, 203]), st.integers(0, 31)
)
def test_known_types_over_random_bodies(body: bytes, packet_type: int, count: int) -> None:
    words = len(body) // 4
    data = bytes([0x80 | count, packet_type]) + struct.pack("!H", words) + body[: 4 * words]
    try:
        parts = parse_rtcp(data)
    except RtcpError:
        return
    assert len(parts) == 1
    assert parse_rtcp(pack_rtcp(parts[0])) == parts
