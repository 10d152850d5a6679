"""The media server control protocol (docs/media-control.md, version 1): codec and validation.

Theory of operation. The node and a media server exchange JSON objects, one
per line, over a stream socket. This module is the wire part of both ends,
sans-IO:

- ``LineFramer`` cuts a byte stream into lines of at most ``MAX_LINE``
  bytes; it never holds more than that, and a longer line is a fatal
  ``ControlError`` (the connection is closed).
- ``parse_request(line)`` (media server side) turns one line into a frozen
  request object (``Open``, ``Connect``, ...) or raises ``ControlError``.
  ``error.fatal`` says what to do with it: a line that is not a JSON object
  with an integer ``id`` closes the connection (nothing could be answered);
  a request whose ``id`` is readable but whose command or fields are wrong
  is answered ``{"id": N, "ok": false, "error": "..."}`` and the connection
  goes on.
- ``encode_reply``/``encode_event`` write the server's answers;
  ``encode_request`` writes the node's requests; ``parse_message(line)``
  (node side) reads a reply or an event.

Every field is checked here, so the media server only ever sees valid
values: handles and names (1-64 of ``A-Za-z0-9._:-``), IP literals in the
canonical form, ports, payload types, directions, digits, play sources.
Unknown fields are ignored (a newer peer may send more); unknown commands
are an error reply. JSON numbers that are not finite, integers of more than
a few thousand digits and deep nesting are refused as ``ControlError``,
never let out as another exception.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from offhook.common import ParseError, strict_json
from offhook.common.addr import canonical
from offhook.common.control_address import MAX_UNIX_PATH as MAX_UNIX_PATH
from offhook.common.control_address import ControlAddress as ControlAddress
from offhook.common.control_address import parse_control_address as parse_control_address

VERSION = 1
MAX_LINE = 65536
"""Bytes of one message, its newline excluded."""
MAX_ID = (1 << 53) - 1
"""Request ids are JSON-safe integers (0 .. 2**53-1)."""
MAX_DIGITS = 64
MAX_SOURCES = 64
"""Music on hold files one ``sources`` request may name."""
MAX_PATH = 4096
MAX_ERROR = 300
"""Characters of an error text put on the wire."""

_NAME = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
_DIGITS = re.compile(rf"[0-9*#A-D]{{1,{MAX_DIGITS}}}\Z")

TONE_NAMES = frozenset({"dial", "ringback", "busy", "reorder", "sit", "confirm"})
SOURCE_KINDS = frozenset({"moh", "tone", "announce"})
DEFAULT_MOH = "default"


class ControlError(ParseError):
    """A control message that cannot be used.

    ``fatal``: the stream cannot go on (framing, not JSON, no usable id): the
    connection is closed. Otherwise ``request_id`` is the id to answer the
    error to.
    """

    def __init__(self, reason: str, request_id: int | None = None, *, fatal: bool = False) -> None:
        super().__init__(reason, None)
        self.request_id = request_id
        self.fatal = fatal or request_id is None


class Codec(enum.StrEnum):
    PCMU = "PCMU"
    PCMA = "PCMA"


class Direction(enum.StrEnum):
    """The media server's own direction for an endpoint (RFC 3264 §5.1 terms)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)


# -- framing -----------------------------------------------------------------


class LineFramer:
    """Newline-delimited framing with a hard bound on what is buffered.

    ``feed(data)`` returns the complete lines (without ``\\n``; a trailing
    ``\\r`` is dropped, empty lines are skipped). A line longer than
    ``max_line`` raises a fatal ``ControlError``; after that the framer must
    not be fed again.
    """

    __slots__ = ("_buffer", "max_line")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buffer
        buf += data
        lines: list[bytes] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if end - start > self.max_line:
                raise ControlError(f"line longer than {self.max_line} bytes", fatal=True)
            line = bytes(buf[start:end]).removesuffix(b"\r")
            if line:
                lines.append(line)
            start = end + 1
        del buf[:start]
        if len(buf) > self.max_line:
            buf.clear()
            raise ControlError(f"line longer than {self.max_line} bytes", fatal=True)
        return lines

    @property
    def buffered(self) -> int:
        return len(self._buffer)


