"""A SIP leg's REFER: the device asks offhook to transfer its call (RFC 3515, 3891).

Theory of operation. A REFER in a confirmed dialog, with exactly one
``Refer-To`` (``refer.parse_refer_to``), is accepted with 202 and starts the
implicit ``refer`` subscription; the first NOTIFY (``100 Trying``) goes at
once. Then:

* blind transfer: the Refer-To's user part is the number the party at the
  other end of this call is transferred to: ``engine.transfer(leg, number)``,
  routed with the transferring device's calling search space;
* attended transfer: the Refer-To carries ``Replaces`` naming the device's
  other call with offhook (the consultation call). The dialog is looked up
  both ways round (``replaces.dialog_ids``) and must belong to the same
  device and be confirmed: ``engine.transfer_to(leg, other)``. Otherwise the
  subscription ends at once with ``481``.

Core reports progress through ``transfer_progress`` (the leg hands it to
``progress``), each turned into a NOTIFY by ``refer.ReferSubscription``; a
failure's Q.850 cause becomes its SIP status (``causes.status_for_cause``).
When the leg is released while the subscription is active, the last NOTIFY
goes just before the BYE (``close``). A REFER outside a confirmed call is
refused 403; a second REFER while a transfer is in progress 491; one with
``Refer-Sub: false`` (RFC 4488) gets no NOTIFY.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.sip.causes import NORMAL_CLEARING, status_for_cause
from offhook.sip.dialog import DialogState
from offhook.sip.message import REASONS, SipRequest, make_response
from offhook.sip.refer import SIPFRAG, ReferSubscription, parse_refer_to
from offhook.sip.replaces import Replaces, dialog_ids
from offhook.sip.transaction import TxnKey

if TYPE_CHECKING:
    from offhook.sip.legs import SipLeg

log = logging.getLogger("offhook.sip")


class ReferHandler:
    """The REFERs one leg received, and the subscription of the current one."""

    __slots__ = ("count", "leg", "sub")

    def __init__(self, leg: SipLeg) -> None:
        self.leg = leg
        self.sub: ReferSubscription | None = None
        self.count = 0  # REFERs accepted in this dialog (the second one on gets an id)

    def on_refer(self, key: TxnKey, req: SipRequest) -> None:
        leg = self.leg
        ep = leg.ep
        core = leg.leg
        dialog = leg.dialog
        if core is None or leg.done or dialog is None or dialog.state is not DialogState.CONFIRMED:
            ep.respond(key, make_response(req, 403, "Forbidden (no call to transfer)"))
            return
        if self.sub is not None and not self.sub.terminated:
            ep.respond(key, make_response(req, 491))  # one transfer at a time
            return
        values = req.headers.get_raw("Refer-To")
        if len(values) != 1:
            ep.respond(key, make_response(req, 400, "Bad Request (one Refer-To)"))
            return
        try:
            target = parse_refer_to(values[0])
        except ParseError as exc:
            ep.respond(key, make_response(req, 400, f"Bad Request ({exc.reason})"))
            return
        if target.replaces is None and not target.number:
            ep.respond(key, make_response(req, 400, "Bad Request (Refer-To names no number)"))
            return
        silent = (req.headers.get("Refer-Sub") or "").strip().lower() == "false"
        resp = make_response(req, 202)
        resp.headers.add("Contact", leg.contact())
        if silent:
            resp.headers.add("Refer-Sub", "false")
        ep.respond(key, resp)
        self.count += 1
        event_id = str(req.cseq[0]) if self.count > 1 else None
        self.sub = ReferSubscription(event_id, silent=silent)
        self._notify("trying")
        engine = ep.engine
        if target.replaces is None:
            log.info("REFER on %s: blind transfer to %s", dialog.call_id, target.number)
            engine.transfer(core, target.number)
            return
        other = self._consultation(target.replaces)
        if other is None or other.leg is None:
            log.info("REFER on %s: Replaces names no call of this device", dialog.call_id)
            self._notify("failed", (481, REASONS[481]))
            return
        log.info("REFER on %s: attended transfer with %s", dialog.call_id, target.replaces.call_id)
        engine.transfer_to(core, other.leg)

    def _consultation(self, replaces: Replaces) -> SipLeg | None:
        """The device's other confirmed call that ``replaces`` names, or None."""
        leg = self.leg
        for dialog_id in dialog_ids(replaces):
            other = leg.ep.dialogs.get(dialog_id)
            if other is None:
                continue
            if (
                other is leg
                or other.done
                or other.leg is None
                or leg.leg is None
                or other.leg.device != leg.leg.device
                or other.dialog is None
                or other.dialog.state is not DialogState.CONFIRMED
            ):
                return None
            return other
        return None

    def progress(self, state: str, cause: int | None) -> None:
        """Core's ``transfer_progress`` (a ``TransferState`` value and, on failure, a cause)."""
        failure = None
        if state == "failed":
            status = status_for_cause(cause if cause is not None else 41)
            failure = (status, REASONS.get(status, "Failed"))
        self._notify(state, failure)

    def close(self, cause: int) -> None:
        """The leg is released: end an active subscription before the BYE goes."""
        sub = self.sub
        if sub is None or sub.terminated:
            return
        if cause == NORMAL_CLEARING:
            self._notify("done")
        else:
            status = status_for_cause(cause)
            self._notify("failed", (status, REASONS.get(status, "Failed")))

    def gone(self) -> None:
        """A NOTIFY was refused or timed out: the subscriber is gone, send no more."""
        if self.sub is not None:
            self.sub.terminated = True

    def _notify(self, state: str, failure: tuple[int, str] | None = None) -> None:
        sub = self.sub
        if sub is None:
            return
        notify = sub.notify(state, failure)
        if notify is None or sub.silent or self.leg.dialog is None or self.leg.done:
            return
        self.leg.send_in_dialog(
            "NOTIFY",
            body=notify.body(),
            content_type=SIPFRAG,
            contact=True,
            headers=notify.headers(sub.event_id),
        )
