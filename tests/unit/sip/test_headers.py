"""offhook.sip.headers: Via, name-addr, Contact lists, authentication parameters."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.headers import (
    NameAddr,
    Via,
    format_auth_params,
    parse_auth_params,
    parse_contact_list,
    parse_name_addr,
    parse_via,
    parse_via_list,
)
from offhook.sip.uri import parse_uri

# --- Via ---------------------------------------------------------------------


def test_via_basic() -> None:
    v = parse_via(
        "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=1.2.3.4"
    )
    assert v.protocol == "SIP/2.0"
    assert v.transport == "UDP"
    assert (v.host, v.port) == ("pc33.atlanta.com", 5066)
    assert v.branch == "z9hG4bK776asdhds"
    assert v.received == "1.2.3.4"
    assert v.has_rport and v.rport is None
    assert v.sent_by == "pc33.atlanta.com:5066"
    assert str(v) == (
        "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=1.2.3.4"
    )


def test_via_lws_everywhere_and_ipv6() -> None:
    v = parse_via("SIP  / 2.0  / tcp     [2001:db8::1] : 5070   ; branch  =   z9hG4bK9 ")
    assert (v.transport, v.host, v.port, v.branch) == ("TCP", "[2001:db8::1]", 5070, "z9hG4bK9")
    assert parse_via("SIP/2.0/UDP h;rport=5060").rport == "5060"


def test_via_list() -> None:
    vias = parse_via_list("SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5061;branch=z9hG4bK2")
    assert [(v.host, v.transport) for v in vias] == [("a", "UDP"), ("b", "TCP")]


def test_via_round_trip_object() -> None:
    v = Via("TLS", "example.com", 5061, {"branch": "z9hG4bKx", "rport": None})
    assert parse_via(str(v)) == v


@pytest.mark.parametrize(
    "bad",
    [
        "", "SIP/2.0/UDP", "SIP/2.0 UDP host", "SIP/2.0/UDP host;;", "SIP/2.0/UDP 192.0.2.15;;,;,,",
        "SIP/2.0/UDP host:99999", "SIP/2.0/UDP ho st", "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP [::1", "SIP/2.0/U<P host", "SIP/2.0/UDP host;bra nch=1",
    ],
)  # fmt: skip
def test_via_rejects(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_via(bad)


# --- name-addr ---------------------------------------------------------------


def test_name_addr_forms() -> None:
    a = parse_name_addr('"Alice \\"A\\" Liddell" <sip:alice@example.com>;tag=1928;x')
    assert a.display == 'Alice "A" Liddell'
    assert a.uri.user == "alice"
    assert a.tag == "1928"
    assert a.params == {"tag": "1928", "x": None}
    b = parse_name_addr("Bob  Smith<sip:bob@example.com>")
    assert b.display == "Bob Smith"
    c = parse_name_addr("<sip:carol@example.com;transport=tcp>;expires=60;q=0.5")
    assert c.display is None and c.uri.param("transport") == "tcp"
    assert (c.expires, c.q) == ("60", "0.5")


def test_bare_addr_spec_params_belong_to_header() -> None:
    a = parse_name_addr("sip:+19725552222@gw1.example.net;unknownparam;tag=abc")
    assert a.uri.params == ()
    assert a.params == {"unknownparam": None, "tag": "abc"}
    b = parse_name_addr("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert b.uri.has_param("unknownparam") and b.params == {}


def test_name_addr_round_trip() -> None:
    n = NameAddr(parse_uri("sip:a@b.example"), 'x "y"', {"tag": "t1"})
    assert str(n) == '"x \\"y\\"" <sip:a@b.example>;tag=t1'
    assert parse_name_addr(str(n)) == n


@pytest.mark.parametrize(
    "bad",
    [
        "", '"Mr. J. User <sip:j.user@example.com>', "Bell, Alexander <sip:a@b.com>",
        "< sip:t.watson@example.org >", "<sip:a@b.com", "sip:user@example.com?Route=%3Csip:x%3E",
        "<sip:a@b.com> junk", '"x" sip:a@b.com', "<>", "sip:a@b.com;;", "sip:a@b.com;tag=a b",
        "<sip:a@b.com>;p=\"unterminated",
    ],
)  # fmt: skip
def test_name_addr_rejects(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_name_addr(bad)


def test_contact_list() -> None:
    assert parse_contact_list(" * ") == "*"
    cs = parse_contact_list('<sip:a@b.com>;q=0.7, "Comma, Inc" <sip:c@d.com;lr>, sip:e@f.com')
    assert cs != "*"
    assert [c.uri.user for c in cs] == ["a", "c", "e"]
    assert cs[1].display == "Comma, Inc"
    with pytest.raises(ParseError):
        parse_contact_list("")
    with pytest.raises(ParseError):
        parse_contact_list("*, <sip:a@b.com>")


# --- authentication parameters ---------------------------------------------------


def test_auth_params() -> None:
    scheme, p = parse_auth_params(
        'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int",'
        ' nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5,'
        ' username="a\\"b"'
    )
    assert scheme == "Digest"
    assert p["realm"] == "atlanta.com"
    assert p["qop"] == "auth,auth-int"
    assert p["opaque"] == ""
    assert p["stale"] == "FALSE"
    assert p["username"] == 'a"b'
    assert parse_auth_params("NoOneKnowsThisScheme opaque-data=here") == (
        "NoOneKnowsThisScheme",
        {"opaque-data": "here"},
    )
    assert parse_auth_params("Digest") == ("Digest", {})


def test_auth_params_round_trip() -> None:
    params = {"realm": 'a "quoted", realm', "nonce": "n1", "algorithm": "MD5", "nc": "00000001"}
    text = format_auth_params("Digest", params)
    assert "algorithm=MD5" in text and "nc=00000001" in text
    assert parse_auth_params(text) == ("Digest", params)


@pytest.mark.parametrize(
    "bad",
    ["", "Digest realm", 'Digest realm="x', "Digest a=1 b=2", "Digest a=1, a=2", "Di=gest a=1",
     'Digest realm="x"junk'],
)  # fmt: skip
def test_auth_rejects(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_auth_params(bad)


# --- the fuzz invariant: parse or raise ParseError -------------------------------

_sipish = st.text(alphabet=st.sampled_from(list('sip:@<>";,=/ \tSIP2.0UDPab\\*?%1[]')), max_size=80)


@given(st.one_of(st.text(max_size=120), _sipish))
def test_only_parse_errors(text: str) -> None:
    for fn in (parse_via, parse_name_addr, parse_contact_list, parse_auth_params, parse_via_list):
        with contextlib.suppress(ParseError):
            fn(text)
