"""Redirections on the wire: Diversion (RFC 5806) and History-Info (RFC 7044). Sans-IO.

A call that was forwarded carries where it was going and why, so that a
voicemail system opens the right mailbox and a phone shows "forwarded for
1002". Redirections arrive from core as ``Redirect`` values (oldest first:
the number that redirected and core's reason word, ``RedirectReason``'s
value) and go out two ways in the INVITE:

* ``Diversion`` (RFC 5806), newest first, one entry per redirection with
  ``reason=`` (unconditional, user-busy, no-answer, unavailable,
  do-not-disturb, deflection, unknown) and ``counter=1``;
* ``History-Info`` (RFC 7044): the chain of targets, index ``1``, ``1.1``,
  ``1.1.1`` ..., each target after the first carrying the RFC 4458
  ``cause`` URI parameter (302 unconditional, 486 busy, 408 no answer,
  480 unavailable) and ``mp`` (its target was mapped from the previous
  entry, RFC 7044 §9.1), the entry it was redirected from the escaped
  ``Reason`` header.

``parse_diversions`` reads the Diversion headers of an incoming INVITE
(from a trunk) back into ``Redirect`` values, oldest first, with counters
expanded; bounded: at most ``limit`` redirections kept (the newest, plus
the oldest for the original called number), and ``MAX_ENTRIES`` entries
read before it gives up with ``ParseError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from offhook.common.errors import ParseError
from offhook.sip.abnf import quote, unquote
from offhook.sip.headers import parse_name_addr
from offhook.sip.message import split_list

__all__ = [
    "CAUSE",
    "DIVERSION_REASON",
    "MAX_ENTRIES",
    "Redirect",
    "diversion_headers",
    "history_info_headers",
    "parse_diversions",
]

MAX_ENTRIES = 64
MAX_COUNTER = 100

# core's redirect reason -> RFC 5806 diversion-reason.
DIVERSION_REASON = {
    "forward-all": "unconditional",
    "forward-busy": "user-busy",
    "forward-no-answer": "no-answer",
    "forward-unregistered": "unavailable",
    "dnd": "do-not-disturb",
    "deflection": "deflection",
}
# RFC 5806 diversion-reason -> core's redirect reason (others: forward-all).
REASON_OF_DIVERSION = {
    "unconditional": "forward-all",
    "user-busy": "forward-busy",
    "no-answer": "forward-no-answer",
    "unavailable": "forward-unregistered",
    "out-of-service": "forward-unregistered",
    "do-not-disturb": "dnd",
    "deflection": "deflection",
}
# core's redirect reason -> RFC 4458 cause (the SIP response it stands for).
CAUSE = {
    "forward-all": 302,
    "forward-busy": 486,
    "forward-no-answer": 408,
    "forward-unregistered": 480,
    "dnd": 486,
    "deflection": 487,
}

# RFC 3261 §25.1 user = 1*(unreserved / escaped / user-unreserved)
_USER_SAFE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]")


@dataclass(frozen=True, slots=True)
class Redirect:
    """One redirection: the number that redirected the call, core's reason, a name."""

    number: str
    reason: str
    name: str = ""


def _user(number: str) -> str:
    """A number as the user part of a SIP URI (``#`` and the like %-escaped)."""
    return "".join(
        ch if _USER_SAFE.match(ch) else "".join(f"%{b:02X}" for b in ch.encode()) for ch in number
    )


def diversion_headers(redirects: Sequence[Redirect], host: str) -> list[tuple[str, str]]:
    """``Diversion`` header lines, newest redirection first (RFC 5806 §3)."""
    out: list[tuple[str, str]] = []
    for r in reversed(redirects):
        name = r.name.replace("\\", "").replace('"', "")
        display = f"{quote(name)} " if name else ""
        reason = DIVERSION_REASON.get(r.reason, "unknown")
        out.append(
            ("Diversion", f"{display}<sip:{_user(r.number)}@{host}>;reason={reason};counter=1")
        )
    return out


def history_info_headers(
    redirects: Sequence[Redirect], called: str, host: str
) -> list[tuple[str, str]]:
    """``History-Info`` header lines (RFC 7044 with RFC 4458 causes), oldest target first."""
    if not redirects:
        return []
    targets = [r.number for r in redirects] + [called]
    out: list[tuple[str, str]] = []
    index = "1"
    for i, number in enumerate(targets):
        uri = f"sip:{_user(number)}@{host}"
        if i > 0:
            cause = CAUSE.get(redirects[i - 1].reason)
            if cause is not None:
                uri += f";cause={cause}"
        if i < len(redirects):
            cause = CAUSE.get(redirects[i].reason)
            if cause is not None:
                uri += f"?Reason=SIP%3Bcause%3D{cause}"
        params = f";index={index}"
        if i > 0:
            params += f";mp={index.rsplit('.', 1)[0]}"
        out.append(("History-Info", f"<{uri}>{params}"))
        index += ".1"
    return out


def _entry(value: str) -> tuple[str, str, str, int]:
    """(number, core reason, name, counter) of one Diversion entry."""
    na = parse_name_addr(value)
    number = na.uri.user_unescaped or ""
    if not number:
        raise ParseError("Diversion without a number")
    raw_reason = na.params.get("reason") or "unknown"
    if raw_reason.startswith('"'):
        raw_reason = unquote(raw_reason)
    reason = REASON_OF_DIVERSION.get(raw_reason.lower(), "forward-all")
    counter_text = na.params.get("counter") or "1"
    if not counter_text.isdigit() or len(counter_text) > 3:
        raise ParseError("bad Diversion counter")
    counter = max(1, min(int(counter_text), MAX_COUNTER))
    return number, reason, na.display or "", counter


def parse_diversions(values: Sequence[str], limit: int) -> list[Redirect]:
    """Redirections of ``Diversion`` header values (newest first on the wire), oldest first.

    At most ``limit`` are kept: the newest ``limit - 1`` and the oldest (the
    number first called). Raises ``ParseError`` on a malformed entry or more
    than ``MAX_ENTRIES`` of them.
    """
    entries: list[str] = []
    for raw in values:
        entries.extend(split_list(raw))
        if len(entries) > MAX_ENTRIES:
            raise ParseError("too many Diversion entries")
    if not entries or limit <= 0:
        return []
    newest: list[Redirect] = []
    for value in entries:
        number, reason, name, counter = _entry(value)
        newest.extend(Redirect(number, reason, name) for _ in range(counter))
        if len(newest) > limit:
            number, reason, name, _ = _entry(entries[-1])
            newest = [*newest[: limit - 1], Redirect(number, reason, name)]
            break
    return list(reversed(newest))
