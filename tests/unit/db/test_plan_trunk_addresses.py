"""Trunk addresses in a plan: IPv6 and IPv4 literals in any written form, names, networks.

A trunk's ``host`` is stored in the one form offhook writes an address
(``common.addr.canonical``: RFC 5952, no brackets, IPv4-mapped as IPv4), so
that requests go to an address a socket takes and the Request-URI brackets
it once (RFC 3261 §25.1, RFC 5118 §4); ``inbound_addresses`` are checked by
the allow-list's own parser, so a plan that loads always builds the trunk's
allow-list.
"""

from __future__ import annotations

from typing import Any

import pytest

from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_spec import inbound_network, trunk_host
from offhook.net.acl import AllowList


def plan(**trunk: Any) -> dict[str, Any]:
    return {
        "partitions": ["internal"],
        "calling_search_spaces": [{"name": "inbound", "partitions": ["internal"]}],
        "trunks": [{"name": "carrier", "protocol": "sip", "css": "inbound", **trunk}],
    }


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, "plan.yaml")
    return info.value.problems


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[0:0::1]", "::1"),
        ("2001:DB8::0001", "2001:db8::1"),
        ("[2001:0db8:0000:0000:0000:0000:0000:0042]", "2001:db8::42"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # RFC 5952 §4.2.2: one 0 stays
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4-mapped: the IPv4 peer it is
        ("::1:5060", "::1:5060"),  # an address, not ::1 port 5060 (RFC 5118 §4.4)
        ("[::ffff:c000:207]", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7"),
        (" 127.0.0.2 ", "127.0.0.2"),
        ("carrier.example.com", "carrier.example.com"),
        ("v6only.test", "v6only.test"),
        ("sbc-1.carrier.example.", "sbc-1.carrier.example."),
        ("localhost", "localhost"),
        ("h", "h"),
    ],
)
def test_trunk_host_stored_in_one_form(written: str, stored: str) -> None:
    assert trunk_host(written) == stored
    spec = parse_plan(plan(host=written), "plan.yaml").dialplan_spec()
    assert spec.trunks[0].host == stored


@pytest.mark.parametrize(
    ("written", "what"),
    [
        ("fe80::1%eth0", "zone id"),
        ("[fe80::1%25eth0]", "zone id"),
        ("::", "any-address"),
        ("[::]", "any-address"),
        ("0.0.0.0", "any-address"),
        ("2001:db8::1::2", "not an IP address"),
        ("[2001:db8::1", "not an IP address"),
        ("2001:db8::1]", "not an IP address"),
        ("[::1]:5060", "port goes in 'port'"),
        ("carrier.example.com:5060", "port goes in 'port'"),
        ("999.1.1.1", "not an IP address"),
        ("10.0.0.1.", "not an IP address"),
        ("1.2.3", "not an IP address"),
        ("carrier..example", "not a host name"),
        ("-carrier.example", "not a host name"),
        ("carrier_1.example", "not a host name"),
        ("sip:carrier.example", "port goes in 'port'"),
        ("carrier.example;transport=tcp", "not a host name"),
        ("a" * 64 + ".example", "not a host name"),
    ],
)
def test_trunk_host_refused(written: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        trunk_host(written)
    found = problems(plan(host=written))
    assert found[0][0] == "trunks[0] (carrier).host", found
    assert what in found[0][1], found


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("::1", "::1/128"),
        ("::1/128", "::1/128"),
        ("[::1]", "::1/128"),
        ("[2001:db8::]/32", "2001:db8::/32"),
        ("2001:DB8:0::/48", "2001:db8::/48"),
        ("fd00::/8", "fd00::/8"),
        ("::ffff:127.0.0.0/104", "127.0.0.0/8"),  # a mapped network is the IPv4 one
        ("127.0.0.2", "127.0.0.2/32"),
        ("192.0.2.0/24", "192.0.2.0/24"),
    ],
)
def test_inbound_addresses_ipv6_and_ipv4(written: str, stored: str) -> None:
    assert inbound_network(written) == stored
    spec = parse_plan(plan(host="::1", inbound_addresses=[written]), "plan.yaml").dialplan_spec()
    assert spec.trunks[0].inbound_addresses == (stored,)
    AllowList(spec.trunks[0].inbound_addresses)  # what trunk_for builds from it


@pytest.mark.parametrize(
    ("written", "what"),
    [
        ("2001:db8::1/32", "host bits set; did you mean 2001:db8::/32"),
        ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8"),
        ("fe80::1%eth0/128", "zone id"),
        ("2001:db8::/129", "not an IP address or network"),
        ("10.0.0.300", "not an IP address or network"),
        ("carrier.example.com", "not an IP address or network"),
        ("[::1]/", "not an IP address or network"),
    ],
)
def test_inbound_addresses_refused(written: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        inbound_network(written)
    found = problems(plan(host="::1", inbound_addresses=["127.0.0.2/32", written]))
    assert found[0][0] == "trunks[0] (carrier).inbound_addresses", found
    assert what in found[0][1], found


def test_inbound_addresses_mixed_families_admit_their_sources() -> None:
    spec = parse_plan(
        plan(host="2001:db8::5", inbound_addresses=["[2001:DB8::]/64", "192.0.2.0/24"]),
        "plan.yaml",
    ).dialplan_spec()
    allow = AllowList(spec.trunks[0].inbound_addresses)
    assert allow.allows("2001:db8::7")
    assert allow.allows("192.0.2.9")
    assert allow.allows("::ffff:192.0.2.9")  # the IPv4 peer of a dual-stack socket
    assert not allow.allows("2001:db8:1::7")
    assert not allow.allows("::1")
    assert not allow.allows("198.51.100.1")