# -- messages ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    cmd: ClassVar[str] = "hello"
    id: int
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class Open:
    cmd: ClassVar[str] = "open"
    id: int
    handle: str
    family: int = 4


@dataclass(frozen=True, slots=True)
class Connect:
    cmd: ClassVar[str] = "connect"
    id: int
    handle: str
    address: str
    port: int
    codec: Codec = Codec.PCMU
    pt: int = 0
    dtmf_pt: int | None = None
    direction: Direction = Direction.SENDRECV


@dataclass(frozen=True, slots=True)
class Source:
    """A play source: ``kind`` ``moh``, ``tone`` or ``announce`` and a name."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Play:
    cmd: ClassVar[str] = "play"
    id: int
    handle: str
    source: Source
    loop: bool = True


@dataclass(frozen=True, slots=True)
class Stop:
    cmd: ClassVar[str] = "stop"
    id: int
    handle: str


@dataclass(frozen=True, slots=True)
class Join:
    cmd: ClassVar[str] = "join"
    id: int
    handle: str
    bridge: str


@dataclass(frozen=True, slots=True)
class Leave:
    cmd: ClassVar[str] = "leave"
    id: int
    handle: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    cmd: ClassVar[str] = "dtmf"
    id: int
    handle: str
    digits: str


@dataclass(frozen=True, slots=True)
class Release:
    cmd: ClassVar[str] = "release"
    id: int
    handle: str


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str
    path: str


@dataclass(frozen=True, slots=True)
class Sources:
    cmd: ClassVar[str] = "sources"
    id: int
    sources: tuple[SourceFile, ...] = ()


@dataclass(frozen=True, slots=True)
class Stats:
    cmd: ClassVar[str] = "stats"
    id: int


@dataclass(frozen=True, slots=True)
class Ping:
    cmd: ClassVar[str] = "ping"
    id: int


Request = (
    Hello | Open | Connect | Play | Stop | Join | Leave | Dtmf | Release | Sources | Stats | Ping
)
HandleRequest = Open | Connect | Play | Stop | Join | Leave | Dtmf | Release


@dataclass(frozen=True, slots=True)
class Reply:
    """``{"id": N, "ok": true, ...fields}`` or ``{"id": N, "ok": false, "error": text}``."""

    id: int
    ok: bool = True
    fields: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """``{"event": name, "handle": H, ...fields}`` (no id)."""

    name: str
    handle: str
    fields: Mapping[str, Any] = field(default_factory=dict)


DTMF_EVENT = "dtmf"
RTP_TIMEOUT_EVENT = "rtp-timeout"
PLAY_DONE_EVENT = "play-done"


# -- field checks ------------------------------------------------------------


def valid_name(text: object) -> bool:
    """A handle, bridge or source name: 1-64 characters of ``A-Za-z0-9._:-``."""
    return isinstance(text, str) and _NAME.match(text) is not None


def parse_source(text: str) -> Source:
    """``moh:NAME``, ``tone:NAME`` or ``announce:NAME``; ValueError otherwise."""
    kind, sep, name = text.partition(":")
    if not sep or kind not in SOURCE_KINDS:
        raise ValueError(f"source {text[:80]!r}: expected moh:NAME, tone:NAME or announce:NAME")
    if not valid_name(name) or ":" in name:
        raise ValueError(f"source {text[:80]!r}: the name must be 1-64 of A-Za-z0-9._-")
    if kind == "tone" and name not in TONE_NAMES:
        raise ValueError(f"unknown tone {name!r} (one of {', '.join(sorted(TONE_NAMES))})")
    return Source(kind, name)


class _Fields:
    """Typed access to a request's fields; every miss is a ControlError for ``rid``."""

    __slots__ = ("data", "rid")

    def __init__(self, data: dict[str, Any], rid: int) -> None:
        self.data = data
        self.rid = rid

    def fail(self, text: str) -> ControlError:
        return ControlError(text, self.rid)

    def name(self, key: str) -> str:
        value = self.data.get(key)
        if not valid_name(value):
            raise self.fail(f"{key}: must be 1-64 characters of A-Za-z0-9._:-")
        assert isinstance(value, str)
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if type(value) is not int or not low <= value <= high:
            raise self.fail(f"{key}: must be an integer {low}-{high}")
        return value

    def string(self, key: str, limit: int, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise self.fail(f"{key}: must be a string of 1-{limit} characters")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key}: must be true or false")
        return value


