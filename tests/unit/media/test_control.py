"""media.control: line framing, request/reply/event codec and field validation."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.media import control
from offhook.media.control import (
    MAX_LINE,
    Codec,
    Connect,
    ControlError,
    Direction,
    Dtmf,
    Event,
    Hello,
    Join,
    Leave,
    LineFramer,
    Open,
    Ping,
    Play,
    Release,
    Reply,
    Source,
    SourceFile,
    Sources,
    Stats,
    Stop,
    encode_event,
    encode_reply,
    encode_request,
    parse_message,
    parse_request,
    parse_source,
)


def line(**obj: Any) -> bytes:
    return json.dumps(obj).encode()


# -- framing -----------------------------------------------------------------


def test_framer_whole_bytewise_and_trailing() -> None:
    data = b'{"a":1}\n{"b":2}\r\n\n{"c"'
    assert LineFramer().feed(data) == [b'{"a":1}', b'{"b":2}']
    framer = LineFramer()
    out: list[bytes] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    assert out == [b'{"a":1}', b'{"b":2}']
    assert framer.buffered == 4
    assert framer.feed(b":3}\n") == [b'{"c":3}']
    assert framer.buffered == 0


def test_framer_refuses_a_long_line_without_buffering_it() -> None:
    framer = LineFramer(max_line=100)
    assert framer.feed(b"x" * 100) == []
    with pytest.raises(ControlError) as info:
        framer.feed(b"x")
    assert info.value.fatal
    assert framer.buffered == 0
    # A long line that arrives whole with its newline is refused too.
    with pytest.raises(ControlError):
        LineFramer(max_line=100).feed(b"y" * 101 + b"\n")
    # Exactly max_line is fine.
    assert LineFramer(max_line=100).feed(b"z" * 100 + b"\n") == [b"z" * 100]


@given(st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), max_size=20))
def test_framer_any_split(chunks: list[bytes]) -> None:
    payload = b"\n".join(chunks) + b"\n"
    expected = [c.removesuffix(b"\r") for c in chunks if c.removesuffix(b"\r")]
    whole = LineFramer().feed(payload)
    assert whole == expected
    framer = LineFramer()
    got: list[bytes] = []
    for i in range(0, len(payload), 7):
        got += framer.feed(payload[i : i + 7])
    assert got == expected


# -- requests ----------------------------------------------------------------


def test_every_command_parses() -> None:
    assert parse_request(line(id=1, cmd="hello", version=1)) == Hello(1, 1)
    assert parse_request(line(id=2, cmd="open", handle="c1.a", family=6)) == Open(2, "c1.a", 6)
    assert parse_request(line(id=2, cmd="open", handle="c1")) == Open(2, "c1", 4)
    req = parse_request(
        line(
            id=3,
            cmd="connect",
            handle="h",
            address="2001:DB8::0:1",
            port=4000,
            codec="PCMA",
            pt=8,
            dtmf_pt=101,
            direction="sendonly",
        )
    )
    assert req == Connect(3, "h", "2001:db8::1", 4000, Codec.PCMA, 8, 101, Direction.SENDONLY)
    req = parse_request(line(id=3, cmd="connect", handle="h", address="192.0.2.1", port=1))
    assert req == Connect(3, "h", "192.0.2.1", 1, Codec.PCMU, 0, None, Direction.SENDRECV)
    assert parse_request(line(id=4, cmd="play", handle="h", source="moh:jazz")) == Play(
        4, "h", Source("moh", "jazz"), True
    )
    assert parse_request(
        line(id=4, cmd="play", handle="h", source="announce:vacant", loop=False)
    ) == Play(4, "h", Source("announce", "vacant"), False)
    assert parse_request(line(id=5, cmd="stop", handle="h")) == Stop(5, "h")
    assert parse_request(line(id=6, cmd="join", handle="h", bridge="conf-1")) == Join(
        6, "h", "conf-1"
    )
    assert parse_request(line(id=7, cmd="leave", handle="h")) == Leave(7, "h")
    assert parse_request(line(id=8, cmd="dtmf", handle="h", digits="12*#AD")) == Dtmf(
        8, "h", "12*#AD"
    )
    assert parse_request(line(id=9, cmd="release", handle="h")) == Release(9, "h")
    assert parse_request(
        line(id=10, cmd="sources", sources=[{"name": "jazz", "path": "/x/jazz.wav"}])
    ) == Sources(10, (SourceFile("jazz", "/x/jazz.wav"),))
    assert parse_request(line(id=11, cmd="stats")) == Stats(11)
    assert parse_request(line(id=12, cmd="ping", extra="ignored")) == Ping(12)


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"id": 1, "cmd": "bogus"}, "unknown cmd"),
        ({"id": 1}, "unknown cmd"),
        ({"id": 1, "cmd": "hello", "version": 2}, "version 2"),
        ({"id": 1, "cmd": "open", "handle": "a b"}, "handle"),
        ({"id": 1, "cmd": "open", "handle": "x" * 65}, "handle"),
        ({"id": 1, "cmd": "open", "handle": ""}, "handle"),
        ({"id": 1, "cmd": "open", "handle": 7}, "handle"),
        ({"id": 1, "cmd": "open", "handle": "h", "family": 5}, "family"),
        ({"id": 1, "cmd": "open", "handle": "h", "family": 4.0}, "family"),
        ({"id": 1, "cmd": "connect", "handle": "h", "address": "x", "port": 1}, "address"),
        ({"id": 1, "cmd": "connect", "handle": "h", "address": "0.0.0.0", "port": 1}, "wildcard"),
        ({"id": 1, "cmd": "connect", "handle": "h", "address": "fe80::1%eth0", "port": 1}, "addr"),
        ({"id": 1, "cmd": "connect", "handle": "h", "address": "10.0.0.1", "port": 0}, "port"),
        ({"id": 1, "cmd": "connect", "handle": "h", "address": "10.0.0.1", "port": True}, "port"),
        (
            {"id": 1, "cmd": "connect", "handle": "h", "address": "10.0.0.1", "port": 9, "pt": 128},
            "pt",
        ),
        (
            {
                "id": 1,
                "cmd": "connect",
                "handle": "h",
                "address": "10.0.0.1",
                "port": 9,
                "codec": "G729",
            },
            "codec",
        ),
        (
            {
                "id": 1,
                "cmd": "connect",
                "handle": "h",
                "address": "10.0.0.1",
                "port": 9,
                "dtmf_pt": 0,
            },
            "dtmf_pt",
        ),
        (
            {
                "id": 1,
                "cmd": "connect",
                "handle": "h",
                "address": "10.0.0.1",
                "port": 9,
                "direction": "both",
            },
            "direction",
        ),
        ({"id": 1, "cmd": "play", "handle": "h", "source": "mp3:x"}, "source"),
        ({"id": 1, "cmd": "play", "handle": "h", "source": "tone:siren"}, "unknown tone"),
        ({"id": 1, "cmd": "play", "handle": "h", "source": "moh:a:b"}, "source"),
        ({"id": 1, "cmd": "play", "handle": "h", "source": "moh:x", "loop": 1}, "loop"),
        ({"id": 1, "cmd": "join", "handle": "h", "bridge": "a/b"}, "bridge"),
        ({"id": 1, "cmd": "dtmf", "handle": "h", "digits": "12x"}, "digits"),
        ({"id": 1, "cmd": "dtmf", "handle": "h", "digits": "1" * 65}, "digits"),
        ({"id": 1, "cmd": "sources", "sources": {"a": "b"}}, "sources"),
        ({"id": 1, "cmd": "sources", "sources": [{"name": "a", "path": "a\0b"}]}, "path"),
        (
            {"id": 1, "cmd": "sources", "sources": [{"name": "a", "path": "/x"}] * 2},
            "twice",
        ),
        (
            {
                "id": 1,
                "cmd": "sources",
                "sources": [{"name": f"s{i}", "path": "/x"} for i in range(65)],
            },
            "at most",
        ),
    ],
)
def test_bad_fields_are_answerable_errors(obj: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ControlError) as info:
        parse_request(json.dumps(obj).encode())
    assert not info.value.fatal
    assert info.value.request_id == 1
    assert fragment in info.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b'{"cmd": "ping"}',
        b'{"id": -1, "cmd": "ping"}',
        b'{"id": "1", "cmd": "ping"}',
        b'{"id": true, "cmd": "ping"}',
        b'{"id": 9007199254740992, "cmd": "ping"}',
        b'{"id": 1.5, "cmd": "ping"}',
        b'{"id": NaN, "cmd": "ping"}',
        b'{"id": 1, "cmd": "ping", "x": Infinity}',
        b'{"id": 1, "cmd": "ping", "x": -2e308}',
        b'{"id": 1, "x": ' + b"9" * 5000 + b"}",
        b"[" * 50000 + b"]" * 50000,
        b'{"id": 1, "cmd": "\xff"}',
        b"{" * (MAX_LINE + 1),
    ],
)
def test_unusable_lines_are_fatal(raw: bytes) -> None:
    with pytest.raises(ControlError) as info:
        parse_request(raw)
    assert info.value.fatal


_names = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
_source_names = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
_ids = st.integers(0, control.MAX_ID)
_v4 = st.ip_addresses(v=4).map(str).filter(lambda a: a != "0.0.0.0")
_v6 = st.ip_addresses(v=6).map(str).filter(lambda a: a != "::" and not a.startswith("::ffff:"))
_sources = st.one_of(
    st.builds(Source, st.just("moh"), _source_names),
    st.builds(Source, st.just("announce"), _source_names),
    st.builds(Source, st.just("tone"), st.sampled_from(sorted(control.TONE_NAMES))),
)


@st.composite
def _connects(draw: st.DrawFn) -> Connect:
    pt = draw(st.integers(0, 127))
    dtmf = draw(st.none() | st.integers(0, 127).filter(lambda x: x != pt))
    return Connect(
        draw(_ids),
        draw(_names),
        draw(_v4 | _v6),
        draw(st.integers(1, 65535)),
        draw(st.sampled_from(Codec)),
        pt,
        dtmf,
        draw(st.sampled_from(Direction)),
    )


_requests = st.one_of(
    st.builds(Hello, _ids),
    st.builds(Open, _ids, _names, st.sampled_from([4, 6])),
    _connects(),
    st.builds(Play, _ids, _names, _sources, st.booleans()),
    st.builds(Stop, _ids, _names),
    st.builds(Join, _ids, _names, _names),
    st.builds(Leave, _ids, _names),
    st.builds(Dtmf, _ids, _names, st.from_regex(r"[0-9*#A-D]{1,64}", fullmatch=True)),
    st.builds(Release, _ids, _names),
    st.builds(
        Sources,
        _ids,
        st.lists(
            st.builds(
                SourceFile,
                _source_names.filter(lambda n: n != "default"),
                st.text(min_size=1, max_size=40).filter(lambda p: "\0" not in p),
            ),
            max_size=5,
            unique_by=lambda s: s.name,
        ).map(tuple),
    ),
    st.builds(Stats, _ids),
    st.builds(Ping, _ids),
)


@given(_requests)
def test_request_round_trip(request: control.Request) -> None:
    data = encode_request(request)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert parse_request(data[:-1]) == request


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_control_error(data: bytes) -> None:
    with contextlib.suppress(ControlError):
        parse_request(data)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "cmd",
                "handle",
                "address",
                "port",
                "family",
                "codec",
                "pt",
                "dtmf_pt",
                "direction",
                "source",
                "loop",
                "bridge",
                "digits",
                "sources",
                "version",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers(-5, 70000)
        | st.text(max_size=20)
        | st.lists(st.integers(), max_size=2),
    )
)
def test_any_object_parses_or_control_error(obj: dict[str, Any]) -> None:
    obj.setdefault("cmd", "connect")
    try:
        parse_request(json.dumps(obj).encode())
    except ControlError as exc:
        assert exc.fatal == (type(obj.get("id")) is not int or not obj["id"] >= 0)


def test_parse_source() -> None:
    assert parse_source("tone:busy") == Source("tone", "busy")
    assert str(parse_source("moh:default")) == "moh:default"
    for bad in ("moh", "moh:", "video:x", "tone:", "moh:" + "x" * 65):
        with pytest.raises(ValueError):
            parse_source(bad)


# -- replies and events ------------------------------------------------------


def test_replies_and_events_round_trip() -> None:
    ok = Reply(7, True, {"address": "192.0.2.1", "port": 20000})
    assert parse_message(encode_reply(ok)[:-1]) == ok
    err = control.error_reply(8, "max_streams reached" + "!" * 1000)
    parsed = parse_message(encode_reply(err)[:-1])
    assert isinstance(parsed, Reply) and not parsed.ok
    assert parsed.error.startswith("max_streams reached") and len(parsed.error) == 300
    ev = Event("dtmf", "h1", {"digit": "5"})
    assert encode_event(ev) == b'{"digit":"5","event":"dtmf","handle":"h1"}\n'
    assert parse_message(encode_event(ev)[:-1]) == ev
    # The reply's own id/ok win over same-named fields.
    assert json.loads(encode_reply(Reply(1, True, {"id": 99, "ok": False}))) == {
        "id": 1,
        "ok": True,
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b'{"id": 1}',
        b'{"ok": true}',
        b'{"event": "dtmf"}',
        b'{"event": 1, "handle": "h"}',
        b'{"id": 1, "ok": "yes"}',
        b"[]",
        b"x",
    ],
)
def test_bad_server_messages_are_fatal(raw: bytes) -> None:
    with pytest.raises(ControlError) as info:
        parse_message(raw)
    assert info.value.fatal


@given(st.binary(max_size=200))
def test_any_bytes_message_or_control_error(data: bytes) -> None:
    with contextlib.suppress(ControlError):
        parse_message(data)
