"""Neutral call events: what flows between the legs of a call.

These are the words call control speaks with every adapter (SIP, SCCP, MGCP,
H.323): a call is set up (``Setup``), the far end makes progress
(``Progress``), rings (``Alerting``) and answers (``Connect``); media is
re-offered mid-call (``MediaOffer``/``MediaAnswer``, e.g. hold and resume);
digits are relayed (``Digits``) and either side clears with a Q.850 cause
(``Release``). ``CallEngine.dispatch(leg, event)`` accepts any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from offhook.core.media import MediaDescription


@dataclass(frozen=True, slots=True)
class PartyInfo:
    """A calling or connected party as shown to the other side."""

    number: str
    name: str = ""
    device: str = ""
    presentation_allowed: bool = True


class RedirectReason(StrEnum):
    """Why a call went somewhere other than where it was dialled (CDR words).

    Adapters map them to their wire: SIP Diversion (RFC 5806) and History-Info
    (RFC 7044 with RFC 4458 cause codes), SCCP's redirect reasons.
    """

    FORWARD_ALL = "forward-all"
    FORWARD_BUSY = "forward-busy"
    FORWARD_NO_ANSWER = "forward-no-answer"
    FORWARD_UNREGISTERED = "forward-unregistered"
    DND = "dnd"  # do not disturb (reject) forwarded it as busy
    HUNT = "hunt"  # a hunt pilot offered it to a member
    PICKUP = "pickup"
    PARK = "park"  # retrieved from park, or reverted to the parker
    TRANSFER = "transfer"
    DEFLECTION = "deflection"  # a ringing phone sent it on (e.g. to voicemail)


@dataclass(frozen=True, slots=True)
class Diversion:
    """One redirection of a call: from the ``number`` that redirected it, and why."""

    number: str
    reason: RedirectReason
    name: str = ""


@dataclass(frozen=True, slots=True)
class Setup:
    """A new call: ``media`` is the caller's offer, or None for a delayed offer.

    ``original_called`` is the number first dialled when the call was
    redirected; ``diversions`` every redirection so far, oldest first (the
    last one's ``number`` is the last redirecting number). ``auto_answer``:
    the called phone is asked to answer at once (intercom; SIP Call-Info
    answer-after=0, SCCP speaker with the microphone muted).
    """

    calling: PartyInfo
    called: str
    media: MediaDescription | None = None
    original_called: str = ""
    diversions: tuple[Diversion, ...] = ()
    auto_answer: bool = False  # an intercom call: the called phone answers by itself
    silent: bool = False  # the called phone shows the call without ringing (DND ringer off)


@dataclass(frozen=True, slots=True)
class Progress:
    """Call proceeding / session progress, possibly with early media."""

    media: MediaDescription | None = None


@dataclass(frozen=True, slots=True)
class Alerting:
    """The called party is being alerted (ringing)."""

    media: MediaDescription | None = None


@dataclass(frozen=True, slots=True)
class Connect:
    """The called party answered; ``media`` is the answer (or the offer, see engine)."""

    media: MediaDescription | None = None


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """A mid-call media offer (hold, resume, codec change)."""

    media: MediaDescription


@dataclass(frozen=True, slots=True)
class MediaAnswer:
    """The answer to a ``MediaOffer``, or its failure (``media`` None, ``cause`` set)."""

    media: MediaDescription | None
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class Digits:
    """DTMF digits signalled out of band (not the RTP ones)."""

    digits: str


@dataclass(frozen=True, slots=True)
class Release:
    """Clearing, cancel or rejection, with a Q.850 cause."""

    cause: int


LegMessage = Progress | Alerting | Connect | MediaOffer | MediaAnswer | Digits | Release


class Tone(StrEnum):
    """Call-progress tones a device may be asked to play locally (SCCP does)."""

    DIAL = "dial"
    RINGBACK = "ringback"
    BUSY = "busy"
    REORDER = "reorder"
    CALL_WAITING = "call-waiting"
    HOLD = "hold"
    OFF = "off"


class TransferState(StrEnum):
    """How a transfer a device asked for is going (reported to the transferring leg)."""

    TRYING = "trying"
    RINGING = "ringing"
    DONE = "done"
    FAILED = "failed"
