"""Source allow-lists: the check every listener makes before parsing a byte.

``AllowList`` is built from network strings (settings) and answers
``allows(host)`` for a peer address; ``update(networks)`` replaces its
networks in place (a settings reload, ``node_reload``). Networks are collapsed and grouped by
prefix length per address family; a lookup masks the peer address once per
distinct prefix length and tests set membership, so it costs at most 33
(IPv4) or 129 (IPv6) set probes however many networks are listed, and
usually a handful. Nothing is cached per peer, so a flood of sources cannot
grow it.

IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``, what a dual-stack socket
reports for an IPv4 peer) are treated as the IPv4 address, both in the list
and in lookups. Zone ids (``fe80::1%eth0``) and brackets (``[::1]``) are
stripped. A host that is not an IP address is denied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from offhook.common.addr import ipv4_int

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_network(text: str) -> IPNetwork:
    """One allow-list entry: ``10.0.0.0/8``, ``192.0.2.7``, ``2001:db8::/32``...

    Raises ValueError with a message naming the entry, for settings validation.
    An IPv4-mapped IPv6 network becomes the IPv4 network it covers.
    """
    if not isinstance(text, str):
        raise ValueError(f"allow-list entry {text!r} is not a string")
    entry = text.strip()
    if not entry:
        raise ValueError("allow-list entry is empty")
    try:
        network: IPNetwork = ipaddress.ip_network(entry, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"allow-list entry {text!r} is not an IP network "
                "(expected e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
            ) from exc
        raise ValueError(
            f"allow-list entry {text!r} has host bits set; did you mean {loose}?"
        ) from exc
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        v4 = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
        return ipaddress.IPv4Network((v4, network.prefixlen - 96))
    return network


def parse_host(host: str) -> IPAddress | None:
    """A peer address as an ``ipaddress`` object (mapped IPv6 -> IPv4), None if not an IP."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class _Family:
    """Networks of one address family grouped by prefix length, longest prefix last."""

    __slots__ = ("_bits", "_groups")

    def __init__(self, networks: list[IPNetwork], bits: int) -> None:
        self._bits = bits
        by_len: dict[int, set[int]] = {}
        for net in networks:
            by_len.setdefault(net.prefixlen, set()).add(int(net.network_address))
        full = (1 << bits) - 1
        # Shortest prefixes first: they cover the most addresses, so a hit is
        # most likely early.
        self._groups: tuple[tuple[int, frozenset[int]], ...] = tuple(
            ((full << (bits - plen)) & full, frozenset(addrs))
            for plen, addrs in sorted(by_len.items())
        )

    def contains(self, value: int) -> bool:
        return any(value & mask in addrs for mask, addrs in self._groups)


class AllowList:
    """Source allow-list over IPv4 and IPv6 networks. An empty list allows nobody."""

    __slots__ = ("_v4", "_v6", "networks")

    def __init__(self, networks: Iterable[str]) -> None:
        self.update(networks)

    def update(self, networks: Iterable[str]) -> None:
        """Replace the networks in place (a settings reload): every ``allows`` bound
        to this list answers from the new networks at once. Nothing changes when
        one of them is invalid (ValueError)."""
        if isinstance(networks, str):
            raise ValueError("AllowList takes a list of networks, not a single string")
        parsed = [parse_network(n) for n in networks]
        v4 = list(
            ipaddress.collapse_addresses(n for n in parsed if isinstance(n, ipaddress.IPv4Network))
        )
        v6 = list(
            ipaddress.collapse_addresses(n for n in parsed if isinstance(n, ipaddress.IPv6Network))
        )
        family4, family6 = _Family(list(v4), 32), _Family(list(v6), 128)
        self.networks: tuple[IPNetwork, ...] = (*v4, *v6)
        self._v4, self._v6 = family4, family6

    @classmethod
    def allow_all(cls) -> AllowList:
        return cls(["0.0.0.0/0", "::/0"])

    def allows(self, host: str) -> bool:
        """True if ``host`` (an IP literal as a socket reports it) is in a listed network."""
        number = ipv4_int(host)  # the usual source: no ipaddress object
        if number is not None:
            return self._v4.contains(number)
        addr = parse_host(host)
        if addr is None:
            return False
        return self.allows_address(addr)

    def allows_address(self, addr: IPAddress) -> bool:
        if isinstance(addr, ipaddress.IPv4Address):
            return self._v4.contains(int(addr))
        if addr.ipv4_mapped is not None:
            return self._v4.contains(int(addr.ipv4_mapped))
        return self._v6.contains(int(addr))

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.allows(host)

    def __repr__(self) -> str:
        return f"AllowList({[str(n) for n in self.networks]!r})"
