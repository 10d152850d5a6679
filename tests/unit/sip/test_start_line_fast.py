"""``codec._start_line`` with its session 13 shortcuts (common methods need no token
check, the Request-URI checked by ``str`` predicates instead of a regular expression)
gives what the old one gave for any start line; the old one is kept here as the reference.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip import codec
from offhook.sip.message import Headers, SipRequest, SipResponse


def old_start_line(first: str, headers: Headers) -> SipRequest | SipResponse:
    if first[:4].upper() == "SIP/":
        return codec._start_line(first, headers)  # the status line did not change
    parts = first.split(" ")
    if len(parts) != 3:
        raise ParseError("bad request line")
    method, uri, version = parts
    if codec._TOKEN_RE.match(method) is None:
        raise ParseError("bad method")
    if codec._REQUEST_URI_RE.match(uri) is None:
        raise ParseError("bad Request-URI")
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if codec._VERSION_RE.match(version):
            raise ParseError("SIP version not supported", 505)
        raise ParseError("bad SIP version")
    return SipRequest(headers=headers, method=method, uri=uri)


def _outcome(fn: object, first: str) -> object:
    try:
        msg = fn(first, Headers())  # type: ignore[operator]
    except ParseError as exc:
        return ("error", exc.reason, exc.status_hint)
    assert isinstance(msg, SipRequest)
    return (msg.method, msg.uri)


_METHOD = st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "FOO",
                           "inv ite", "", "IN\x00VITE", "ÄCK", "x-y.z!"])  # fmt: skip
_URI = st.one_of(
    st.sampled_from(["sip:a@b", "sip:a@b;x=\x7f", "", "sip:é@b", "<sip:a@b>", "sip:a@b\t"]),
    st.text(st.characters(max_codepoint=0x200), max_size=8),
)
_VERSION = st.sampled_from(["SIP/2.0", "sip/2.0", "SIP/3.0", "SIP/2.0 ", "HTTP/1.1"])


@settings(max_examples=600)
@given(_METHOD, _URI, _VERSION, st.sampled_from([" ", "  "]))
def test_start_line_as_before(method: str, uri: str, version: str, sep: str) -> None:
    first = sep.join((method, uri, version))
    if first[:4].upper() == "SIP/":
        return
    assert _outcome(codec._start_line, first) == _outcome(old_start_line, first)
