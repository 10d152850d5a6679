"""SIP message objects: requests, responses and their header list.

Headers are kept as the raw (canonical name, value) pairs the parser found and
are interpreted lazily: a proxy-ish B2BUA touches Via, CSeq, Call-ID, From/To
tags and a few more, so nothing else is parsed on the hot path. Structured
views (Via, CSeq, name-addr, URI) live in ``headers.py`` and ``uri.py``.

Serialisation always uses the long header names and recomputes
Content-Length from the body (RFC 3261 §20.14).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from offhook.common.errors import ParseError

# RFC 3261 §7.3.3 and later RFCs: compact form -> canonical long name.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "x": "Session-Expires",
    "y": "Identity",
    "n": "Identity-Info",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "MIME-Version",
        "Organization",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
        "RSeq",
        "RAck",
        "Min-SE",
        "P-Asserted-Identity",
        "Remote-Party-ID",
        "Subscription-State",
        "Diversion",
    )
}

# Headers whose value is a comma-separated list (RFC 3261 §7.3.1). The
# authentication headers are deliberately absent: their commas separate params.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "content-language",
        "allow-events",
        "in-reply-to",
        "warning",
        "error-info",
        "call-info",
        "alert-info",
    }
)


# The canonical spellings of the names above. Every name a Headers holds went through
# canonical_name, so a line of one of these headers is stored under exactly this
# spelling: looking one up by it needs no case folding of each line's name.
_CANONICAL_SPELLINGS = frozenset(_CANONICAL.values())
# Those of them whose value is a list.
_LIST_SPELLINGS = frozenset(n for n in _CANONICAL_SPELLINGS if n.lower() in LIST_HEADERS)


def canonical_name(name: str) -> str:
    """Map any spelling (or compact form) of a header name to its canonical form."""
    low = name.lower()
    if len(low) == 1 and low in COMPACT_FORMS:
        return COMPACT_FORMS[low]
    return _CANONICAL.get(low, name)


def split_list(value: str) -> list[str]:
    """Split a header value on top-level commas, respecting quotes and <...>."""
    if "," not in value:
        v = value.strip()
        return [v] if v else []
    out: list[str] = []
    depth = 0
    quoted = False
    escape = False
    start = 0
    for i, ch in enumerate(value):
        if escape:
            escape = False
            continue
        if quoted:
            if ch == "\\":
                escape = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


class Headers:
    """An ordered, case-insensitive multi-map of header fields.

    ``get``/``get_all`` accept any spelling or compact form of a name.
    ``get_all`` splits list-valued headers (Via, Contact, Route, ...) into
    their elements, in order across repeated header lines.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    @classmethod
    def from_canonical(cls, items: list[tuple[str, str]]) -> Headers:
        """Adopt (canonical name, value) pairs as they are: the parser's fast path."""
        h = cls.__new__(cls)
        h._items = items
        return h

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in _CANONICAL_SPELLINGS:
            return any(n == name for n, _ in self._items)
        low = canonical_name(name).lower()
        return any(n.lower() == low for n, _ in self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h

    def get(self, name: str, default: str | None = None) -> str | None:
        if name in _CANONICAL_SPELLINGS:
            for n, v in self._items:
                if n == name:
                    return v
            return default
        low = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == low:
                return v
        return default

    def get_raw(self, name: str) -> list[str]:
        """Every header line of that name, unsplit."""
        if name in _CANONICAL_SPELLINGS:
            return [v for n, v in self._items if n == name]
        low = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == low]

    def get_all(self, name: str) -> list[str]:
        if name in _CANONICAL_SPELLINGS:
            raw = [v for n, v in self._items if n == name]
            is_list = name in _LIST_SPELLINGS
        else:
            raw = self.get_raw(name)
            is_list = canonical_name(name).lower() in LIST_HEADERS
        if is_list:
            out: list[str] = []
            for v in raw:
                out.extend(split_list(v))
            return out
        return raw

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of that name with one line, keeping the first position."""
        cname = canonical_name(name)
        low = cname.lower()
        for i, (n, _) in enumerate(self._items):
            if n.lower() == low:
                self._items[i] = (cname, value)
                self._items = [
                    item for j, item in enumerate(self._items) if j <= i or item[0].lower() != low
                ]
                return
        self._items.append((cname, value))

    def remove(self, name: str) -> None:
        low = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != low]

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first element of a (list-valued) header."""
        low = canonical_name(name).lower()
        for i, (n, v) in enumerate(self._items):
            if n.lower() == low:
                parts = split_list(v) if low in LIST_HEADERS else [v]
                if len(parts) <= 1:
                    del self._items[i]
                else:
                    self._items[i] = (n, ", ".join(parts[1:]))
                return parts[0] if parts else None
        return None


