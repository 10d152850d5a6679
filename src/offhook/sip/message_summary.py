"""The message-summary body (RFC 3842, message waiting): parse and build. Sans-IO.

A voicemail system tells offhook that a line has messages waiting with an
unsolicited NOTIFY whose body is this; offhook tells a phone that
subscribed to its own line's ``message-summary`` the same way::

    Messages-Waiting: yes
    Message-Account: sip:1002@pbx.example.com
    Voice-Message: 2/8 (0/2)

``parse_message_summary`` reads RFC 3842 §5.2's grammar strictly: the
status line (``yes``/``no``) is required, ``Message-Account`` must be a URI
and each message-context class (RFC 3458: voice, fax, pager, multimedia,
text, none) appears at most once with ``new/old`` counts and optional
``(urgent-new/urgent-old)``. Other ``name: value`` lines of the summary
block (vendor additions) and the optional per-message header blocks after
an empty line are checked for shape and skipped. Bounded: at most
``MAX_BODY`` bytes, ``MAX_LINES`` lines and counts of ``MAX_DIGITS``
digits; anything else raises ``ParseError`` (400, 413 when too large).
``build_message_summary`` writes what ``parse`` reads back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from offhook.common.errors import ParseError
from offhook.sip.uri import parse_uri

__all__ = [
    "CONTENT_TYPE",
    "CONTEXT_CLASSES",
    "MAX_BODY",
    "MessageCounts",
    "MessageSummary",
    "build_message_summary",
    "parse_message_summary",
]

CONTENT_TYPE = "application/simple-message-summary"
MAX_BODY = 4096
MAX_LINES = 64
MAX_DIGITS = 9
MAX_LINE = 1024

# RFC 3458 §6.2 message-context-class values, as RFC 3842 writes them.
CONTEXT_CLASSES = (
    "voice-message",
    "fax-message",
    "pager-message",
    "multimedia-message",
    "text-message",
    "none",
)
_CLASS_BY_LOWER = {c: c for c in CONTEXT_CLASSES}

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_COUNT = rf"[0-9]{{1,{MAX_DIGITS}}}"
# name HCOLON value: HCOLON = *(SP / HTAB) ":" SWS
_HEADER_RE = re.compile(rf"({_TOKEN})[ \t]*:[ \t]*(.*)\Z")
_COUNTS_RE = re.compile(
    rf"({_COUNT})[ \t]*/[ \t]*({_COUNT})"
    rf"(?:[ \t]*\([ \t]*({_COUNT})[ \t]*/[ \t]*({_COUNT})[ \t]*\))?\Z"
)
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """One message-context class's counts; the urgent pair is None when not given."""

    context: str
    new: int
    old: int
    new_urgent: int | None = None
    old_urgent: int | None = None


@dataclass(frozen=True, slots=True)
class MessageSummary:
    waiting: bool
    account: str = ""
    counts: tuple[MessageCounts, ...] = ()

    def of(self, context: str) -> MessageCounts | None:
        for c in self.counts:
            if c.context == context:
                return c
        return None

    @property
    def voice(self) -> MessageCounts | None:
        return self.of("voice-message")


def _lines(body: bytes) -> list[str]:
    if len(body) > MAX_BODY:
        raise ParseError("message-summary body too large", 413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("message-summary body is not UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise ParseError("too many lines in message-summary")
    out: list[str] = []
    for line in lines:
        line = line.removesuffix("\r")
        if len(line) > MAX_LINE or _BAD_CHARS_RE.search(line):
            raise ParseError("bad line in message-summary")
        out.append(line)
    return out


def _header(line: str) -> tuple[str, str]:
    m = _HEADER_RE.match(line)
    if m is None:
        raise ParseError("expected 'name: value' in message-summary")
    return m.group(1), m.group(2).rstrip(" \t")


def _count(text: str | None) -> int | None:
    return None if text is None else int(text)


def parse_message_summary(body: bytes) -> MessageSummary:
    """Parse an ``application/simple-message-summary`` body (RFC 3842 §5.2)."""
    lines = _lines(body)
    waiting: bool | None = None
    account: str | None = None
    counts: dict[str, MessageCounts] = {}
    i = 0
    while i < len(lines) and lines[i].strip(" \t"):
        name, value = _header(lines[i])
        low = name.lower()
        i += 1
        if low == "messages-waiting":
            if waiting is not None:
                raise ParseError("Messages-Waiting twice")
            status = value.lower()
            if status not in ("yes", "no"):
                raise ParseError("Messages-Waiting must be yes or no")
            waiting = status == "yes"
        elif low == "message-account":
            if account is not None:
                raise ParseError("Message-Account twice")
            uri = parse_uri(value)  # SIP-URI / SIPS-URI / absoluteURI
            if uri.scheme.lower() in ("sip", "sips") and not uri.host:
                raise ParseError("Message-Account without a host")
            account = value
        elif low in _CLASS_BY_LOWER:
            context = _CLASS_BY_LOWER[low]
            if context in counts:
                raise ParseError(f"{context} twice")
            m = _COUNTS_RE.match(value)
            if m is None:
                raise ParseError("bad message counts")
            counts[context] = MessageCounts(
                context, int(m.group(1)), int(m.group(2)), _count(m.group(3)), _count(m.group(4))
            )
        # Any other well-formed line of the summary block is a vendor's: skipped.
    if waiting is None:
        raise ParseError("no Messages-Waiting line")
    # RFC 3842 opt-msg-headers: blocks of extension headers, each after an empty line.
    for line in lines[i:]:
        if line.strip(" \t"):
            _header(line)
    return MessageSummary(waiting, account or "", tuple(counts.values()))


def build_message_summary(summary: MessageSummary) -> bytes:
    """The body for ``summary`` (CRLF lines, classes in the order given)."""
    lines = [f"Messages-Waiting: {'yes' if summary.waiting else 'no'}"]
    if summary.account:
        lines.append(f"Message-Account: {summary.account}")
    for c in summary.counts:
        name = "-".join(part.capitalize() for part in c.context.split("-"))
        text = f"{name}: {c.new}/{c.old}"
        if c.new_urgent is not None and c.old_urgent is not None:
            text += f" ({c.new_urgent}/{c.old_urgent})"
        lines.append(text)
    return ("\r\n".join(lines) + "\r\n").encode()
