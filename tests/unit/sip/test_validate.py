"""offhook.sip.validate: the RFC 3261 §8.2 / RFC 4475 checks after parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest, SipResponse
from offhook.sip.validate import MANDATORY, KnownGood, check_request, check_response

BASE = {
    "Via": "SIP/2.0/UDP h.example.com;branch=z9hG4bKabc",
    "Max-Forwards": "70",
    "To": "<sip:bob@example.com>",
    "From": "<sip:alice@example.com>;tag=1",
    "Call-ID": "cid@h",
    "CSeq": "1 OPTIONS",
}


def req(
    method: str = "OPTIONS",
    uri: str = "sip:bob@example.com",
    body: bytes = b"",
    drop: tuple[str, ...] = (),
    extra: tuple[tuple[str, str], ...] = (),
    **over: str,
) -> SipRequest:
    headers = dict(BASE)
    headers["CSeq"] = f"1 {method}"
    for k, v in over.items():
        headers[k.replace("_", "-")] = v
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    lines += [f"{k}: {v}" for k, v in extra]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def status(msg: SipRequest) -> int | None:
    v = check_request(msg)
    return None if v is None else v[0]


def test_ok() -> None:
    assert check_request(req()) is None
    assert check_request(req(drop=("Max-Forwards",))) is None
    assert check_request(req(Via="SIP/2.0/UDP h")) is None  # RFC 2543: no branch is fine


@pytest.mark.parametrize("name", ["To", "From", "Call-ID", "CSeq", "Via"])
def test_mandatory(name: str) -> None:
    assert status(req(drop=(name,))) == 400


@pytest.mark.parametrize("name", ["To", "From", "Call-ID", "CSeq", "Max-Forwards", "Expires"])
def test_single_valued(name: str) -> None:
    value = "60" if name == "Expires" else BASE[name] if name != "CSeq" else "1 OPTIONS"
    assert status(req(extra=((name, value), (name, value)))) == 400


@pytest.mark.parametrize(
    ("over", "want"),
    [
        ({"CSeq": "1 INVITE"}, 400),
        ({"CSeq": "2147483648 OPTIONS"}, 400),
        ({"CSeq": "x OPTIONS"}, 400),
        ({"Via": "SIP/2.0/UDP h;branch=z9hG4bK"}, 400),
        ({"Via": "SIP/2.0/UDP h;;"}, 400),
        ({"Via": "SIP/3.0/UDP h;branch=z9hG4bK1"}, 400),
        ({"To": '"unterminated <sip:a@b>'}, 400),
        ({"From": "A, B <sip:a@b>;tag=1"}, 400),
        ({"Call-ID": "a@b@c"}, 400),
        ({"Contact": "sip:a@b?Route=x"}, 400),
        ({"Max-Forwards": "256"}, 400),
        ({"Max-Forwards": "-1"}, 400),
        ({"Max-Forwards": "0"}, 483),
        ({"Expires": "4294967296"}, 400),
        ({"Expires": "soon"}, 400),
        ({"Contact": "<sip:a@b>;expires=99999999999"}, 400),
        ({"Date": "Fri, 01 Jan 2010 16:00:00 EST"}, 400),
        ({"Date": "Sat, 13 Nov 2010 23:29:00 GMT"}, None),
        ({"Require": "100rel"}, None),  # supported (RFC 3262)
        ({"Require": "100rel, foo"}, 420),
    ],
)
def test_checks(over: dict[str, str], want: int | None) -> None:
    assert status(req(**over)) == want  # type: ignore[arg-type]


def test_content_length_mismatch() -> None:
    msg = req(Content_Length="0")
    msg.body = b"extra"  # built in code, not parsed: the length no longer matches
    assert status(msg) == 400


def test_require_lists_unsupported() -> None:
    v = check_request(req(Require="foo, bar"))
    assert v == (420, "Bad Extension", {"Unsupported": "foo, bar"})
    assert check_request(req(Require="timer"), supported={"timer"}) is None
    # never for ACK / CANCEL
    assert check_request(req(method="CANCEL", Require="foo")) is None


def test_request_uri() -> None:
    assert status(req(uri="<sip:bob@example.com>")) == 400
    assert status(req(uri="sip:bob@example.com?Route=%3Csip:x%3E")) == 400
    assert status(req(uri="nobody:opaque")) == 416
    assert status(req(uri="tel:+15551234")) == 416
    assert status(req(uri="sips:bob@example.com")) is None


def test_register_to_must_be_sip() -> None:
    assert status(req(method="REGISTER", uri="sip:example.com", To="isbn:2983792873")) == 400
    assert status(req(method="REGISTER", uri="sip:example.com")) is None


def test_content_rules() -> None:
    sdp = b"v=0\r\n"
    assert status(req(method="INVITE", body=sdp, Content_Type="application/sdp")) is None
    v = check_request(req(method="INVITE", body=sdp, Content_Type="text/plain"))
    assert v == (415, "Unsupported Media Type", {"Accept": "application/sdp"})
    assert status(req(method="INVITE", body=sdp)) == 400  # body without Content-Type
    assert status(req(method="MESSAGE", body=b"hi", Content_Type="text/plain")) is None
    assert status(req(method="INVITE", Accept="text/nothing")) == 406
    assert status(req(method="INVITE", Accept="application/sdp;level=1, text/x")) is None


def test_check_response() -> None:
    ok = parse_message(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>;tag=2\r\n"
        b"From: <sip:a@h>;tag=1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(ok, SipResponse)
    assert check_response(ok) is None
    bad = parse_message(bytes(ok.serialize()).replace(b"CSeq: 1 ", b"CSeq: 99999999999 "))
    assert isinstance(bad, SipResponse)
    assert check_response(bad) is not None


_headers = st.lists(
    st.tuples(
        st.sampled_from(["Via", "To", "From", "Contact", "CSeq", "Call-ID", "Require", "Date",
                         "Expires", "Max-Forwards", "Content-Type", "Accept", "Route"]),
        st.text(alphabet=st.sampled_from(list('sip:@<>";,=/ SIP2.0UDPa*?%1z9hG4bK')), max_size=40),
    ),
    max_size=12,
)  # fmt: skip


@settings(max_examples=300)
@given(_headers, st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "ACK"]))
def test_check_request_never_raises(headers: list[tuple[str, str]], method: str) -> None:
    lines = [f"{method} sip:a@b SIP/2.0"] + [f"{n}: {v.strip()}" for n, v in headers]
    try:
        msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    except ParseError:
        return
    assert isinstance(msg, SipRequest)
    v = check_request(msg)
    assert v is None or 400 <= v[0] < 500


def _message(first: str, headers: list[tuple[str, str]]) -> SipRequest | SipResponse | None:
    lines = [first] + [f"{n}: {v.strip()}" for n, v in headers]
    try:
        return parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    except ParseError:
        return None


_firsts = st.sampled_from(
    ["INVITE sip:a@b SIP/2.0", "REGISTER sip:b SIP/2.0", "OPTIONS tel:+1 SIP/2.0",
     "ACK sip:a@b?x=y SIP/2.0", "BYE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 180 Ringing"]
)  # fmt: skip
# Values that pass and fail, so that a sequence reuses both (a dialog repeats its values);
# the first of each passes and is drawn half the time.
_pools = {
    "Via": ["SIP/2.0/UDP h;branch=z9hG4bK1", "SIP/2.0/UDP h;branch=z9hG4bK",
            "SIP/2.0/UDP h, SIP/2.0/TCP g;branch=z9hG4bK", "SIP/3.0/UDP h", "SIP/2.0/UDP h;;"],
    "To": ["<sip:b@h>", "isbn:1234", "<sip:b@h>;tag=2", '"unterminated <sip:a@b>'],
    "From": ["<sip:a@h>;tag=1", "A, B <sip:a@b>", "Al <sip:a@h>;tag=9", "sip:a@h;tag=3"],
    "Call-ID": ["x@h", "a@b@c"],
    "CSeq": ["1 METHOD", "1 INVITE", "1 REGISTER", "1 BYE", "x", "1"],  # METHOD: the request's
    "Contact": ["<sip:a@b>;expires=60", "<sip:a@b>;expires=99999999999", "*", "sip:a@b?x=y",
                "<sip:a@b>, <sip:c@d>;expires=1"],
    "Date": ["Fri, 01 Jan 2010 16:00:00 EST", "Sat, 13 Nov 2010 23:29:00 GMT"],
    "Max-Forwards": ["70", "0", "256"],
}  # fmt: skip
_random = st.tuples(
    st.sampled_from(["Via", "Contact", "Route"]),  # may repeat
    st.text(alphabet=st.sampled_from(list('sip:@<>";,=/ SIP2.0UDPa*?%1z9hG4bK')), max_size=30),
)
_one = st.tuples(
    _firsts,
    st.fixed_dictionaries(
        {n: st.sampled_from([v[0]] * len(v) + v) for n, v in _pools.items() if n in MANDATORY},
        optional={n: st.sampled_from(v) for n, v in _pools.items() if n not in MANDATORY},
    ).map(lambda d: list(d.items())),
    st.lists(_random, max_size=1),
).map(lambda t: (t[0], [(n, v.replace("METHOD", t[0].split()[0])) for n, v in t[1] + t[2]]))
_sequences = st.lists(_one, min_size=1, max_size=12)


@settings(max_examples=300)
@given(_sequences, st.integers(min_value=1, max_value=6))
def test_known_good_changes_no_verdict(
    messages: list[tuple[str, list[tuple[str, str]]]], limit: int
) -> None:
    """The same verdicts with the memory of values that passed as without it, in any order,
    twice over (the second time most values are remembered), whatever its size."""
    known = KnownGood(limit)
    for first, headers in messages * 2:
        msg = _message(first, headers)
        if isinstance(msg, SipRequest):
            assert check_request(msg, known=known) == check_request(msg)
        elif isinstance(msg, SipResponse):
            assert check_response(msg, known) == check_response(msg)


def test_known_good_is_bounded() -> None:
    known = KnownGood(limit=2)
    for i in range(5):
        assert check_request(req(From=f"<sip:a@h>;tag={i}"), known=known) is None
        assert len(known.name_addrs) <= 2 and len(known.vias) <= 2
    long_to = "<sip:" + "b" * 600 + "@h>"
    assert check_request(req(To=long_to), known=known) is None
    assert long_to not in known.name_addrs  # too long to remember: parsed every time
