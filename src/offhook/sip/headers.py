"""Structured views of SIP header values, parsed on demand (never on the hot path).

- ``Via`` / ``parse_via`` (RFC 3261 §20.42, §25.1 via-parm)
- ``NameAddr`` / ``parse_name_addr`` for From, To, Contact, Route, Record-Route,
  Refer-To ... (RFC 3261 §20.10, §25.1 name-addr / addr-spec)
- ``parse_contact_list`` (``*`` or a list of name-addrs, RFC 3261 §20.10)
- ``parse_auth_params`` / ``format_auth_params`` for WWW-Authenticate,
  Authorization and their proxy variants (RFC 3261 §25.1, RFC 7616)

Header parameter names are lower-cased; values keep their wire form (a
quoted value keeps its quotes). Every function raises only ``ParseError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from offhook.common.errors import ParseError
from offhook.sip.abnf import (
    QUOTED_RE,
    TOKEN_CLASS,
    WSP,
    format_params,
    ipv6_text,
    is_host,
    is_token,
    parse_generic_params,
    parse_port,
    quote,
    unquote,
)
from offhook.sip.message import split_list
from offhook.sip.uri import SipUri, host_addr, parse_uri

_COLON_LWS_RE = re.compile(r"[ \t]*:[ \t]*")
_WS_RE = re.compile(r"[ \t]")
_BARE_IPV6_PARAMS = frozenset({"received"})


@dataclass(frozen=True, slots=True)
class Via:
    """One via-parm. ``params`` maps lower-cased names to values (None = no value)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def host_addr(self) -> str:
        """The sent-by host without IPv6 brackets (see ``SipUri.host_addr``)."""
        return host_addr(self.host)

    @property
    def received(self) -> str | None:
        """The received parameter as written: RFC 3261's bare ``2001:db8::1``, or bracketed."""
        return self.params.get("received")

    @property
    def received_addr(self) -> str | None:
        """The received address without IPv6 brackets, whichever form was sent (RFC 5118 §4.5)."""
        value = self.params.get("received")
        if value is None or value.startswith("["):
            return None if value is None else host_addr(value)
        return ipv6_text(value) or value

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def rport(self) -> str | None:
        """The rport value; None when absent *or* present without a value (RFC 3581)."""
        return self.params.get("rport")

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """Parse one via-parm (one element of ``headers.get_all("Via")``).

    RFC 3261 §25.1: sent-protocol LWS sent-by *( SEMI via-params ), with
    SLASH = SWS "/" SWS, so ``SIP / 2.0 / UDP`` is legal (RFC 4475 wsinv).
    """
    head, semi, ptext = value.partition(";")
    parts = head.split("/")
    if len(parts) != 3:
        raise ParseError("bad Via sent-protocol")
    name = parts[0].strip(WSP)
    version = parts[1].strip(WSP)
    tail = parts[2].strip(WSP).split(None, 1)
    if len(tail) != 2:
        raise ParseError("Via without sent-by")
    transport, sent_by = tail
    if not (is_token(name) and is_token(version) and is_token(transport)):
        raise ParseError("bad Via sent-protocol")
    sent_by = _COLON_LWS_RE.sub(":", sent_by.strip(WSP))
    if _WS_RE.search(sent_by):
        raise ParseError("bad Via sent-by")
    if sent_by.startswith("["):
        end = sent_by.find("]")
        host, rest = sent_by[: end + 1], sent_by[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise ParseError("bad Via sent-by")
        port_text: str | None = rest[1:] if rest else None
    else:
        host, colon, port_text_ = sent_by.partition(":")
        port_text = port_text_ if colon else None
    if not is_host(host):
        raise ParseError("bad Via host")
    port = None if port_text is None else parse_port(port_text)
    # RFC 3261 §25.1 via-received = "received" EQUAL (IPv4address / IPv6address):
    # a bare IPv6 address; senders also bracket it, and RFC 5118 §4.5 asks
    # receivers to accept both.
    params = parse_generic_params(ptext, bare_ipv6=_BARE_IPV6_PARAMS) if semi else {}
    return Via(
        transport=transport.upper(),
        host=host,
        port=port,
        params=params,
        protocol=f"{name.upper()}/{version}",
    )


def parse_via_list(value: str) -> list[Via]:
    """Every via-parm of one or more comma-separated Via values."""
    return [parse_via(v) for v in split_list(value)]


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A name-addr / addr-spec with its header parameters (RFC 3261 §20.10, §20.20, §20.39).

    ``display`` is the unquoted display name (None when absent).
    """

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> str | None:
        return self.params.get("expires")

    @property
    def q(self) -> str | None:
        return self.params.get("q")

    def __str__(self) -> str:
        disp = "" if self.display is None else quote(self.display) + " "
        return f"{disp}<{self.uri}>{format_params(self.params)}"


def _display_tokens_ok(display: str) -> bool:
    # display-name = *(token LWS) / quoted-string
    return all(is_token(t) for t in display.split())


def parse_name_addr(value: str) -> NameAddr:
    """Parse ``"Display" <uri>;params``, ``Display <uri>``, ``<uri>`` or a bare addr-spec.

    In the bare form everything after the first ``;`` is a header parameter
    (RFC 3261 §20.10), and the URI may not contain ``,``, ``?`` or ``;``
    (RFC 4475 regbadct).
    """
    s = value.strip(WSP)
    display: str | None = None
    if s.startswith('"'):
        m = QUOTED_RE.match(s)
        if m is None:
            raise ParseError("unterminated quoted display name")
        display = unquote(m.group(0))
        s = s[m.end() :].lstrip(WSP)
        if not s.startswith("<"):
            raise ParseError("quoted display name without <uri>")
    lt = s.find("<")
    if lt >= 0:
        if display is None:
            text = s[:lt].strip(WSP)
            if text:
                if not _display_tokens_ok(text):
                    raise ParseError("bad display name")
                display = " ".join(text.split())
        gt = s.find(">", lt)
        if gt < 0:
            raise ParseError("unterminated <uri>")
        inner = s[lt + 1 : gt]
        # RFC 3261 §25.1 LAQUOT / RAQUOT: no whitespace inside <...> (RFC 4475 badaspec)
        if not inner or _WS_RE.search(inner):
            raise ParseError("whitespace inside <uri>")
        uri = parse_uri(inner)
        rest = s[gt + 1 :].lstrip(WSP)
        if not rest:
            return NameAddr(uri, display, {})
        if not rest.startswith(";"):
            raise ParseError("junk after <uri>")
        return NameAddr(uri, display, parse_generic_params(rest[1:]))
    # addr-spec form
    addr, semi, ptext = s.partition(";")
    addr = addr.rstrip(WSP)
    if not addr or _WS_RE.search(addr) or "?" in addr or "," in addr or '"' in addr:
        raise ParseError("bad addr-spec")
    uri = parse_uri(addr)
    params = parse_generic_params(ptext) if semi else {}
    return NameAddr(uri, None, params)


def parse_contact_list(value: str) -> list[NameAddr] | Literal["*"]:
    """Contact values: ``*`` (RFC 3261 §10.2.2) or a list of name-addrs."""
    if value.strip(WSP) == "*":
        return "*"
    items = split_list(value)
    if not items:
        raise ParseError("empty Contact")
    return [parse_name_addr(item) for item in items]


_AUTH_PARAM_RE = re.compile(
    rf"[ \t]*([{TOKEN_CLASS}]+)[ \t]*=[ \t]*"
    r'("(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"|[^\s,"]+)'
    r"[ \t]*(?:,|\Z)"
)


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a challenge or credentials value into (scheme, params) (RFC 3261 §25.1).

    Quoted values are unquoted; parameter names are lower-cased; a repeated
    parameter is an error (RFC 7616 §3.3). Commas inside quotes are kept.
    """
    s = value.strip(WSP)
    scheme, _, rest = s.partition(" ")
    if "\t" in scheme:
        scheme, _, more = scheme.partition("\t")
        rest = more + " " + rest
    if not is_token(scheme):
        raise ParseError("bad authentication scheme")
    rest = rest.strip(WSP)
    params: dict[str, str] = {}
    pos = 0
    n = len(rest)
    while pos < n:
        m = _AUTH_PARAM_RE.match(rest, pos)
        if m is None:
            raise ParseError("bad authentication parameter")
        name = m.group(1).lower()
        raw = m.group(2)
        if name in params:
            raise ParseError(f"repeated authentication parameter {name[:20]!r}")
        params[name] = unquote(raw) if raw.startswith('"') else raw
        pos = m.end()
        # skip empty list elements ("a=1, , b=2") per the #rule
        while pos < n and rest[pos] in " \t,":
            pos += 1
    return scheme, params


def format_auth_params(
    scheme: str,
    params: Mapping[str, str],
    unquoted: Iterable[str] = ("algorithm", "stale", "nc"),
) -> str:
    """Serialise (scheme, params); names in ``unquoted`` are written as tokens."""
    bare = {u.lower() for u in unquoted}
    items = []
    for k, v in params.items():
        if k.lower() in bare and is_token(v):
            items.append(f"{k}={v}")
        else:
            items.append(f"{k}={quote(v)}")
    return f"{scheme} {', '.join(items)}" if items else scheme
