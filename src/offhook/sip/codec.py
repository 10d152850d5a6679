"""SIP wire codec: datagram parsing, TCP stream framing and 400 salvage (RFC 3261 §7, §18).

Theory of operation
-------------------
``parse_message`` is the hot path. It splits the head from the body at the
first CRLFCRLF, decodes the head once (UTF-8, surrogateescape so no byte can
fail), splits it into lines, unfolds continuation lines (RFC 3261 §7.3.1),
partitions each line on the first ``:`` and maps the name to its canonical
spelling through a precomputed table. Only the start line and Content-Length
are checked here; URIs, Via, name-addrs etc. are parsed on demand by
``uri.py`` / ``headers.py`` and checked by ``validate.py``.

``StreamFramer`` frames a TCP/TLS byte stream: it refuses a header block that
is not complete within ``max_size`` bytes, requires Content-Length (RFC 3261
§18.3) and refuses a length that would exceed ``max_size`` before it buffers
a single body byte. After a ParseError the framer stays dead: the adapter
closes the connection. ``rejected`` then holds the start of the message that
failed (at most ``max_size`` bytes), so that the adapter can still answer a
request 400/413 from what ``salvage_for_400`` reads out of it.

``salvage_for_400`` reads Via, From, To, Call-ID and CSeq out of bytes that
failed to parse, leniently, so the transport can still answer 400.
"""

from __future__ import annotations

import re

from offhook.common.errors import ParseError
from offhook.sip.headers import parse_via
from offhook.sip.message import (
    _CANONICAL,
    COMPACT_FORMS,
    Headers,
    SipRequest,
    SipResponse,
    canonical_name,
    split_list,
)

MAX_SIZE = 65535
MAX_HEADERS = 256
MAX_LINE = 8192

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_REQUEST_URI_RE = re.compile(r"[\x21-\x7e]+\Z")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+\Z", re.IGNORECASE)
# Methods every message of a call uses: tokens, so they need no check by _TOKEN_RE.
_COMMON_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"})
_CSEQ_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*\Z")

# Every spelling we expect to see often -> canonical name: an exact-match dict
# lookup is the fast path; anything else goes through the token check and
# message.canonical_name.
_FAST_NAMES: dict[str, str] = {}
for _canon in _CANONICAL.values():
    _FAST_NAMES[_canon] = _canon
    _FAST_NAMES[_canon.lower()] = _canon
    _FAST_NAMES[_canon.upper()] = _canon
for _short, _canon in COMPACT_FORMS.items():
    _FAST_NAMES[_short] = _canon
    _FAST_NAMES[_short.upper()] = _canon
_FAST_NAMES["Call-Id"] = "Call-ID"
_FAST_NAMES["Cseq"] = "CSeq"
_FAST_NAMES["WWW-authenticate"] = "WWW-Authenticate"
del _canon, _short

Message = SipRequest | SipResponse


def _parse_head(head: bytes) -> tuple[Message, int | None]:
    """Parse a header block (start line + header lines, no final CRLFCRLF).

    Returns the message with an empty body and the Content-Length value (or
    None when absent).
    """
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    nlines = len(lines)
    if nlines > MAX_HEADERS + 1:
        raise ParseError("too many header lines", 413)
    # A bare CR or LF inside a line is not a line end (RFC 3261 §7): refuse it.
    if text.count("\n") != nlines - 1 or text.count("\r") != nlines - 1:
        raise ParseError("bare CR or LF in header block")
    if len(head) > MAX_LINE and max(map(len, lines)) > MAX_LINE:
        raise ParseError("header line too long", 413)

    items: list[tuple[str, str]] = []
    append = items.append
    fast = _FAST_NAMES
    content_length: str | None = None
    for line in lines[1:]:
        c0 = line[:1]
        if c0 == " " or c0 == "\t":
            # RFC 3261 §7.3.1: a line starting with whitespace continues the
            # previous header value (LWS folding) and is replaced by one SP.
            if not items:
                raise ParseError("continuation line before the first header")
            name, value = items[-1]
            cont = line.strip(" \t")
            if cont:
                value = f"{value} {cont}" if value else cont
            items[-1] = (name, value)
            if name == "Content-Length":
                content_length = value
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ParseError("header line without a colon")
        cname = fast.get(name)
        if cname is None:
            # HCOLON = *( SP / HTAB ) ":" SWS (RFC 3261 §25.1)
            name = name.rstrip(" \t")
            cname = fast.get(name)
            if cname is None:
                if _TOKEN_RE.match(name) is None:
                    raise ParseError("header name is not a token")
                cname = canonical_name(name)
        value = value.strip(" \t")
        if cname == "Content-Length":
            # RFC 4475 mcl01: two lengths leave the body's extent unknown.
            if content_length is not None:
                raise ParseError("multiple Content-Length headers")
            content_length = value
        append((cname, value))

    msg = _start_line(lines[0], Headers.from_canonical(items))
    if content_length is None:
        return msg, None
    if not content_length.isdigit() or not content_length.isascii() or len(content_length) > 9:
        raise ParseError("bad Content-Length")
    return msg, int(content_length)


