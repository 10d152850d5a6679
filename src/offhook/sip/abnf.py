"""RFC 3261 §25 ABNF building blocks shared by the SIP parsers.

Character classes are compiled regular expressions (``re`` runs in C, which
is what keeps the hot path fast), plus the few helpers every structured
header needs: quoted-string handling, %XX unescaping and the generic
``;name=value`` parameter splitter. Everything here raises only
``ParseError``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

from offhook.common.errors import ParseError

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_RE = re.compile(rf"[{TOKEN_CLASS}]+\Z")
# word (Call-ID): token chars plus ( ) < > : \ " / [ ] ? { }
WORD_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+\Z")
CALLID_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?\Z"
)
# quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE; qdtext excludes " and \,
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_RE = re.compile(r'"(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"')
QUOTED_FULL_RE = re.compile(r'"(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"\Z')
# host = hostname / IPv4address / IPv6reference (lenient on label shape, strict on charset)
HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?\Z")
IPV6REF_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_IPV6_CHARS_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
# RFC 3261 §25.1 derives "hexseq :: : IPv4address" (three colons before an
# embedded IPv4 address) from its IPv6address rule, inherited from RFC 2373.
_ABNF_BUG_RE = re.compile(
    r"((?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?::):([0-9]{1,3}(?:\.[0-9]{1,3}){3})\Z"
)
PORT_RE = re.compile(r"[0-9]{1,5}\Z")
DIGITS_RE = re.compile(r"[0-9]+\Z")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
WSP = " \t"
LWS_RE = re.compile(r"[ \t]+")


def is_token(text: str) -> bool:
    return TOKEN_RE.match(text) is not None


def ipv6_text(text: str) -> str | None:
    """An IPv6 address (no brackets) in the RFC 4291 text form, or None if it is not one.

    The text comes back as written, except that RFC 3261's three-colon form
    ``2001:db8:::192.0.2.1`` is read as ``2001:db8::192.0.2.1``: RFC 5118
    §4.10 asks implementations to tolerate both, the extra colon being an
    artefact of the RFC 3261 ABNF. Zone identifiers (``%eth0``) are refused:
    they have no meaning on the wire.
    """
    if _IPV6_CHARS_RE.match(text) is None:
        return None
    if ":::" in text:
        m = _ABNF_BUG_RE.match(text)
        if m is None:
            return None
        text = m.group(1) + m.group(2)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return text


def parse_ipv6(text: str) -> ipaddress.IPv6Address:
    """An IPv6 address, bare or as a bracketed IPv6reference (RFC 3261 §25.1).

    Tolerates the RFC 3261 three-colon form (RFC 5118 §4.10); raises ParseError.
    """
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    fixed = ipv6_text(inner)
    if fixed is None:
        raise ParseError(f"bad IPv6 address {text[:48]!r}")
    return ipaddress.IPv6Address(fixed)


def is_host(text: str) -> bool:
    """RFC 3261 §25.1 host: a hostname, an IPv4 address or a bracketed IPv6 reference.

    An IPv6reference must hold a real IPv6 address (RFC 4291 text form, or
    the RFC 3261 three-colon form RFC 5118 §4.10 asks us to tolerate).
    """
    if text.startswith("["):
        return IPV6REF_RE.match(text) is not None and ipv6_text(text[1:-1]) is not None
    return HOSTNAME_RE.match(text) is not None


def parse_port(text: str) -> int:
    if PORT_RE.match(text) is None:
        raise ParseError(f"bad port {text[:20]!r}")
    port = int(text)
    if port > 65535:
        raise ParseError("port out of range")
    return port


def unescape(text: str) -> str:
    """Decode %XX escapes (RFC 3261 §19.1.2, compared unescaped per §19.1.4)."""
    if "%" not in text:
        return text
    raw = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)
    # Escapes encode octets; reassemble UTF-8 sequences where they form one.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def unquote(text: str) -> str:
    """The content of a quoted-string (with quotes), quoted-pairs resolved."""
    if QUOTED_FULL_RE.match(text) is None:
        raise ParseError("bad quoted-string")
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            i += 1
            ch = inner[i]
        out.append(ch)
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    """A quoted-string carrying ``text`` (escaping backslash and double quote)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_params(text: str) -> list[str]:
    """Split on ``;`` outside quoted strings. ``text`` is what follows the first ``;``."""
    if '"' not in text:
        return text.split(";")
    out: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            m = QUOTED_RE.match(text, i)
            if m is None:
                raise ParseError("unterminated quoted-string in parameter")
            i = m.end()
            continue
        if ch == ";":
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def parse_generic_params(text: str, bare_ipv6: Collection[str] = ()) -> dict[str, str | None]:
    """``name[=value]`` items separated by ``;`` (RFC 3261 §25.1 generic-param).

    ``text`` is what follows the first ``;``. Names are lower-cased (they are
    case-insensitive); values keep their wire form (quoted strings keep their
    quotes). An empty item (``;;``) is a syntax error. Parameters named in
    ``bare_ipv6`` (lower case) may also carry an IPv6 address without
    brackets, as RFC 3261's via-received does (RFC 5118 §4.5).
    """
    params: dict[str, str | None] = {}
    for item in split_params(text):
        name, eq, value = item.partition("=")
        name = name.strip(WSP)
        if not is_token(name):
            raise ParseError(f"bad parameter name {name[:20]!r}")
        if eq:
            value = value.strip(WSP)
            if not value:
                raise ParseError(f"empty value for parameter {name[:20]!r}")
            if value.startswith('"'):
                if QUOTED_FULL_RE.match(value) is None:
                    raise ParseError("bad quoted parameter value")
            elif not (
                is_token(value)
                or is_host(value)
                or (name.lower() in bare_ipv6 and ipv6_text(value) is not None)
            ):
                raise ParseError(f"bad value for parameter {name[:20]!r}")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
