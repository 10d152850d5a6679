"""A cheap look at a datagram before it is parsed: is it work already under way?

Theory of operation. The listener's rate limit (``net.guard``) must drop new
out-of-dialog requests before it drops anything that belongs to calls and
transactions the node already has: responses (the far end's 180 and 200 of
a call offhook placed), ACK, CANCEL and in-dialog requests (BYE, re-INVITE,
UPDATE, PRACK, INFO, ...). When a source's bucket is empty, the transport
asks :func:`is_ongoing` about the datagram, without parsing it:

* a response: the start line begins with ``SIP/`` (after the CRLFs a
  keep-alive may leave before it, as the parser skips them);
* an ACK or a CANCEL: they end or cancel a transaction under way;
* a request whose first To header carries a tag (RFC 3261 §12.2.2: a
  request within a dialog has one; an out-of-dialog request has none).

The answer agrees with the full parser (``codec.parse_message``) on every
message that parser accepts: the To value is taken the way it does (the first
To or ``t`` header, folded lines joined by one space) and its tag the way
``SipMessage.to_tag`` reads it (the ``;tag=`` parameter after the last
``>``, an empty tag being none). For anything else the answer does not
matter: the parser refuses it after admission anyway.

A peer can claim "ongoing" (put a To-tag on a new INVITE): that buys it only
the reserve of its own bucket, which the same refill pays back, so a flood
stays bounded by its source's rate (see ``net.guard``). What it cannot do is
make another source's responses or in-dialog requests be dropped.
"""

from __future__ import annotations

__all__ = ["is_ongoing"]

_PRIORITY_METHODS = (b"ACK", b"CANCEL")
_TO_NAMES = (b"to", b"t")


def _skip_crlf(data: bytes) -> int:
    pos = 0
    while data.startswith(b"\r\n", pos):
        pos += 2
    return pos


def _decoded(data: bytes, start: int) -> str:
    return data[start : start + 16].decode("utf-8", "surrogateescape")


def is_ongoing(data: bytes) -> bool:
    """True for a response, an ACK, a CANCEL or a request whose To has a tag."""
    start = _skip_crlf(data)
    first = data[start : start + 4]
    if first.upper() == b"SIP/":
        return True
    if not first.isascii() and _decoded(data, start)[:4].upper() == "SIP/":
        return True  # as the parser reads it (str.upper: "\u017fip/" is "SIP/")
    space = data.find(b" ", start, start + 64)
    if space > start and data[start:space] in _PRIORITY_METHODS:
        return True
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        return False  # no header block: the parser refuses it
    value = _first_to(data[start:end])
    return value is not None and b"tag" in value.lower() and _has_tag(value)


def _first_to(head: bytes) -> bytes | None:
    """The first To header's value (folded lines joined by one space), or None.

    Header lines start after a CRLF, so the name of one is found by a search
    for ``\nt`` in the lower-cased block (C speed, no split into lines).
    """
    low = head.lower()
    size = len(low)
    pos = low.find(b"\nt")
    while pos >= 0:
        i = pos + 2
        if i < size and low[i] == 0x6F:  # "to"
            i += 1
        while i < size and low[i] in (0x20, 0x09):
            i += 1
        if i < size and low[i] == 0x3A:  # ":" after "t" or "to" (and blanks)
            return _value(head, i + 1)
        pos = low.find(b"\nt", pos + 2)
    return None


def _value(head: bytes, pos: int) -> bytes:
    """A header's value from ``pos`` to its end, folded lines joined by one space."""
    end = head.find(b"\r\n", pos)
    if end < 0:
        return head[pos:].strip(b" \t")
    value = head[pos:end].strip(b" \t")
    while head.startswith((b"\r\n ", b"\r\n\t"), end):
        nxt = head.find(b"\r\n", end + 2)
        cont = (head[end + 2 :] if nxt < 0 else head[end + 2 : nxt]).strip(b" \t")
        if cont:
            value = value + b" " + cont if value else cont
        if nxt < 0:
            break
        end = nxt
    return value


def _has_tag(raw: bytes) -> bool:
    """Whether ``SipMessage.to_tag`` would be non-empty for this To value."""
    value = raw.decode("utf-8", "surrogateescape")
    end = value.rfind(">")
    tail = value[end + 1 :] if end >= 0 else value
    for part in tail.split(";")[1:]:
        key, _, tag = part.partition("=")
        if key.strip().lower() == "tag":
            return bool(tag.strip().strip('"'))
    return False
