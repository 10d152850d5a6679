"""The node control protocol on the wire: JSON lines, framed and parsed (sans-IO).

The node's local control endpoint (``ris.control``, on ``[admin]``) and its
clients (``offhook status``, the web process) exchange one JSON object a
line, UTF-8, each ended by ``\\n``:

- a request ``{"op": "status", ...arguments}``: ``op`` a lower-case name
  (letters, digits, ``_``; at most 32), the other members its arguments;
- an answer ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "text"}``,
  one for each request, in order;
- after the answer to a streaming op (``events``), the node writes one event
  a line, a JSON object (``encode_event``, ``parse_event``), until either
  side closes.

``LineBuffer`` cuts a byte stream into lines and never holds more than
``limit`` bytes of an unfinished one (a longer line raises ``LineTooLong``,
and the connection is closed: the rest of it cannot be told apart from the
next request). ``parse_request`` refuses anything but an object with a
valid ``op`` (``BadRequest``); it also refuses what ``json`` would accept
but is no JSON (``NaN``, ``Infinity``) and nesting deeper than
``MAX_DEPTH``, so that no line costs more than its bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from offhook.common import strict_json

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a line may have."""
_OP = re.compile(r"[a-z][a-z0-9_]{0,31}")


class ControlProtocolError(ValueError):
    """A line that is not a control message (the text says why)."""


class LineTooLong(ControlProtocolError):
    """A line longer than the limit: the connection is closed.

    ``lines``: the complete lines the same ``feed`` found before it (to be
    answered before the connection is closed).
    """

    def __init__(self, limit: int, lines: list[bytes]) -> None:
        super().__init__(f"line longer than {limit} bytes")
        self.lines = lines


class BadRequest(ControlProtocolError):
    """A line that is no request: answered with an error, then the connection is closed."""


class StreamStart(NamedTuple):
    """The result of the ``events`` op: the ids the node holds, and whether to resynchronise."""

    first_id: int
    last_id: int
    resync: bool


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    result: Any = None
    error: str = ""


class LineBuffer:
    """Bytes in, complete lines out (without their ``\\n``; a ``\\r`` before it is kept)."""

    __slots__ = ("_pending", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of the unfinished line held now (never above ``limit``)."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """The lines ``data`` completes; ``LineTooLong`` once a line passes ``limit`` bytes."""
        lines: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if len(self._pending) + end - start > self.limit:
                self._pending.clear()
                raise LineTooLong(self.limit, lines)
            self._pending += data[start:end]
            lines.append(bytes(self._pending))
            self._pending.clear()
            start = end + 1
        if len(self._pending) + len(data) - start > self.limit:
            self._pending.clear()
            raise LineTooLong(self.limit, lines)
        self._pending += data[start:]
        return lines


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            stack.extend((v, depth) for v in item.values())
        elif isinstance(item, list):
            depth += 1
            stack.extend((v, depth) for v in item)
        deepest = max(deepest, depth)
    return deepest


def _decode(line: bytes) -> Any:
    try:
        value = strict_json.loads(line.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deep") from None
    # Deeper than MAX_DEPTH takes more openers than that: most lines skip the walk.
    if line.count(b"{") + line.count(b"[") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ValueError("nested too deep")
    return value


def parse_request(line: bytes) -> Request:
    """One request line (without its ``\\n``); ``BadRequest`` with the reason."""
    try:
        value = _decode(line)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise BadRequest(f"not a JSON line: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("a request is a JSON object")
    op = value.pop("op", None)
    if not isinstance(op, str) or not _OP.fullmatch(op):
        raise BadRequest('a request needs "op": a lower-case name')
    return Request(op, value)


def encode_request(op: str, args: dict[str, Any]) -> bytes:
    """The request line (with its ``\\n``); ValueError for an invalid op or an ``op`` argument."""
    if not _OP.fullmatch(op):
        raise ValueError(f"invalid op {op!r}")
    if "op" in args:
        raise ValueError('"op" cannot be an argument')
    return _line({"op": op, **args})


def encode_result(result: Any) -> bytes:
    """A success answer line; values JSON lacks (datetimes, sets) are sent as text."""
    return _line({"ok": True, "result": result})


def encode_error(text: str) -> bytes:
    return _line({"ok": False, "error": text})


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str, allow_nan=False).encode() + b"\n"


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its texts (keys too) replaced by U+FFFD.

    The node keeps bytes of a SIP header that are not UTF-8 as lone surrogates
    (a User-Agent, a display name) and sends them escaped (``\\udce9``).
    Read back, such a text has no UTF-8 form: a web page or a JSON answer
    holding it could not be written. What shows them gets U+FFFD instead.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    return value


def _decode_shown(line: bytes) -> Any:
    """``_decode`` for what the node sends (answers, events): no lone surrogate in it."""
    value = _decode(line)
    # Only an escape can put one there; lines without one (nearly all) skip the walk.
    if b"\\ud" in line or b"\\uD" in line:
        value = _no_surrogates(value)
    return value


def parse_answer(line: bytes) -> Answer:
    """One answer line; ``ControlProtocolError`` when it is none."""
    try:
        value = _decode_shown(line)
    except ValueError as exc:
        raise ControlProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        raise ControlProtocolError('an answer is an object with "ok"')
    if value["ok"]:
        return Answer(True, value.get("result"))
    error = value.get("error")
    return Answer(False, error=error if isinstance(error, str) else "error")


_EVENT_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=False)
"""Built once: an event stream encodes every event (``json.dumps`` would build one a call)."""


def encode_event(event: dict[str, Any]) -> bytes:
    """One line of an event stream (with its ``\\n``)."""
    return _EVENT_ENCODER.encode(event).encode() + b"\n"


def parse_event(line: bytes) -> dict[str, Any]:
    """One line of an event stream: a JSON object; ``ControlProtocolError`` when it is none."""
    try:
        value = _decode_shown(line)
    except ValueError as exc:
        raise ControlProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(value, dict):
        raise ControlProtocolError("an event is a JSON object")
    return value
