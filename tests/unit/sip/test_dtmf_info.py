"""DTMF in SIP INFO: the two body formats, and the one-at-a-time send queue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.dtmf_info import (
    DTMF,
    DTMF_RELAY,
    DigitQueue,
    parse_info_digit,
    relay_body,
)


@pytest.mark.parametrize(
    ("ctype", "body", "digit"),
    [
        (DTMF_RELAY, b"Signal=5\r\nDuration=160\r\n", "5"),
        (DTMF_RELAY, b"Signal= *\r\nDuration=100\r\n", "*"),
        (DTMF_RELAY, b"signal=#\nduration=250", "#"),
        (DTMF_RELAY, b"Duration=160\r\nSignal=a\r\n", "A"),
        (DTMF_RELAY, b"Signal=10\r\n", "*"),  # RFC 4733 event numbers
        (DTMF_RELAY, b"Signal=11\r\n", "#"),
        (DTMF_RELAY, b"Signal=15\r\n", "D"),
        (DTMF_RELAY, b"Signal=16\r\nDuration=500", None),  # hook flash: not a digit
        (DTMF, b"7", "7"),
        (DTMF, b" 0\r\n", "0"),
        ("application/media_control+xml", b"<x/>", None),  # not DTMF: just 200
        (None, b"", None),
    ],
)
def test_parse_info_digit(ctype: str | None, body: bytes, digit: str | None) -> None:
    assert parse_info_digit(ctype, body) == digit


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        (DTMF_RELAY, b"Duration=160\r\n"),  # no Signal
        (DTMF_RELAY, b"Signal=E\r\n"),
        (DTMF_RELAY, b"Signal=99\r\n"),
        (DTMF_RELAY, b"Signal=55\r\n"),
        (DTMF_RELAY, b"Signal=\xff\r\n"),
        (DTMF, b"55"),
        (DTMF, b""),
        (DTMF_RELAY, b"Signal=1\r\n" + b"x" * 2000),
    ],
)
def test_parse_info_digit_bad(ctype: str, body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_info_digit(ctype, body)


@given(st.sampled_from([DTMF_RELAY, DTMF, None, "text/plain"]), st.binary(max_size=300))
def test_parse_or_raise_parse_error(ctype: str | None, body: bytes) -> None:
    try:
        digit = parse_info_digit(ctype, body)
    except ParseError:
        return
    assert digit is None or digit in "0123456789*#ABCD"


@given(st.sampled_from("0123456789*#ABCD"), st.integers(1, 5000))
def test_relay_body_round_trip(digit: str, duration: int) -> None:
    assert parse_info_digit(DTMF_RELAY, relay_body(digit, duration)) == digit


def test_relay_body_format() -> None:
    assert relay_body("5") == b"Signal=5\r\nDuration=160\r\n"
    with pytest.raises(ValueError):
        relay_body("x")


def test_queue_one_outstanding_in_order() -> None:
    q = DigitQueue()
    assert q.push("12x#") == 3  # non-DTMF characters are skipped
    assert q.next_digit() == "1"
    assert q.next_digit() is None  # the first INFO is outstanding
    q.done()
    assert q.next_digit() == "2"
    q.done()
    q.push("a")
    assert q.next_digit() == "#"
    q.done()
    assert q.next_digit() == "A"
    q.done()
    assert q.next_digit() is None
    assert len(q) == 0


def test_queue_is_bounded_and_clears() -> None:
    q = DigitQueue()
    assert q.push("1" * 100) == 64
    q.next_digit()
    q.clear()
    assert len(q) == 0 and not q.outstanding
