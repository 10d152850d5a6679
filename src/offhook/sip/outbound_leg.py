"""A called device's side of a SIP call: offhook is the UAC of an INVITE to one contact.

Theory of operation. ``SipLegFactory`` makes one ``OutboundLeg`` per fork
core places (a registered contact, or a trunk). The leg sends the INVITE
(saying it supports ``100rel``, ``timer`` and ``replaces``, and offering
a session timer, RFC 4028 §7.1), maps the responses to core events and
Q.850 causes (RFC 3398), and cancels or hangs up as core releases it
(CANCEL only after a provisional, RFC 3261 §9.1).

* A reliable 18x (``Require: 100rel`` and ``RSeq``) is PRACKed in its
  early dialog, once and in order (``prack.PrackTracker``, RFC 3262 §4); a
  retransmission or one out of order is dropped.
* The 2xx confirms the dialog and starts the session timer it carries
  (``SessionRefresh.from_response``). A 2xx from a second downstream fork is
  ACKed and hung up; one racing our CANCEL is ACKed and hung up too.
* The INVITE is sent once more, with CSeq + 1, when a trunk challenges it
  (401/407: digest credentials, §22.2) or when the callee finds the
  session interval too small (422: its Min-SE, RFC 4028 §7.4).
* With a delayed offer, the callee's 2xx holds the offer; the ACK waits for
  the caller's answer (``media_answer``).
* A redirected call (``Setup.diversions``) carries its redirections as
  ``Diversion`` (RFC 5806) and ``History-Info`` (RFC 7044, RFC 4458 causes)
  headers (``diversion``), to phones and trunks (a voicemail system opens
  the mailbox of the number first called).
* A call to a phone in do not disturb with the ringer off (``Setup.silent``)
  asks for a ring splash only (``Alert-Info: <http://127.0.0.1/Bellcore-dr5>``).
* An intercom call (``Setup.auto_answer``) asks the phone to answer by
  itself: ``Call-Info: <...>;answer-after=0`` (the convention of
  Polycom, Yealink, Cisco and baresip) and ``Alert-Info:
  <urn:alert:service:auto-answer>`` (RFC 7462).
* A CTI application's Answer (``remote``) asks a ringing phone that said
  it takes the ``talk`` event (``Allow-Events`` in its 18x) to answer, with
  a NOTIFY in the early dialog (``remote_control``); any other phone, and
  Hold and Resume, answer False (call control then does what it can from
  the network side).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from offhook.common.addr import uri_host
from offhook.common.errors import ParseError
from offhook.common.location import Binding
from offhook.core.events import Setup
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription
from offhook.core.ports import LegDriver, RemoteAction
from offhook.sip.causes import (
    ANSWERED_ELSEWHERE,
    NORMAL_CLEARING,
    RECOVERY_ON_TIMER,
    cause_for_status,
)
from offhook.sip.dialog import Dialog, DialogError
from offhook.sip.diversion import Redirect, diversion_headers, history_info_headers
from offhook.sip.extensions import ALLOW, allowed_methods
from offhook.sip.legs import SDP, SipLeg
from offhook.sip.message import Headers, SipRequest, SipResponse
from offhook.sip.prack import PrackTracker, RAck, is_reliable_provisional
from offhook.sip.remote_control import RemoteAnswer
from offhook.sip.sdpmap import sdp_to_media
from offhook.sip.session_timer import retry_interval
from offhook.sip.transaction import build_cancel
from offhook.sip.trunks import digest_authorization, pick_challenge

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint

log = logging.getLogger("offhook.sip")

# What asks a phone to show a call with a short ring splash only (do not disturb,
# ringer off): the Bellcore "dr5" splash most SIP phones know for this.
SILENT = (("Alert-Info", "<http://127.0.0.1/Bellcore-dr5>;info=alert-silent"),)
# What asks a phone to answer an intercom call by itself.
AUTO_ANSWER = (
    ("Call-Info", "<sip:auto-answer.invalid>;answer-after=0"),
    ("Alert-Info", "<urn:alert:service:auto-answer>"),
)


class OutboundLeg(SipLeg):
    """The called phone's side: we are the UAC of an INVITE to one contact."""

    def __init__(self, ep: SipEndpoint, binding: Binding) -> None:
        dest, transport = ep.binding_destination(binding)
        if not binding.contact:
            dest = ep.trunk_dest(*dest)  # a trunk: its name resolved, when known
        super().__init__(ep, dest, transport)
        self.binding = binding
        self.invite: SipRequest | None = None
        self.provisional = False
        self.final = False
        self.cancel_pending: int | None = None
        self.connected = False
        self.ack_held = False  # delayed offer: ACK waits for the caller's answer
        self.auth_sent = False  # a trunk's challenge was answered once already
        self.offered_interval = 0  # the Session-Expires our INVITE offered
        self.pracks = PrackTracker()
        self.early: dict[str, Dialog] = {}  # early dialogs of other forks, for their PRACKs
        self.talk = RemoteAnswer(self)  # a CTI application's Answer (the talk event)

    def offer(self, setup: Setup) -> None:
        ep = self.ep
        host = ep.host_port_for(self.dest[0])
        calling = setup.calling
        name = (
            calling.name.replace("\\", "").replace('"', "") if calling.presentation_allowed else ""
        )
        number = calling.number if calling.presentation_allowed else "anonymous"
        from_value = (f'"{name}" ' if name else "") + f"<sip:{number}@{host}>;tag={ep.ids.tag()}"
        target = self.binding.contact
        if target:
            to_value = f"<sip:{setup.called}@{host}>"
        else:
            # A trunk: the request goes to the called number at the far end,
            # named as configured (a host name stays a name: RFC 3263 resolves
            # where to send, not what the Request-URI says).
            far = uri_host(self.binding.source[0] or self.dest[0])
            suffix = f";transport={self.transport}" if self.transport != "udp" else ""
            target = f"sip:{setup.called}@{far}:{self.dest[1]}{suffix}"
            to_value = f"<sip:{setup.called}@{far}:{self.dest[1]}>"
        body = self.body_for(setup.media)
        # 100rel only with an offer: a reliable 18x offer would need our answer in the PRACK.
        tags = "100rel, timer, replaces" if body else "timer, replaces"
        items = [
            ("Via", self.via()),
            ("Max-Forwards", "70"),
            ("From", from_value),
            ("To", to_value),
            ("Call-ID", ep.ids.call_id(ep.host_for(self.dest[0]))),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact()),
            ("Allow", ALLOW),
            ("Supported", tags),
            *self.session.request_headers(),
            *self._redirections(setup, host),
            *(AUTO_ANSWER if setup.auto_answer else ()),
            *(SILENT if setup.silent and not setup.auto_answer else ()),
            *self.extra_headers(setup),
            *ep.common_headers(),
        ]
        self.offered_interval = self.session.interval
        if body:
            items.append(("Content-Type", SDP))
        req = SipRequest(method="INVITE", uri=target, headers=Headers(items), body=body)
        self.invite = req
        ep.request(req, self.dest, self.transport, self)

    def extra_headers(self, setup: Setup) -> list[tuple[str, str]]:
        """Headers a kind of outbound leg adds to its INVITE (none here)."""
        return []

    @staticmethod
    def _redirections(setup: Setup, host: str) -> list[tuple[str, str]]:
        """Diversion and History-Info for a redirected call (none for a direct one)."""
        if not setup.diversions:
            return []
        redirects = [Redirect(d.number, str(d.reason), d.name) for d in setup.diversions]
        return [
            *diversion_headers(redirects, host),
            *history_info_headers(redirects, setup.called, host),
        ]

    def progress(self, media: MediaDescription | None) -> None:
        """Not used on a called leg."""

    def alert(self, media: MediaDescription | None) -> None:
        """Not used on a called leg."""

    def answer(self, media: MediaDescription | None) -> None:
        """Not used on a called leg."""

    def remote(self, action: RemoteAction) -> bool:
        """CTI Answer: a ringing phone that takes the talk event is asked to answer."""
        if action is not RemoteAction.ANSWER:
            return False  # Hold/Resume: call control holds SIP phones from the network side
        ringing = self.provisional and not (self.final or self.connected or self.done)
        if not ringing or self.cancel_pending is not None:
            return False
        return self.talk.answer()

    def release(self, cause: int) -> None:
        if self.done:
            return
        if self.connected:
            if self.ack_held and self.dialog is not None:
                # Hung up before the caller's answer to the 2xx's offer: the 2xx is
                # still ACKed (RFC 3261 §13.2.2.4), without a body, then the BYE.
                self.ack_held = False
                self.send_ack()
            self.send_bye(cause)
            return
        if self.final or self.invite is None:
            self.finish()
            return
        if not self.provisional:
            self.cancel_pending = cause  # RFC 3261 §9.1: CANCEL only after a provisional
            return
        self._cancel(cause)

    def _cancel(self, cause: int) -> None:
        assert self.invite is not None
        cancel = build_cancel(self.invite)
        if cause == ANSWERED_ELSEWHERE:
            # RFC 3326: tells the phone not to log a missed call
            cancel.headers.add("Reason", 'SIP;cause=200;text="Call completed elsewhere"')
        elif cause != NORMAL_CLEARING:
            cancel.headers.add("Reason", f"Q.850;cause={cause}")
        self.ep.request(cancel, self.dest, self.transport, self)
        self.done = True  # no more reports to the core for this leg

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        if self.ack_held and self.dialog is not None:
            self.ack_held = False
            self.send_ack(self.body_for(answer) if answer is not None else b"")
            return
        super().media_answer(answer, cause)

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if req is not self.invite:
            if not self.talk.on_response(req, resp):
                super().on_response(req, resp)
            return
        status = resp.status
        if status == 100:
            return
        if status < 300:
            self.talk.learn(resp)
        if status < 200:
            self._provisional(req, resp)
            return
        if status < 300:
            self._on_2xx(req, resp)
            return
        if status in (401, 407) and self._retry_with_auth(req, resp):
            return
        if status == 422 and self._retry_with_interval(req, resp):
            return
        self.final = True
        if self.done:
            self.finish()
            return
        self.finish()
        cause = cause_for_status(status)
        if status == 487:
            cause = NORMAL_CLEARING
        self._report_final(cause)

    def _provisional(self, req: SipRequest, resp: SipResponse) -> None:
        rseq = is_reliable_provisional(resp)
        if rseq is not None and (not resp.to_tag or not self.pracks.take(resp.to_tag, rseq)):
            return  # RFC 3262 §4: a retransmission, or out of order: not processed
        self.provisional = True
        if self.cancel_pending is not None:
            cause, self.cancel_pending = self.cancel_pending, None
            self._cancel(cause)
            return
        if resp.to_tag and self.dialog is None:
            with contextlib.suppress(DialogError):
                self.register_dialog(Dialog.from_uac(req, resp))
        if rseq is not None:
            self._prack(req, resp, rseq)
        if self.peer_methods is None:
            self.peer_methods = allowed_methods(resp)
        media = self._media(resp)
        if resp.status == 180 or (resp.status != 183 and media is None):
            self._report(lambda leg: self.ep.engine.on_alerting(leg, media))
        else:
            self._report(lambda leg: self.ep.engine.on_progress(leg, media))

    def _prack(self, req: SipRequest, resp: SipResponse, rseq: int) -> None:
        """PRACK a reliable provisional in its early dialog (RFC 3262 §4)."""
        tag = resp.to_tag or ""
        dialog = self.dialog if self.dialog is not None and self.dialog.remote_tag == tag else None
        if dialog is None:
            dialog = self.early.get(tag)
            if dialog is None:
                try:
                    dialog = Dialog.from_uac(req, resp)
                except DialogError:
                    return
                if len(self.early) < 16:
                    self.early[tag] = dialog
        prack = dialog.create_request(
            "PRACK",
            via=self.via(),
            headers=[("RAck", str(RAck(rseq, req.cseq[0], "INVITE"))), *self.ep.common_headers()],
        )
        self.ep.request(prack, self.dest, self.transport, self)

    def _resend_invite(self, req: SipRequest, headers: Headers) -> None:
        """The INVITE once more (challenge, 422): CSeq + 1, a new branch, same Call-ID/tags."""
        headers.set("Via", self.via())
        headers.set("CSeq", f"{req.cseq[0] + 1} INVITE")
        again = SipRequest(method="INVITE", uri=req.uri, headers=headers, body=req.body)
        if self.dialog is not None:  # an early dialog of the refused attempt
            self.ep.dialogs.pop(self.dialog.id, None)
            self.dialog = None
        self.early.clear()
        self.pracks = PrackTracker()
        self.provisional = False
        self.invite = again
        self.ep.request(again, self.dest, self.transport, self)

    def _retry_with_auth(self, req: SipRequest, resp: SipResponse) -> bool:
        """Answer a trunk's 401/407 once (RFC 3261 §22.2); False: fail the leg."""
        if self.auth_sent or self.done or self.cancel_pending is not None:
            return False
        if self.binding.contact or self.ep.trunks is None:
            return False  # only trunks have credentials toward the far end
        target = self.ep.trunks.target(self.binding.device)
        if target is None or not target.username:
            return False
        proxy = resp.status == 407
        challenge = pick_challenge(
            resp.headers.get_raw("Proxy-Authenticate" if proxy else "WWW-Authenticate")
        )
        if challenge is None:
            return False
        value = digest_authorization(challenge, "INVITE", req.uri, target.username, target.password)
        if value is None:
            return False
        self.auth_sent = True
        headers = req.headers.copy()
        headers.add("Proxy-Authorization" if proxy else "Authorization", value)
        log.info("trunk %s challenged INVITE %s: resending with credentials",
                 target.name, req.call_id)  # fmt: skip
        self._resend_invite(req, headers)
        return True

    def _retry_with_interval(self, req: SipRequest, resp: SipResponse) -> bool:
        """422: offer the Min-SE the callee wants (RFC 4028 §7.4); False: fail the leg."""
        if self.done or self.cancel_pending is not None or not self.offered_interval:
            return False
        wanted = retry_interval(resp, self.offered_interval)
        if wanted is None:
            return False
        self.offered_interval = wanted
        headers = req.headers.copy()
        headers.set("Session-Expires", str(wanted))
        headers.set("Min-SE", str(wanted))
        self._resend_invite(req, headers)
        return True

    def _report_final(self, cause: int) -> None:
        if self.leg is not None:
            self.ep.engine.on_release(self.leg, cause)

    def _on_2xx(self, req: SipRequest, resp: SipResponse) -> None:
        first = not self.final
        self.final = True
        try:
            dialog = Dialog.from_uac(req, resp)
        except DialogError:
            log.info("2xx without Contact/To tag on %s", req.call_id)
            return
        if self.dialog is not None and self.dialog.id == dialog.id:
            self.dialog.receive_response(resp)
            if not first:  # a retransmitted 2xx: our ACK was lost (RFC 3261 §13.2.2.4)
                if not self.ack_held:
                    self.resend_ack()
                return
        elif not first:
            # a 2xx from a second fork downstream: ACK it, then end that dialog only
            self.ep.send_ack(dialog, self.dest, self.transport)
            bye = dialog.create_request("BYE", via=self.via(), headers=self.ep.common_headers())
            self.ep.request(bye, self.dest, self.transport, self)
            return
        else:
            fork = self.early.get(dialog.remote_tag)
            if fork is not None and fork.local_seq is not None:
                dialog.local_seq = max(dialog.local_seq or 0, fork.local_seq)  # its PRACKs
            self.register_dialog(dialog)
        self.early.clear()
        assert self.dialog is not None
        if self.done or self.cancel_pending is not None:
            # the core released this leg before the answer (CANCEL raced the
            # 2xx, or no provisional came to CANCEL after): ACK then BYE
            self.cancel_pending = None
            self.send_ack()
            self.done = False
            self.send_bye(ANSWERED_ELSEWHERE)
            return
        self.connected = True
        methods = allowed_methods(resp)
        if methods is not None:
            self.peer_methods = methods
        media = self._media(resp)
        if not req.body and media is not None:
            self.ack_held = True  # the caller's answer goes in our ACK
        else:
            self.send_ack()
        self.session.from_response(resp, self.offered_interval)
        self._report(lambda leg: self.ep.engine.on_connect(leg, media))

    def client_invite(self) -> SipRequest | None:
        return self.invite

    def unlink(self) -> None:
        super().unlink()
        del self.talk  # it points back at this leg

    @staticmethod
    def _media(resp: SipResponse) -> MediaDescription | None:
        if not resp.body or resp.content_type() not in (None, SDP):
            return None
        try:
            return sdp_to_media(resp.body)
        except ParseError:
            return None

    def on_timeout(self, req: SipRequest) -> None:
        if req is self.invite:
            self.final = True
            was_done = self.done
            self.finish()
            if not was_done:
                self._report_final(RECOVERY_ON_TIMER)
            return
        if req.method in ("CANCEL", "PRACK") or self.talk.on_timeout(req):
            return
        super().on_timeout(req)


class SipLegFactory:
    """The engine's factory for calls to SIP bindings."""

    def __init__(self, ep: SipEndpoint) -> None:
        self.ep = ep

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        out = OutboundLeg(self.ep, binding)
        out.leg = leg
        return out
