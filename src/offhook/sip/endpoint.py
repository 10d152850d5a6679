"""The SIP endpoint: REGISTER, OPTIONS and a B2BUA between SIP phones and the core.

Theory of operation. ``SipEndpoint`` sits between the transport
(``aio.SipTransport``) and the core (``CallEngine``). Every message goes
through the sans-IO ``TransactionLayer``; the events that come out are
dispatched here:

* REGISTER goes to the ``Registrar`` (digest, bindings in the location store);
* OPTIONS is answered 200, without a transaction (as is every out-of-dialog
  request refused outright: BYE/INFO 481, SUBSCRIBE 489, 405, 501);
* trunks (``trunks.TrunkMonitor``): OPTIONS pings mark them up or down
  (RFC 3261 §11), ``register: true`` trunks are registered to their far end
  (REGISTER refreshed at half the expiry), and an outbound INVITE a trunk
  challenges (401/407) is sent once more with digest credentials
  (RFC 3261 §22.2);
* an out-of-dialog request (what may authenticate; not ACK or CANCEL) first
  passes the failed-login guard (``AuthGate``, ``net.authguard``): a blocked
  source gets no answer, a throttled one has its request held back, then
  processed as if it had just arrived;
* a new REGISTER or INVITE that is refused or not authenticated is answered
  (401/407, or 403 for a wrong password) without a transaction (RFC 3261
  §8.2.7 stateless UAS), so that failed logins leave nothing behind;
* a new INVITE is challenged (407) until its digest checks out, then becomes
  an inbound leg (``InboundLeg``) handed to ``CallEngine.setup``; an
  unauthenticated request is never routed;
* the engine places each fork through ``SipLegFactory``, which creates an
  ``OutboundLeg`` that INVITEs one registered contact;
* in-dialog requests (ACK, BYE, re-INVITE, INFO) are matched to their leg
  by dialog id (Call-ID, local tag, remote tag); CANCEL by its INVITE's
  server transaction.

Both leg kinds translate between SIP and the core's neutral events: SDP is
mapped to ``MediaDescription`` (``sdpmap``) and failures to Q.850 causes
(``causes``, RFC 3398). The endpoint owns the UAS 2xx retransmission
(RFC 3261 §13.3.1.4) and drives one timer for the transaction layer and the
engine. It runs on the event loop but does no socket I/O itself: it sends
through the ``send`` callable the transport gives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from offhook.common.addr import host_port, normalize_host, uri_host
from offhook.common.clock import Clock
from offhook.common.errors import ParseError
from offhook.common.ids import new_branch, new_call_id, new_tag
from offhook.common.location import Binding
from offhook.core.engine import CallEngine
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription, MediaStream
from offhook.core.ports import LegDriver, MediaBridge
from offhook.sip.aio import response_destination
from offhook.sip.auth import AuthStatus, CredentialLookup, DigestAuthenticator
from offhook.sip.causes import cause_for_status, status_for_cause
from offhook.sip.dialog import Dialog, DialogError, DialogId, DialogState
from offhook.sip.headers import parse_name_addr
from offhook.sip.message import (
    Headers,
    SipMessage,
    SipRequest,
    SipResponse,
    derived_tag,
    make_response,
)
from offhook.sip.registrar import Registrar
from offhook.sip.sdpmap import SdpWriter, sdp_to_media
from offhook.sip.transaction import (
    AckReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    Stray2xx,
    TransactionError,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
    TxnKey,
    build_cancel,
    server_key,
)
from offhook.sip.trunks import (
    TrunkMonitor,
    TrunkTarget,
    digest_authorization,
    pick_challenge,
)
from offhook.sip.uri import parse_uri
from offhook.sip.validate import check_request, check_response

_IPV4_RE = re.compile(r"[0-9.]+\Z")
log = logging.getLogger("offhook.sip")

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO"
# Methods of RFC 3261 and its registered extensions: refused with 405 + Allow
# when not supported (RFC 3261 §8.2.1); any other method is not recognised: 501
# (§21.5.2), e.g. RFC 4475 intmeth and esc02 ("RE%47IST%45R" is not REGISTER).
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "PRACK",
        "SUBSCRIBE", "NOTIFY", "PUBLISH", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip
USER_AGENT = "offhook"
SDP = "application/sdp"

NORMAL_CLEARING = 16
ANSWERED_ELSEWHERE = 26
RECOVERY_ON_TIMER = 102
TEMPORARY_FAILURE = 41


@dataclass(frozen=True, slots=True)
class TrunkPeer:
    """A trunk a request came from: its name, CSS and call limit."""

    name: str
    css: str
    max_calls: int = 0


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an authenticated device calls as: its first line."""

    number: str
    name: str


