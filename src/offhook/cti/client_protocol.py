"""What a CTI WebSocket client may send, parsed and bounded (sans-IO).

Every client message is one JSON object in a text frame:

- ``{"op": "subscribe", "devices": [...], "lines": [...]}``: narrow the
  stream to these devices and lines (DNs); both left out (or ``"all":
  true``): everything the token may see;
- ``{"op": "resume", "after": ID}``: replay the events after node-wide
  event id ``ID`` (or resynchronise with a snapshot when that is too old);
- ``{"op": "ping"}``: answered ``{"type": "pong"}`` (for browsers, which
  cannot send WebSocket pings).

``parse_client_message(text)`` returns a ``Subscribe``, ``Resume`` or
``Ping`` or raises ``ClientMessageError`` (the reason goes back to the
client, which is then disconnected): not JSON, not an object, an unknown
op or key, a list longer than ``MAX_NAMES`` or a name longer than
``MAX_NAME``, an id that is no non-negative integer below 2**63. The size of
a message is bounded before it gets here (the WebSocket ``max_size``);
``MAX_TEXT`` is checked again so the parser holds on its own.

On the JSON-lines TCP listener (``web.cti_tcp``) the first line is
``{"op": "auth", "token": TOKEN}`` (and optionally ``"after": ID``):
``parse_auth(text)`` returns an ``Auth`` or raises ``ClientMessageError``
(a token is a string of 1 to ``MAX_TOKEN`` characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from offhook.common import strict_json

__all__ = [
    "MAX_NAME",
    "MAX_NAMES",
    "MAX_TEXT",
    "MAX_TOKEN",
    "Auth",
    "ClientMessage",
    "ClientMessageError",
    "Ping",
    "Resume",
    "Subscribe",
    "parse_auth",
    "parse_client_message",
]

MAX_TEXT = 64 * 1024
MAX_NAMES = 256
MAX_NAME = 64
MAX_ID = (1 << 63) - 1
MAX_TOKEN = 256
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+*#-]{0,63}")


class ClientMessageError(ValueError):
    """A client message that is not one of the protocol's (the text says why)."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Narrow to these devices and DNs (None: not narrowed by that)."""

    devices: tuple[str, ...] | None
    lines: tuple[str, ...] | None

    @property
    def everything(self) -> bool:
        return self.devices is None and self.lines is None


@dataclass(frozen=True, slots=True)
class Resume:
    after: int


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    """The TCP listener's first line: the API token, and where to resume (None: live)."""

    token: str
    after: int | None = None


ClientMessage = Subscribe | Resume | Ping

_KEYS = {
    "subscribe": frozenset({"op", "devices", "lines", "all"}),
    "resume": frozenset({"op", "after"}),
    "ping": frozenset({"op"}),
}


def _names(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ClientMessageError(f"{key} is a list of names")
    if len(value) > MAX_NAMES:
        raise ClientMessageError(f"{key}: at most {MAX_NAMES} names")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _NAME.fullmatch(item):
            raise ClientMessageError(f"{key}: not a device name or DN")
        if item not in out:
            out.append(item)
    return tuple(out)


def _object(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ClientMessageError("message too large")
    try:
        data = strict_json.loads(text)
    except (ValueError, RecursionError):
        raise ClientMessageError("not JSON") from None
    if not isinstance(data, dict):
        raise ClientMessageError("a message is a JSON object")
    return data


def _event_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ClientMessageError("after is an event id (a non-negative integer)")
    return value


def parse_auth(text: str) -> Auth:
    """The ``auth`` line (see the module doc); ``ClientMessageError`` otherwise."""
    data = _object(text)
    if data.get("op") != "auth":
        raise ClientMessageError('the first line is {"op": "auth", "token": ...}')
    unknown = set(data) - {"op", "token", "after"}
    if unknown:
        raise ClientMessageError(f"unknown key {sorted(unknown)[0][:32]!r} for auth")
    token = data.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
        raise ClientMessageError("token is the API token (a string)")
    after = data.get("after")
    return Auth(token, None if after is None else _event_id(after))


def parse_client_message(text: str) -> ClientMessage:
    """One client message (see the module doc); ``ClientMessageError`` otherwise."""
    data = _object(text)
    op = data.get("op")
    if not isinstance(op, str) or op not in _KEYS:
        raise ClientMessageError("op is one of subscribe, resume, ping")
    unknown = set(data) - _KEYS[op]
    if unknown:
        raise ClientMessageError(f"unknown key {sorted(unknown)[0][:32]!r} for {op}")
    if op == "ping":
        return Ping()
    if op == "resume":
        return Resume(_event_id(data.get("after")))
    everything = data.get("all", False)
    if not isinstance(everything, bool):
        raise ClientMessageError("all is true or false")
    devices = _names(data.get("devices"), "devices")
    lines = _names(data.get("lines"), "lines")
    if everything:
        if devices or lines:
            raise ClientMessageError("all: true names no devices or lines")
        return Subscribe(None, None)
    if not devices and not lines:  # nothing named: everything
        return Subscribe(None, None)
    return Subscribe(devices, lines)
