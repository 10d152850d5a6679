"""ris.control_codec event lines: ``encode_event`` / ``parse_event`` (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.ris.control_codec import (
    MAX_DEPTH,
    ControlProtocolError,
    StreamStart,
    encode_event,
    encode_result,
    parse_answer,
    parse_event,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
events = st.dictionaries(st.text(max_size=12), values, max_size=8)


@given(events)
def test_an_event_is_one_line_that_parses_back_equal(event: dict[str, Any]) -> None:
    line = encode_event(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_event(line[:-1]) == event


@given(st.binary(max_size=200))
def test_any_bytes_are_an_event_or_refused(data: bytes) -> None:
    try:
        event = parse_event(data)
    except ControlProtocolError:
        return
    assert isinstance(event, dict)


@given(st.one_of(st.lists(scalars, max_size=3), scalars))
def test_json_that_is_no_object_is_refused(value: Any) -> None:
    line = encode_event({"v": value})[len(b'{"v":') : -2]  # the value alone
    with pytest.raises(ControlProtocolError, match="an event is a JSON object"):
        parse_event(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": 1e999}',
        b'{"x": [-1.5e400]}',
        b"\xff{}",
        b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
        b"",
    ],
)
def test_what_json_allows_but_is_no_event_is_refused(line: bytes) -> None:
    with pytest.raises(ControlProtocolError):
        parse_event(line)


def test_stream_start_is_a_named_tuple() -> None:
    start = StreamStart(1, 2, False)
    assert start._asdict() == {"first_id": 1, "last_id": 2, "resync": False}
    assert tuple(start) == (1, 2, False)


def _nested(depth: int, inner: Any, kinds: list[bool]) -> Any:
    for n in range(depth):
        inner = {"k": inner} if kinds[n % len(kinds)] else [inner]
    return inner


@given(
    st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3),
    values,
    st.lists(st.booleans(), min_size=1, max_size=5),
    st.text(alphabet="[]{}x", max_size=40),
)
def test_only_a_value_nested_too_deep_is_refused(
    depth: int, leaf: Any, kinds: list[bool], noise: str
) -> None:
    """The walk is skipped for lines with few openers: the verdict is the walk's (brackets
    in strings, which count as openers too, never hide a deep value)."""
    event = {"noise": noise, "v": _nested(depth, leaf, kinds)}
    line = encode_event(event)[:-1]

    def deepest(value: Any) -> int:
        if isinstance(value, dict):
            return 1 + max((deepest(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return 1 + max((deepest(v) for v in value), default=0)
        return 0

    if deepest(event) > MAX_DEPTH:
        with pytest.raises(ControlProtocolError, match="nested too deep"):
            parse_event(line)
    else:
        assert parse_event(line) == event


def test_a_header_byte_that_is_not_utf8_reads_back_as_a_replacement_character() -> None:
    """The node keeps such bytes as lone surrogates (``surrogateescape``), e.g. in a
    User-Agent; read back, they are U+FFFD, so a page or JSON answer can be written."""
    agent = b"Phone \xff\xfe 1.0".decode("utf-8", "surrogateescape")
    event = {"type": "device.registered", "user_agent": agent, agent: [agent]}
    got = parse_event(encode_event(event)[:-1])
    assert got == {
        "type": "device.registered",
        "user_agent": "Phone \ufffd\ufffd 1.0",
        "Phone \ufffd\ufffd 1.0": ["Phone \ufffd\ufffd 1.0"],
    }
    answer = parse_answer(encode_result({"registrations": [{"user_agent": agent}]}))
    assert answer.result == {"registrations": [{"user_agent": "Phone \ufffd\ufffd 1.0"}]}


odd_texts = st.text(st.characters(categories=["Cs", "Ll", "Nd", "So"]), max_size=12)
odd_values = st.recursive(
    st.one_of(st.integers(), odd_texts),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(odd_texts, inner, max_size=4)
    ),
    max_leaves=12,
)


@given(odd_values)
def test_whatever_the_node_sends_reads_back_as_utf8(value: Any) -> None:
    got = parse_answer(encode_result(value)[:-1]).result
    encode_event({"v": got}).decode("utf-8")
    json.dumps(got, ensure_ascii=False).encode("utf-8")  # what a JSON answer writes