def out_of_dialog_answer(req: SipRequest) -> SipResponse:
    """The final answer to a new request that is not REGISTER, INVITE, ACK or
    CANCEL: OPTIONS 200 with what we support; BYE/INFO outside a dialog 481;
    SUBSCRIBE 489 (no event package); unknown methods 501; the rest 405."""
    method = req.method
    tag = derived_tag(req)
    if method == "OPTIONS":
        resp = make_response(req, 200, to_tag=tag)
        resp.headers.add("Allow", ALLOW)
        resp.headers.add("Accept", SDP)
        resp.headers.add("Server", USER_AGENT)
        return resp
    if method in ("BYE", "INFO"):
        return make_response(req, 481, to_tag=tag)
    if method == "SUBSCRIBE":
        return make_response(req, 489, to_tag=tag)
    if method not in KNOWN_METHODS:
        return make_response(req, 501, to_tag=tag)
    resp = make_response(req, 405, to_tag=tag)
    resp.headers.add("Allow", ALLOW)
    return resp


class AuthGate(Protocol):
    """The failed-login guard as the endpoint sees it (``net.authguard.AuthGuard``).

    ``admit``: None drops the request (source blocked), 0 lets it through, a
    positive delay holds it back that long if ``hold`` grants a slot (else
    it is dropped); ``release`` gives the slot back. Failures are reported
    through ``on_auth_failure``.
    """

    def admit(self, addr: Addr) -> float | None: ...

    def hold(self, addr: Addr) -> bool: ...

    def release(self, addr: Addr) -> None: ...


class ClientOwner(Protocol):
    """Who a client transaction's responses and timeout go to."""

    def on_response(self, req: SipRequest, resp: SipResponse) -> None: ...

    def on_timeout(self, req: SipRequest) -> None: ...


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
        version = _version(self.dest[0]) or _version(self.ep.host) or 4
        streams: list[MediaStream] = []
        changed = False
        for index, stream in enumerate(media.streams):
            far = stream.address
            far_version = _version(far) if far else None
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


def _version(host: str) -> int | None:
    """4 or 6 for an IP literal, None for a host name (cheap: the hot path asks)."""
    if ":" in host:
        return 6
    return 4 if _IPV4_RE.match(host) else None


def _head(msg: SipMessage) -> str:
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


def _trunk_uri(target: TrunkTarget, user: str = "") -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    suffix = f";transport={target.transport}" if target.transport != "udp" else ""
    return f"sip:{user + '@' if user else ''}{host}:{target.port}{suffix}"


class _PingOwner:
    """Receives the outcome of one OPTIONS ping to a trunk (RFC 3261 §11)."""

    def __init__(self, ep: SipEndpoint, monitor: TrunkMonitor, name: str) -> None:
        self.ep = ep
        self.monitor = monitor
        self.name = name

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if resp.status >= 200:
            # any final answer (even 401/407/404) proves the far end alive; 503 does not
            self.monitor.ping_result(self.name, resp.status, self.ep.loop.time())

    def on_timeout(self, req: SipRequest) -> None:  # Timer F or a transport error
        self.monitor.ping_result(self.name, None, self.ep.loop.time())


