"""ris.control_codec: the control endpoint's JSON lines, framed and parsed.

Properties (hypothesis): the line framer gives the same lines however the
bytes arrive, never holds more than its limit, and refuses a longer line
whatever the cut; any bytes either parse as a request or raise
``BadRequest``; a request encodes to one line that parses back to it; an
answer round-trips.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.ris.control_codec import (
    MAX_DEPTH,
    Answer,
    BadRequest,
    ControlProtocolError,
    LineBuffer,
    LineTooLong,
    Request,
    encode_error,
    encode_request,
    encode_result,
    parse_answer,
    parse_request,
)

LIMIT = 64

ops = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
arguments = st.dictionaries(st.text(max_size=10).filter(lambda k: k != "op"), values, max_size=5)


def feed_in_pieces(data: bytes, cuts: list[int], limit: int = LIMIT) -> tuple[list[bytes], bool]:
    """The lines of ``data`` fed cut at ``cuts``, and whether a line was too long."""
    framer = LineBuffer(limit)
    lines: list[bytes] = []
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    try:
        for start, end in itertools.pairwise(points):
            lines += framer.feed(data[start:end])
            assert framer.buffered <= limit
    except LineTooLong as exc:
        assert framer.buffered == 0
        return lines + exc.lines, True
    return lines, False


@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_framing_does_not_depend_on_how_bytes_arrive(data: bytes, cuts: list[int]) -> None:
    assert feed_in_pieces(data, cuts) == feed_in_pieces(data, [])


@given(st.lists(st.binary(max_size=LIMIT).map(lambda b: b.replace(b"\n", b"")), max_size=10))
def test_lines_up_to_the_limit_come_out_as_sent(lines: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    assert feed_in_pieces(data, list(range(0, len(data), 7))) == (lines, False)


@given(st.integers(LIMIT + 1, 4 * LIMIT), st.lists(st.integers(0, 400), max_size=8))
def test_a_line_over_the_limit_is_refused_wherever_it_is_cut(size: int, cuts: list[int]) -> None:
    data = b'{"op": "x"}\n' + b"a" * size + b"\n" + b'{"op": "y"}\n'
    # The line before it still comes out; nothing after it does.
    assert feed_in_pieces(data, cuts) == ([b'{"op": "x"}'], True)


def test_an_unfinished_line_over_the_limit_is_refused_before_its_end() -> None:
    framer = LineBuffer(LIMIT)
    framer.feed(b"a" * LIMIT)
    with pytest.raises(LineTooLong):
        framer.feed(b"a")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_bad_request(data: bytes) -> None:
    try:
        request = parse_request(data)
    except BadRequest:
        return
    assert parse_request(encode_request(request.op, request.args)[:-1]) == request


@given(ops, arguments)
def test_a_request_round_trips_in_one_line(op: str, args: dict[str, Any]) -> None:
    line = encode_request(op, args)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_request(line[:-1]) == Request(op, args)


@given(values)
def test_an_answer_round_trips(result: Any) -> None:
    line = encode_result(result)
    assert line.count(b"\n") == 1
    assert parse_answer(line[:-1]) == Answer(True, result)


@given(st.text(max_size=50))
def test_an_error_round_trips(text: str) -> None:
    assert parse_answer(encode_error(text)[:-1]) == Answer(False, error=text)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"[]",
        b'"status"',
        b"{}",
        b'{"op": 1}',
        b'{"op": "Status"}',
        b'{"op": "a-b"}',
        b'{"op": "' + b"a" * 33 + b'"}',
        b'{"op": "status"',
        b'{"op": "status", "x": NaN}',
        b'{"op": "status", "x": Infinity}',
        b'{"op": "status", "x": 1e999}',
        b'{"op": "status", "x": "\xff"}',
        b'{"op": "status", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"op": "status", "x": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
        b'{"op": "status", "x": ' + b"9" * 5000 + b"}",
        b"GET /status HTTP/1.0",
    ],
)
def test_what_is_no_request(line: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_request(line)


def test_a_request_with_arguments() -> None:
    line = b'{"op": "forward_all", "device": "alice", "dn": "1001", "destination": null}'
    assert parse_request(line) == Request(
        "forward_all", {"device": "alice", "dn": "1001", "destination": None}
    )
    nested = b'{"op": "x", "a": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert parse_request(nested).op == "x"


def test_encoding_refuses_a_bad_op_or_an_op_argument() -> None:
    with pytest.raises(ValueError):
        encode_request("Bad Op", {})
    with pytest.raises(ValueError):
        encode_request("status", {"op": "other"})


def test_results_json_lacks_are_sent_as_text() -> None:
    import datetime as dt

    when = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    assert json.loads(encode_result({"at": when})) == {"ok": True, "result": {"at": str(when)}}


@pytest.mark.parametrize("line", [b"", b"[]", b'{"ok": "yes"}', b"{", b'{"result": 1}'])
def test_what_is_no_answer(line: bytes) -> None:
    with pytest.raises(ControlProtocolError):
        parse_answer(line)


def test_an_error_without_text_still_is_one() -> None:
    assert parse_answer(b'{"ok": false}') == Answer(False, error="error")
