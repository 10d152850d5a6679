"""cti.client_protocol: the messages a CTI client may send, parsed or refused with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.cti.client_protocol import (
    MAX_NAMES,
    MAX_TEXT,
    MAX_TOKEN,
    Auth,
    ClientMessageError,
    Ping,
    Resume,
    Subscribe,
    parse_auth,
    parse_client_message,
)


def parse(obj: Any) -> Any:
    return parse_client_message(json.dumps(obj))


def test_the_three_requests() -> None:
    assert parse({"op": "ping"}) == Ping()
    assert parse({"op": "resume", "after": 17}) == Resume(17)
    assert parse({"op": "subscribe", "devices": ["alice", "alice"], "lines": ["1001"]}) == (
        Subscribe(("alice",), ("1001",))
    )
    assert parse({"op": "subscribe", "devices": ["SEP0011AABBCCDD"]}) == Subscribe(
        ("SEP0011AABBCCDD",), None
    )


@pytest.mark.parametrize(
    "message",
    [
        {"op": "subscribe"},
        {"op": "subscribe", "all": True},
        {"op": "subscribe", "devices": [], "lines": []},
        {"op": "subscribe", "devices": []},
    ],
)
def test_subscribing_to_nothing_named_is_everything(message: dict[str, Any]) -> None:
    request = parse(message)
    assert isinstance(request, Subscribe) and request.everything


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("[]", "object"),
        ('"op"', "object"),
        ("NaN", "not JSON"),
        ('{"op": "resume", "after": NaN}', "not JSON"),
        ('{"op": "resume", "after": 1e999}', "not JSON"),
        ('{"op": "hello"}', "op is one of"),
        ('{"op": 1}', "op is one of"),
        ("{}", "op is one of"),
        ('{"op": "ping", "x": 1}', "unknown key 'x'"),
        ('{"op": "resume"}', "after is an event id"),
        ('{"op": "resume", "after": -1}', "after is an event id"),
        ('{"op": "resume", "after": 1.5}', "after is an event id"),
        ('{"op": "resume", "after": true}', "after is an event id"),
        ('{"op": "resume", "after": "5"}', "after is an event id"),
        ('{"op": "resume", "after": 9223372036854775808}', "after is an event id"),
        ('{"op": "subscribe", "devices": "alice"}', "a list of names"),
        ('{"op": "subscribe", "devices": [1]}', "not a device name"),
        ('{"op": "subscribe", "lines": ["10 01"]}', "not a device name"),
        ('{"op": "subscribe", "lines": ["' + "1" * 65 + '"]}', "not a device name"),
        ('{"op": "subscribe", "all": 1}', "all is true or false"),
        ('{"op": "subscribe", "all": true, "lines": ["1001"]}', "names no devices"),
        ("[" * 100_000 + "]" * 100_000, "too large"),
    ],
)
def test_what_is_refused_and_why(text: str, why: str) -> None:
    with pytest.raises(ClientMessageError, match=why):
        parse_client_message(text)


def test_bounds() -> None:
    many = {"op": "subscribe", "devices": [f"d{n}" for n in range(MAX_NAMES + 1)]}
    with pytest.raises(ClientMessageError, match="at most"):
        parse(many)
    deep = "[" * 5000 + "]" * 5000  # under MAX_TEXT, deeper than the JSON parser goes
    assert len(deep) < MAX_TEXT
    with pytest.raises(ClientMessageError):
        parse_client_message(deep)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused(text: str) -> None:
    try:
        parse_client_message(text)
    except ClientMessageError as exc:
        assert str(exc)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500)
@given(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["subscribe", "resume", "ping", "x"])},
        optional={
            "devices": _JSON,
            "lines": _JSON,
            "after": _JSON,
            "all": _JSON,
        },
    )
)
def test_any_message_shaped_object_parses_or_is_refused(message: dict[str, Any]) -> None:
    try:
        request = parse(message)
    except ClientMessageError:
        return
    if isinstance(request, Subscribe):
        named = [n for names in (request.devices, request.lines) for n in names or ()]
        assert request.everything == (not named)
        assert all(isinstance(n, str) and 0 < len(n) <= 64 for n in named)
        assert len(request.devices or ()) <= MAX_NAMES and len(request.lines or ()) <= MAX_NAMES
    elif isinstance(request, Resume):
        assert request.after == message["after"] and request.after >= 0


# --- the TCP listener's auth line --------------------------------------------------


def test_the_auth_line() -> None:
    assert parse_auth('{"op": "auth", "token": "t0k"}') == Auth("t0k", None)
    assert parse_auth('{"op": "auth", "token": "t0k", "after": 41}') == Auth("t0k", 41)
    for text, why in (
        ('{"op": "ping"}', "the first line is"),
        ('{"op": "auth"}', "token is"),
        ('{"op": "auth", "token": ""}', "token is"),
        ('{"op": "auth", "token": 7}', "token is"),
        ('{"op": "auth", "token": "' + "x" * (MAX_TOKEN + 1) + '"}', "token is"),
        ('{"op": "auth", "token": "t", "after": -1}', "after is"),
        ('{"op": "auth", "token": "t", "after": true}', "after is"),
        ('{"op": "auth", "token": "t", "who": 1}', "unknown key"),
        ("[]", "a JSON object"),
        ("auth me", "not JSON"),
    ):
        with pytest.raises(ClientMessageError, match=why):
            parse_auth(text)


@settings(max_examples=300)
@given(
    st.text(max_size=300)
    | st.fixed_dictionaries(
        {"op": st.sampled_from(["auth", "ping"])},
        optional={"token": _JSON, "after": _JSON, "x": _JSON},
    ).map(json.dumps)
)
def test_any_first_line_is_an_auth_or_refused(text: str) -> None:
    try:
        auth = parse_auth(text)
    except ClientMessageError as exc:
        assert str(exc)
        return
    assert isinstance(auth.token, str) and 0 < len(auth.token) <= MAX_TOKEN
    assert auth.after is None or auth.after >= 0
