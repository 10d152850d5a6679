"""RFC 3515 REFER: the Refer-To target and the implicit subscription's NOTIFYs. Sans-IO.

Theory of operation. A device transfers its call by sending REFER in the
call's dialog. ``parse_refer_to`` reads its one ``Refer-To``: a SIP or tel
URI whose user part is the number to transfer to (blind transfer), or one
that carries ``?Replaces=...`` naming the device's other call with offhook
(attended transfer, RFC 3891 via RFC 5589 §7), unescaped and parsed.

Accepting a REFER (202) creates an implicit subscription to the ``refer``
event (§2.4.4): offhook NOTIFYs the progress of the transfer as
``message/sipfrag`` status lines, first ``100 Trying``, the last one with
``Subscription-State: terminated;reason=noresource``. ``ReferSubscription``
is that state machine, driven by the progress names core reports
(``trying``, ``ringing``, ``done``, ``failed``)::

    (none) --trying--> ACTIVE(100) --ringing--> ACTIVE(180) --done--> TERMINATED(200)
                           any ACTIVE state --failed(status)--> TERMINATED(status)

A repeated or backward step (``trying`` after ``ringing``) sends nothing;
nothing is sent once terminated. ``Notify`` renders one notification's
headers and body.
"""

from __future__ import annotations

from dataclasses import dataclass

from offhook.common.errors import ParseError
from offhook.sip.abnf import unescape
from offhook.sip.headers import parse_name_addr
from offhook.sip.replaces import Replaces, parse_replaces
from offhook.sip.uri import parse_uri

__all__ = [
    "PROGRESS",
    "SIPFRAG",
    "Notify",
    "ReferSubscription",
    "ReferTarget",
    "parse_refer_to",
]

SIPFRAG = "message/sipfrag;version=2.0"
SUBSCRIPTION_EXPIRES = 120  # seconds; the subscription ends with the transfer anyway
_MAX_NUMBER = 64
_SCHEMES = frozenset({"sip", "sips", "tel"})

# Progress names (core's TransferState values) -> (status, reason, final).
PROGRESS: dict[str, tuple[int, str, bool]] = {
    "trying": (100, "Trying", False),
    "ringing": (180, "Ringing", False),
    "done": (200, "OK", True),
}


@dataclass(frozen=True, slots=True)
class ReferTarget:
    """Where a REFER sends the call: ``number`` (blind) or the dialog ``replaces`` names."""

    uri: str
    number: str
    replaces: Replaces | None = None


def parse_refer_to(value: str) -> ReferTarget:
    """Parse one Refer-To value (RFC 3515 §2.1); raises ParseError (answer 400)."""
    # RFC 3515 §2.1 wants <...> around a URI with headers; phones also send it bare.
    uri = parse_name_addr(value).uri if "<" in value else parse_uri(value.strip(" \t"))
    if uri.scheme not in _SCHEMES:
        raise ParseError("Refer-To is not a SIP or tel URI")
    replaces: Replaces | None = None
    for name, raw in uri.headers:
        if unescape(name).lower() != "replaces":
            continue
        if replaces is not None:
            raise ParseError("Refer-To with two Replaces")
        replaces = parse_replaces(unescape(raw))
    number = uri.user_unescaped or ""
    if len(number) > _MAX_NUMBER or not number.isprintable():
        raise ParseError("bad number in Refer-To")
    return ReferTarget(str(uri.replace(headers=())), number, replaces)


@dataclass(frozen=True, slots=True)
class Notify:
    """One NOTIFY of the refer event: the sipfrag status line and whether it is the last."""

    status: int
    reason: str
    terminated: bool

    def headers(self, event_id: str | None) -> list[tuple[str, str]]:
        event = "refer" if event_id is None else f"refer;id={event_id}"
        state = (
            "terminated;reason=noresource"
            if self.terminated
            else f"active;expires={SUBSCRIPTION_EXPIRES}"
        )
        return [("Event", event), ("Subscription-State", state)]

    def body(self) -> bytes:
        return f"SIP/2.0 {self.status} {self.reason}\r\n".encode("ascii", "replace")


class ReferSubscription:
    """The implicit subscription of one accepted REFER (RFC 3515 §2.4.4)."""

    __slots__ = ("event_id", "last", "silent", "terminated")

    def __init__(self, event_id: str | None = None, *, silent: bool = False) -> None:
        self.event_id = event_id  # the REFER's CSeq for the second and later REFERs (§2.4.6)
        self.silent = silent  # RFC 4488 Refer-Sub: false: no NOTIFY at all
        self.last: int | None = None
        self.terminated = False

    def notify(self, state: str, failure: tuple[int, str] | None = None) -> Notify | None:
        """The NOTIFY to send for progress ``state``, or None (nothing new, or terminated).

        ``failure`` is the (status, reason) of a ``failed`` transfer.
        """
        if self.terminated:
            return None
        if state == "failed":
            status, reason = failure if failure is not None else (503, "Service Unavailable")
            status = status if 300 <= status <= 699 else 503
            final = True
        elif state in PROGRESS:
            status, reason, final = PROGRESS[state]
            if not final and self.last is not None and status <= self.last:
                return None
        else:
            return None
        self.last = status
        self.terminated = final
        return Notify(status, reason, final)
