"""Mid-call offer/answer of a SIP leg: re-INVITE and UPDATE, both ways, and our own refreshes.

Theory of operation. A device's re-INVITE (RFC 3261 §14) or UPDATE (RFC
3311) with SDP is a media offer: it goes to core (``on_media_offer``) and
core's answer comes back through ``media_answer`` into the 200. Without SDP
a re-INVITE is answered with the SDP we last sent (an offer, §14.2) and an
UPDATE with a plain 200. Either one is also a session refresh (RFC 4028):
its 2xx carries the negotiated ``Session-Expires`` and restarts the
session timer (``SessionRefresh``), and one with too short an interval is
refused 422.

Core's own offers (hold, resume, a transfer's new far end) go to the
device as re-INVITE (``update_media``) and the device's answer back to
core. Offhook's own requests, that core knows nothing of, are
``send_refresh``: a session refresh by UPDATE without SDP when the peer
allows UPDATE, else by re-INVITE with the SDP we last sent; their answers
stay here.

Glare (§14.1, RFC 3311 §5.2): one offer at a time in each direction. A
device's offer while one of ours is pending gets 491; an offer (or re-INVITE) while the
device's previous offer is unanswered gets 500 with Retry-After.
A refresh answered 491 is tried again 2.1 to 4 s later (§14.1), one
answered 422 with the larger interval asked for (RFC 4028 §7.4). A
request of ours answered 408 or 481, or never answered, means the dialog is
gone: BYE, and core hears cause 102 or the status's cause.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.sip.causes import RECOVERY_ON_TIMER, TEMPORARY_FAILURE, cause_for_status
from offhook.sip.dialog import DialogState
from offhook.sip.message import SipRequest, SipResponse, make_response
from offhook.sip.sdpmap import sdp_to_media
from offhook.sip.session_timer import Agreement, TooBrief, response_headers, retry_interval
from offhook.sip.transaction import TxnKey

if TYPE_CHECKING:
    from offhook.core.media import MediaDescription
    from offhook.sip.legs import SipLeg

log = logging.getLogger("offhook.sip")

SDP = "application/sdp"
_DIALOG_GONE = (408, 481)


class MidCallOffers:
    """One leg's offers in flight: the device's, core's and our own."""

    __slots__ = (
        "in_agreement",
        "leg",
        "offer_in",
        "offer_out",
        "own_interval",
        "own_out",
        "queued",
    )

    def __init__(self, leg: SipLeg) -> None:
        self.leg = leg
        self.offer_in: TxnKey | None = None  # the device's offer, waiting for core's answer
        self.in_agreement: Agreement | None = None  # its session timer, for the 2xx
        self.offer_out: SipRequest | None = None  # core's re-INVITE, waiting for a final
        self.own_out: SipRequest | None = None  # our refresh, waiting for a final
        self.own_interval = 0
        self.queued: MediaDescription | None = None  # core's offer, after our refresh

    def _offering(self) -> bool:
        """An offer of ours (core's or our own refresh with SDP) awaits its answer."""
        own = self.own_out
        return self.offer_out is not None or (own is not None and bool(own.body))

    # --- the device's re-INVITE and UPDATE ------------------------------------
    def on_offer(self, key: TxnKey, req: SipRequest) -> None:
        leg = self.leg
        ep = leg.ep
        is_update = req.method == "UPDATE"
        offer_or_invite = bool(req.body) or not is_update
        if offer_or_invite and self.offer_in is not None:
            # RFC 3261 §14.2, RFC 3311 §5.2: their previous offer is still unanswered.
            resp = make_response(req, 500)
            resp.headers.add("Retry-After", str(secrets.randbelow(10) + 1))
            ep.respond(key, resp)
            return
        if offer_or_invite and self._offering():
            ep.respond(key, make_response(req, 491))  # RFC 3261 §14.2 glare
            return
        ok, agreement = self._negotiate(key, req)
        if not ok:
            return
        if not req.body:
            # UPDATE without SDP: a refresh. re-INVITE without SDP: offer what we last sent.
            body = b"" if is_update else leg.last_sdp
            self._ok(key, req, body, agreement)
            return
        try:
            offer = sdp_to_media(req.body)
        except ParseError as exc:
            ep.respond(key, make_response(req, exc.status_hint or 488))
            return
        self.offer_in = key
        self.in_agreement = agreement
        leg._report(lambda core: ep.engine.on_media_offer(core, offer))

    def _negotiate(self, key: TxnKey, req: SipRequest) -> tuple[bool, Agreement | None]:
        """(False, None) once a refresh request was refused (400/422), else (True, its timer)."""
        dialog = self.leg.dialog
        if dialog is None or dialog.state is not DialogState.CONFIRMED:
            return True, None  # an UPDATE in the early dialog refreshes no session
        try:
            outcome = self.leg.session.uas(req)
        except ParseError as exc:
            self.leg.ep.respond(key, make_response(req, 400, f"Bad Request ({exc.reason})"))
            return False, None
        if isinstance(outcome, TooBrief):
            resp = make_response(req, 422, "Session Interval Too Small")
            resp.headers.add("Min-SE", str(outcome.min_se))
            self.leg.ep.respond(key, resp)
            return False, None
        return True, outcome

    def _ok(self, key: TxnKey, req: SipRequest, body: bytes, agreement: Agreement | None) -> None:
        resp = make_response(req, 200)
        resp.headers.add("Contact", self.leg.contact())  # both are target refreshes
        if agreement is not None:
            for name, value in response_headers(agreement):
                resp.headers.add(name, value)
        if body:
            resp.body = body
            resp.headers.add("Content-Type", SDP)
        self.leg.ep.respond(key, resp)
        self.leg.session.start(agreement)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        """Core's answer to the device's offer (or why there is none)."""
        key = self.offer_in
        if key is None:
            return
        self.offer_in = None
        ep = self.leg.ep
        req = ep.server_request(key)
        if req is None:
            return
        if answer is None:
            status = 491 if cause in (TEMPORARY_FAILURE, 101, None) else 488
            ep.respond(key, make_response(req, status))
            return
        self._ok(key, req, self.leg.body_for(answer), self.in_agreement)

    # --- core's offers -------------------------------------------------------------
    def update_media(self, offer: MediaDescription) -> None:
        leg = self.leg
        dialog = leg.dialog
        if self.own_out is not None and self.offer_out is None and not leg.done:
            self.queued = offer  # core knows nothing of our refresh: its offer follows it
            return
        if dialog is None or leg.done or self._offering() or dialog.state is DialogState.EARLY:
            leg._report(lambda core: leg.ep.engine.on_media_answer(core, None, TEMPORARY_FAILURE))
            return
        self.offer_out = leg.send_in_dialog(
            "INVITE",
            body=leg.body_for(offer),
            content_type=SDP,
            contact=True,
            headers=[*leg.supported_headers(), *leg.session.request_headers()],
        )

    # --- our own refreshes ------------------------------------------------------------
    def send_refresh(self, use_update: bool, interval: int | None = None) -> bool:
        """A session refresh (RFC 4028 §10); False when an offer is in flight (try later)."""
        leg = self.leg
        if self.offer_in is not None or self.offer_out is not None or self.own_out is not None:
            return False
        headers = [*leg.supported_headers(), *leg.session.request_headers(interval)]
        if use_update or not leg.last_sdp:
            req = leg.send_in_dialog("UPDATE", contact=True, headers=headers)
        else:
            req = leg.send_in_dialog(
                "INVITE", body=leg.last_sdp, content_type=SDP, contact=True, headers=headers
            )
        self.own_out = req
        self.own_interval = interval or leg.session.interval
        return req is not None

    def _own_answered(self, req: SipRequest, resp: SipResponse) -> None:
        leg = self.leg
        status = resp.status
        self.own_out = None
        waiting = self.queued is not None  # core's offer refreshes the session as well
        if status < 300:
            if leg.dialog is not None:
                leg.dialog.receive_response(resp)
                if req.method == "INVITE":
                    leg.ep.send_ack(leg.dialog, leg.dest, leg.transport)
            leg.session.from_response(resp, self.own_interval)
        elif status in _DIALOG_GONE:
            leg.dialog_gone(cause_for_status(status))
        elif waiting:
            pass
        elif status == 422:
            wanted = retry_interval(resp, self.own_interval)
            if wanted is not None:
                self.send_refresh(req.method == "UPDATE", wanted)
        elif status == 491:
            delay = 2.1 + secrets.randbelow(1900) / 1000  # RFC 3261 §14.1
            leg.set_timer("refresh-retry", delay, leg.session.refresh_now)
        elif req.method == "UPDATE" and status in (405, 501):
            leg.session.no_update = True  # it said it allows UPDATE, but does not
            self.send_refresh(False)
        else:
            log.info("session refresh answered %d on %s", status, req.call_id)
        offer, self.queued = self.queued, None
        if offer is not None and not leg.done:
            self.update_media(offer)  # core's offer, held back while ours was in flight

    # --- responses and timeouts -----------------------------------------------------
    def on_response(self, req: SipRequest, resp: SipResponse) -> bool:
        """Handle a response to one of our offers or refreshes; False: not ours."""
        if req is self.own_out:
            if resp.status >= 200:
                self._own_answered(req, resp)
            return True
        if req is not self.offer_out:
            return False
        if resp.status < 200:
            return True
        leg = self.leg
        engine = leg.ep.engine
        self.offer_out = None
        if resp.status < 300:
            if leg.dialog is not None:
                leg.dialog.receive_response(resp)
                leg.ep.send_ack(leg.dialog, leg.dest, leg.transport)
            leg.session.from_response(resp, leg.session.interval)
            try:
                answer = sdp_to_media(resp.body) if resp.body else None
            except ParseError:
                answer = None
            leg._report(lambda core: engine.on_media_answer(core, answer, None))
            return True
        cause = cause_for_status(resp.status)
        leg._report(lambda core: engine.on_media_answer(core, None, cause))
        if resp.status in _DIALOG_GONE:
            leg.dialog_gone(cause)
        return True

    def on_timeout(self, req: SipRequest) -> bool:
        leg = self.leg
        if req is self.offer_out:
            self.offer_out = None
            engine = leg.ep.engine
            leg._report(lambda core: engine.on_media_answer(core, None, RECOVERY_ON_TIMER))
        elif req is self.own_out:
            self.queued = None
            self.own_out = None
        else:
            return False
        leg.dialog_gone(RECOVERY_ON_TIMER)
        return True
