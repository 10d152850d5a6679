"""AllowList: IPv4, IPv6, IPv4-mapped IPv6, bad entries."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.net import AllowList, parse_network


def test_ipv4() -> None:
    acl = AllowList(["10.0.0.0/8", "192.0.2.7", "198.51.100.0/24"])
    assert acl.allows("10.1.2.3")
    assert acl.allows("192.0.2.7")
    assert not acl.allows("192.0.2.8")
    assert acl.allows("198.51.100.255")
    assert not acl.allows("11.0.0.1")
    assert "10.9.9.9" in acl


def test_ipv6_brackets_and_zones() -> None:
    acl = AllowList(["2001:db8::/32", "fe80::/10", "::1"])
    assert acl.allows("2001:db8:1::5")
    assert acl.allows("[2001:db8::1]")
    assert acl.allows("fe80::1%eth0")
    assert acl.allows("::1")
    assert not acl.allows("2001:db9::1")
    assert not acl.allows("127.0.0.1")


def test_ipv4_mapped_addresses_and_networks() -> None:
    acl = AllowList(["127.0.0.0/8"])
    assert acl.allows("::ffff:127.0.0.1")
    assert not acl.allows("::ffff:10.0.0.1")
    mapped = AllowList(["::ffff:10.0.0.0/104"])
    assert mapped.networks == (ipaddress.ip_network("10.0.0.0/8"),)
    assert mapped.allows("10.2.3.4") and mapped.allows("::ffff:10.2.3.4")


def test_not_an_address_is_denied() -> None:
    acl = AllowList.allow_all()
    for host in ("", "example.com", "1.2.3", "::g", "[::1", "10.0.0.1:5060"):
        assert not acl.allows(host)
    assert acl.allows("203.0.113.9") and acl.allows("2001:db8::9")
    assert not AllowList([]).allows("127.0.0.1")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8"),
        ("10.0.0.0/33", "is not an IP network"),
        ("localhost", "is not an IP network"),
        ("", "empty"),
    ],
)
def test_invalid_entries_raise_value_error(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AllowList([entry])
    with pytest.raises(ValueError):
        parse_network(entry)


def test_single_string_is_refused() -> None:
    with pytest.raises(ValueError):
        AllowList("10.0.0.0/8")


def test_many_networks_match_the_naive_answer() -> None:
    nets = [f"10.{i // 256}.{i % 256}.0/24" for i in range(0, 4000, 3)]
    nets += [f"2001:db8:{i:x}::/48" for i in range(500)] + ["172.16.0.0/12", "10.200.0.0/16"]
    acl = AllowList(nets)
    parsed = [ipaddress.ip_network(n) for n in nets]
    probes = [f"10.{i // 256}.{i % 256}.9" for i in range(0, 4000, 7)]
    probes += ["172.20.1.1", "172.32.0.1", "10.200.5.5", "2001:db8:1f3::1", "2001:db8:1f4::1"]
    for host in probes:
        addr = ipaddress.ip_address(host)
        naive = any(addr.version == n.version and addr in n for n in parsed)
        assert acl.allows(host) is naive, host


@given(st.ip_addresses(), st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "::/0", "0.0.0.0/1"]))
def test_fast_ipv4_path_agrees_with_the_address_path(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, network: str
) -> None:
    acl = AllowList([network])
    assert acl.allows(str(address)) == acl.allows_address(address)
