"""Whose dialog or transaction a datagram is, read before any parse (sans-IO).

Every Call-ID, tag and branch a worker makes carries ``w<index>-``
(``common.ids``). :func:`owner` reads, with a few bounded regular-expression
searches over the header block and no parse:

- a response: the branch of its top Via (the worker that sent the request);
- a request: the tag of its To header (in a dialog, that tag is ours: the
  From tag of a request we sent or the To tag of our answer), else, when it
  has a To tag at all, its Call-ID. A request without a To tag (a new call,
  a REGISTER, an OPTIONS) belongs to whoever reads it, and a REGISTER never
  moves: what authenticates stays with the worker that holds the source's
  failed-login count (docs/workers.md section 1).

:func:`forward_to` is the decision: the index of another worker of the
node, or None (handle here); :func:`message_forward_to` is the same decision
for a message already parsed (one framed out of a TCP stream). A datagram
that names no worker, this worker, or a worker index the node does not have
stays here, so a forged mark costs at most one hop to a worker that then
answers it as its own.
"""

from __future__ import annotations

import re

from offhook.common.errors import ParseError
from offhook.common.ids import MAX_WORKERS
from offhook.sip.message import SipMessage, SipRequest, SipResponse

_HEAD_END = b"\r\n\r\n"
_MARK = rb"w(\d{1,2})-"
_VIA = re.compile(rb"\n(?:via|v)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*z9hG4bK" + _MARK, re.IGNORECASE)
_TO = re.compile(rb"\n(?:to|t)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_TAG = re.compile(rb";[ \t]*tag[ \t]*=[ \t]*([^;, \t]*)", re.IGNORECASE)
_TAG_MARK = re.compile(_MARK)
_CALL_ID = re.compile(rb"\n(?:call-id|i)[ \t]*:[ \t]*" + _MARK, re.IGNORECASE)
_MARK_AT_START = re.compile(_MARK)


def _index(match: re.Match[bytes] | None) -> int | None:
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) > 1 and digits[0:1] == b"0":
        return None  # one written form per index
    index = int(digits)
    return index if index < MAX_WORKERS else None


def owner(data: bytes) -> int | None:
    """The worker index the datagram's dialog or transaction names, or None."""
    end = data.find(_HEAD_END)
    if end < 0:
        end = len(data)
    if data.startswith(b"SIP/2.0 "):
        via = _VIA.search(data, 0, end)
        return None if via is None else _index(_BRANCH.search(via.group(1)))
    if data.startswith(b"REGISTER "):
        return None
    to = _TO.search(data, 0, end)
    if to is None:
        return None
    tag = _TAG.search(to.group(1))
    if tag is None:
        return None  # not in a dialog: a new request stays where it arrived
    mark = _TAG_MARK.match(tag.group(1))
    if mark is not None:
        return _index(mark)
    return _index(_CALL_ID.search(data, 0, end))


def _another(index: int | None, me: int, workers: int) -> int | None:
    """``index`` when it names another worker of the node, else None (handle here)."""
    if index is None or index == me or index >= workers:
        return None
    return index


def forward_to(data: bytes, me: int, workers: int) -> int | None:
    """Another worker of ``workers`` that owns the datagram, or None to handle it here."""
    return _another(owner(data), me, workers)


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def message_owner(msg: SipMessage) -> int | None:
    """:func:`owner` of a parsed message: its top Via's branch, To tag or Call-ID."""
    try:
        if isinstance(msg, SipResponse):
            return _index(_BRANCH.search(_raw(msg.top_via)))
        if not isinstance(msg, SipRequest) or msg.method == "REGISTER":
            return None
        to = msg.headers.get("To")
        tag = None if to is None else _TAG.search(_raw(to))
        if tag is None:
            return None
        mark = _TAG_MARK.match(tag.group(1))
        if mark is not None:
            return _index(mark)
        return _index(_MARK_AT_START.match(_raw(msg.call_id)))
    except ParseError:
        return None


def message_forward_to(msg: SipMessage, me: int, workers: int) -> int | None:
    """:func:`forward_to` for a parsed message."""
    return _another(message_owner(msg), me, workers)
