"""Via stamping (RFC 3261 §18.2.1, RFC 3581 §4) for IPv4, IPv6 and mapped sources.

Issue 14: on a dual-stack or IPv6 listener the node wrote
``received=::ffff:127.0.0.1`` (or ``received=::1``) and its own request
checks then refused the value it had written (400). Sources arrive in the
node's one form (``common.addr.peer``: IPv4-mapped -> IPv4), ``received``
is written bare, and the stamped request passes the checks.
"""

from __future__ import annotations

import pytest

from offhook.common.addr import peer
from offhook.sip.aio import response_destination, stamp_via
from offhook.sip.codec import parse_message
from offhook.sip.headers import parse_via
from offhook.sip.message import SipRequest, make_response
from offhook.sip.validate import check_request


def options(sent_by: str, params: str = ";rport") -> SipRequest:
    data = (
        "OPTIONS sip:offhook@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {sent_by};branch=z9hG4bK776asdhds{params}\r\n"
        "Via: SIP/2.0/UDP 192.0.2.200;branch=z9hG4bKother\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:offhook@example.com>\r\n"
        "Call-ID: via-stamp-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


CASES = [
    # sent-by, extra Via params, source (as the socket reported it), received, rport
    ("127.0.0.1:5070", ";rport", ("127.0.0.1", 5070), "127.0.0.1", "5070"),
    ("127.0.0.1:5070", "", ("127.0.0.1", 5070), None, None),
    ("127.0.0.1:5070", "", ("10.9.9.9", 5070), "10.9.9.9", None),
    ("127.0.0.1:5070", ";rport", ("::ffff:127.0.0.1", 5071, 0, 0), "127.0.0.1", "5071"),
    ("127.0.0.1:5070", "", ("::ffff:127.0.0.1", 5070, 0, 0), None, None),
    ("[::1]:5070", ";rport", ("::1", 5070, 0, 0), "::1", "5070"),
    ("[::1]:5070", "", ("::1", 5070, 0, 0), None, None),
    ("[0:0:0:0:0:0:0:1]:5070", "", ("::1", 5070, 0, 0), None, None),  # same address
    ("[2001:DB8::9]:5070", "", ("2001:db8::9", 5070, 0, 0), None, None),
    ("[2001:db8::9]:5070", ";rport", ("2001:db8::1", 40000, 0, 0), "2001:db8::1", "40000"),
    ("pbx.example.com", ";rport", ("::1", 5060, 0, 0), "::1", "5060"),
    # a stale received in another form is replaced, not doubled
    ("[::1]:5070", ";received=[::2];rport", ("::1", 5070, 0, 0), "::1", "5070"),
]


@pytest.mark.parametrize(("sent_by", "params", "source", "received", "rport"), CASES)
def test_stamp(
    sent_by: str, params: str, source: tuple[object, ...], received: str | None, rport: str | None
) -> None:
    req = options(sent_by, params)
    src = peer(source)
    stamp_via(req, src)
    top = parse_via(req.headers.get_all("Via")[0])
    assert top.received == received
    assert top.rport == rport
    assert req.headers.get_raw("Via")[0].count("received=") == (1 if received else 0)
    assert check_request(req) is None  # the node accepts what it wrote (was a 400)
    # The response goes back to the source (RFC 3581 §4) or the sent-by (§18.2.2).
    resp = make_response(req, 200)
    dest = response_destination(resp, ("0.0.0.0", 1))
    if rport is not None:
        assert dest == src
    elif received is not None:
        assert dest[0] == src[0]


def test_response_destination_any_form() -> None:
    req = options("[::1]:5070", ";received=[0:0::1];rport=5999")
    resp = make_response(req, 200)
    assert response_destination(resp, ("0.0.0.0", 1)) == ("::1", 5999)
    req = options("127.0.0.1:5070", ";received=::ffff:127.0.0.2")
    resp = make_response(req, 200)
    assert response_destination(resp, ("0.0.0.0", 1)) == ("127.0.0.2", 5070)
