"""``sip.ingress.is_ongoing``: the peek the rate limit uses, against the full parser.

Whatever the bytes, the peek never raises; on every message the parser
(``codec.parse_message``) accepts, it says "ongoing" exactly for responses,
ACK, CANCEL and requests whose To has a tag as ``SipMessage.to_tag`` reads
it (generated messages in the forms peers write: compact and odd-case header
names, folded To lines, quoted display names with ``<`` and ``;``, tags in
the URI, leading CRLFs).
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.codec import parse_message
from offhook.sip.ingress import is_ongoing
from offhook.sip.message import SipMessage, SipRequest, SipResponse


def expected(msg: SipMessage) -> bool:
    if isinstance(msg, SipResponse):
        return True
    assert isinstance(msg, SipRequest)
    return msg.method in ("ACK", "CANCEL") or bool(msg.to_tag)


def agrees(data: bytes) -> None:
    got = is_ongoing(data)
    assert isinstance(got, bool)
    try:
        msg = parse_message(data)
    except ParseError:
        return
    assert got == expected(msg), data


INVITE = (
    b"INVITE sip:1002@192.0.2.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
    b"From: <sip:1001@192.0.2.9>;tag=a\r\n"
    b"To: <sip:1002@192.0.2.1>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_examples() -> None:
    assert is_ongoing(b"SIP/2.0 180 Ringing\r\n\r\n")
    assert is_ongoing(b"\r\n\r\nSIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n")
    assert not is_ongoing(INVITE)
    assert is_ongoing(INVITE.replace(b"1002@192.0.2.1>\r\n", b"1002@192.0.2.1>;tag=b\r\n"))
    assert is_ongoing(INVITE.replace(b"INVITE sip", b"CANCEL sip", 1))
    assert is_ongoing(INVITE.replace(b"INVITE sip", b"ACK sip", 1))
    # A tag inside the URI is not the To-tag; an empty tag is none.
    assert not is_ongoing(INVITE.replace(b"To: <sip:1002@192.0.2.1>", b"To: <sip:x;tag=1@h>"))
    assert not is_ongoing(INVITE.replace(b"1002@192.0.2.1>\r\n", b"1002@192.0.2.1>;tag=\r\n"))
    # Compact form, odd case, a folded line.
    assert is_ongoing(INVITE.replace(b"To: <sip:1002@192.0.2.1>", b"t :<sip:1002@h>\r\n ;TAG=z"))
    for data in (b"", b"\r\n", b"garbage", INVITE[:40], b"SIP/", b"\xc5\xbfIP/2.0 200 OK\r\n\r\n"):
        agrees(data)


NAMES = st.sampled_from(["To", "to", "TO", "t", "T", "To ", "To\t"])
METHODS = st.sampled_from(["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "ack"])
TOKENS = st.text(alphabet="abcXYZ019-.!%*_+`'~", min_size=1, max_size=8)
DISPLAY = st.one_of(
    st.just(""),
    TOKENS.map(lambda t: f"{t} "),
    st.text(alphabet='ab <>;=tag"\\', max_size=10).map(lambda t: '"' + t.replace('"', "") + '" '),
)
PARAM = st.one_of(
    TOKENS.map(lambda t: f";tag={t}"),
    st.just(";tag="),
    st.just(";TAG = q"),
    TOKENS.map(lambda t: f";x={t}"),
    st.just(';tag="quoted"'),
)


@st.composite
def to_value(draw: st.DrawFn) -> str:
    uri = "sip:" + draw(TOKENS) + "@h" + draw(st.sampled_from(["", ";tag=inuri", ";lr"]))
    params = "".join(draw(st.lists(PARAM, max_size=3)))
    if draw(st.booleans()):
        return f"{draw(DISPLAY)}<{uri}>{params}"
    return f"sip:{draw(TOKENS)}@h{params}"


@st.composite
def message(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        start = f"SIP/2.0 {draw(st.sampled_from(['100', '180', '200', '481']))} X"
    else:
        start = f"{draw(METHODS)} sip:1002@192.0.2.1 SIP/2.0"
    headers = [
        "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK" + draw(TOKENS),
        f"From: <sip:a@h>;tag={draw(TOKENS)}",
        "Call-ID: " + draw(TOKENS),
        "CSeq: 1 INVITE",
    ]
    for _ in range(draw(st.integers(0, 2))):
        to = f"{draw(NAMES)}: {draw(to_value())}"
        if draw(st.booleans()) and ";" in to:
            cut = to.index(";")
            to = to[:cut] + "\r\n " + to[cut:]  # a folded line
        headers.insert(draw(st.integers(0, len(headers))), to)
    lead = "\r\n" * draw(st.integers(0, 2))
    return (lead + start + "\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode()


@given(message())
def test_agrees_with_the_parser_on_generated_messages(data: bytes) -> None:
    agrees(data)


@given(st.binary(max_size=300))
@example(b"ACK sip:a SIP/2.0\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\n\r\n")
def test_never_raises_and_agrees_on_any_bytes(data: bytes) -> None:
    agrees(data)
