"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966) as values.

``parse_uri`` turns text into a frozen ``SipUri``; ``str()`` turns it back.
Fields keep their wire spelling (escapes included) so serialisation is
lossless; lookups and ``uri_equivalent`` compare unescaped, as RFC 3261
§19.1.4 requires. A URI of any other scheme parses as an "absolute URI"
(``scheme`` set, the rest in ``opaque``) so that a server can answer 416
Unsupported URI Scheme rather than 400.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from offhook.common.errors import ParseError
from offhook.sip.abnf import ipv6_text, is_host, parse_port, unescape

SIP_SCHEMES = frozenset({"sip", "sips"})

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_ESC = r"%[0-9A-Fa-f]{2}"
# RFC 3261 §25.1 user = 1*( unreserved / escaped / user-unreserved )
_USER_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+\Z")
_PASSWORD_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*\Z")
# paramchar = param-unreserved / unreserved / escaped
_PARAMCHARS_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})+\Z")
# hname = 1*( hnv-unreserved / unreserved / escaped ); hvalue may be empty
_HNAME_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})+\Z")
_HVALUE_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})*\Z")
# absoluteURI (RFC 2396) characters: no space, controls, <, >, ", {, }, |, \, ^, `
_OPAQUE_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%;/?:@&=+$,\[\]#]+\Z")
# RFC 3966 telephone-subscriber, leniently: visual separators and digits
_TEL_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+\Z")

Params = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class SipUri:
    """A parsed URI. For sip/sips, ``host`` keeps IPv6 brackets (``[::1]``)."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str | None = None  # everything after "scheme:" for other schemes

    @property
    def is_sip(self) -> bool:
        return self.scheme in SIP_SCHEMES

    @property
    def host_addr(self) -> str:
        """The host without IPv6 brackets, for address lookups.

        RFC 3261's three-colon form (``[2001:db8:::192.0.2.1]``) comes back
        without the extra colon (RFC 5118 §4.10); ``host`` keeps the wire text.
        """
        return host_addr(self.host)

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unescape(self.user)

    def param(self, name: str, default: str | None = None) -> str | None:
        """A URI parameter's unescaped value (names compare case-insensitively).

        A parameter present without a value returns ``""``.
        """
        low = name.lower()
        for n, v in self.params:
            if unescape(n).lower() == low:
                return "" if v is None else unescape(v)
        return default

    def has_param(self, name: str) -> bool:
        low = name.lower()
        return any(unescape(n).lower() == low for n, _ in self.params)

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with these parameters set (value None = flag without value)."""
        lows = {k.lower() for k in params}
        kept = tuple((n, v) for n, v in self.params if unescape(n).lower() not in lows)
        return dataclasses.replace(self, params=kept + tuple(params.items()))

    def without_params(self, *names: str) -> SipUri:
        lows = {k.lower() for k in names}
        kept = tuple((n, v) for n, v in self.params if unescape(n).lower() not in lows)
        return dataclasses.replace(self, params=kept)

    def replace(self, **changes: object) -> SipUri:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        parts = [self.scheme, ":"]
        if self.scheme == "tel":
            parts.append(self.user or "")
        else:
            if self.user is not None:
                parts.append(self.user)
                if self.password is not None:
                    parts.append(":" + self.password)
                parts.append("@")
            parts.append(self.host)
            if self.port is not None:
                parts.append(f":{self.port}")
        for n, v in self.params:
            parts.append(f";{n}" if v is None else f";{n}={v}")
        if self.headers:
            parts.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(parts)


def host_addr(host: str) -> str:
    """A host as an address lookup wants it: IPv6 brackets (and RFC 3261's extra colon) removed."""
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        return ipv6_text(inner) or inner
    return host


def _parse_uri_params(text: str) -> Params:
    out: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if _PARAMCHARS_RE.match(name) is None:
            raise ParseError(f"bad URI parameter {item[:30]!r}")
        if eq:
            if _PARAMCHARS_RE.match(value) is None:
                raise ParseError(f"bad URI parameter value {item[:30]!r}")
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not eq or _HNAME_RE.match(name) is None or _HVALUE_RE.match(value) is None:
            raise ParseError(f"bad URI header {item[:30]!r}")
        out.append((name, value))
    return tuple(out)


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError("unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ParseError("junk after IPv6 reference")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    if not is_host(host):
        raise ParseError(f"bad host {host[:40]!r}")
    port = None if port_text is None else parse_port(port_text)
    return host, port


def parse_uri(text: str) -> SipUri:
    """Parse a URI (RFC 3261 §25.1 SIP-URI / SIPS-URI / absoluteURI; tel per RFC 3966).

    Raises ParseError (status_hint 400) on malformed input. Unknown schemes
    are returned as absolute URIs; the caller decides whether to answer 416.
    """
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.match(scheme) is None:
        raise ParseError(f"bad URI {text[:40]!r}")
    scheme = scheme.lower()
    if not rest:
        raise ParseError("empty URI")
    if scheme in SIP_SCHEMES:
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        number, semi, ptext = rest.partition(";")
        if _TEL_RE.match(number) is None:
            raise ParseError("bad tel URI")
        return SipUri(scheme, user=number, params=_parse_uri_params(ptext) if semi else ())
    if _OPAQUE_RE.match(rest) is None:
        raise ParseError(f"bad {scheme} URI")
    return SipUri(scheme, opaque=rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    # userinfo ends at the first "@" (the user part may hold ";" and "?",
    # RFC 3261 §25.1 user-unreserved, e.g. RFC 4475 intmeth and semiuri).
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if _USER_RE.match(user) is None:
            raise ParseError("bad user part in URI")
        if colon:
            if _PASSWORD_RE.match(pw) is None:
                raise ParseError("bad password in URI")
            password = pw
    rest, qmark, htext = rest.partition("?")
    headers = _parse_uri_headers(htext) if qmark else ()
    hostport, semi, ptext = rest.partition(";")
    params = _parse_uri_params(ptext) if semi else ()
    host, port = _parse_hostport(hostport)
    return SipUri(scheme, user, password, host, port, params, headers)


# RFC 3261 §19.1.4: these parameters must match if present in either URI.
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def uri_equivalent(a: SipUri, b: SipUri) -> bool:
    """URI comparison per RFC 3261 §19.1.4 (sip/sips; other schemes compare as text)."""
    if a.scheme != b.scheme:
        return False
    if not a.is_sip:
        if a.opaque is not None or b.opaque is not None:
            return a.opaque == b.opaque
        return unescape(a.user or "") == unescape(b.user or "") and _params_match(a, b)
    if a.user_unescaped != b.user_unescaped:
        return False
    pa = None if a.password is None else unescape(a.password)
    pb = None if b.password is None else unescape(b.password)
    if pa != pb:
        return False
    if a.host.lower() != b.host.lower() or a.port != b.port:
        return False
    if not _params_match(a, b):
        return False
    ha = {unescape(n).lower(): unescape(v) for n, v in a.headers}
    hb = {unescape(n).lower(): unescape(v) for n, v in b.headers}
    return ha == hb


def _params_match(a: SipUri, b: SipUri) -> bool:
    pa = {unescape(n).lower(): (None if v is None else unescape(v).lower()) for n, v in a.params}
    pb = {unescape(n).lower(): (None if v is None else unescape(v).lower()) for n, v in b.params}
    for name in _STRICT_PARAMS:
        if (name in pa or name in pb) and pa.get(name) != pb.get(name):
            return False
    return all(pa[name] == pb[name] for name in pa.keys() & pb.keys())