def _param(value: str, key: str) -> str | None:
    """Value of a ``;key=value`` parameter in a header value (outside <...>)."""
    end = value.rfind(">")
    tail = value[end + 1 :] if end >= 0 else value
    for part in tail.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == key:
            return v.strip().strip('"')
    return None


@dataclass(slots=True)
class SipMessage:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    # --- hot-path accessors (no full parse) ---------------------------------
    @property
    def call_id(self) -> str:
        v = self.headers.get("Call-ID")
        if v is None:
            raise ParseError("missing Call-ID")
        return v.strip()

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) from CSeq (RFC 3261 §20.16)."""
        v = self.headers.get("CSeq")
        if v is None:
            raise ParseError("missing CSeq")
        parts = v.split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10:
            raise ParseError("bad CSeq")
        num = int(parts[0])
        if num >= 2**31:
            raise ParseError("CSeq out of range")
        return num, parts[1]

    @property
    def top_via(self) -> str:
        """The first Via element (``headers.get_all("Via")[0]`` without splitting the rest)."""
        for n, v in self.headers._items:
            if n == "Via":
                if "," in v:
                    parts = split_list(v)
                    if parts:
                        return parts[0]
                else:
                    v = v.strip()
                    if v:
                        return v
        raise ParseError("missing Via")

    @property
    def branch(self) -> str | None:
        return _param(self.top_via, "branch")

    @property
    def from_tag(self) -> str | None:
        v = self.headers.get("From")
        return None if v is None else _param(v, "tag")

    @property
    def to_tag(self) -> str | None:
        v = self.headers.get("To")
        return None if v is None else _param(v, "tag")

    def content_type(self) -> str | None:
        v = self.headers.get("Content-Type")
        return None if v is None else v.split(";")[0].strip().lower()

    def _serialize_headers(self, lines: list[str]) -> bytes:
        for n, v in self.headers:
            if n.lower() == "content-length":
                continue
            lines.append(f"{n}: {v}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass(slots=True)
class SipRequest(SipMessage):
    method: str = "OPTIONS"
    uri: str = ""

    def serialize(self) -> bytes:
        return self._serialize_headers([f"{self.method} {self.uri} SIP/2.0"])

    def __bytes__(self) -> bytes:
        return self.serialize()


@dataclass(slots=True)
class SipResponse(SipMessage):
    status: int = 200
    reason: str = "OK"

    def serialize(self) -> bytes:
        return self._serialize_headers([f"SIP/2.0 {self.status} {self.reason}"])

    def __bytes__(self) -> bytes:
        return self.serialize()


REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def make_response(
    request: SipRequest, status: int, reason: str | None = None, to_tag: str | None = None
) -> SipResponse:
    """Build a response that copies Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2).

    ``to_tag`` is added to To when To has no tag yet (not for 100 Trying).
    """
    h = Headers()
    for n, v in request.headers:
        ln = n.lower()
        if ln in ("via", "from", "call-id", "cseq", "record-route"):
            h._items.append((n, v))
        elif ln == "to":
            if to_tag and status != 100 and _param(v, "tag") is None:
                v = f"{v};tag={to_tag}"
            h._items.append((n, v))
    return SipResponse(headers=h, body=b"", status=status, reason=reason or REASONS.get(status, ""))


def derived_tag(request: SipRequest) -> str:
    """A To tag computed from the request (Call-ID, From, CSeq, top Via), so that
    a stateless UAS answers a retransmission with the same tag (RFC 3261 §8.2.7)."""
    h = hashlib.sha256()
    for name in ("Call-ID", "From", "CSeq", "Via"):
        h.update((request.headers.get(name) or "").encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
    return h.hexdigest()[:12]
