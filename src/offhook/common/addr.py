"""One address form inside the node: normalising and writing IP addresses.

Every address a socket reports, a setting names or a message carries goes
through here once, so that one phone is one source whichever socket it used:

- ``peer(addr)``: a socket's peer address as ``(host, port)``. An
  IPv4-mapped IPv6 source from a dual-stack socket (``::ffff:192.0.2.1``)
  becomes plain IPv4 (``192.0.2.1``); the flow info and scope id fields
  of an IPv6 address tuple are dropped (a link-local peer keeps its zone in
  the host text, as the socket reports it, so that replies reach it).
- ``canonical(text)``: an IP literal in any valid form (brackets, upper
  case, leading zeros inside groups, uncompressed, IPv4-mapped) written the
  RFC 5952 way: lower case, the longest run of zero groups compressed,
  mapped addresses as IPv4. Zone ids (``fe80::1%eth0``) are refused unless
  asked for: they mean nothing to a peer, and RFC 3261's ABNF has no room
  for them in a URI or a Via.
- ``uri_host(host)``: how a host is written in a SIP URI or Via sent-by
  (RFC 3261 §25.1, RFC 5118 §4): IPv6 in brackets, IPv4 and names as is.
  ``received`` and ``maddr`` take the bare form (``canonical``).
- ``family(host)``: 4, 6, or None for a host name.

stdlib only (``common`` imports nothing of ours).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

WILDCARDS = frozenset({"0.0.0.0", "::"})
_DOTTED = re.compile(r"[0-9.]+\Z")
# Dotted decimal without leading zeros: the one form of an IPv4 address already (the
# hot path's usual host: a Via's sent-by, a received, an SDP connection address).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}\Z")
_MAPPED_PREFIX = "::ffff:"


def parse_ip(text: str, *, allow_zone: bool = False) -> IPAddress:
    """An IP literal (brackets allowed around IPv6) as an address; mapped IPv6 -> IPv4.

    Raises ValueError for anything else, and for a zone id unless ``allow_zone``.
    """
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if "%" in value:
        if not allow_zone:
            raise ValueError(f"{text!r}: a zone id does not belong here")
        value = value.split("%", 1)[0]
    addr = ipaddress.ip_address(value)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def canonical(text: str, *, allow_zone: bool = False) -> str:
    """An IP literal written the one way offhook writes it (RFC 5952, mapped -> IPv4).

    With ``allow_zone`` a zone id is kept (``fe80::1%eth0``), for addresses
    handed back to the socket layer; otherwise it raises ValueError.
    Raises ValueError for text that is not an IP literal.
    """
    if _CANONICAL_IPV4.match(text):
        return text  # what the parse below would write back
    addr = parse_ip(text, allow_zone=allow_zone)
    value = text.strip().strip("[]")
    if allow_zone and "%" in value and isinstance(addr, ipaddress.IPv6Address):
        return f"{addr}%{value.split('%', 1)[1]}"
    return str(addr)


def ipv4_int(text: str) -> int | None:
    """The integer of dotted decimal IPv4 without leading zeros (as a socket writes it),
    else None (any other form: ask ``parse_ip``). For the hot path: no ipaddress object."""
    if _CANONICAL_IPV4.match(text) is None:
        return None
    a, b, c, d = text.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def normalize_host(host: str) -> str:
    """A host as offhook compares it: IP literals canonical, names in lower case."""
    try:
        return canonical(host, allow_zone=True)
    except ValueError:
        return host.strip().lower()


def peer(addr: Any) -> tuple[str, int]:
    """A socket address tuple (IPv4 or IPv6) as ``(host, port)`` in the node's form.

    The kernel already writes IPv6 compressed and in lower case, so the only
    rewrite on the hot path is the IPv4-mapped prefix of a dual-stack socket.
    """
    host = addr[0]
    if host.startswith(_MAPPED_PREFIX) and "." in host:
        host = host[len(_MAPPED_PREFIX) :]
    return host, addr[1]


def family(host: str) -> int | None:
    """4 or 6 for an IP literal (mapped IPv6 counts as 4), None for a host name."""
    try:
        return parse_ip(host, allow_zone=True).version
    except ValueError:
        return None


def ip_version(host: str) -> int | None:
    """``family`` without parsing, for the hot path: 6 when the host has a colon,
    4 for dotted digits, None for a name. Only for hosts already in the node's form."""
    if ":" in host:
        return 6
    return 4 if _DOTTED.match(host) else None


def is_ip(host: str) -> bool:
    return family(host) is not None


def is_wildcard(host: str) -> bool:
    """The any-address of either family (``0.0.0.0``, ``::``, ``[::]``, or empty)."""
    value = host.strip().strip("[]")
    return value == "" or value in WILDCARDS


def uri_host(host: str) -> str:
    """``host`` as written in a SIP URI or Via sent-by: IPv6 bracketed (RFC 3261 §25.1)."""
    if ":" in host and not host.startswith("["):
        try:
            return f"[{canonical(host)}]"
        except ValueError:
            return f"[{host}]"
    return host


def host_port(host: str, port: int) -> str:
    """``host:port`` with an IPv6 host bracketed."""
    return f"{uri_host(host)}:{port}"


def same_host(a: str, b: str) -> bool:
    """True when two hosts name the same address (any written form) or the same name."""
    return a == b or normalize_host(a) == normalize_host(b)
