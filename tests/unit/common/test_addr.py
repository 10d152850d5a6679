"""common.addr: one address form inside the node (issue 14)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common import addr
from offhook.common.addr import (
    canonical,
    family,
    host_port,
    ip_version,
    is_wildcard,
    normalize_host,
    peer,
    same_host,
    uri_host,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),  # IPv4-mapped: plain IPv4
        ("::FFFF:C000:0201", "192.0.2.1"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),  # RFC 5952 §4.2.1, §4.3
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),  # §4.2.3 first run
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # §4.2.2: one 0 group stays
        ("[2001:db8::9:255]", "2001:db8::9:255"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:0", "::"),
    ],
)
def test_canonical(text: str, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize("text", ["fe80::1%eth0", "[fe80::1%25eth0]", "::1%lo"])
def test_zone_ids_refused_unless_asked_for(text: str) -> None:
    with pytest.raises(ValueError, match="zone"):
        canonical(text)
    assert canonical("FE80::1%eth0", allow_zone=True) == "fe80::1%eth0"


@pytest.mark.parametrize("text", ["", "example.com", "1.2.3", "2001:db8::g", "[::1", "1.2.3.4:5"])
def test_not_an_address(text: str) -> None:
    with pytest.raises(ValueError):
        canonical(text)


def test_peer_from_sockets() -> None:
    # What a dual-stack socket reports for an IPv4 peer, and an IPv6 4-tuple.
    assert peer(("::ffff:127.0.0.1", 5060, 0, 0)) == ("127.0.0.1", 5060)
    assert peer(("::1", 5060, 0, 0)) == ("::1", 5060)
    assert peer(("127.0.0.1", 5060)) == ("127.0.0.1", 5060)
    assert peer(("::ffff:10.1.2.3", 1)) == ("10.1.2.3", 1)


def test_family_and_forms() -> None:
    assert family("10.0.0.1") == 4
    assert family("::ffff:10.0.0.1") == 4
    assert family("[2001:db8::1]") == 6
    assert family("fe80::1%eth0") == 6
    assert family("pbx.example.com") is None
    assert [ip_version(h) for h in ("10.0.0.1", "::1", "fe80::1%eth0", "pbx.example.com", "")] == [
        4,
        6,
        6,
        None,
        None,
    ]
    assert uri_host("2001:db8::1") == "[2001:db8::1]"
    assert uri_host("2001:DB8:0::1") == "[2001:db8::1]"
    assert uri_host("[2001:db8::1]") == "[2001:db8::1]"
    assert uri_host("192.0.2.1") == "192.0.2.1"
    assert uri_host("pbx.example.com") == "pbx.example.com"
    assert host_port("::1", 5060) == "[::1]:5060"
    assert host_port("127.0.0.1", 5060) == "127.0.0.1:5060"
    assert is_wildcard("::") and is_wildcard("[::]") and is_wildcard("0.0.0.0")
    assert not is_wildcard("::1")
    assert same_host("[2001:DB8::1]", "2001:db8:0::1")
    assert same_host("::ffff:192.0.2.1", "192.0.2.1")
    assert same_host("PBX.example.com", "pbx.example.com")
    assert not same_host("::1", "127.0.0.1")
    assert normalize_host("[2001:DB8::1]") == "2001:db8::1"


@given(st.ip_addresses())
def test_any_address_round_trips(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    text = canonical(str(addr))
    again = ipaddress.ip_address(text)
    expected = addr.ipv4_mapped if getattr(addr, "ipv4_mapped", None) else addr
    assert again == expected
    assert canonical(text) == text  # idempotent
    assert canonical(uri_host(text)) == text  # brackets come off again
    if again.version == 6:
        assert text == text.lower() and ":::" not in text
        assert uri_host(text) == f"[{text}]"


def _slow_canonical(text: str) -> str | None:
    """``canonical`` through ipaddress alone (no fast path), or None when it raises."""
    try:
        return str(addr.parse_ip(text, allow_zone=True))
    except ValueError:
        return None


@given(
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.lists(st.integers(0, 999).map(str), min_size=3, max_size=5).map(".".join),
        st.text(alphabet="0123456789.[]: %\n\u0660\u0661", max_size=20),
    )
)
def test_canonical_ipv4_fast_path(text: str) -> None:
    """Dotted decimal is returned as it is only where ipaddress writes it back the same."""
    if addr._CANONICAL_IPV4.match(text):
        assert _slow_canonical(text) == text
    elif _slow_canonical(text) is None:
        with pytest.raises(ValueError):
            canonical(text, allow_zone=True)


@given(
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.text(alphabet="0123456789.[]: %", max_size=20),
    )
)
def test_ipv4_int_is_ipaddress_int(text: str) -> None:
    """``ipv4_int`` gives ipaddress's integer for every form it takes, and takes every
    address as a socket writes it."""
    number = addr.ipv4_int(text)
    if number is not None:
        assert number == int(ipaddress.IPv4Address(text))
    try:
        written = str(ipaddress.IPv4Address(text))
    except ValueError:
        return
    if written == text:
        assert number is not None
