"""RFC 4028 session timers: the headers, the negotiation, the deadlines. Sans-IO.

Theory of operation. A session timer makes an INVITE dialog die when its
refreshes stop, so that a phone that crashed (or lost its network) cannot
leave a call up for ever. Each side of a dialog agrees on an interval and
on who refreshes (the *refresher*, named ``uac`` or ``uas`` relative to the
request that last refreshed the session):

* as the UAS of an INVITE, re-INVITE or UPDATE, ``as_uas`` reads the
  request's ``Session-Expires``/``Min-SE``/``Supported`` and returns the
  ``Agreement`` to put in the 2xx (``response_headers``), or ``TooBrief``
  (answer 422 with our ``Min-SE``, §9). We refresh ourselves whenever the
  peer does not (it lacks ``timer``, or asked ``refresher=uas``), and add a
  session timer of our own to a request that had none (§9: the UAS may);
* as the UAC, ``request_headers`` says what an INVITE or refresh carries
  (§7.1, §7.4) and ``as_uac`` reads the 2xx. A 2xx without
  ``Session-Expires`` means the peer does not do session timers (§7.2);
  local policy then keeps the interval offered with us as the refresher,
  so the dialog is still probed. A 422 gives the ``Min-SE`` to retry with
  (``retry_interval``, §7.4);
* ``refresh_delay`` and ``expiry_delay`` are the deadlines the leg arms
  after every successful refresh (§10): the refresher refreshes at half the
  interval; either side gives up (BYE, cause 102) at the interval minus
  min(32 s, interval/3), when no refresh came.

Intervals are never below ``MIN_SE_FLOOR`` (90 s, §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from offhook.common.errors import ParseError
from offhook.sip.abnf import DIGITS_RE, parse_generic_params
from offhook.sip.extensions import option_tags
from offhook.sip.message import SipMessage

__all__ = [
    "MIN_SE_FLOOR",
    "Agreement",
    "SessionExpires",
    "SessionTimerSettings",
    "TooBrief",
    "as_uac",
    "as_uas",
    "expiry_delay",
    "parse_min_se",
    "parse_session_expires",
    "refresh_delay",
    "request_headers",
    "response_headers",
    "retry_interval",
]

MIN_SE_FLOOR = 90  # RFC 4028 §4: a Session-Expires below 90 s is never used
_MAX_DELTA = 2**32 - 1  # delta-seconds (RFC 3261 §25.1)

Refresher = Literal["uac", "uas"]


@dataclass(frozen=True, slots=True)
class SessionTimerSettings:
    """Our side of the negotiation: the interval we ask for and the least we accept."""

    session_expires: int = 1800
    min_se: int = MIN_SE_FLOOR

    def __post_init__(self) -> None:
        if self.min_se < MIN_SE_FLOOR or self.session_expires < self.min_se:
            raise ValueError("need 90 <= min_se <= session_expires")


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A ``Session-Expires`` value (RFC 4028 §4): delta-seconds and the refresher, if named."""

    delta: int
    refresher: Refresher | None = None

    def __str__(self) -> str:
        return f"{self.delta};refresher={self.refresher}" if self.refresher else str(self.delta)


@dataclass(frozen=True, slots=True)
class Agreement:
    """A negotiated session timer: its interval, whether we refresh, whether
    the peer does session timers itself (then the 2xx says ``Require: timer``)."""

    interval: int
    we_refresh: bool
    peer_timer: bool


@dataclass(frozen=True, slots=True)
class TooBrief:
    """The request's interval is below our minimum: 422 with ``Min-SE: min_se``."""

    min_se: int


def _delta(text: str, what: str) -> int:
    value = text.strip(" \t")
    if DIGITS_RE.match(value) is None or len(value) > 10 or int(value) > _MAX_DELTA:
        raise ParseError(f"bad {what}")
    return int(value)


def parse_session_expires(value: str) -> SessionExpires:
    """``Session-Expires: 1800;refresher=uac`` (RFC 4028 §4); unknown params are ignored."""
    head, semi, params_text = value.partition(";")
    delta = _delta(head, "Session-Expires")
    if delta == 0:
        raise ParseError("Session-Expires of zero")
    refresher: Refresher | None = None
    if semi:
        params = parse_generic_params(params_text)
        named = (params.get("refresher") or "").lower()
        if named == "uac":
            refresher = "uac"
        elif named == "uas":
            refresher = "uas"
        elif "refresher" in params:
            raise ParseError("bad refresher parameter")
    return SessionExpires(delta, refresher)