class _TrunkRegistration:
    """Registers one trunk's account at its far end (RFC 3261 §10.2), with digest."""

    def __init__(self, ep: SipEndpoint, monitor: TrunkMonitor, target: TrunkTarget) -> None:
        self.ep = ep
        self.monitor = monitor
        self.target = target
        # One Call-ID for every refresh (§10.2.4), naming us in the trunk's family.
        self.call_id = new_call_id(ep.host_for(target.host))
        self.tag = new_tag()
        self.cseq = 0
        self.auth_sent = False

    def send(self, auth: tuple[str, str] | None = None) -> None:
        t = self.target
        ep = self.ep
        self.cseq += 1
        aor = _trunk_uri(t, t.username).split(";", 1)[0]
        suffix = f";transport={t.transport}" if t.transport != "udp" else ""
        items = [
            ("Via", ep.via(t.transport, t.host)),
            ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={self.tag}"),
            ("To", f"<{aor}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", f"<sip:{t.username}@{ep.host_port_for(t.host)}{suffix}>"),
            ("Expires", str(t.expires)),
            *ep.common_headers(),
        ]
        if auth is not None:
            items.append(auth)
        uri = _trunk_uri(t)
        req = SipRequest(method="REGISTER", uri=uri, headers=Headers(items), body=b"")
        if not ep.request(req, ep.trunk_dest(t.host, t.port), t.transport, self):
            self.monitor.register_result(t.name, None, ep.loop.time())

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        status = resp.status
        if status < 200:
            return
        now = self.ep.loop.time()
        if status in (401, 407) and not self.auth_sent:
            proxy = status == 407
            challenge = pick_challenge(
                resp.headers.get_raw("Proxy-Authenticate" if proxy else "WWW-Authenticate")
            )
            value = (
                digest_authorization(
                    challenge, "REGISTER", req.uri, self.target.username, self.target.password
                )
                if challenge is not None
                else None
            )
            if value is not None:
                self.auth_sent = True
                self.send(("Proxy-Authorization" if proxy else "Authorization", value))
                return
        self.auth_sent = False
        if 200 <= status < 300:
            self.monitor.register_result(self.target.name, self._granted(resp), now)
        else:
            log.warning("trunk %s: REGISTER answered %d", self.target.name, status)
            self.monitor.register_result(self.target.name, None, now)

    def on_timeout(self, req: SipRequest) -> None:
        self.auth_sent = False
        log.warning("trunk %s: REGISTER timed out", self.target.name)
        self.monitor.register_result(self.target.name, None, self.ep.loop.time())

    def _granted(self, resp: SipResponse) -> int:
        """The expiry the registrar granted our contact (Contact param, then Expires)."""
        ours = f"{self.target.username}@{self.ep.host_port_for(self.target.host)}".lower()
        for value in resp.headers.get_all("Contact"):
            try:
                contact = parse_name_addr(value)
            except ParseError:
                continue
            expires = contact.params.get("expires")
            if ours in str(contact.uri).lower() and expires and expires.isdigit():
                return int(expires)
        header = (resp.headers.get("Expires") or "").strip()
        return int(header) if header.isdigit() else self.target.expires


