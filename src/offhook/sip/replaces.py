"""RFC 3891 Replaces: the header, and which dialog an INVITE may replace. Sans-IO.

Theory of operation. ``Replaces: call-id;to-tag=T;from-tag=F[;early-only]``
names a dialog: in an INVITE, ``to-tag`` is the recipient's own tag (RFC
3891 §3); in a REFER's ``Refer-To`` (attended transfer) it is written from
the REFERing device's view of its consultation dialog, which phones get
both ways round. ``dialog_ids`` therefore gives both lookups, ours first.

``verdict`` is RFC 3891 §3's UAS rule as a table, from what the named
dialog is (``Found``) and the early-only flag to the status the INVITE is
refused with, or None to accept it:

=====================  ==========  ==============
dialog                 early-only  answer
=====================  ==========  ==============
none                   any         481
terminated             any         603
confirmed              no          accept
confirmed              yes         486
early, our INVITE      any         accept (it is CANCELled)
early, their INVITE    any         481
=====================  ==========  ==============
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from offhook.common.errors import ParseError
from offhook.sip.abnf import CALLID_RE, WSP, is_token, parse_generic_params

__all__ = ["VERDICTS", "Found", "Replaces", "dialog_ids", "parse_replaces", "verdict"]

DialogId = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Replaces:
    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False


def parse_replaces(value: str) -> Replaces:
    """``callid *(SEMI replaces-param)`` with to-tag and from-tag (RFC 3891 §6.1)."""
    head, semi, rest = value.partition(";")
    call_id = head.strip(WSP)
    if CALLID_RE.match(call_id) is None:
        raise ParseError("bad Replaces call-id")
    params = parse_generic_params(rest) if semi else {}
    to_tag = params.get("to-tag")
    from_tag = params.get("from-tag")
    if to_tag is None or from_tag is None or not (is_token(to_tag) and is_token(from_tag)):
        raise ParseError("Replaces without to-tag and from-tag")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


def dialog_ids(replaces: Replaces) -> tuple[DialogId, DialogId]:
    """Our dialog id (call-id, local tag, remote tag) read both ways: to-tag ours, then theirs."""
    r = replaces
    return (r.call_id, r.to_tag, r.from_tag), (r.call_id, r.from_tag, r.to_tag)


class Found(StrEnum):
    """What the dialog a Replaces names is, on our side."""

    NONE = "none"
    TERMINATED = "terminated"
    CONFIRMED = "confirmed"
    EARLY_OURS = "early, our INVITE"
    EARLY_THEIRS = "early, their INVITE"


VERDICTS: dict[tuple[Found, bool], int | None] = {
    (Found.NONE, False): 481,
    (Found.NONE, True): 481,
    (Found.TERMINATED, False): 603,
    (Found.TERMINATED, True): 603,
    (Found.CONFIRMED, False): None,
    (Found.CONFIRMED, True): 486,
    (Found.EARLY_OURS, False): None,
    (Found.EARLY_OURS, True): None,
    (Found.EARLY_THEIRS, False): 481,
    (Found.EARLY_THEIRS, True): 481,
}


def verdict(found: Found, early_only: bool) -> int | None:
    """The status to refuse an INVITE with Replaces with, or None to accept it (§3)."""
    return VERDICTS[(found, early_only)]
