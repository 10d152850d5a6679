"""SIP event packages offhook serves (RFC 6665): the Event header and NOTIFY bodies. Sans-IO.

* ``dialog`` (RFC 4235, busy lamp fields): ``application/dialog-info+xml``,
  always full state with the subscription's version counter; the line is
  one dialog whose ``state`` is ``terminated`` (idle), ``early`` (ringing,
  direction recipient) or ``confirmed`` (in use; direction initiator when
  the line placed the call), as BLF phones expect;
* ``presence`` (RFC 3863 PIDF): ``basic`` open while a device of the line
  is registered, closed otherwise; a ``note`` from the line state and, in
  use, the RPID (RFC 4480) ``on-the-phone`` activity;
* ``message-summary`` (RFC 3842, message waiting): ``message_summary``.

``parse_event`` reads an ``Event`` header (RFC 6665 §8.2.1: the package,
and the ``id`` parameter that names one subscription of a dialog);
``accepts`` checks a SUBSCRIBE's ``Accept`` against a package's body type
(RFC 6665 §4.2.1.1: 406 otherwise). Bodies are built from ``LineStatus``,
what the policy says of a line, so this module knows nothing of core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from offhook.common.errors import ParseError
from offhook.sip.abnf import parse_generic_params, unquote
from offhook.sip.message import split_list

__all__ = [
    "ALLOW_EVENTS",
    "CONTENT_TYPES",
    "DIALOG",
    "MESSAGE_SUMMARY",
    "PACKAGES",
    "PRESENCE",
    "EventHeader",
    "LineStatus",
    "accepts",
    "dialog_info",
    "parse_event",
    "pidf",
]

DIALOG = "dialog"
PRESENCE = "presence"
MESSAGE_SUMMARY = "message-summary"
PACKAGES = (DIALOG, PRESENCE, MESSAGE_SUMMARY)
ALLOW_EVENTS = ", ".join(PACKAGES)
CONTENT_TYPES = {
    DIALOG: "application/dialog-info+xml",
    PRESENCE: "application/pidf+xml",
    MESSAGE_SUMMARY: "application/simple-message-summary",
}
MAX_EVENT = 256

_EVENT_TYPE_RE = re.compile(r"[A-Za-z0-9\-!%*_+`'~]+(?:\.[A-Za-z0-9\-!%*_+`'~]+)*\Z")


@dataclass(frozen=True, slots=True)
class EventHeader:
    """An Event header: the package (lower-cased), its ``id`` ("" none) and the text."""

    package: str
    id: str = ""
    text: str = ""


def parse_event(value: str) -> EventHeader:
    """``Event: dialog;id=abc`` (RFC 6665 §8.4 grammar); ParseError when malformed."""
    text = value.strip()
    if not text or len(text) > MAX_EVENT:
        raise ParseError("bad Event header")
    head, semi, rest = text.partition(";")
    package = head.strip(" \t").lower()
    if not _EVENT_TYPE_RE.match(package):
        raise ParseError("bad event type")
    params = parse_generic_params(rest) if semi else {}
    raw_id = params.get("id", "")
    if raw_id is None:
        raise ParseError("empty Event id")
    event_id = unquote(raw_id) if raw_id.startswith('"') else raw_id
    return EventHeader(package, event_id, text)


def accepts(accept_values: list[str], content_type: str) -> bool:
    """Whether a request's Accept values admit ``content_type`` (no Accept: yes)."""
    if not accept_values:
        return True
    major = content_type.split("/", 1)[0]
    for raw in accept_values:
        for item in split_list(raw):
            media = item.split(";", 1)[0].strip().lower()
            if media in (content_type, "*/*", f"{major}/*"):
                return True
    return False


@dataclass(frozen=True, slots=True)
class LineStatus:
    """A watched line as the policy sees it: ``idle``, ``ringing`` or ``in-use``.

    ``direction`` is ``initiator``/``recipient`` ("" when idle);
    ``available`` whether any device of the line is registered.
    """

    state: str = "idle"
    direction: str = ""
    available: bool = True


_DIALOG_STATE = {"idle": "terminated", "ringing": "early", "in-use": "confirmed"}
_NOTE = {"idle": "Available", "ringing": "Ringing", "in-use": "On the phone"}


def dialog_info(entity: str, version: int, status: LineStatus, dialog_id: str) -> bytes:
    """A full-state dialog-info document (RFC 4235 §4) for one watched line."""
    state = _DIALOG_STATE.get(status.state, "terminated")
    direction = ""
    if state != "terminated" and status.direction in ("initiator", "recipient"):
        direction = f" direction={quoteattr(status.direction)}"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"'
        f' version="{version}" state="full" entity={quoteattr(entity)}>\n'
        f"  <dialog id={quoteattr(dialog_id)}{direction}>\n"
        f"    <state>{state}</state>\n"
        f"    <local><identity>{escape(entity)}</identity></local>\n"
        "  </dialog>\n"
        "</dialog-info>\n"
    )
    return xml.encode()


def pidf(entity: str, status: LineStatus, tuple_id: str) -> bytes:
    """A PIDF document (RFC 3863) for one watched line, with RPID (RFC 4480) when in use."""
    basic = "open" if status.available else "closed"
    note = _NOTE.get(status.state, "Available") if status.available else "Offline"
    person = ""
    if status.available and status.state == "in-use":
        person = (
            f"  <dm:person id={quoteattr('p-' + tuple_id)}>\n"
            "    <rpid:activities><rpid:on-the-phone/></rpid:activities>\n"
            "  </dm:person>\n"
        )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
        ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
        f" entity={quoteattr(entity)}>\n"
        f"  <tuple id={quoteattr(tuple_id)}>\n"
        f"    <status><basic>{basic}</basic></status>\n"
        f"    <contact>{escape(entity)}</contact>\n"
        f"    <note>{note}</note>\n"
        "  </tuple>\n"
        f"{person}"
        "</presence>\n"
    )
    return xml.encode()
