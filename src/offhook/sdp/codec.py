"""SDP parser (RFC 8866 §5, formerly RFC 4566): bytes -> ``SessionDescription``.

Theory of operation: the body is size-checked before anything else, split on
LF (a CR before the LF is optional, so LF-only bodies from sloppy peers are
accepted, RFC 8866 §5), and walked once. Each line must be ``<letter>=<value>``;
lines before the first ``m=`` belong to the session, the rest to the current
media section. Typed lines (v o s c b t r m a) are validated and decoded,
every other line is kept raw so that serialisation loses nothing.

Bounds: ``max_size`` bytes, ``max_lines`` lines and ``max_media`` media
sections; numbers are ASCII digits of bounded length. The only exception
this module raises on any input is ``offhook.common.ParseError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from offhook.common.errors import ParseError
from offhook.sdp.model import (
    Attribute,
    Bandwidth,
    Connection,
    MediaSection,
    Origin,
    SessionDescription,
    Timing,
    canonical_order,
)

DEFAULT_MAX_SIZE = 16384
DEFAULT_MAX_LINES = 1024
DEFAULT_MAX_MEDIA = 32

# RFC 8866 §9 token: attribute names and bwtypes.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+\Z")


def _fail(reason: str) -> ParseError:
    return ParseError(f"SDP: {reason}", 400)


def _uint(text: str, what: str, max_digits: int = 20, maximum: int | None = None) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= max_digits):
        raise _fail(f"bad {what} {text[:32]!r}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise _fail(f"{what} out of range")
    return value


def _tokens(value: str, count: int | None, what: str) -> list[str]:
    parts = value.split()
    if count is not None and len(parts) != count:
        raise _fail(f"malformed {what}= line")
    return parts


def _connection(value: str) -> Connection:
    nettype, addrtype, address = _tokens(value, 3, "c")
    return Connection(nettype, addrtype, address)


def _bandwidth(value: str) -> Bandwidth:
    bwtype, sep, amount = value.strip().partition(":")
    if not sep or not _TOKEN.match(bwtype):
        raise _fail("malformed b= line")
    return Bandwidth(bwtype, _uint(amount.strip(), "bandwidth"))


def _attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    if not sep:
        name = name.strip()
    if not _TOKEN.match(name):
        raise _fail(f"bad attribute name {name[:32]!r}")
    return (name, rest if sep else None)


def _origin(value: str) -> Origin:
    username, sess_id, sess_version, nettype, addrtype, address = _tokens(value, 6, "o")
    return Origin(
        username,
        _uint(sess_id, "o= sess-id", 40),
        _uint(sess_version, "o= sess-version", 40),
        nettype,
        addrtype,
        address,
    )


# An m= line as read: kind, port, proto, formats, port count.
_MediaHead = tuple[str, int, str, tuple[str, ...], int | None]


def _media_line(value: str) -> _MediaHead:
    parts = value.split()
    if len(parts) < 3:
        raise _fail("malformed m= line")
    kind, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    port = _uint(port_part, "m= port", 5, 65535)
    count = _uint(count_part, "m= port count", 5, 65535) if slash else None
    return kind, port, proto, tuple(formats), count


@dataclass(slots=True)
class _Section:
    """Mutable accumulator for one section while parsing."""

    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)


def _media(head: _MediaHead, acc: _Section) -> MediaSection:
    kind, port, proto, formats, count = head
    return MediaSection(
        kind=kind,
        port=port,
        proto=proto,
        formats=formats,
        port_count=count,
        connection=acc.connection,
        attributes=tuple(acc.attributes),
        bandwidths=tuple(acc.bandwidths),
        other_lines=tuple(canonical_order(acc.other, media=True)),
    )


# What ``bytes.strip()`` strips: a line of only these is blank.
_ASCII_SPACE = " \t\n\r\x0b\x0c"


def _split_lines(data: bytes, max_lines: int) -> list[str]:
    if b"\x00" in data:
        raise _fail("NUL byte")
    # Decoded once: no UTF-8 sequence contains an LF byte, so decoding the whole
    # body and splitting it gives the lines that splitting first would.
    raw = data.decode("utf-8", "surrogateescape").split("\n")
    if raw[-1] == "" or raw[-1] == "\r":
        raw.pop()
    if len(raw) > max_lines:
        raise _fail("too many lines")
    lines: list[str] = []
    append = lines.append
    for chunk in raw:
        if chunk[-1:] == "\r":
            chunk = chunk[:-1]
        if "\r" in chunk:
            if chunk.strip(_ASCII_SPACE):
                raise _fail("bare CR inside a line")
            continue
        if not chunk or not chunk.strip(_ASCII_SPACE):
            continue  # tolerate blank lines (some stacks add one before the body end)
        append(chunk)
    return lines


def parse_sdp(
    data: bytes,
    max_size: int = DEFAULT_MAX_SIZE,
    *,
    max_lines: int = DEFAULT_MAX_LINES,
    max_media: int = DEFAULT_MAX_MEDIA,
) -> SessionDescription:
    """Parse an SDP body; raise ``ParseError`` (status hint 400, or 413 when too big)."""
    if len(data) > max_size:
        raise ParseError(f"SDP: body larger than {max_size} bytes", 413)
    lines = _split_lines(data, max_lines)
    if not lines:
        raise _fail("empty body")

    version: int | None = None
    origin: Origin | None = None
    session_name: str | None = None
    times: list[Timing] = []
    session = _Section()
    media: list[MediaSection] = []
    head: _MediaHead | None = None
    current = session

    for index, line in enumerate(lines):
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise _fail(f"line {index + 1} is not <type>=<value>")
        kind, value = line[0], line[2:]
        if index == 0 and kind != "v":
            raise _fail("first line must be v=")  # RFC 8866 §5
        if kind == "m":
            if head is not None:
                media.append(_media(head, current))
            if len(media) >= max_media:
                raise _fail("too many media sections")
            head = _media_line(value)
            current = _Section()
        elif kind == "a":
            current.attributes.append(_attribute(value))
        elif kind == "c":
            if current.connection is not None:
                raise _fail("duplicate c= line")
            current.connection = _connection(value)
        elif kind == "b":
            current.bandwidths.append(_bandwidth(value))
        elif head is not None:
            current.other.append((kind, value))  # i=, k= and unknown media-level lines
        elif kind == "v":
            if version is not None:
                raise _fail("duplicate v= line")
            version = _uint(value.strip(), "v= version", 3)
        elif kind == "o":
            if origin is not None:
                raise _fail("duplicate o= line")
            origin = _origin(value)
        elif kind == "s":
            if session_name is not None:
                raise _fail("duplicate s= line")
            session_name = value
        elif kind == "t":
            start, stop = _tokens(value, 2, "t")
            times.append(Timing(_uint(start, "t= start"), _uint(stop, "t= stop")))
        elif kind == "r":
            if not times:
                raise _fail("r= before t=")
            last = times[-1]
            times[-1] = Timing(last.start, last.stop, (*last.repeats, value))
        else:
            session.other.append((kind, value))  # i= u= e= p= z= k= and unknown letters

    if head is not None:
        media.append(_media(head, current))
    if origin is None:
        raise _fail("missing o= line")
    return SessionDescription(
        origin=origin,
        session_name="-" if session_name is None else session_name,
        connection=session.connection,
        bandwidths=tuple(session.bandwidths),
        times=tuple(times),
        attributes=tuple(session.attributes),
        media=tuple(media),
        other_lines=tuple(canonical_order(session.other, media=False)),
        version=0 if version is None else version,
    )
