"""The caller's side of a SIP call: offhook is the UAS of the phone's INVITE.

Theory of operation. ``InboundLeg`` answers the INVITE as core reports
progress, alerting and connect: provisional responses, then a 200 it
retransmits until the ACK (RFC 3261 §13.3.1.4, timer ``2xx``), giving up
with BYE and cause 102 after 64*T1. CANCEL, BYE and mid-call requests turn
into core events (``legs.SipLeg``).

Reliable provisionals (RFC 3262): when the INVITE requires ``100rel``,
every 18x goes reliably; when it only supports it, those carrying SDP do
(the caller then surely has the early media answer). They are numbered and
queued by ``prack.ReliableProvisionals``, retransmitted (timer ``prack``,
over UDP) until their PRACK, which is answered 200; after 64*T1 without
one the INVITE is refused 500 and core hears cause 102. A 2xx waits while
an unacknowledged one carried SDP (§3), and then repeats that SDP: the
answer was given already. An INVITE without an offer gets no SDP in a
reliable 18x (an offer there would have to be answered in the PRACK).

The session timer agreed for the INVITE (RFC 4028, decided by the
endpoint before the leg exists) goes into the 200 and starts with it.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.core.events import Setup
from offhook.core.media import MediaDescription
from offhook.sip.causes import NORMAL_CLEARING, RECOVERY_ON_TIMER, status_for_cause
from offhook.sip.dialog import Dialog, DialogError
from offhook.sip.extensions import ALLOW, SUPPORTED, allowed_methods
from offhook.sip.legs import SDP, Addr, SipLeg
from offhook.sip.message import SipRequest, SipResponse, make_response
from offhook.sip.prack import ReliableProvisionals, parse_rack, wants_100rel
from offhook.sip.sdpmap import sdp_to_media
from offhook.sip.session_timer import Agreement, response_headers
from offhook.sip.transaction import TxnKey

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint

log = logging.getLogger("offhook.sip")


class InboundLeg(SipLeg):
    """The calling phone's side: we are the UAS of its INVITE."""

    def __init__(
        self,
        ep: SipEndpoint,
        key: TxnKey,
        req: SipRequest,
        addr: Addr,
        transport: str,
        agreement: Agreement | None = None,
    ) -> None:
        super().__init__(ep, addr, transport)
        self.key = key
        self.invite = req
        self.local_tag = ep.ids.tag()  # marked with the worker: its dialog comes back here
        self.answered = False
        self.acked = False
        self.delayed_offer = not req.body
        self.ok: SipResponse | None = None
        self.ok_held = False  # the 200 waits for a PRACK (RFC 3262 §3)
        self.agreement = agreement
        self.peer_methods = allowed_methods(req)
        required, supported = wants_100rel(req)
        self.rel_required = required
        self.reliable = (
            ReliableProvisionals(secrets.randbelow(2**30) + 1, ep.t1) if supported else None
        )
        self.early_answer: bytes | None = None  # the SDP answer given in an 18x

    def _response(self, status: int, media: MediaDescription | None = None) -> SipResponse:
        resp = make_response(self.invite, status, to_tag=self.local_tag)
        resp.headers.add("Contact", self.contact())
        if status >= 200 or media is not None:
            resp.headers.add("Allow", ALLOW)
        if media is not None:
            resp.body = self.body_for(media)
            resp.headers.add("Content-Type", SDP)
        return resp

    def _early(self, status: int, media: MediaDescription | None) -> None:
        if self.done or self.answered:
            return
        rel = self.reliable
        reliable = rel is not None and (self.rel_required or media is not None)
        if reliable and self.delayed_offer:
            media = None  # no offer in a reliable 18x: it would be answered in the PRACK
        resp = self._response(status, media)
        if resp.body:
            if self.early_answer is None:
                self.early_answer = resp.body
            else:
                # RFC 3261 §13.2.1: the first SDP is the answer; later ones repeat it.
                resp.body = self.early_answer
        if self.dialog is None:
            with contextlib.suppress(DialogError):
                self.register_dialog(Dialog.from_uas(self.invite, resp))
        if rel is None or not reliable:
            self.ep.respond(self.key, resp)
        elif rel.offer(resp, with_sdp=media is not None):
            self._send_reliable(resp)

    def _send_reliable(self, resp: SipResponse) -> None:
        if resp.body and self.early_answer is None:
            self.early_answer = resp.body
        self.ep.respond(self.key, resp)
        assert self.reliable is not None
        self.set_timer("prack", self.reliable.interval, self._prack_timer)

    def _prack_timer(self) -> None:
        rel = self.reliable
        if rel is None or self.done:
            return
        again = rel.on_timer()
        if again is None:
            # RFC 3262 §3: no PRACK for 64*T1: refuse the INVITE with a 5xx.
            log.info("no PRACK on call %s: refusing the INVITE", self.invite.call_id)
            resp = make_response(self.invite, 500, "No PRACK", to_tag=self.local_tag)
            self.ep.respond(self.key, resp)
            self.finish()
            self._report(lambda leg: self.ep.engine.on_release(leg, RECOVERY_ON_TIMER))
            return
        if self.transport == "udp":  # a reliable transport needs no retransmission
            self.ep.respond(self.key, again)
        self.set_timer("prack", rel.interval, self._prack_timer)

    def on_prack(self, key: TxnKey, req: SipRequest) -> None:
        rel = self.reliable
        if rel is None:
            super().on_prack(key, req)
            return
        try:
            rack = parse_rack(req.headers.get("RAck") or "")
        except ParseError as exc:
            self.ep.respond(key, make_response(req, 400, f"Bad Request ({exc.reason})"))
            return
        matched, nxt = rel.prack(rack, self.invite.cseq[0])
        if not matched:
            super().on_prack(key, req)  # 481
            return
        self.ep.respond(key, make_response(req, 200))
        self.cancel_timer("prack")
        if self.answered:
            if self.ok_held and not rel.holds_answer:
                self.ok_held = False
                self._send_ok()
        elif nxt is not None:
            self._send_reliable(nxt)

    # --- core -> caller -----------------------------------------------------
    def offer(self, setup: Setup) -> None:  # pragma: no cover - inbound legs are never offered
        raise RuntimeError("an inbound leg is not offered a call")

    def progress(self, media: MediaDescription | None) -> None:
        self._early(183 if media is not None else 180, media)

    def alert(self, media: MediaDescription | None) -> None:
        self._early(180, media)

    def answer(self, media: MediaDescription | None) -> None:
        if self.done or self.answered:
            return
        self.answered = True
        resp = self._response(200, media)
        resp.headers.add("Supported", SUPPORTED)
        if self.early_answer is not None:
            # RFC 3264: the answer went in an 18x; the 2xx repeats it (call control
            # re-offers the caller when the answering side's media differs).
            resp.body = self.early_answer
            resp.headers.set("Content-Type", SDP)
            self.last_sdp = self.early_answer
        if self.agreement is not None:
            for name, value in response_headers(self.agreement):
                resp.headers.add(name, value)
        try:
            dialog = Dialog.from_uas(self.invite, resp)
        except DialogError:
            dialog = None
        if dialog is not None:
            self.register_dialog(dialog)
        self.ok = resp
        rel = self.reliable
        if rel is not None:
            rel.drop_waiting()
            if rel.holds_answer:
                self.ok_held = True
                return
        self._send_ok()

    def _send_ok(self) -> None:
        assert self.ok is not None
        self.cancel_timer("prack")
        self.ep.respond(self.key, self.ok)
        self.session.start(self.agreement)
        self._arm_retransmit(self.ep.t1, 0.0)

    def _arm_retransmit(self, interval: float, elapsed: float) -> None:
        # RFC 3261 §13.3.1.4: resend the 2xx until the ACK, T1 doubling to T2.
        def fire() -> None:
            if self.acked or self.done or self.ok is None:
                return
            total = elapsed + interval
            if total >= 64 * self.ep.t1:
                log.info("no ACK for 2xx on call %s: hanging up", self.invite.call_id)
                self.dialog_gone(RECOVERY_ON_TIMER)
                return
            if self.transport == "udp":  # a reliable transport needs no retransmission
                self.ep.resend(self.ok, self.dest, self.transport)
            self._arm_retransmit(min(interval * 2, self.ep.t2), total)

        self.set_timer("2xx", interval, fire)

    def release(self, cause: int) -> None:
        if self.done:
            return
        if self.answered and not self.ok_held:
            self.send_bye(cause)
            return
        status = status_for_cause(cause)
        resp = make_response(self.invite, status, to_tag=self.local_tag)
        if cause not in (NORMAL_CLEARING,):
            resp.headers.add("Reason", f"Q.850;cause={cause}")
        self.ep.respond(self.key, resp)
        self.finish()

    def finish(self) -> None:
        super().finish()
        self.ep.inbound_by_key.pop(self.key, None)

    # --- caller -> us -------------------------------------------------------
    def on_cancel(self) -> None:
        if (self.answered and not self.ok_held) or self.done:
            return
        resp = make_response(self.invite, 487, to_tag=self.local_tag)
        self.ep.respond(self.key, resp)
        self.finish()
        self._report(lambda leg: self.ep.engine.on_release(leg, NORMAL_CLEARING))

    def on_ack(self, req: SipRequest) -> None:
        first = not self.acked
        self.acked = True
        self.cancel_timer("2xx")
        if first and self.delayed_offer and req.body:
            # RFC 3261 §13.2.1: an INVITE without an offer gets the answer in the ACK.
            try:
                answer = sdp_to_media(req.body)
            except ParseError:
                return
            self._report(lambda leg: self.ep.engine.on_media_answer(leg, answer, None))
