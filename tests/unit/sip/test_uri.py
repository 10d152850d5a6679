"""offhook.sip.uri: parse, serialise, parameters, RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.uri import SipUri, parse_uri, uri_equivalent


def test_full_sip_uri() -> None:
    u = parse_uri("sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=x&h=")
    assert u.scheme == "sips"
    assert (u.user, u.password, u.host, u.port) == ("alice", "secret", "Atlanta.example.com", 5061)
    assert u.params == (("transport", "tcp"), ("lr", None))
    assert u.headers == (("subject", "x"), ("h", ""))
    assert u.param("TRANSPORT") == "tcp"
    assert u.param("lr") == ""
    assert u.param("maddr") is None
    assert str(u) == "sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=x&h="


def test_host_only_and_scheme_case() -> None:
    u = parse_uri("SIP:example.com")
    assert u.scheme == "sip" and u.user is None and u.host == "example.com" and u.port is None
    assert str(u) == "sip:example.com"


def test_ipv6() -> None:
    u = parse_uri("sip:alice@[2001:db8::10]:5070;maddr=[::1]")
    assert u.host == "[2001:db8::10]"
    assert u.host_addr == "2001:db8::10"
    assert u.port == 5070
    assert u.param("maddr") == "[::1]"
    assert str(u) == "sip:alice@[2001:db8::10]:5070;maddr=[::1]"
    assert parse_uri("sip:[::1]").host == "[::1]"


def test_escapes_compare_unescaped() -> None:
    a = parse_uri("sip:%61lice@atlanta.com;transport=TCP")
    b = parse_uri("sip:alice@AtLanTa.CoM;Transport=tcp")
    assert a.user_unescaped == "alice"
    assert uri_equivalent(a, b)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        # RFC 3261 §19.1.4 examples
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", True),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on", True),
        ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
         "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", True),
        ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
         "sip:alice@atlanta.com?priority=urgent&subject=project%20x", True),
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp", False),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", False),
        ("sip:carol@chicago.com;security=off", "sip:carol@chicago.com;security=on", False),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4", False),
    ],
)  # fmt: skip
def test_rfc3261_comparison_examples(a: str, b: str, equal: bool) -> None:
    assert uri_equivalent(parse_uri(a), parse_uri(b)) is equal


def test_tel_and_absolute() -> None:
    t = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert t.scheme == "tel" and t.user == "+1-201-555-0123"
    assert t.param("phone-context") == "example.com"
    assert str(t) == "tel:+1-201-555-0123;phone-context=example.com"
    a = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent")
    assert a.scheme == "nobodyknowsthisscheme"
    assert a.opaque == "totallyopaquecontent"
    assert not a.is_sip
    assert parse_uri("soap.beep://192.0.2.103:3002").scheme == "soap.beep"


def test_with_params_and_replace() -> None:
    u = parse_uri("sip:bob@example.com;transport=udp")
    v = u.with_params(transport="tcp", lr=None)
    assert str(v) == "sip:bob@example.com;transport=tcp;lr"
    assert str(v.without_params("lr")) == "sip:bob@example.com;transport=tcp"
    assert str(dataclasses.replace(u, port=5080)) == "sip:bob@example.com:5080;transport=udp"
    assert str(u.replace(host="[::1]")) == "sip:bob@[::1];transport=udp"


@pytest.mark.parametrize(
    "bad",
    [
        "", "sip:", "<sip:a@b>", "sip:a@b c", "sip:@example.com", "sip:a@", "sip:a@b:99999",
        "sip:a@b:x", "sip:a@[::1", "sip:a@b;;", "sip:a@b;=x", "sip:a@b?x", "sip:a b@c",
        "1sip:a@b", "sip:a@b\r\n", "tel:abc xyz", "http:", "sip:a@exa mple.com",
        "sip:a@-bad", "sip:a@b;p=%zz",
    ],
)  # fmt: skip
def test_rejects(bad: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_uri(bad)
    assert exc.value.status_hint == 400


@given(st.text(max_size=200))
def test_parse_uri_only_raises_parse_error(text: str) -> None:
    try:
        u = parse_uri(text)
    except ParseError:
        return
    assert isinstance(u, SipUri)


_user = st.from_regex(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]{1,12}", fullmatch=True)
# RFC 3261 §25.1 hostname: a label never ends with "-".
_host = st.from_regex(r"[a-z]([a-z0-9\-]{0,9}[a-z0-9])?(\.[a-z][a-z0-9]{0,5}){0,3}", fullmatch=True)
_pname = st.from_regex(r"[A-Za-z0-9\-_.!~*]{1,8}", fullmatch=True)


@given(
    st.sampled_from(["sip", "sips"]),
    st.one_of(st.none(), _user),
    _host,
    st.one_of(st.none(), st.integers(1, 65535)),
    st.lists(st.tuples(_pname, st.one_of(st.none(), _pname)), max_size=4),
)
def test_round_trip(
    scheme: str,
    user: str | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
) -> None:
    u = SipUri(scheme, user=user, host=host, port=port, params=tuple(params))
    again = parse_uri(str(u))
    assert again == u
    assert uri_equivalent(again, u)
