"""SccpFramer: frames whole, byte by byte, several per chunk; lengths checked first."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common import ParseError
from offhook.sccp import DEFAULT_MAX_SIZE, MESSAGE_TYPES, SccpFramer, encode
from offhook.sccp.messages import (
    CallState,
    KeepAlive,
    KeypadButton,
    Message,
    Register,
    SetLamp,
    StartTone,
)

FLOW: list[Message] = [
    Register("SEP001122334455", 0, 1, "192.0.2.10", 8, 5),
    KeepAlive(),
    KeypadButton(5, 1, 7),
    CallState(1, 1, 7, 0, 4, 0),
    StartTone(0x21, 0, 1, 7),
    SetLamp(9, 1, 2),
]
STREAM = b"".join(encode(m) for m in FLOW)


def test_whole_stream() -> None:
    assert SccpFramer().feed(STREAM) == FLOW


def test_byte_by_byte() -> None:
    framer = SccpFramer()
    out: list[Message] = []
    for i in range(len(STREAM)):
        out += framer.feed(STREAM[i : i + 1])
    assert out == FLOW
    assert framer.buffered == 0


def test_every_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        framer = SccpFramer()
        assert framer.feed(STREAM[:cut]) + framer.feed(STREAM[cut:]) == FLOW


def test_trailing_partial_frame_is_kept() -> None:
    framer = SccpFramer()
    tail = encode(KeepAlive())[:5]
    assert framer.feed(STREAM + tail) == FLOW
    assert framer.buffered == 5
    assert framer.feed(encode(KeepAlive())[5:]) == [KeepAlive()]


def _header(length: int) -> bytes:
    return struct.pack("<III", length, 0, 0)


@pytest.mark.parametrize("length", [0, 1, 3, DEFAULT_MAX_SIZE + 1, 0x7FFFFFFF, 0xFFFFFFFF])
def test_bad_length_rejected_before_buffering(length: int) -> None:
    framer = SccpFramer()
    with pytest.raises(ParseError):
        framer.feed(_header(length) + b"\0" * 64)
    assert framer.buffered == 0
    # dead: the adapter closes the connection
    with pytest.raises(ParseError):
        framer.feed(encode(KeepAlive()))


@pytest.mark.parametrize("length", [4, DEFAULT_MAX_SIZE - 1, DEFAULT_MAX_SIZE])
def test_length_at_limits_is_buffered_not_allocated(length: int) -> None:
    framer = SccpFramer()
    if length == 4:
        assert framer.feed(_header(length)) == [KeepAlive()]
        return
    assert framer.feed(_header(length)) == []
    assert framer.buffered == 12  # only what arrived, never the claimed size
    # message id 0 is KeepAlive: a non-empty body is kept as extra
    out = framer.feed(b"\xaa" * (length - 4))
    assert len(out) == 1
    assert isinstance(out[0], KeepAlive)


def test_small_max_size() -> None:
    framer = SccpFramer(max_size=8)
    with pytest.raises(ParseError):
        framer.feed(encode(KeypadButton(5, 1, 7)))


def test_truncated_body_kills_framer() -> None:
    frame = struct.pack("<III", 8, 0, 0x86) + b"\0\0\0\0"  # SetLamp needs 12 bytes
    framer = SccpFramer()
    with pytest.raises(ParseError):
        framer.feed(frame)
    with pytest.raises(ParseError):
        framer.feed(b"")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.integers(min_value=1, max_value=64))
def test_any_bytes_parse_or_parse_error(data: bytes, chunk: int) -> None:
    framer = SccpFramer(max_size=256)
    try:
        for i in range(0, len(data), chunk):
            for message in framer.feed(data[i : i + chunk]):
                assert isinstance(message, Message)
    except ParseError:
        return
    assert framer.buffered <= 8 + 256


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(MESSAGE_TYPES)), st.binary(min_size=0, max_size=300))
def test_framed_random_bodies(msg_id: int, body: bytes) -> None:
    frame = struct.pack("<III", 4 + len(body), 0, msg_id) + body
    try:
        (message,) = SccpFramer().feed(frame)
    except ParseError:
        return
    again = SccpFramer().feed(encode(message))
    assert again == [message]