class SipEndpoint:
    """Dispatches SIP traffic between the transaction layer, registrar and core."""

    def __init__(
        self,
        *,
        engine: CallEngine,
        registrar: Registrar,
        authenticator: DigestAuthenticator,
        credentials: CredentialLookup,
        caller_of: Callable[[str], Caller | None],
        txl: TransactionLayer,
        send: Callable[[SipMessage, Addr, str, Callable[[], None] | None], None],
        clock: Clock,
        host: str,
        port: int,
        on_auth_failure: Callable[[Addr, str], None] | None = None,
        auth_gate: AuthGate | None = None,
        trunk_for: Callable[[Addr], TrunkPeer | None] | None = None,
        trunks: TrunkMonitor | None = None,
        hosts: dict[int, str] | None = None,
        resolve_cached: Callable[[str], str | None] | None = None,
        prefetch: Callable[[str], None] | None = None,
        bridge: MediaBridge | None = None,
    ) -> None:
        self.engine = engine
        self.registrar = registrar
        self.auth = authenticator
        self.creds = credentials
        self.caller_of = caller_of
        self.txl = txl
        self._send = send
        self.clock = clock
        self.host = host
        self.port = port
        self.host_port = host_port(host, port)
        # The host peers of each IP version are given (RFC 5118: an IPv6 peer
        # must not get an IPv4 Via or Contact, nor the reverse).
        self.hosts: dict[int, str] = dict(hosts or {})
        self.resolve_cached = resolve_cached
        self.prefetch = prefetch
        self.bridge = bridge
        self.on_auth_failure = on_auth_failure
        self.auth_gate = auth_gate
        self.trunk_for = trunk_for
        self.trunks = trunks
        self._registrations: dict[str, _TrunkRegistration] = {}
        self.loop = asyncio.get_running_loop()
        self.t1 = txl.timers.t1
        self.t2 = txl.timers.t2
        self.dialogs: dict[DialogId, SipLeg] = {}
        self.inbound_by_key: dict[TxnKey, InboundLeg] = {}
        self.client_owner: dict[TxnKey, tuple[ClientOwner, SipRequest]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.counters: dict[str, int] = {
            "dropped_responses": 0,
            "rejected_requests": 0,
            "blocked_requests": 0,  # source blocked after failed logins: no answer
            "held_requests": 0,  # source throttled: processed after a delay
            "throttled_dropped": 0,  # source throttled, no hold slot: no answer
            "stateless_answers": 0,  # challenges and refusals sent without a transaction
        }
        engine.register_factory("sip", SipLegFactory(self))

    # --- addressing ---------------------------------------------------------
    def host_for(self, dest: str = "") -> str:
        """Our host as a peer at ``dest`` (an address or a name) must see it."""
        if not self.hosts or not dest:
            return self.host
        version = _version(dest)
        if version is None and self.resolve_cached is not None:
            resolved = self.resolve_cached(dest)
            version = _version(resolved) if resolved else None
        return self.hosts.get(version or 0) or self.host

    def host_port_for(self, dest: str = "") -> str:
        host = self.host_for(dest)
        return self.host_port if host == self.host else host_port(host, self.port)

    def trunk_dest(self, host: str, port: int) -> Addr:
        """Where a trunk's requests go: its address, or its name's resolved one."""
        if _version(host) is None and self.resolve_cached is not None:
            resolved = self.resolve_cached(host)
            if resolved:
                return resolved, port
        return host, port

    def via(self, transport: str, dest: str = "") -> str:
        hp = self.host_port_for(dest)
        return f"SIP/2.0/{transport.upper()} {hp};branch={new_branch()};rport"

    def contact(self, transport: str, dest: str = "") -> str:
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:offhook@{self.host_port_for(dest)}{suffix}>"

    @staticmethod
    def common_headers() -> list[tuple[str, str]]:
        return [("User-Agent", USER_AGENT)]

    @staticmethod
    def binding_destination(binding: Binding) -> tuple[Addr, str]:
        """Where requests to a registered contact go.

        Over TCP: the connection the registration came on (the phone may
        not accept connections). Over UDP: the Contact, unless its host
        differs from the address the REGISTER really came from, which means
        a NAT sits between (then the source flow, as nat_uac_test does);
        a third party registering a contact on the same host keeps it.
        """
        transport = binding.transport or "udp"
        try:
            uri = parse_uri(binding.contact)
            contact: Addr | None = (normalize_host(uri.host_addr), uri.port or 5060)
            transport = (uri.param("transport") or transport).lower()
        except ParseError:
            contact = None
        source = binding.source if binding.source[0] else None
        if binding.transport == "tcp" and source is not None:
            return source, "tcp"
        if contact is not None and (source is None or contact[0] == source[0]):
            return contact, transport
        if source is not None:
            return source, binding.transport or "udp"
        raise ParseError("binding without a reachable address")

    # --- transport entry point ----------------------------------------------
    def on_message(self, msg: SipMessage, addr: Addr, transport: str) -> None:
        now = self.loop.time()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("<- %s:%s/%s\n%s", addr[0], addr[1], transport, _head(msg))
        if isinstance(msg, SipRequest):
            gate = self.auth_gate
            # Out-of-dialog requests (what may authenticate) pass the failed-login
            # guard first; ACK, CANCEL and in-dialog requests never authenticate.
            if gate is not None and msg.method not in ("ACK", "CANCEL") and not msg.to_tag:
                delay = gate.admit(addr)
                if delay is None:
                    self.counters["blocked_requests"] += 1
                    return
                if delay > 0:
                    if gate.hold(addr):
                        self.counters["held_requests"] += 1
                        self.loop.call_later(delay, self._release_held, msg, addr, transport)
                    else:
                        self.counters["throttled_dropped"] += 1
                    return
            self._receive_request(msg, addr, transport, now)
            return
        assert isinstance(msg, SipResponse)
        if check_response(msg) is not None:
            self.counters["dropped_responses"] += 1
            return
        self.process(self.txl.receive_response(msg, addr, transport, now))
        self.flush()

    def _release_held(self, msg: SipRequest, addr: Addr, transport: str) -> None:
        """A throttled source's request, after its delay: processed as if it just came."""
        if self.auth_gate is not None:
            self.auth_gate.release(addr)
        self._receive_request(msg, addr, transport, self.loop.time())

    def _receive_request(self, msg: SipRequest, addr: Addr, transport: str, now: float) -> None:
        if msg.method != "ACK":
            verdict = check_request(msg)
            if verdict is not None:
                status, reason, extra = verdict
                resp = make_response(msg, status, reason)
                for name, value in extra.items():
                    resp.headers.add(name, value)
                self.counters["rejected_requests"] += 1
                self.txl.send_stateless(resp, addr, transport)
                self.flush()
                return
            if not msg.to_tag and self._answered_statelessly(msg, addr, transport):
                return
        self.process(self.txl.receive_request(msg, addr, transport, now))
        self.flush()

    def _answered_statelessly(self, req: SipRequest, addr: Addr, transport: str) -> bool:
        """A new out-of-dialog request answered without a transaction, or False.

        OPTIONS and what we refuse outright (out-of-dialog BYE/INFO, SUBSCRIBE,
        unknown methods) never need one: the answer is final and the same for
        a retransmission (``derived_tag``). A new REGISTER or INVITE that is
        refused or not authenticated is answered the same way
        (``_challenged_statelessly``).
        """
        if req.method in ("REGISTER", "INVITE"):
            return self._challenged_statelessly(req, addr, transport)
        if req.method in ("ACK", "CANCEL"):
            return False
        self.counters["stateless_answers"] += 1
        self.txl.send_stateless(out_of_dialog_answer(req), addr, transport)
        self.flush()
        return True

    def _challenged_statelessly(self, req: SipRequest, addr: Addr, transport: str) -> bool:
        """A new REGISTER or INVITE that is refused or not authenticated: answer, keep nothing.

        Its 401/407 (or registrar refusal) is sent without a server transaction,
        so a flood of unauthenticated requests or failed logins leaves no state
        (the nonce is stateless too); a retransmission is simply answered again.
        RFC 3261 §8.2.7: a stateless UAS, whose most common use is "to respond
        to unauthenticated requests with challenges". A request whose credentials
        check out, or that matches a transaction already, goes on to the
        transaction layer and is checked again there (recording its nonce count).
        """
        if req.method == "INVITE" and self.trunk_for is not None and self.trunk_for(addr):
            return False  # a trunk's call: no digest (see on_trunk_invite)
        try:
            if self.txl.get(server_key(req)) is not None:
                return False  # a retransmission: the transaction answers it
        except ParseError:
            return False
        if req.method == "REGISTER":
            answer = self.registrar.screen(req, addr, self.clock.wall())
        else:
            answer, _ = self._digest_invite(req, addr, record=False)
        if answer is None:
            return False
        self.counters["stateless_answers"] += 1
        self.txl.send_stateless(answer, addr, transport)
        self.flush()
        return True

    def process(self, events: list[Event]) -> None:
        for ev in events:
            try:
                self._dispatch(ev)
            except Exception:
                log.exception("error handling %s", type(ev).__name__)

    def _dispatch(self, ev: Event) -> None:
        if isinstance(ev, RequestReceived):
            self.on_request(ev.key, ev.request, ev.addr, ev.transport)
        elif isinstance(ev, ResponseReceived):
            owner = self.client_owner.get(ev.key)
            if owner is not None:
                leg, req = owner
                leg.on_response(req, ev.response)
        elif isinstance(ev, AckReceived):
            acked = self.dialogs.get(self._dialog_id_of(ev.request))
            if acked is not None:
                acked.on_ack(ev.request)
        elif isinstance(ev, Stray2xx):
            resp = ev.response
            answered = self.dialogs.get((resp.call_id, resp.from_tag or "", resp.to_tag or ""))
            if answered is not None:
                answered.on_stray_2xx(resp)
        elif isinstance(ev, TransactionTimeout | TransportError):
            owner = self.client_owner.pop(ev.key, None)
            if owner is not None:
                owner[0].on_timeout(owner[1])
            else:
                inbound = self.inbound_by_key.get(ev.key)
                if inbound is not None and not inbound.answered and isinstance(ev, TransportError):
                    inbound.finish()
                    inbound._report(lambda leg: self.engine.on_release(leg, TEMPORARY_FAILURE))
        elif isinstance(ev, TransactionTerminated):
            self.client_owner.pop(ev.key, None)

    @staticmethod
    def _dialog_id_of(req: SipRequest) -> DialogId:
        return (req.call_id, req.to_tag or "", req.from_tag or "")

    # --- requests -----------------------------------------------------------
    def on_request(self, key: TxnKey, req: SipRequest, addr: Addr, transport: str) -> None:
        method = req.method
        if req.to_tag:
            leg = self.dialogs.get(self._dialog_id_of(req))
            if leg is None or leg.dialog is None:
                self.respond(key, make_response(req, 481))
                return
            leg.on_request(key, req)
            return
        if method == "REGISTER":
            resp = self.registrar.handle(req, addr, transport, self.loop.time(), self.clock.wall())
            self.respond(key, resp)
        elif method == "INVITE":
            self.on_invite(key, req, addr, transport)
        elif method == "CANCEL":
            self.on_cancel(key, req)
        else:
            self.respond(key, out_of_dialog_answer(req))

    def on_invite(self, key: TxnKey, req: SipRequest, addr: Addr, transport: str) -> None:
        trunk = self.trunk_for(addr) if self.trunk_for is not None else None
        if trunk is not None:
            self.on_trunk_invite(key, req, addr, transport, trunk)
            return
        challenge, device = self._digest_invite(req, addr)
        if challenge is not None:
            self.respond(key, challenge)
            return
        try:
            target = parse_uri(req.uri)
            called = target.user_unescaped or ""
        except ParseError:
            self.respond(key, make_response(req, 400, to_tag=new_tag()))
            return
        ok, media = self._initial_offer(key, req)
        if not ok:
            return
        caller = self.caller_of(device)
        if caller is None:  # the device vanished from the plan since authenticating
            self.respond(key, make_response(req, 403, to_tag=new_tag()))
            return
        name = caller.name
        if not name:
            try:
                display = parse_name_addr(req.headers.get("From") or "").display
            except ParseError:
                display = None
            name = display or ""
        inbound = InboundLeg(self, key, req, addr, transport)
        self.inbound_by_key[key] = inbound
        leg = self.engine.inbound_leg(inbound, device)
        inbound.leg = leg
        setup = Setup(
            calling=PartyInfo(number=caller.number, name=name, device=device),
            called=called,
            media=media,
            original_called=called,
        )
        self.engine.setup(leg, setup)

    def _digest_invite(
        self, req: SipRequest, addr: Addr, *, record: bool = True
    ) -> tuple[SipResponse | None, str]:
        """RFC 3261 §22.3: (the 407 to answer, "") or (None, the authenticated device).

        A failed check is counted (``on_auth_failure``); unknown users and
        wrong passwords get the same 403 (unusable credentials: a new 407).
        """
        wall = self.clock.wall()
        result = self.auth.verify(req, self.creds, wall, proxy=True, record=record)
        if result.status is AuthStatus.OK and result.credentials is not None:
            return None, result.credentials.device
        failed = result.status in (AuthStatus.FAILED, AuthStatus.REJECTED)
        if failed and self.on_auth_failure is not None:
            self.on_auth_failure(addr, result.username)
        if result.status is AuthStatus.REJECTED:
            return make_response(req, 403, to_tag=derived_tag(req)), ""
        resp = make_response(req, 407, to_tag=derived_tag(req))
        stale = result.status is AuthStatus.STALE
        for name, value in self.auth.challenge(wall, stale=stale, proxy=True):
            resp.headers.add(name, value)
        return resp, ""

    def on_trunk_invite(
        self, key: TxnKey, req: SipRequest, addr: Addr, transport: str, trunk: TrunkPeer
    ) -> None:
        """A call from a trunk's address: no digest, routed with the trunk's CSS."""
        if trunk.max_calls > 0 and self.engine.device_calls(trunk.name) >= trunk.max_calls:
            self.respond(key, make_response(req, 503, "Trunk Busy", to_tag=new_tag()))
            return
        try:
            called = parse_uri(req.uri).user_unescaped or ""
            caller = parse_name_addr(req.headers.get("From") or "")
        except ParseError:
            self.respond(key, make_response(req, 400, to_tag=new_tag()))
            return
        ok, media = self._initial_offer(key, req)
        if not ok:
            return
        inbound = InboundLeg(self, key, req, addr, transport)
        self.inbound_by_key[key] = inbound
        leg = self.engine.inbound_leg(inbound, trunk.name, css=trunk.css)
        inbound.leg = leg
        number = caller.uri.user_unescaped or ""
        setup = Setup(
            calling=PartyInfo(
                number=number,
                name=caller.display or "",
                device=trunk.name,
                presentation_allowed=number.lower() != "anonymous",
            ),
            called=called,
            media=media,
            original_called=called,
        )
        self.engine.setup(leg, setup)

    def _initial_offer(self, key: TxnKey, req: SipRequest) -> tuple[bool, MediaDescription | None]:
        """The offer in a new INVITE (None: delayed offer); answers 488/400 if unusable."""
        if not req.body:
            return True, None
        try:
            return True, sdp_to_media(req.body)
        except ParseError as exc:
            self.respond(key, make_response(req, exc.status_hint or 488, to_tag=new_tag()))
            return False, None

    def on_cancel(self, key: TxnKey, req: SipRequest) -> None:
        invite_txn = self.txl.find_invite_server_for_cancel(req)
        if invite_txn is None:
            self.respond(key, make_response(req, 481, to_tag=new_tag()))
            return
        # RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE
        self.respond(key, make_response(req, 200))
        inbound = self.inbound_by_key.get(invite_txn.key)
        if inbound is not None:
            inbound.on_cancel()

    # --- trunks ---------------------------------------------------------------
    def configure_trunks(self, targets: list[TrunkTarget]) -> None:
        """Adopt the plan's trunks (at start and after each plan change)."""
        if self.trunks is None:
            return
        self.trunks.configure(targets, self.loop.time())
        if self.prefetch is not None:
            for target in targets:
                if _version(target.host) is None:
                    self.prefetch(target.host)
        for name, reg in list(self._registrations.items()):
            if self.trunks.target(name) != reg.target:
                del self._registrations[name]
        self._trunk_work(self.loop.time())
        self.flush()

    def _trunk_work(self, now: float) -> None:
        monitor = self.trunks
        if monitor is None:
            return
        for target in monitor.due_pings(now):
            self._ping(monitor, target)
        for target in monitor.due_registrations(now):
            reg = self._registrations.get(target.name)
            if reg is None or reg.target != target:
                reg = self._registrations[target.name] = _TrunkRegistration(self, monitor, target)
            reg.send()

    def _ping(self, monitor: TrunkMonitor, target: TrunkTarget) -> None:
        """OPTIONS to the trunk through the transaction layer (RFC 3261 §11)."""
        uri = _trunk_uri(target)
        items = [
            ("Via", self.via(target.transport, target.host)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:offhook@{self.host_port_for(target.host)}>;tag={new_tag()}"),
            ("To", f"<{uri.split(';', 1)[0]}>"),
            ("Call-ID", new_call_id(self.host_for(target.host))),
            ("CSeq", "1 OPTIONS"),
            ("Accept", SDP),
            *self.common_headers(),
        ]
        req = SipRequest(method="OPTIONS", uri=uri, headers=Headers(items), body=b"")
        owner = _PingOwner(self, monitor, target.name)
        dest = self.trunk_dest(target.host, target.port)
        if not self.request(req, dest, target.transport, owner):
            monitor.ping_result(target.name, None, self.loop.time())

    # --- sending ------------------------------------------------------------
    def server_request(self, key: TxnKey) -> SipRequest | None:
        txn = self.txl.get(key)
        return None if txn is None else txn.request

    def respond(self, key: TxnKey, resp: SipResponse) -> None:
        try:
            events = self.txl.send_response(key, resp, self.loop.time())
        except TransactionError as exc:
            log.debug("response %s not sent: %s", resp.status, exc)
            return
        self.process(events)
        self.flush()

    def request(self, req: SipRequest, dest: Addr, transport: str, owner: ClientOwner) -> bool:
        """Start a client transaction whose outcome goes to ``owner``; False if refused."""
        try:
            txn = self.txl.send_request(req, dest, transport, self.loop.time())
        except TransactionError as exc:
            log.warning("request %s not sent: %s", req.method, exc)
            return False
        self.client_owner[txn.key] = (owner, req)
        self.flush()
        return True

    def send_ack(self, dialog: Dialog, dest: Addr, transport: str, body: bytes = b"") -> None:
        ack = dialog.create_request(
            "ACK",
            via=self.via(transport, dest[0]),
            body=body,
            content_type=SDP if body else None,
            headers=self.common_headers(),
        )
        self.txl.send_stateless(ack, dest, transport)
        self.flush()

    def resend(self, msg: SipMessage, dest: Addr, transport: str) -> None:
        self.txl.send_stateless(msg, dest, transport)
        self.flush()

    def forget_dialog(self, dialog_id: DialogId) -> None:
        # keep the dialog a little while so retransmitted BYEs/ACKs still match
        self.loop.call_later(32.0, self.dialogs.pop, dialog_id, None)

    def flush(self) -> None:
        failed: list[TxnKey] = []
        for out in self.txl.datagrams_to_send():
            msg = out.message
            dest = out.addr
            if isinstance(msg, SipResponse) and out.transport == "udp":
                dest = response_destination(msg, out.addr)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("-> %s:%s/%s\n%s", dest[0], dest[1], out.transport, _head(msg))
            key = out.key
            on_error = (
                partial(self._send_failed, key) if key is not None and key[0] == "c" else None
            )
            try:
                self._send(msg, dest, out.transport, on_error)
            except Exception:
                log.exception("send to %s:%s failed", dest[0], dest[1])
                if out.key is not None and out.key[0] == "c":
                    failed.append(out.key)  # RFC 3261 §17.1.4: tell the transaction
        for key in failed:
            self.process(self.txl.transport_error(key, self.loop.time()))
        if failed:
            self.flush()
            return
        self._rearm()

    def _send_failed(self, key: TxnKey) -> None:
        """A queued send (a TCP connect) failed later: RFC 3261 §17.1.4."""
        self.process(self.txl.transport_error(key, self.loop.time()))
        self.flush()

    # --- timers -------------------------------------------------------------
    def _rearm(self) -> None:
        trunk_timer = self.trunks.next_timer() if self.trunks is not None else None
        deadlines = [
            d
            for d in (self.txl.next_timer(), self.engine.next_timer(), trunk_timer)
            if d is not None
        ]
        if not deadlines:
            return
        when = min(deadlines)
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.loop.time()
        try:
            self.process(self.txl.handle_timers(now))
            self.engine.handle_timer(now)
            self._trunk_work(now)
        except Exception:
            log.exception("timer handling failed")
        self.flush()
