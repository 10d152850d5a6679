"""A SIP leg's RFC 4028 session timer: when to refresh, when to give up.

Theory of operation. Every 2xx that sets up or refreshes the session
(the initial INVITE's, and any re-INVITE's or UPDATE's, either way) calls
``start`` with the ``Agreement`` it carries (``session_timer``). That arms
two of the leg's timers: ``session-expiry`` at the interval minus
min(32 s, interval/3), and, when we are the refresher, ``session-refresh``
at half the interval. A refresh that goes through restarts both; so the
expiry only fires when the session was not refreshed: the peer (or its
network) is gone, and the leg sends BYE and reports cause 102 (recovery on
timer expiry) to core, so that a crashed phone cannot keep a call up.

The refresh itself is ``MidCallOffers.send_refresh``: UPDATE without SDP
when the peer listed UPDATE in its Allow (and did not refuse one), else a
re-INVITE with the SDP we last sent. If an offer is in flight at that
moment, it is tried again a little later; that offer's own 2xx refreshes
the session anyway. ``settings`` None (the endpoint has session timers
off) makes every method a no-op.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from offhook.sip.causes import RECOVERY_ON_TIMER
from offhook.sip.message import SipMessage
from offhook.sip.session_timer import (
    Agreement,
    TooBrief,
    as_uac,
    as_uas,
    expiry_delay,
    refresh_delay,
    request_headers,
)

if TYPE_CHECKING:
    from offhook.sip.legs import SipLeg

log = logging.getLogger("offhook.sip")

BUSY_RETRY = 5.0  # seconds before trying a refresh again when an offer was in flight
EXPIRY = "session-expiry"
REFRESH = "session-refresh"


class SessionRefresh:
    """The session timer of one leg (see the module docstring)."""

    __slots__ = ("agreement", "leg", "no_update")

    def __init__(self, leg: SipLeg) -> None:
        self.leg = leg
        self.agreement: Agreement | None = None
        self.no_update = False  # the peer refused an UPDATE: refresh by re-INVITE

    @property
    def interval(self) -> int:
        if self.agreement is not None:
            return self.agreement.interval
        settings = self.leg.ep.session_timers
        return settings.session_expires if settings is not None else 0

    def uas(self, req: SipMessage) -> Agreement | TooBrief | None:
        """The agreement for a refresh request we answer (raises ParseError: 400)."""
        settings = self.leg.ep.session_timers
        return None if settings is None else as_uas(req, settings)

    def request_headers(self, interval: int | None = None) -> list[tuple[str, str]]:
        settings = self.leg.ep.session_timers
        return [] if settings is None else request_headers(settings, self.agreement, interval)

    def start(self, agreement: Agreement | None) -> None:
        """A 2xx set up or refreshed the session: (re)arm the refresh and expiry."""
        leg = self.leg
        if agreement is None or leg.done:
            return
        self.agreement = agreement
        leg.set_timer(EXPIRY, expiry_delay(agreement), self._expired)
        if agreement.we_refresh:
            leg.set_timer(REFRESH, refresh_delay(agreement), self.refresh_now)
        else:
            leg.cancel_timer(REFRESH)

    def from_response(self, resp: SipMessage, offered: int) -> None:
        """A 2xx to our INVITE, re-INVITE or UPDATE that offered ``offered`` seconds."""
        if self.leg.ep.session_timers is not None:
            self.start(as_uac(resp, offered or self.interval))

    def refresh_now(self) -> None:
        leg = self.leg
        if leg.done or self.agreement is None:
            return
        peer = leg.peer_methods
        use_update = not self.no_update and peer is not None and "UPDATE" in peer
        if not leg.offers.send_refresh(use_update):
            leg.set_timer(REFRESH, BUSY_RETRY, self.refresh_now)

    def _expired(self) -> None:
        leg = self.leg
        log.info(
            "session of %s expired without refresh: hanging up",
            leg.dialog.call_id if leg.dialog is not None else "?",
        )
        leg.dialog_gone(RECOVERY_ON_TIMER)