def _hello(f: _Fields) -> Hello:
    version = f.integer("version", 1, 1 << 31)
    if version != VERSION:
        raise f.fail(f"version {version} is not supported (this server speaks {VERSION})")
    return Hello(f.rid, version)


def _open(f: _Fields) -> Open:
    family = f.data.get("family", 4)
    if family not in (4, 6) or type(family) is not int:
        raise f.fail("family: must be 4 or 6")
    return Open(f.rid, f.name("handle"), family)


def _connect(f: _Fields) -> Connect:
    handle = f.name("handle")
    text = f.string("address", 64)
    try:
        address = canonical(text)
    except ValueError:
        raise f.fail(f"address: {text!r} is not an IP address") from None
    if address in ("0.0.0.0", "::"):
        raise f.fail("address: the far end's address cannot be a wildcard")
    port = f.integer("port", 1, 65535)
    try:
        codec = Codec(f.data.get("codec", "PCMU"))
    except ValueError:
        raise f.fail("codec: must be PCMU or PCMA") from None
    default_pt = 0 if codec is Codec.PCMU else 8
    pt = f.integer("pt", 0, 127, default_pt)
    dtmf_pt: int | None = None
    if f.data.get("dtmf_pt") is not None:
        dtmf_pt = f.integer("dtmf_pt", 0, 127)
        if dtmf_pt == pt:
            raise f.fail("dtmf_pt: must differ from pt")
    try:
        direction = Direction(f.data.get("direction", "sendrecv"))
    except ValueError:
        raise f.fail("direction: must be sendrecv, sendonly, recvonly or inactive") from None
    return Connect(f.rid, handle, address, port, codec, pt, dtmf_pt, direction)


def _play(f: _Fields) -> Play:
    handle = f.name("handle")
    try:
        source = parse_source(f.string("source", 80))
    except ValueError as exc:
        raise f.fail(str(exc)) from None
    return Play(f.rid, handle, source, f.boolean("loop", True))


def _dtmf(f: _Fields) -> Dtmf:
    handle = f.name("handle")
    digits = f.data.get("digits")
    if not isinstance(digits, str) or _DIGITS.match(digits) is None:
        raise f.fail(f"digits: must be 1-{MAX_DIGITS} of 0-9 * # A-D")
    return Dtmf(f.rid, handle, digits)


def _sources(f: _Fields) -> Sources:
    items = f.data.get("sources", [])
    if not isinstance(items, list) or len(items) > MAX_SOURCES:
        raise f.fail(f"sources: must be a list of at most {MAX_SOURCES} {{name, path}}")
    out: list[SourceFile] = []
    names: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            raise f.fail("sources: each entry must be an object {name, path}")
        name, path = item.get("name"), item.get("path")
        if not valid_name(name) or ":" in str(name):
            raise f.fail("sources: name must be 1-64 of A-Za-z0-9._-")
        if not isinstance(path, str) or not path or len(path) > MAX_PATH or "\0" in path:
            raise f.fail(f"sources: path must be a string of 1-{MAX_PATH} characters")
        assert isinstance(name, str)
        if name in names:
            raise f.fail(f"sources: name {name!r} given twice")
        names.add(name)
        out.append(SourceFile(name, path))
    return Sources(f.rid, tuple(out))


_PARSERS: dict[str, Any] = {
    "hello": _hello,
    "open": _open,
    "connect": _connect,
    "play": _play,
    "stop": lambda f: Stop(f.rid, f.name("handle")),
    "join": lambda f: Join(f.rid, f.name("handle"), f.name("bridge")),
    "leave": lambda f: Leave(f.rid, f.name("handle")),
    "dtmf": _dtmf,
    "release": lambda f: Release(f.rid, f.name("handle")),
    "sources": _sources,
    "stats": lambda f: Stats(f.rid),
    "ping": lambda f: Ping(f.rid),
}
COMMANDS = frozenset(_PARSERS)


