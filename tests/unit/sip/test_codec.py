"""offhook.sip.codec: datagram parsing, stream framing, salvage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.codec import MAX_HEADERS, StreamFramer, parse_message, salvage_for_400
from offhook.sip.message import Headers, SipRequest, SipResponse

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def invite(body: bytes = SDP, extra: bytes = b"", cl: int | None = None) -> bytes:
    length = len(body) if cl is None else cl
    return (
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710\r\n"
        b"CSeq: 314159 INVITE\r\n" + extra + b"Content-Type: application/sdp\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n" + body
    )


OK = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>;tag=2\r\n"
    b"From: <sip:a@h>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_request() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, SipRequest)
    assert (msg.method, msg.uri) == ("INVITE", "sip:bob@biloxi.example.com")
    assert msg.body == SDP
    assert msg.call_id == "a84b4c76e66710"
    assert msg.cseq == (314159, "INVITE")
    assert msg.branch == "z9hG4bK776asdhds"
    assert msg.from_tag == "1928301774"
    assert msg.headers.get("content-type") == "application/sdp"


def test_response() -> None:
    msg = parse_message(OK)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (200, "OK")
    assert parse_message(OK.replace(b"200 OK", b"180 Ringing Now")).reason == "Ringing Now"  # type: ignore[union-attr]
    no_reason = parse_message(OK.replace(b"200 OK", b"100"))
    assert isinstance(no_reason, SipResponse) and no_reason.reason == ""


def test_compact_forms_and_case() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n"
        b"T: <sip:b@h>\r\ni: cid\r\ncseq: 1 OPTIONS\r\nm: <sip:a@h>\r\nK: timer\r\n"
        b"X-Custom:  value  \r\nL: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert [n for n, _ in msg.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Supported", "X-Custom",
        "Content-Length",
    ]  # fmt: skip
    assert msg.headers.get("x-custom") == "value"


def test_folding() -> None:
    data = invite(extra=b"Subject: first\r\n  second\r\n\tthird\r\nAllow:\r\n INVITE\r\n")
    msg = parse_message(data)
    assert msg.headers.get("Subject") == "first second third"
    assert msg.headers.get("Allow") == "INVITE"


def test_whitespace_before_colon_and_empty_value() -> None:
    msg = parse_message(invite(extra=b"Subject   :\r\nX-A\t: 1\r\n"))
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("X-A") == "1"


def test_leading_crlf_tolerated() -> None:
    assert isinstance(parse_message(b"\r\n\r\n" + invite()), SipRequest)


def test_content_length_rules() -> None:
    # smaller truncates (RFC 3261 §18.3)
    assert parse_message(invite(cl=3)).body == SDP[:3]
    # larger is an error
    with pytest.raises(ParseError) as exc:
        parse_message(invite(cl=len(SDP) + 1))
    assert exc.value.status_hint == 400
    # absent: rest of datagram
    data = invite().replace(b"Content-Length: %d\r\n" % len(SDP), b"")
    assert parse_message(data).body == SDP
    for bad in (b"-1", b"x", b"1 2", b"99999999999", b"\xd9\xa1"):
        with pytest.raises(ParseError):
            parse_message(
                invite().replace(b"Content-Length: %d" % len(SDP), b"Content-Length: " + bad)
            )
    with pytest.raises(ParseError):
        parse_message(invite(extra=b"l: 5\r\n"))


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n",  # no blank line
        b"INVITE  sip:a@b SIP/2.0\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0 \r\n\r\n",
        b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n",
        b"INV<TE sip:a@b SIP/2.0\r\n\r\n",
        b"INVITE sip:a@b SIP/3.0\r\n\r\n",
        b"INVITE sip:a@b HTTP/1.1\r\n\r\n",
        b"INVITE sip:a@b\xff SIP/2.0\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n continued\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nNo colon here\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nX: a\rb\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nX: a\nY: b\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        b"SIP/2.0 099 Low\r\n\r\n",
        b"SIP/2.0 700 High\r\n\r\n",
        b"SIP/2.0 20x OK\r\n\r\n",
        b"SIP/3.0 200 OK\r\n\r\n",
        b"SIP/2.0\r\n\r\n",
    ],
)
def test_rejects(bad: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(bad)


def test_version_505() -> None:
    with pytest.raises(ParseError) as exc:
        parse_message(b"OPTIONS sip:a@b SIP/7.0\r\n\r\n")
    assert exc.value.status_hint == 505


def test_limits() -> None:
    with pytest.raises(ParseError) as exc:
        parse_message(invite(), max_size=100)
    assert exc.value.status_hint == 413
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    with pytest.raises(ParseError) as exc:
        parse_message(invite(extra=many))
    assert exc.value.status_hint == 413
    with pytest.raises(ParseError) as exc:
        parse_message(invite(extra=b"X-Long: " + b"a" * 9000 + b"\r\n"))
    assert exc.value.status_hint == 413
    # a long head with short lines is fine
    ok = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(200))
    assert len(parse_message(invite(extra=ok)).headers) > 200


def test_utf8_and_binary_body() -> None:
    body = bytes(range(256))
    msg = parse_message(invite(body=body, extra="Subject: h\u00e9llo\r\n".encode()))
    assert msg.body == body
    assert msg.headers.get("Subject") == "h\u00e9llo"
    # invalid UTF-8 in a header survives a round trip byte for byte
    raw = invite(extra=b"X-Bin: \xff\xfe\r\n")
    assert parse_message(parse_message(raw).serialize()).headers.get("X-Bin") == "\udcff\udcfe"


# --- StreamFramer ------------------------------------------------------------

STREAM = invite() + OK + b"\r\n\r\n" + invite(body=b"")


def _methods(msgs: list[SipRequest | SipResponse]) -> list[str]:
    return [m.method if isinstance(m, SipRequest) else str(m.status) for m in msgs]


def test_framer_whole() -> None:
    f = StreamFramer()
    msgs = f.feed(STREAM)
    assert _methods(msgs) == ["INVITE", "200", "INVITE"]
    assert msgs[0].body == SDP
    assert f.take_pings() == 1
    assert f.buffered == 0


def test_framer_byte_by_byte() -> None:
    f = StreamFramer()
    msgs: list[SipRequest | SipResponse] = []
    for i in range(len(STREAM)):
        msgs.extend(f.feed(STREAM[i : i + 1]))
    assert _methods(msgs) == ["INVITE", "200", "INVITE"]
    assert msgs[0].body == SDP
    assert f.pings == 1


@pytest.mark.parametrize("cut", [1, 7, 50, 300, len(invite()) - 1, len(invite()) + 5])
def test_framer_split_and_trailing_data(cut: int) -> None:
    f = StreamFramer()
    first = f.feed(STREAM[:cut])
    rest = f.feed(STREAM[cut:] + b"OPTIONS sip:a@b SIP/2.0\r\nContent-Le")
    assert _methods(first + rest) == ["INVITE", "200", "INVITE"]
    assert f.buffered == len(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Le")
    more = f.feed(b"ngth: 2\r\n\r\nhi")
    assert _methods(more) == ["OPTIONS"] and more[0].body == b"hi"


def test_framer_keepalives() -> None:
    f = StreamFramer()
    assert f.feed(b"\r\n\r\n") == []
    assert f.feed(b"\r\n") == []
    assert f.feed(b"\r\n") == []
    assert f.feed(b"\r") == []
    assert f.feed(b"\n\r\n") == []
    assert f.take_pings() == 3
    assert f.take_pings() == 0
    assert _methods(f.feed(b"\r\n" + OK)) == ["200"]


def test_framer_requires_content_length() -> None:
    f = StreamFramer()
    with pytest.raises(ParseError):
        f.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")
    assert f.dead
    with pytest.raises(ParseError):
        f.feed(OK)  # dead after the first error


def test_framer_header_block_limit_before_waiting() -> None:
    f = StreamFramer(max_size=1000)
    f.feed(b"OPTIONS sip:a@b SIP/2.0\r\n")
    with pytest.raises(ParseError) as exc:
        for _ in range(100):
            f.feed(b"X-Junk: " + b"a" * 20 + b"\r\n")
    assert exc.value.status_hint == 413
    assert f.buffered == 0


def test_framer_content_length_limit_before_buffering() -> None:
    f = StreamFramer(max_size=2000)
    with pytest.raises(ParseError) as exc:
        f.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000000\r\n\r\n")
    assert exc.value.status_hint == 413


def test_framer_bad_message() -> None:
    f = StreamFramer()
    with pytest.raises(ParseError):
        f.feed(b"GARBAGE\r\n\r\n")


# --- salvage -------------------------------------------------------------------


def test_salvage() -> None:
    bad = invite(cl=9999).replace(b"INVITE sip:", b"INVITE  sip:")
    req = salvage_for_400(bad)
    assert req is not None
    assert req.method == "INVITE"
    assert req.call_id == "a84b4c76e66710"
    assert req.cseq == (314159, "INVITE")
    assert [n for n, _ in req.headers] == ["Via", "To", "From", "Call-ID", "CSeq"]


def test_salvage_folded_and_compact() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/9.9\r\nv: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\ni: c\r\n"
        b"CSeq: 1\r\n OPTIONS\r\n\r\n"
    )
    req = salvage_for_400(data)
    assert req is not None
    assert req.branch == "z9hG4bK1"
    assert req.cseq == (1, "OPTIONS")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        OK,
        b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: c\r\nCSeq: x INVITE\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nVia: junk\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        b"\xff\xfe garbage",
    ],
)
def test_salvage_refuses(data: bytes) -> None:
    assert salvage_for_400(data) is None


# --- properties ------------------------------------------------------------------

_chunks = st.sampled_from(
    [b"INVITE ", b"SIP/2.0", b" 200 OK", b"sip:a@b ", b"\r\n", b"\r\n\r\n", b"Via: ", b"l: 3",
     b"Content-Length: 0", b" ", b"\t", b":", b"CSeq: 1 INVITE", b"\xff", b"\x00", b"abc"]
)  # fmt: skip
_sip_bytes = st.lists(_chunks, max_size=30).map(b"".join)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=300), _sip_bytes))
def test_parse_or_parse_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except ParseError:
        salvage_for_400(data)  # must not raise either
        return
    assert isinstance(msg, SipRequest | SipResponse)


@settings(max_examples=200)
@given(st.lists(st.one_of(st.binary(max_size=40), _sip_bytes), max_size=8))
def test_framer_only_parse_error(chunks: list[bytes]) -> None:
    f = StreamFramer(max_size=400)
    for c in chunks:
        try:
            f.feed(c)
        except ParseError:
            return


_tok = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,10}", fullmatch=True)
_val = st.from_regex(r"[ -~]{0,30}", fullmatch=True).map(str.strip)


@given(
    _tok,
    st.lists(st.tuples(_tok, _val), max_size=10),
    st.binary(max_size=50),
)
def test_round_trip(method: str, headers: list[tuple[str, str]], body: bytes) -> None:
    hs = [(n, v) for n, v in headers if n.lower() not in ("content-length", "l")]
    req = SipRequest(headers=Headers(hs), body=body, method=method, uri="sip:x@example.com")
    again = parse_message(req.serialize())
    assert isinstance(again, SipRequest)
    assert (again.method, again.uri, again.body) == (method, req.uri, body)
    assert [(n, v) for n, v in again.headers if n != "Content-Length"] == list(req.headers)
    # and through the stream framer, split in two
    wire = req.serialize()
    f = StreamFramer()
    got = f.feed(wire[: len(wire) // 2]) + f.feed(wire[len(wire) // 2 :])
    assert len(got) == 1 and got[0].body == body
