r"""SIP call legs: one SIP dialog on each side of the B2BUA, as core ``LegDriver``\ s.

Theory of operation. ``InboundLeg`` is the caller's side: offhook is the
UAS of its INVITE, answers it as core reports progress, alerting and
connect (provisional responses, then a 200 it retransmits until the ACK,
RFC 3261 §13.3.1.4), and turns CANCEL, BYE and re-INVITEs into core
events. ``OutboundLeg`` is a called device's side: offhook is the UAC of an
INVITE to one registered contact or trunk (``SipLegFactory`` makes one per
fork), maps its responses to core events and Q.850 causes (RFC 3398),
answers a trunk's challenge once with digest credentials (§22.2), and
cancels or hangs up as core releases it. Both write their SDP through
``sdpmap`` (one origin per leg, RFC 3264 §8), give the peer a Via and
Contact of the peer's own IP family (RFC 5118), and send a stream whose far
address is of the other family through the node's media bridge.

The legs act through their ``SipEndpoint`` (transactions, dialogs, the
transport); they hold no socket and no timer of their own beyond the 2xx
retransmission.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from offhook.common.addr import ip_version, uri_host
from offhook.common.errors import ParseError
from offhook.common.ids import new_call_id, new_tag
from offhook.common.location import Binding
from offhook.core.events import Setup
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription, MediaStream
from offhook.core.ports import LegDriver
from offhook.sip.causes import cause_for_status, status_for_cause
from offhook.sip.dialog import Dialog, DialogError, DialogState
from offhook.sip.message import (
    Headers,
    SipMessage,
    SipRequest,
    SipResponse,
    make_response,
)
from offhook.sip.sdpmap import SdpWriter, sdp_to_media
from offhook.sip.transaction import (
    TxnKey,
    build_cancel,
)
from offhook.sip.trunks import (
    digest_authorization,
    pick_challenge,
)

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint

log = logging.getLogger("offhook.sip")

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO"
USER_AGENT = "offhook"
SDP = "application/sdp"

NORMAL_CLEARING = 16
ANSWERED_ELSEWHERE = 26
RECOVERY_ON_TIMER = 102
TEMPORARY_FAILURE = 41


class SipLeg(LegDriver):
    """What inbound and outbound SIP legs share: the dialog and mid-call requests."""

    def __init__(self, ep: SipEndpoint, dest: Addr, transport: str) -> None:
        self.ep = ep
        self.leg: Leg | None = None
        self.dest = dest
        self.transport = transport
        self.dialog: Dialog | None = None
        self.writer = SdpWriter(ep.host_for(dest[0]))
        self.done = False
        # mid-call offer/answer
        self.reinvite_in: TxnKey | None = None  # their re-INVITE we must answer
        self.reinvite_out: SipRequest | None = None  # our re-INVITE awaiting a final
        self.last_sdp: bytes = b""

    # --- helpers ------------------------------------------------------------
    def contact(self) -> str:
        return self.ep.contact(self.transport, self.dest[0])

    def via(self) -> str:
        return self.ep.via(self.transport, self.dest[0])

    def body_for(self, media: MediaDescription | None) -> bytes:
        if media is None:
            return b""
        if self.ep.bridge is not None:
            media = self._bridged(media)
        self.last_sdp = self.writer.write(media)
        return self.last_sdp

    @property
    def _session(self) -> tuple[str, str]:
        """(call, leg) keys for the media bridge."""
        leg = self.leg
        if leg is None:
            return f"sip-{id(self)}", f"sip-{id(self)}"
        return (leg.call.id if leg.call is not None else leg.id), leg.id

    def _bridged(self, media: MediaDescription) -> MediaDescription:
        """Streams of the other IP family go through the bridge (RFC 5118 peers of one
        family cannot reach the other's addresses); the rest is left as it is."""
        version = ip_version(self.dest[0]) or ip_version(self.ep.host) or 4
        streams: list[MediaStream] = []
        changed = False
        for index, stream in enumerate(media.streams):
            far = stream.address
            far_version = ip_version(far) if far else None
            if stream.port == 0 or far_version in (None, version):
                streams.append(stream)
                continue
            if far in ("0.0.0.0", "::"):  # RFC 2543 hold: the unspecified address, ours
                streams.append(replace(stream, address="::" if version == 6 else "0.0.0.0"))
                changed = True
                continue
            session, owner = self._session
            assert self.ep.bridge is not None
            local = self.ep.bridge.bridge(session, owner, index, version, (far, stream.port))
            if local is None:
                streams.append(stream)
                continue
            extra = tuple((n, v) for n, v in stream.extra if n.lower() != "rtcp")
            streams.append(replace(stream, address=local[0], port=local[1], extra=extra))
            changed = True
        return replace(media, streams=tuple(streams)) if changed else media

    def register_dialog(self, dialog: Dialog) -> None:
        if self.dialog is not None and self.dialog.id != dialog.id:
            self.ep.dialogs.pop(self.dialog.id, None)
        self.dialog = dialog
        self.ep.dialogs[dialog.id] = self

    def finish(self) -> None:
        """Forget this leg's SIP state (after BYE/final response)."""
        self.done = True
        if self.ep.bridge is not None:
            self.ep.bridge.release(*self._session)
        if self.dialog is not None:
            self.dialog.state = DialogState.TERMINATED
            self.ep.forget_dialog(self.dialog.id)

    def send_bye(self, cause: int) -> None:
        if self.dialog is None:
            return
        bye = self.dialog.create_request("BYE", via=self.via(), headers=self.ep.common_headers())
        if cause not in (NORMAL_CLEARING, 31):
            bye.headers.add("Reason", f"Q.850;cause={cause}")
        self.ep.request(bye, self.dest, self.transport, self)
        self.finish()

    def _report(self, action: Callable[[Leg], None]) -> None:
        # The engine itself ignores reports on legs it has released.
        if self.leg is not None:
            action(self.leg)

    # --- core -> this leg: mid-call media -----------------------------------
    def update_media(self, offer: MediaDescription) -> None:
        if self.dialog is None or self.reinvite_out is not None or self.done:
            self._report(lambda leg: self.ep.engine.on_media_answer(leg, None, TEMPORARY_FAILURE))
            return
        body = self.body_for(offer)
        req = self.dialog.create_request(
            "INVITE",
            via=self.via(),
            contact=self.contact(),
            body=body,
            content_type=SDP,
            headers=self.ep.common_headers(),
        )
        self.reinvite_out = req
        self.ep.request(req, self.dest, self.transport, self)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        key = self.reinvite_in
        if key is None:
            return
        self.reinvite_in = None
        req = self.ep.server_request(key)
        if req is None:
            return
        if answer is None:
            status = 491 if cause in (TEMPORARY_FAILURE, 101, None) else 488
            self.ep.respond(key, make_response(req, status))
            return
        resp = make_response(req, 200)
        resp.headers.add("Contact", self.contact())
        resp.body = self.body_for(answer)
        resp.headers.add("Content-Type", SDP)
        self.ep.respond(key, resp)

    # --- the device -> this leg: in-dialog requests -------------------------
    def on_request(self, key: TxnKey, req: SipRequest) -> None:
        assert self.dialog is not None
        if req.method != "ACK":
            refused = self.dialog.receive_request(req)
            if refused is not None:
                self.ep.respond(key, make_response(req, refused))
                return
        method = req.method
        if method == "BYE":
            self.ep.respond(key, make_response(req, 200))
            self.finish()
            self._report(lambda leg: self.ep.engine.on_release(leg, reason_cause(req)))
        elif method == "INVITE":
            self.on_reinvite(key, req)
        elif (method in ("INFO", "UPDATE") and not req.body) or method == "INFO":
            self.ep.respond(key, make_response(req, 200))
        else:
            resp = make_response(req, 405)
            resp.headers.add("Allow", ALLOW)
            self.ep.respond(key, resp)

    def on_reinvite(self, key: TxnKey, req: SipRequest) -> None:
        if self.reinvite_in is not None or self.reinvite_out is not None:
            resp = make_response(req, 491)  # RFC 3261 §14.2 glare
            self.ep.respond(key, resp)
            return
        if not req.body:
            # An offerless re-INVITE: offer what we last sent (RFC 3261 §14.2).
            resp = make_response(req, 200)
            resp.headers.add("Contact", self.contact())
            if self.last_sdp:
                resp.body = self.last_sdp
                resp.headers.add("Content-Type", SDP)
            self.ep.respond(key, resp)
            return
        try:
            offer = sdp_to_media(req.body)
        except ParseError as exc:
            self.ep.respond(key, make_response(req, exc.status_hint or 488))
            return
        self.reinvite_in = key
        self._report(lambda leg: self.ep.engine.on_media_offer(leg, offer))

    def on_ack(self, req: SipRequest) -> None:
        """ACK for a 2xx we sent (initial INVITE or re-INVITE)."""

    # --- responses to our requests ------------------------------------------
    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if req.method == "INVITE" and req is self.reinvite_out:
            if resp.status < 200:
                return
            self.reinvite_out = None
            if resp.status < 300:
                if self.dialog is not None:
                    self.dialog.receive_response(resp)
                    self.ep.send_ack(self.dialog, self.dest, self.transport)
                try:
                    answer = sdp_to_media(resp.body) if resp.body else None
                except ParseError:
                    answer = None
                self._report(lambda leg: self.ep.engine.on_media_answer(leg, answer, None))
            else:
                cause = cause_for_status(resp.status)
                self._report(lambda leg: self.ep.engine.on_media_answer(leg, None, cause))
                if resp.status in (408, 481):
                    self.send_bye(cause)
                    self._report(lambda leg: self.ep.engine.on_release(leg, cause))

    def on_timeout(self, req: SipRequest) -> None:
        if req is self.reinvite_out:
            self.reinvite_out = None
            self._report(lambda leg: self.ep.engine.on_media_answer(leg, None, RECOVERY_ON_TIMER))
            self.send_bye(RECOVERY_ON_TIMER)
            self._report(lambda leg: self.ep.engine.on_release(leg, RECOVERY_ON_TIMER))
        elif req.method == "BYE":
            self.finish()

    def on_stray_2xx(self, resp: SipResponse) -> None:
        if self.dialog is not None:
            self.ep.send_ack(self.dialog, self.dest, self.transport)


def message_head(msg: SipMessage) -> str:
    data = msg.serialize()  # type: ignore[attr-defined]
    return bytes(data).split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def reason_cause(req: SipRequest) -> int:
    """The Q.850 cause of an RFC 3326 Reason header, else normal clearing."""
    for value in req.headers.get_all("Reason"):
        low = value.lower()
        if low.startswith("q.850"):
            for part in low.split(";")[1:]:
                k, _, v = part.partition("=")
                if k.strip() == "cause" and v.strip().isdigit():
                    return int(v.strip())
    return NORMAL_CLEARING


class InboundLeg(SipLeg):
    """The calling phone's side: we are the UAS of its INVITE."""

    def __init__(self, ep: SipEndpoint, key: TxnKey, req: SipRequest, addr: Addr, transport: str):
        super().__init__(ep, addr, transport)
        self.key = key
        self.invite = req
        self.local_tag = new_tag()
        self.answered = False
        self.acked = False
        self.delayed_offer = not req.body
        self.ok: SipResponse | None = None
        self.retransmit: asyncio.TimerHandle | None = None

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
        resp = self._response(status, media)
        if self.dialog is None:
            with contextlib.suppress(DialogError):
                self.register_dialog(Dialog.from_uas(self.invite, resp))
        self.ep.respond(self.key, resp)

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
        try:
            dialog = Dialog.from_uas(self.invite, resp)
        except DialogError:
            dialog = None
        if dialog is not None:
            self.register_dialog(dialog)
        self.ok = resp
        self.ep.respond(self.key, resp)
        self._arm_retransmit(self.ep.t1)

    def _arm_retransmit(self, interval: float, elapsed: float = 0.0) -> None:
        # RFC 3261 §13.3.1.4: resend the 2xx until the ACK, T1 doubling to T2.
        def fire() -> None:
            if self.acked or self.done or self.ok is None:
                return
            total = elapsed + interval
            if total >= 64 * self.ep.t1:
                log.info("no ACK for 2xx on call %s: hanging up", self.invite.call_id)
                self.send_bye(RECOVERY_ON_TIMER)
                self._report(lambda leg: self.ep.engine.on_release(leg, RECOVERY_ON_TIMER))
                return
            if self.transport == "udp":  # a reliable transport needs no retransmission
                self.ep.resend(self.ok, self.dest, self.transport)
            self._arm_retransmit(min(interval * 2, self.ep.t2), total)

        self.retransmit = self.ep.loop.call_later(interval, fire)

    def release(self, cause: int) -> None:
        if self.done:
            return
        if self.answered:
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
        if self.retransmit is not None:
            self.retransmit.cancel()
        self.ep.inbound_by_key.pop(self.key, None)

    # --- caller -> us -------------------------------------------------------
    def on_cancel(self) -> None:
        if self.answered or self.done:
            return
        resp = make_response(self.invite, 487, to_tag=self.local_tag)
        self.ep.respond(self.key, resp)
        self.finish()
        self._report(lambda leg: self.ep.engine.on_release(leg, NORMAL_CLEARING))

    def on_ack(self, req: SipRequest) -> None:
        first = not self.acked
        self.acked = True
        if self.retransmit is not None:
            self.retransmit.cancel()
            self.retransmit = None
        if first and self.delayed_offer and req.body:
            # RFC 3261 §13.2.1: an INVITE without an offer gets the answer in the ACK.
            try:
                answer = sdp_to_media(req.body)
            except ParseError:
                return
            self._report(lambda leg: self.ep.engine.on_media_answer(leg, answer, None))


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

    def offer(self, setup: Setup) -> None:
        ep = self.ep
        host = ep.host_port_for(self.dest[0])
        calling = setup.calling
        name = (
            calling.name.replace("\\", "").replace('"', "") if calling.presentation_allowed else ""
        )
        number = calling.number if calling.presentation_allowed else "anonymous"
        from_value = (f'"{name}" ' if name else "") + f"<sip:{number}@{host}>;tag={new_tag()}"
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
        items = [
            ("Via", self.via()),
            ("Max-Forwards", "70"),
            ("From", from_value),
            ("To", to_value),
            ("Call-ID", new_call_id(ep.host_for(self.dest[0]))),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact()),
            ("Allow", ALLOW),
            *ep.common_headers(),
        ]
        body = self.body_for(setup.media)
        if body:
            items.append(("Content-Type", SDP))
        req = SipRequest(method="INVITE", uri=target, headers=Headers(items), body=body)
        self.invite = req
        ep.request(req, self.dest, self.transport, self)

    def progress(self, media: MediaDescription | None) -> None:
        """Not used on a called leg."""

    def alert(self, media: MediaDescription | None) -> None:
        """Not used on a called leg."""

    def answer(self, media: MediaDescription | None) -> None:
        """Not used on a called leg."""

    def release(self, cause: int) -> None:
        if self.done:
            return
        if self.connected:
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
            body = self.body_for(answer) if answer is not None else b""
            self.ep.send_ack(self.dialog, self.dest, self.transport, body)
            return
        super().media_answer(answer, cause)

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if req is not self.invite:
            super().on_response(req, resp)
            return
        status = resp.status
        if status == 100:
            return
        if status < 200:
            self.provisional = True
            if self.cancel_pending is not None:
                cause, self.cancel_pending = self.cancel_pending, None
                self._cancel(cause)
                return
            if resp.to_tag and self.dialog is None:
                with contextlib.suppress(DialogError):
                    self.register_dialog(Dialog.from_uac(req, resp))
            media = self._media(resp)
            if status == 180 or (status != 183 and media is None):
                self._report(lambda leg: self.ep.engine.on_alerting(leg, media))
            else:
                self._report(lambda leg: self.ep.engine.on_progress(leg, media))
            return
        if status < 300:
            self._on_2xx(req, resp)
            return
        if status in (401, 407) and self._retry_with_auth(req, resp):
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

    def _retry_with_auth(self, req: SipRequest, resp: SipResponse) -> bool:
        """Answer a trunk's 401/407 once (RFC 3261 §22.2); False: fail the leg.

        The new INVITE keeps Call-ID, From tag and To, takes CSeq + 1 and a new
        branch; the transaction layer has ACKed the challenge.
        """
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
        headers.set("Via", self.via())
        headers.set("CSeq", f"{req.cseq[0] + 1} INVITE")
        headers.add("Proxy-Authorization" if proxy else "Authorization", value)
        again = SipRequest(method="INVITE", uri=req.uri, headers=headers, body=req.body)
        if self.dialog is not None:  # an early dialog of the challenged attempt
            self.ep.dialogs.pop(self.dialog.id, None)
            self.dialog = None
        self.provisional = False
        self.invite = again
        log.info("trunk %s challenged INVITE %s: resending with credentials",
                 target.name, req.call_id)  # fmt: skip
        self.ep.request(again, self.dest, self.transport, self)
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
                    self.ep.send_ack(self.dialog, self.dest, self.transport)
                return
        elif not first:
            # a 2xx from a second fork downstream: ACK it, then end that dialog only
            self.ep.send_ack(dialog, self.dest, self.transport)
            bye = dialog.create_request("BYE", via=self.via(), headers=self.ep.common_headers())
            self.ep.request(bye, self.dest, self.transport, self)
            return
        else:
            self.register_dialog(dialog)
        assert self.dialog is not None
        if self.done or self.cancel_pending is not None:
            # the core released this leg before the answer (CANCEL raced the
            # 2xx, or no provisional came to CANCEL after): ACK then BYE
            self.cancel_pending = None
            self.ep.send_ack(self.dialog, self.dest, self.transport)
            self.done = False
            self.send_bye(ANSWERED_ELSEWHERE)
            return
        self.connected = True
        media = self._media(resp)
        if not req.body and media is not None:
            self.ack_held = True  # the caller's answer goes in our ACK
        else:
            self.ep.send_ack(self.dialog, self.dest, self.transport)
        self._report(lambda leg: self.ep.engine.on_connect(leg, media))

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
        if req.method == "CANCEL":
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