def decode_object(line: bytes) -> dict[str, Any]:
    """One line as a JSON object; a fatal ControlError for anything else."""
    if len(line) > MAX_LINE:
        raise ControlError(f"line longer than {MAX_LINE} bytes", fatal=True)
    try:
        data = strict_json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ControlError("not UTF-8", fatal=True) from None
    except RecursionError:
        raise ControlError("invalid JSON: nested too deeply", fatal=True) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, int() digit limit
        raise ControlError(f"invalid JSON: {str(exc)[:100]}", fatal=True) from None
    if not isinstance(data, dict):
        raise ControlError("a message must be a JSON object", fatal=True)
    return data


def parse_request(line: bytes) -> Request:
    """One request line -> a request object; ControlError (see ``fatal``) otherwise."""
    data = decode_object(line)
    rid = data.get("id")
    if type(rid) is not int or not 0 <= rid <= MAX_ID:
        raise ControlError(f"id: must be an integer 0-{MAX_ID}", fatal=True)
    cmd = data.get("cmd")
    parser = _PARSERS.get(cmd) if isinstance(cmd, str) else None
    if parser is None:
        shown = cmd[:40] if isinstance(cmd, str) else cmd
        raise ControlError(f"unknown cmd {shown!r}", rid)
    request: Request = parser(_Fields(data, rid))
    return request


# -- encoding ----------------------------------------------------------------


def _line(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def request_fields(request: Request) -> dict[str, Any]:
    """A request as the JSON object sent for it."""
    out: dict[str, Any] = {"id": request.id, "cmd": request.cmd}
    if isinstance(request, Hello):
        out["version"] = request.version
    elif isinstance(request, Open):
        out.update(handle=request.handle, family=request.family)
    elif isinstance(request, Connect):
        out.update(
            handle=request.handle,
            address=request.address,
            port=request.port,
            codec=str(request.codec),
            pt=request.pt,
            direction=str(request.direction),
        )
        if request.dtmf_pt is not None:
            out["dtmf_pt"] = request.dtmf_pt
    elif isinstance(request, Play):
        out.update(handle=request.handle, source=str(request.source), loop=request.loop)
    elif isinstance(request, Join):
        out.update(handle=request.handle, bridge=request.bridge)
    elif isinstance(request, Dtmf):
        out.update(handle=request.handle, digits=request.digits)
    elif isinstance(request, Sources):
        out["sources"] = [{"name": s.name, "path": s.path} for s in request.sources]
    elif isinstance(request, Stop | Leave | Release):
        out["handle"] = request.handle
    return out


def encode_request(request: Request) -> bytes:
    return _line(request_fields(request))


def encode_reply(reply: Reply) -> bytes:
    if reply.ok:
        return _line({**reply.fields, "id": reply.id, "ok": True})
    return _line({"id": reply.id, "ok": False, "error": reply.error[:MAX_ERROR]})


def error_reply(request_id: int, text: str) -> Reply:
    return Reply(request_id, False, {}, text[:MAX_ERROR])


def encode_event(event: Event) -> bytes:
    return _line({**event.fields, "event": event.name, "handle": event.handle})


def parse_message(line: bytes) -> Reply | Event:
    """A line from the media server (node side): a reply or an event.

    A fatal ControlError when it is neither (the node then drops the
    connection: a server that sends garbage cannot be trusted with calls).
    """
    data = decode_object(line)
    if "event" in data:
        name, handle = data.pop("event"), data.pop("handle", None)
        if not isinstance(name, str) or not valid_name(handle):
            raise ControlError("event: needs a name and a valid handle", fatal=True)
        assert isinstance(handle, str)
        return Event(name, handle, data)
    rid, ok = data.pop("id", None), data.pop("ok", None)
    if type(rid) is not int or not 0 <= rid <= MAX_ID or not isinstance(ok, bool):
        raise ControlError("reply: needs an integer id and ok", fatal=True)
    if ok:
        return Reply(rid, True, data)
    error = data.get("error")
    return Reply(rid, False, {}, error if isinstance(error, str) else "error")
