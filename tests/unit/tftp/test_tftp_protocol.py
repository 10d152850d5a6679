"""TFTP codec and the sans-IO read session, driven by a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common import FakeClock, ParseError
from offhook.tftp.protocol import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OAck,
    Opcode,
    ReadSession,
    Request,
    SessionSettings,
    SessionState,
    parse_packet,
)


def rrq(name: str = "f", mode: str = "octet", **opts: str) -> Request:
    return Request(Opcode.RRQ, name, mode, tuple(opts.items()))


def sent(session: ReadSession) -> list[object]:
    return [parse_packet(d) for d in session.datagrams_to_send()]


# --- codec


@pytest.mark.parametrize(
    "packet",
    [
        Request(Opcode.RRQ, "SEP001122334455.cnf.xml", "octet"),
        Request(Opcode.WRQ, "x", "netascii", (("blksize", "1428"), ("tsize", "0"))),
        Data(1, b"hello"),
        Data(65535, b""),
        Ack(0),
        Error(1, "file not found"),
        OAck((("blksize", "1428"), ("tsize", "100"))),
    ],
)
def test_round_trip(packet: object) -> None:
    assert parse_packet(packet.encode()) == packet  # type: ignore[attr-defined]


def test_option_names_are_case_insensitive_and_mode_lowered() -> None:
    pkt = parse_packet(b"\x00\x01file\x00OCTET\x00BlkSize\x001024\x00")
    assert pkt == Request(Opcode.RRQ, "file", "octet", (("blksize", "1024"),))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\x09abc",
        b"\x00\x01file",  # no NUL
        b"\x00\x01file\x00",  # no mode
        b"\x00\x01\x00octet\x00",  # empty name
        b"\x00\x01f\x00octet\x00blksize\x00",  # option without value
        b"\x00\x03\x00",  # truncated DATA
        b"\x00\x04\x00\x01\x00",  # ACK with trailing byte
        b"\x00\x06x\x00",  # OACK odd fields
        b"\x00\x03\x00\x01" + b"x" * 70000,  # too long
    ],
)
def test_malformed_raises_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_packet(raw)


_OPCODE = st.integers(0, 7).map(lambda op: op.to_bytes(2, "big"))
_FIELD = st.sampled_from([b"f", b"octet", b"blksize", b"1428", b"tsize", b"0", b"", b"\xff"])
_STRUCTURED = st.builds(
    lambda op, fields, tail: op + b"\0".join(fields) + tail,
    _OPCODE,
    st.lists(_FIELD, max_size=8),
    st.sampled_from([b"", b"\0", b"\0\0"]),
)


@given(st.binary(max_size=600) | _STRUCTURED)
def test_any_datagram_parses_or_raises_parse_error(raw: bytes) -> None:
    try:
        pkt = parse_packet(raw)
    except ParseError:
        return
    assert isinstance(pkt, Request | Data | Ack | Error | OAck)
    assert parse_packet(pkt.encode()) == pkt


# --- session


def drive(session: ReadSession, clock: FakeClock) -> bytes:
    """Ack every block in turn; return the reassembled file."""
    out = b""
    while not session.done:
        pkts = sent(session)
        assert len(pkts) == 1
        pkt = pkts[0]
        if isinstance(pkt, OAck):
            session.receive(Ack(0).encode(), clock.monotonic())
            continue
        assert isinstance(pkt, Data)
        out += pkt.payload
        session.receive(Ack(pkt.block).encode(), clock.monotonic())
    return out


def test_plain_transfer_last_block_shorter() -> None:
    clock = FakeClock()
    data = bytes(range(256)) * 5  # 1280 bytes: 512 + 512 + 256
    s = ReadSession(rrq(), data, clock.monotonic())
    pkts = sent(s)
    assert pkts == [Data(1, data[:512])]
    s.receive(Ack(1).encode(), clock.monotonic())
    assert sent(s) == [Data(2, data[512:1024])]
    s.receive(Ack(2).encode(), clock.monotonic())
    assert sent(s) == [Data(3, data[1024:])]
    assert not s.done
    s.receive(Ack(3).encode(), clock.monotonic())
    assert s.state is SessionState.COMPLETE
    assert sent(s) == []
    assert s.next_timer() is None


def test_exact_multiple_ends_with_empty_block() -> None:
    clock = FakeClock()
    data = b"a" * 1024
    s = ReadSession(rrq(), data, clock.monotonic())
    blocks = []
    while not s.done:
        (pkt,) = sent(s)
        assert isinstance(pkt, Data)
        blocks.append(pkt)
        s.receive(Ack(pkt.block).encode(), clock.monotonic())
    assert [len(b.payload) for b in blocks] == [512, 512, 0]
    assert s.state is SessionState.COMPLETE


def test_empty_file_is_one_empty_block() -> None:
    s = ReadSession(rrq(), b"", 0.0)
    assert sent(s) == [Data(1, b"")]
    s.receive(Ack(1).encode(), 0.0)
    assert s.state is SessionState.COMPLETE


def test_blksize_and_tsize_negotiated_with_oack_then_ack0() -> None:
    clock = FakeClock()
    data = bytes(5000)
    s = ReadSession(rrq(blksize="1428", tsize="0"), data, clock.monotonic())
    assert sent(s) == [OAck((("blksize", "1428"), ("tsize", "5000")))]
    s.receive(Ack(0).encode(), clock.monotonic())
    (first,) = sent(s)
    assert isinstance(first, Data) and first.block == 1 and len(first.payload) == 1428
    assert s.blksize == 1428


def test_blksize_clamped_to_server_max_and_out_of_range_ignored() -> None:
    s = ReadSession(rrq(blksize="65464"), b"x", 0.0, SessionSettings(max_blksize=1024))
    assert sent(s) == [OAck((("blksize", "1024"),))]
    s2 = ReadSession(rrq(blksize="7"), b"x", 0.0)
    assert sent(s2) == [Data(1, b"x")]  # no acceptable option: no OACK
    s3 = ReadSession(rrq(blksize="nope", foo="1"), b"x", 0.0)
    assert sent(s3) == [Data(1, b"x")]


def test_full_transfer_with_options_reassembles() -> None:
    clock = FakeClock()
    data = bytes(i % 251 for i in range(100_000))
    s = ReadSession(rrq(blksize="1428", tsize="0"), data, clock.monotonic())
    assert drive(s, clock) == data
    assert s.state is SessionState.COMPLETE


def test_duplicate_ack_is_ignored_no_sorcerers_apprentice() -> None:
    s = ReadSession(rrq(), b"z" * 2000, 0.0)
    sent(s)
    s.receive(Ack(1).encode(), 0.1)
    assert [p.block for p in sent(s)] == [2]  # type: ignore[attr-defined]
    s.receive(Ack(1).encode(), 0.2)  # duplicate
    assert sent(s) == []
    s.receive(Ack(2).encode(), 0.3)
    assert [p.block for p in sent(s)] == [3]  # type: ignore[attr-defined]


def test_retransmit_then_give_up() -> None:
    clock = FakeClock()
    settings = SessionSettings(timeout=1.0, max_retries=3)
    s = ReadSession(rrq(), b"abc", clock.monotonic(), settings)
    first = s.datagrams_to_send()
    assert s.next_timer() == clock.monotonic() + 1.0
    s.handle_timer(clock.monotonic() + 0.5)  # not yet
    assert s.datagrams_to_send() == []
    for _ in range(3):
        clock.advance(1.0)
        s.handle_timer(clock.monotonic())
        assert s.datagrams_to_send() == first
    clock.advance(1.0)
    s.handle_timer(clock.monotonic())
    assert s.state is SessionState.FAILED
    assert s.reason == "timed out"
    assert s.next_timer() is None


def test_client_timeout_option_is_used() -> None:
    s = ReadSession(rrq(timeout="5"), b"abc", 10.0)
    assert sent(s) == [OAck((("timeout", "5"),))]
    assert s.next_timer() == 15.0


def test_missing_file_answers_error_1() -> None:
    s = ReadSession(rrq(), None, 0.0)
    assert sent(s) == [Error(ErrorCode.FILE_NOT_FOUND, "file not found")]
    assert s.state is SessionState.FAILED


def test_explicit_error_content() -> None:
    s = ReadSession(rrq(), Error(ErrorCode.ACCESS_VIOLATION, "no"), 0.0)
    assert sent(s) == [Error(2, "no")]


def test_wrq_refused() -> None:
    s = ReadSession(Request(Opcode.WRQ, "x", "octet"), b"", 0.0)
    assert sent(s) == [Error(ErrorCode.ACCESS_VIOLATION, "read-only server")]


def test_mail_mode_refused() -> None:
    s = ReadSession(rrq(mode="mail"), b"", 0.0)
    (err,) = sent(s)
    assert isinstance(err, Error) and err.code == ErrorCode.ILLEGAL_OPERATION


def test_netascii_converts_line_ends() -> None:
    s = ReadSession(rrq(mode="netascii", tsize="0"), b"a\nb\r", 0.0)
    assert sent(s) == [OAck((("tsize", "6"),))]
    s.receive(Ack(0).encode(), 0.0)
    assert sent(s) == [Data(1, b"a\r\nb\r\0")]


def test_client_error_ends_silently_and_garbage_ends_with_error() -> None:
    s = ReadSession(rrq(blksize="1024"), b"abc", 0.0)
    sent(s)
    s.receive(Error(ErrorCode.OPTION_REFUSED, "no").encode(), 0.0)
    assert s.state is SessionState.FAILED and sent(s) == []
    s2 = ReadSession(rrq(), b"abc", 0.0)
    sent(s2)
    s2.receive(b"\x00", 0.0)
    (err,) = sent(s2)
    assert isinstance(err, Error) and err.code == ErrorCode.ILLEGAL_OPERATION
    assert s2.done


def test_block_numbers_roll_over() -> None:
    s = ReadSession(rrq(blksize="8"), bytes(8 * 65536 + 3), 0.0)
    sent(s)
    s.receive(Ack(0).encode(), 0.0)
    last = None
    while not s.done:
        (pkt,) = sent(s)
        assert isinstance(pkt, Data)
        last = pkt
        s.receive(Ack(pkt.block).encode(), 0.0)
    assert last is not None and last.block == (65537 & 0xFFFF) and len(last.payload) == 3