def parse_min_se(value: str) -> int:
    """``Min-SE: 90`` (RFC 4028 §5); params are ignored."""
    return _delta(value.partition(";")[0], "Min-SE")


def _read(msg: SipMessage) -> tuple[SessionExpires | None, int | None]:
    """(Session-Expires, Min-SE) of a message; raises ParseError on bad values."""
    se_text = msg.headers.get("Session-Expires")
    min_text = msg.headers.get("Min-SE")
    se = parse_session_expires(se_text) if se_text is not None else None
    return se, (parse_min_se(min_text) if min_text is not None else None)


def as_uas(req: SipMessage, settings: SessionTimerSettings) -> Agreement | TooBrief:
    """What to answer a session refresh (INVITE, re-INVITE, UPDATE) with (RFC 4028 §9).

    Raises ParseError (answer 400) on a malformed Session-Expires or Min-SE.
    """
    se, their_min = _read(req)
    peer_timer = "timer" in option_tags(req, "Supported")
    floor = max(their_min or 0, MIN_SE_FLOOR)
    if se is None:
        # §9: the UAS may add a session timer the request did not ask for; it refreshes.
        return Agreement(max(settings.session_expires, floor), True, peer_timer)
    if se.delta < settings.min_se:
        if peer_timer:
            return TooBrief(max(settings.min_se, floor))
        # A proxy put it there for a UAC that knows nothing of 422: ours, we refresh.
        return Agreement(max(settings.min_se, floor), True, False)
    # §9: the UAS may lower the interval, never below the request's Min-SE (or 90 s).
    interval = min(se.delta, max(settings.session_expires, floor))
    if not peer_timer:
        return Agreement(interval, True, False)
    # The peer refreshes unless it asks us to; "be the refresher when it will not".
    return Agreement(interval, se.refresher == "uas", True)


def response_headers(agreement: Agreement) -> list[tuple[str, str]]:
    """The headers of a 2xx to a session refresh we accepted as its UAS (§9)."""
    refresher = "uas" if agreement.we_refresh else "uac"
    out = [("Session-Expires", f"{agreement.interval};refresher={refresher}")]
    if agreement.peer_timer:
        out.append(("Require", "timer"))
    return out


def request_headers(
    settings: SessionTimerSettings, agreement: Agreement | None, interval: int | None = None
) -> list[tuple[str, str]]:
    """``Session-Expires`` and ``Min-SE`` for an INVITE, re-INVITE or UPDATE we send (§7.1).

    Within a session the roles stay as agreed: ``refresher=uac`` when we
    refresh (we are the UAC of this request), ``uas`` when the peer does.
    ``interval`` overrides (a retry after 422).
    """
    if agreement is None:
        delta = interval or settings.session_expires
        value = str(delta)
    else:
        delta = interval or agreement.interval
        value = f"{delta};refresher={'uac' if agreement.we_refresh else 'uas'}"
    return [("Session-Expires", value), ("Min-SE", str(max(settings.min_se, MIN_SE_FLOOR)))]


def as_uac(resp: SipMessage, offered: int) -> Agreement:
    """The session timer a 2xx to our INVITE/re-INVITE/UPDATE sets up (RFC 4028 §7.2).

    Without Session-Expires the peer does not do session timers; local
    policy: we refresh at the interval we offered. A malformed value counts
    as absent (the call is up already).
    """
    try:
        se, _ = _read(resp)
    except ParseError:
        se = None
    peer_timer = "timer" in option_tags(resp, "Require") or "timer" in option_tags(
        resp, "Supported"
    )
    if se is None:
        return Agreement(max(offered, MIN_SE_FLOOR), True, peer_timer)
    # §7.2: a 2xx naming no refresher leaves it to the UAC.
    return Agreement(max(se.delta, MIN_SE_FLOOR), se.refresher != "uas", True)


def retry_interval(resp: SipMessage, offered: int) -> int | None:
    """The interval to retry a request a 422 refused (RFC 4028 §7.4), or None to give up."""
    text = resp.headers.get("Min-SE")
    if text is None:
        return None
    try:
        wanted = parse_min_se(text)
    except ParseError:
        return None
    if wanted <= offered or wanted > 86400:
        return None
    return wanted


def refresh_delay(agreement: Agreement) -> float:
    """When the refresher sends its refresh: half the interval (RFC 4028 §10)."""
    return agreement.interval / 2


def expiry_delay(agreement: Agreement) -> float:
    """When a session without refresh is ended: min(32, interval/3) before it expires (§10)."""
    return agreement.interval - min(32.0, agreement.interval / 3)
