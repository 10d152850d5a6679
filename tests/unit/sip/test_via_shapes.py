"""``KnownGood.via_shapes``: a Via that differs from one that passed only in its branch
token is not parsed again. The verdicts stay those of checks without any memory, for
Vias whose branch is a token, the bare magic cookie, missing, repeated, quoted, in
another case, followed by blanks or by another parameter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest, SipResponse
from offhook.sip.validate import KnownGood, _via_shape, check_request, check_response

_BRANCHES = st.sampled_from(
    ["z9hG4bK1", "z9hG4bK2", "z9hG4bK", "Z9HG4BK", "z9hG4bK.", "abc", "z9hG4bK@x", "z9hG4bK 1",
     "", '"z9hG4bK3"', "z9hG4bK-1;branch=z9hG4bK-2", "z9hG4bKx;Branch=z9hG4bK", "[::1]"]
)  # fmt: skip
_HEADS = st.sampled_from(
    ["SIP/2.0/UDP h:5060", "SIP/2.0/UDP h", "SIP/3.0/UDP h", "SIP / 2.0 / TCP h", "SIP/2.0/UDP"]
)
_TAILS = st.sampled_from(["", ";rport", ";received=1.2.3.4", ';x="a;branch=b"', " ", ";;"])
_PARAM = st.sampled_from([";branch=", ";Branch=", "; branch=", ";branch = ", ";x=1;branch="])


@st.composite
def _via(draw: st.DrawFn) -> str:
    return draw(_HEADS) + draw(_TAILS) + draw(_PARAM) + draw(_BRANCHES) + draw(_TAILS)


def _msg(first: str, via: str) -> SipRequest | SipResponse | None:
    method = "REGISTER" if first.startswith("SIP/") else first.split()[0]
    text = (
        f"{first}\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n"
        f"Call-ID: c@h\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n\r\n"
    )
    try:
        return parse_message(text.encode())
    except ParseError:  # a value the parser refuses never reaches the checks
        return None


@settings(max_examples=400)
@given(
    st.lists(st.tuples(st.sampled_from(["REGISTER sip:h SIP/2.0", "SIP/2.0 200 OK"]), _via()),
             min_size=1, max_size=10),
    st.integers(1, 4),
)  # fmt: skip
def test_verdicts_as_without_memory(messages: list[tuple[str, str]], limit: int) -> None:
    known = KnownGood(limit)
    for first, via in messages * 2:
        msg = _msg(first, via)
        if isinstance(msg, SipRequest):
            assert check_request(msg, known=known) == check_request(msg)
        elif isinstance(msg, SipResponse):
            assert check_response(msg, known) == check_response(msg)


def test_a_new_branch_is_not_parsed_again() -> None:
    known = KnownGood()
    for n in range(3):
        msg = _msg("REGISTER sip:h SIP/2.0", f"SIP/2.0/UDP h:5060;branch=z9hG4bK-{n};rport")
        assert isinstance(msg, SipRequest)
        assert check_request(msg, known=known) is None
    assert known.via_shapes == {"SIP/2.0/UDP h:5060;branch=z9hG4bK.;rport"}
    assert _via_shape("SIP/2.0/UDP h;branch=a;branch=b") is None
    assert _via_shape('SIP/2.0/UDP h;x="1";branch=a') is None
