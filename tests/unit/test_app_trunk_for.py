"""Which trunk a request comes from (``SnapshotCredentials.trunk_for``), on both stacks.

A trunk without ``inbound_addresses`` is its exact address and port, whatever
way the plan wrote the address (``[::1]``, ``0:0::1``, ``::ffff:a.b.c.d``,
upper case) and however the socket reports the source; a trunk with
``inbound_addresses`` is any port of those networks, IPv6 and IPv4 alike; a
trunk named by a host name is the address the name resolved to, and its port.
``trunk_targets`` hands the trunk monitor the same canonical address.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from offhook.app import SnapshotCredentials, trunk_targets
from offhook.core.dialplan.model import DialPlanSpec, Trunk
from offhook.core.directory import PlanSnapshot


def node(*trunks: Trunk) -> Any:
    spec = DialPlanSpec(trunks=tuple(trunks))
    return SimpleNamespace(snapshot=PlanSnapshot(dialplan_spec=spec))


def trunk(name: str, host: str, port: int = 5060, **extra: Any) -> Trunk:
    return Trunk(name=name, protocol="sip", host=host, port=port, css="inbound", **extra)


@pytest.mark.parametrize(
    "written", ["::1", "[::1]", "0:0:0:0:0:0:0:1", "[0000::0001]", "::0.0.0.1"]
)
@pytest.mark.parametrize("source", ["::1", "0:0::1", "0000:0000:0000:0000:0000:0000:0000:0001"])
def test_ipv6_trunk_matches_its_address_in_any_form(written: str, source: str) -> None:
    creds = SnapshotCredentials(node(trunk("kam", written, 5080)))
    peer = creds.trunk_for((source, 5080))
    assert peer is not None and peer.name == "kam"
    assert creds.trunk_for((source, 5081)) is None  # another port: a phone, not the trunk
    assert creds.trunk_for(("127.0.0.1", 5080)) is None


def test_ipv6_trunk_documentation_prefix_upper_case() -> None:
    creds = SnapshotCredentials(node(trunk("carrier", "[2001:DB8:0:0::5]", 5060)))
    peer = creds.trunk_for(("2001:db8::5", 5060))
    assert peer is not None and peer.name == "carrier"
    assert creds.trunk_for(("2001:db8::6", 5060)) is None


def test_mapped_trunk_address_matches_the_ipv4_source() -> None:
    """A dual-stack socket reports IPv4 peers as plain IPv4 (common.addr.peer)."""
    creds = SnapshotCredentials(node(trunk("v4", "::ffff:127.0.0.2", 5060)))
    peer = creds.trunk_for(("127.0.0.2", 5060))
    assert peer is not None and peer.name == "v4"


def test_host_name_trunk_is_its_resolved_address() -> None:
    creds = SnapshotCredentials(node(trunk("byname", "V6only.test", 5060)))
    assert creds.trunk_for(("::1", 5060)) is None  # not resolved (yet): a stranger
    resolved = {"v6only.test": "::1"}
    creds.resolve_cached = resolved.get
    peer = creds.trunk_for(("::1", 5060))
    assert peer is not None and peer.name == "byname"
    assert creds.trunk_for(("::1", 5061)) is None  # another port: a phone
    assert creds.trunk_for(("127.0.0.1", 5060)) is None


def test_inbound_addresses_ipv6_and_ipv4_networks() -> None:
    creds = SnapshotCredentials(
        node(
            trunk("carrier", "2001:db8::5", inbound_addresses=("2001:db8::/64", "192.0.2.0/24")),
            trunk("kam", "::1", 5080, inbound_addresses=("::1/128",)),
        )
    )
    for source, name in [
        (("2001:db8::9", 40000), "carrier"),
        (("192.0.2.200", 5060), "carrier"),
        (("::1", 40000), "kam"),  # any port of the network
        (("::1", 5080), "kam"),
    ]:
        peer = creds.trunk_for(source)
        assert peer is not None and peer.name == name, (source, peer)
    for source in [("2001:db8:1::9", 5060), ("127.0.0.1", 5080), ("fe80::1%lo", 5080)]:
        assert creds.trunk_for(source) is None, source


def test_bad_stored_inbound_addresses_fall_back_to_the_exact_address() -> None:
    """Rows stored before the plan checked networks: logged, not an error per request."""
    creds = SnapshotCredentials(node(trunk("old", "::1", 5080, inbound_addresses=("::1/64",))))
    peer = creds.trunk_for(("::1", 5080))
    assert peer is not None and peer.name == "old"
    assert creds.trunk_for(("::1", 5081)) is None


def test_trunk_targets_are_canonical() -> None:
    targets = trunk_targets(
        PlanSnapshot(
            dialplan_spec=DialPlanSpec(
                trunks=(trunk("a", "[0:0::1]"), trunk("b", "Carrier.Example"), trunk("c", "::1"))
            )
        )
    )
    assert [t.host for t in targets] == ["::1", "Carrier.Example", "::1"]
