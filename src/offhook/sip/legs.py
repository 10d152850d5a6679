r"""SIP call legs: one SIP dialog on each side of the B2BUA, as core ``LegDriver``\ s.

Theory of operation. ``SipLeg`` is what both sides share: the dialog, the
SDP each leg writes (``sdpmap``, one origin per leg, RFC 3264 §8), a Via and
Contact of the peer's own IP family (RFC 5118), streams of the other family
sent through the node's media bridge, and the in-dialog requests a device
sends, dispatched by method:

* BYE clears the leg; INFO with a DTMF body (``dtmf_info``) reports a digit,
  any other INFO is answered 200; digits core relays go out as INFO, one
  outstanding at a time;
* re-INVITE and UPDATE are mid-call offers (``offers``) and session
  refreshes (``session_refresh``, RFC 4028);
* REFER is a transfer (``refer_leg``, RFC 3515 and 3891);
* PRACK acknowledges a reliable provisional (RFC 3262): only the caller's
  side sends those (``inbound_leg``), so here it finds nothing (481).

The two sides are ``inbound_leg.InboundLeg`` (the caller's: offhook is the
UAS of its INVITE) and ``outbound_leg.OutboundLeg`` (a called device's:
offhook is the UAC, one per fork). A leg holds no socket and no timer
handle: it acts through its ``SipEndpoint`` (transactions, dialogs, the
transport) and asks it for named timers (``set_timer``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from offhook.common.addr import ip_version
from offhook.common.errors import ParseError
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription, MediaStream
from offhook.core.ports import LegDriver
from offhook.sip.causes import NORMAL_CLEARING, cause_for_status
from offhook.sip.dialog import Dialog, DialogState
from offhook.sip.dtmf_info import DTMF_RELAY, DigitQueue, parse_info_digit, relay_body
from offhook.sip.extensions import ALLOW, SUPPORTED
from offhook.sip.message import SipMessage, SipRequest, SipResponse, make_response
from offhook.sip.node_ring import NODE
from offhook.sip.offers import MidCallOffers
from offhook.sip.refer_leg import ReferHandler
from offhook.sip.sdpmap import SdpWriter
from offhook.sip.session_refresh import SessionRefresh
from offhook.sip.transaction import TxnKey

if TYPE_CHECKING:
    from offhook.core.events import TransferState
    from offhook.sip.endpoint import SipEndpoint

log = logging.getLogger("offhook.sip")

MAX_DISPLAY = 200  # characters of a display text sent as a MESSAGE

Addr = tuple[str, int]
USER_AGENT = "offhook"
SDP = "application/sdp"
__all__ = ["ALLOW", "SDP", "USER_AGENT", "Addr", "SipLeg", "message_head", "reason_cause"]


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
        self.last_sdp: bytes = b""
        self.peer_methods: frozenset[str] | None = None  # the peer's Allow, when it sent one
        self.offers = MidCallOffers(self)
        self.session = SessionRefresh(self)
        self.refer = ReferHandler(self)
        self.digits = DigitQueue()
        self._timers: set[str] = set()
        self.client_keys: set[TxnKey] = set()  # our client transactions still running
        self.last_ack: SipRequest | None = None  # the ACK sent for our INVITE's 2xx
        self.retired = False  # handed to the endpoint's ended dialogs (``finish``)

    # --- helpers ------------------------------------------------------------
    def contact(self) -> str:
        return self.ep.contact(self.transport, self.dest[0])

    def via(self) -> str:
        return self.ep.via(self.transport, self.dest[0])

    def body_for(self, media: MediaDescription | None) -> bytes:
        if media is None:
            return b""
        if self.ep.bridge is not None and self.transport != NODE:
            media = self._bridged(media)  # a node leg's far end bridges for its device
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

    def set_timer(self, name: str, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` in ``delay`` seconds (replacing this leg's timer ``name``).

        Keyed by the leg's ``id``: a cancelled timer's heap entry must not keep the
        leg alive (the armed ones do, through ``action``, and ``finish`` cancels all)."""
        self._timers.add(name)
        self.ep.set_timer((id(self), name), delay, action)

    def cancel_timer(self, name: str) -> None:
        self._timers.discard(name)
        self.ep.cancel_timer((id(self), name))

    def finish(self) -> None:
        """Forget this leg's SIP state (after BYE/final response).

        The endpoint keeps a small record of the dialog for late messages
        (``ended.EndedDialog``) and, once the message or timer being handled
        is done, lets go of the leg (``unlink``).
        """
        self.done = True
        for name in list(self._timers):
            self.cancel_timer(name)
        self.digits.clear()
        if self.ep.bridge is not None:
            self.ep.bridge.release(*self._session)
        if self.dialog is not None:
            self.dialog.state = DialogState.TERMINATED
        self.ep.retire(self)

    def client_invite(self) -> SipRequest | None:
        """Our INVITE that created this leg's dialog (an outbound leg's), if any."""
        return None

    def unlink(self) -> None:
        """Break this retired leg's reference cycles (the endpoint calls it once nothing
        will call the leg again: its dialog, transactions and timers are gone and the
        core leg is released), so reference counting frees it, its handlers and,
        with call control's part (``CallEngine``), its call, without the cyclic
        garbage collector."""
        leg = self.leg
        if leg is not None and leg.driver is self:
            leg.driver = None
        self.leg = None
        del self.offers, self.session, self.refer  # they point back at this leg

    def send_ack(self, body: bytes = b"") -> None:
        """ACK the 2xx to our INVITE in this leg's dialog (kept for its retransmissions)."""
        if self.dialog is not None:
            self.last_ack = self.ep.send_ack(self.dialog, self.dest, self.transport, body)

    def resend_ack(self) -> None:
        """A retransmitted 2xx to our INVITE: the same ACK again (RFC 3261 §13.2.2.4)."""
        if self.last_ack is not None:
            self.ep.resend(self.last_ack, self.dest, self.transport)
        else:
            self.send_ack()

    def send_in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        contact: bool = False,
    ) -> SipRequest | None:
        """Send a request in this leg's dialog through a client transaction."""
        if self.dialog is None:
            return None
        req = self.dialog.create_request(
            method,
            via=self.via(),
            contact=self.contact() if contact else None,
            body=body,
            content_type=content_type if body else None,
            headers=[*headers, *self.ep.common_headers()],
        )
        self.ep.request(req, self.dest, self.transport, self)
        return req

    def send_bye(self, cause: int) -> None:
        if self.dialog is None:
            return
        self.refer.close(cause)  # RFC 3515: the transfer's last NOTIFY goes before the BYE
        extra = [] if cause in (NORMAL_CLEARING, 31) else [("Reason", f"Q.850;cause={cause}")]
        self.send_in_dialog("BYE", headers=extra)
        self.finish()

    def dialog_gone(self, cause: int) -> None:
        """The dialog is dead (no answer, 481, session expired): BYE, and tell core."""
        if self.done:
            return
        self.send_bye(cause)
        self._report(lambda leg: self.ep.engine.on_release(leg, cause))

    def _report(self, action: Callable[[Leg], None]) -> None:
        # The engine itself ignores reports on legs it has released.
        if self.leg is not None:
            action(self.leg)

    # --- core -> this leg -----------------------------------------------------
    def update_media(self, offer: MediaDescription) -> None:
        self.offers.update_media(offer)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        self.offers.media_answer(answer, cause)

    def send_digits(self, digits: str) -> None:
        self.digits.push(digits)
        self._next_digit()

    def _next_digit(self) -> None:
        if self.done or self.dialog is None or self.dialog.state is not DialogState.CONFIRMED:
            return
        digit = self.digits.next_digit()
        if digit is not None:
            self.send_in_dialog("INFO", body=relay_body(digit), content_type=DTMF_RELAY)

    def transfer_progress(self, state: TransferState, cause: int | None) -> None:
        self.refer.progress(str(state), cause)

    def show_display(self, text: str) -> None:
        """Text for the phone's screen ("Call park at 7001"): an in-dialog MESSAGE
        (RFC 3428, text/plain), which SIP phones show; its answer is not awaited."""
        if self.done or self.dialog is None or self.dialog.state is not DialogState.CONFIRMED:
            return
        body = text[:MAX_DISPLAY].encode("utf-8", "replace")
        if body:
            self.send_in_dialog("MESSAGE", body=body, content_type="text/plain;charset=utf-8")

    # --- the device -> this leg: in-dialog requests -------------------------
    def on_request(self, key: TxnKey, req: SipRequest) -> None:
        assert self.dialog is not None
        if req.method != "ACK":
            refused = self.dialog.receive_request(req)
            if refused is not None:
                self.ep.respond(key, make_response(req, refused))
                return
        handler = _HANDLERS.get(req.method)
        if handler is not None:
            getattr(self, handler)(key, req)
            return
        resp = make_response(req, 405)
        resp.headers.add("Allow", ALLOW)
        self.ep.respond(key, resp)

    def on_bye(self, key: TxnKey, req: SipRequest) -> None:
        self.ep.respond(key, make_response(req, 200))
        self.finish()
        self._report(lambda leg: self.ep.engine.on_release(leg, reason_cause(req)))

    def on_info(self, key: TxnKey, req: SipRequest) -> None:
        try:
            digit = parse_info_digit(req.content_type(), req.body)
        except ParseError as exc:
            self.ep.respond(key, make_response(req, 400, f"Bad Request ({exc.reason})"))
            return
        self.ep.respond(key, make_response(req, 200))
        if digit is not None:
            self._report(lambda leg: self.ep.engine.on_digits(leg, digit))

    def on_prack(self, key: TxnKey, req: SipRequest) -> None:
        # RFC 3262 §3: a PRACK matching no unacknowledged reliable provisional.
        self.ep.respond(key, make_response(req, 481))

    def on_reinvite(self, key: TxnKey, req: SipRequest) -> None:
        self.offers.on_offer(key, req)

    def on_refer(self, key: TxnKey, req: SipRequest) -> None:
        self.refer.on_refer(key, req)

    def on_ack(self, req: SipRequest) -> None:
        """ACK for a 2xx we sent (initial INVITE or re-INVITE)."""

    # --- responses to our requests ------------------------------------------
    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if self.offers.on_response(req, resp) or resp.status < 200:
            return
        method = req.method
        if method == "INFO":
            self.digits.done()
            if resp.status in (408, 481):  # RFC 5057: the dialog is gone
                self.dialog_gone(cause_for_status(resp.status))
                return
            self._next_digit()
        elif method == "NOTIFY" and resp.status >= 300:
            self.refer.gone()

    def on_timeout(self, req: SipRequest) -> None:
        if self.offers.on_timeout(req):
            return
        if req.method == "BYE":
            self.finish()
        elif req.method == "INFO":
            self.digits.clear()
        elif req.method == "NOTIFY":
            self.refer.gone()

    def on_stray_2xx(self, resp: SipResponse) -> None:
        if self.dialog is not None:
            self.ep.send_ack(self.dialog, self.dest, self.transport)

    def supported_headers(self) -> list[tuple[str, str]]:
        return [("Allow", ALLOW), ("Supported", SUPPORTED)]


# In-dialog request methods -> the SipLeg method that handles them.
_HANDLERS = {
    "BYE": "on_bye",
    "INVITE": "on_reinvite",
    "UPDATE": "on_reinvite",
    "INFO": "on_info",
    "PRACK": "on_prack",
    "REFER": "on_refer",
}


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