def _start_line(first: str, headers: Headers) -> Message:
    if first[:4].upper() == "SIP/":
        # RFC 3261 §7.2 Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        parts = first.split(" ", 2)
        version = parts[0]
        if len(parts) < 2:
            raise ParseError("bad status line", None)
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            raise ParseError("bad status code", None)
        if version.upper() != "SIP/2.0":
            raise ParseError("unsupported SIP version", None)
        reason = parts[2] if len(parts) == 3 else ""
        return SipResponse(headers=headers, status=int(code), reason=reason)
    # RFC 3261 §7.1 Request-Line = Method SP Request-URI SP SIP-Version CRLF:
    # exactly single spaces (RFC 4475 lwsstart, trws, lwsruri).
    parts = first.split(" ")
    if len(parts) != 3:
        raise ParseError("bad request line")
    method, uri, version = parts
    if method not in _COMMON_METHODS and _TOKEN_RE.match(method) is None:
        raise ParseError("bad method")
    # _REQUEST_URI_RE: one or more of \x21-\x7e (split on SP: there is none in it)
    if not (uri and uri.isascii() and uri.isprintable()):
        raise ParseError("bad Request-URI")
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION_RE.match(version):
            raise ParseError("SIP version not supported", 505)
        raise ParseError("bad SIP version")
    return SipRequest(headers=headers, method=method, uri=uri)


def _skip_crlf(data: bytes, pos: int = 0) -> int:
    """Skip leading CRLFs (RFC 3261 §7.5 and RFC 5626 keep-alives)."""
    while data.startswith(b"\r\n", pos):
        pos += 2
    return pos


def parse_message(data: bytes, max_size: int = MAX_SIZE) -> Message:
    """Parse one whole datagram into a request or a response.

    Content-Length (RFC 3261 §18.3): larger than the bytes that follow the
    head is an error; smaller truncates the body; absent means the rest of
    the datagram.
    """
    if len(data) > max_size:
        raise ParseError("message too large", 413)
    start = _skip_crlf(data)
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise ParseError("no end of header block")
    msg, length = _parse_head(data[start:end])
    body_start = end + 4
    if length is None:
        msg.body = data[body_start:]
    else:
        if length > len(data) - body_start:
            raise ParseError("Content-Length larger than the message")
        msg.body = data[body_start : body_start + length]
    return msg


class StreamFramer:
    """Frame SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3).

    ``pings`` counts RFC 5626 §4.4.1 CRLFCRLF keep-alive pings seen between
    messages; ``take_pings()`` returns and clears it so the adapter can send
    one CRLF "pong" per ping.
    """

    __slots__ = (
        "_buf",
        "_crlf_run",
        "_dead",
        "_pending",
        "_scan",
        "error",
        "max_size",
        "pings",
        "rejected",
    )

    def __init__(self, max_size: int = MAX_SIZE) -> None:
        self.max_size = max_size
        self.pings = 0
        self._buf = bytearray()
        self._dead = False
        self._scan = 0  # where to resume looking for CRLFCRLF
        self._crlf_run = 0  # CRLFs seen in a row between messages
        self._pending: tuple[Message, int, int] | None = None  # (msg, body offset, length)
        self.rejected = b""  # the start of the message that failed, for salvage_for_400
        self.error: ParseError | None = None  # why the stream failed (see feed)

    @property
    def dead(self) -> bool:
        return self._dead

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_pings(self) -> int:
        n, self.pings = self.pings, 0
        return n

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes from the peer; return the messages they complete.

        A framing error kills the stream: ``error`` says why and ``rejected``
        holds the bytes that failed. It is raised at once when ``data``
        completed no message; messages that ``data`` completed before the bad
        bytes are good ones and are returned first, with ``error`` set (the
        adapter handles them, then closes the connection). Every later
        ``feed`` raises.
        """
        if self._dead:
            raise ParseError("stream already failed", None)
        out: list[Message] = []
        try:
            self._feed(data, out)
        except ParseError as exc:
            self._dead = True
            self.error = exc
            self.rejected = bytes(self._buf[: self.max_size])
            self._buf = bytearray()
            self._pending = None
            if not out:
                raise
        return out

    def _feed(self, data: bytes, out: list[Message]) -> None:
        buf = self._buf
        buf += data
        while True:
            if self._pending is None:
                # Keep-alives between messages (RFC 5626 §3.5.1: CRLFCRLF ping).
                pos = 0
                n = len(buf)
                while pos + 1 < n and buf[pos] == 13 and buf[pos + 1] == 10:
                    pos += 2
                    self._crlf_run += 1
                    if self._crlf_run == 2:
                        self.pings += 1
                        self._crlf_run = 0
                if pos:
                    del buf[:pos]
                    self._scan = 0
                if not buf or buf == b"\r":
                    return
                self._crlf_run = 0
                end = buf.find(b"\r\n\r\n", self._scan)
                if end < 0:
                    if len(buf) > self.max_size:
                        raise ParseError("header block too large", 413)
                    self._scan = max(0, len(buf) - 3)
                    return
                if end + 4 > self.max_size:
                    raise ParseError("header block too large", 413)
                msg, length = _parse_head(bytes(buf[:end]))
                if length is None:
                    raise ParseError("missing Content-Length on a stream transport")
                if end + 4 + length > self.max_size:
                    raise ParseError("message too large", 413)
                self._pending = (msg, end + 4, length)
                self._scan = 0
            msg, body_start, length = self._pending
            if len(buf) < body_start + length:
                return
            msg.body = bytes(buf[body_start : body_start + length])
            del buf[: body_start + length]
            self._pending = None
            out.append(msg)


_SALVAGE_NAMES = {"Via": "Via", "From": "From", "To": "To", "Call-ID": "Call-ID", "CSeq": "CSeq"}


def salvage_for_400(data: bytes) -> SipRequest | None:
    """Best-effort Via/From/To/Call-ID/CSeq of a request that failed to parse.

    Returns None for responses, for ACK (never answered, RFC 3261 §17.2.1)
    and when Via, Call-ID or CSeq cannot be read: such bytes are dropped.
    """
    try:
        return _salvage(data[:MAX_SIZE])
    except ParseError:
        return None


def _salvage(data: bytes) -> SipRequest | None:
    text = data[_skip_crlf(data) :].decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.replace("\r\n", "\n").split("\n")[: MAX_HEADERS + 1]
    first = lines[0].split()
    if len(first) < 2 or first[0].upper().startswith("SIP/"):
        return None
    method, uri = first[0], first[1]
    if _TOKEN_RE.match(method) is None or method == "ACK":
        return None
    unfolded: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if unfolded:
                n, v = unfolded[-1]
                unfolded[-1] = (n, f"{v} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        cname = canonical_name(name.strip())
        if cname in _SALVAGE_NAMES:
            unfolded.append((cname, value.strip()))
    items = [(n, v) for n, v in unfolded if v and "\r" not in v and len(v) <= MAX_LINE]
    names = [n for n, _ in items]
    if "Via" not in names or "Call-ID" not in names or "CSeq" not in names:
        return None
    via = split_list(next(v for n, v in items if n == "Via"))
    try:
        parse_via(via[0])  # the answer goes by the top Via: it must be readable
    except (ParseError, IndexError):
        return None
    cseq = next(v for n, v in items if n == "CSeq")
    if _CSEQ_RE.match(cseq) is None:
        return None
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, v in items:
        if n != "Via" and n in seen:
            continue  # one of each single-valued header is enough to answer
        seen.add(n)
        kept.append((n, v))
    return SipRequest(headers=Headers.from_canonical(kept), method=method, uri=uri)
