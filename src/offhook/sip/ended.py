r"""Dialogs that ended: what a late message of a finished SIP dialog still needs.

Theory of operation. A SIP leg that finishes (BYE sent or received, a final
answer, CANCEL, a timeout) leaves the endpoint's table of live dialogs at
once, and with it goes everything it held: its core leg, its call, the
messages and SDP. For 64*T1 (32 s) the peer may still send something in
that dialog; ``EndedDialog`` keeps only what answering it takes:

* a retransmitted 2xx to our INVITE (our ACK was lost, RFC 3261 §13.2.2.4)
  gets the same ACK again (``ack``, with its SDP if it carried the answer);
  a 2xx to a re-INVITE gets an ACK built from the dialog, as before;
* a 2xx from another fork of our INVITE (``invite``, kept only while its
  client transaction is in Accepted, RFC 6026) is ACKed and that dialog
  hung up (§13.2.2.4);
* an ACK (for our 2xx) is absorbed;
* a BYE that crossed ours is answered 200 (our side of the dialog lasted
  until its own BYE was answered, §15.1.1); any other request gets 481
  (§12.2.2).

Retransmitted requests of a transaction are absorbed by the transaction
layer itself. The record holds no leg, call or handler: the leg's state
dies by reference counting as soon as nothing else needs it.
``EndedDialogs`` is the table, by dialog id, with the records in the order
they ended (they all live ``linger`` seconds, so the oldest is first):
``expire(now)`` drops the stale ones, ``next_expiry()`` says when. Sans-IO:
time arrives as ``now``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING

from offhook.sip.dialog import Dialog, DialogError, DialogId
from offhook.sip.message import SipRequest, SipResponse, make_response

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint
    from offhook.sip.legs import SipLeg

__all__ = ["LINGER", "EndedDialog", "EndedDialogs"]

Addr = tuple[str, int]
LINGER = 32.0  # 64*T1: how long a peer retransmits its 2xx or its requests


class EndedDialog:
    """A finished dialog: its ids, where its peer is, the ACK we sent last.

    It is also the owner of the leg's INVITE client transaction while that
    stays in Accepted (``on_response``: 2xx retransmissions and other forks).
    """

    __slots__ = ("ack", "dest", "dialog", "ep", "expires", "invite", "transport")

    def __init__(
        self,
        ep: SipEndpoint,
        dialog: Dialog | None,
        dest: Addr,
        transport: str,
        *,
        ack: SipRequest | None = None,
        invite: SipRequest | None = None,
        expires: float = 0.0,
    ) -> None:
        self.ep = ep
        self.dialog = dialog
        self.dest = dest
        self.transport = transport
        self.ack = ack
        self.invite = invite
        self.expires = expires

    def __repr__(self) -> str:
        ident = self.dialog.id if self.dialog is not None else None
        return f"<EndedDialog {ident!r}>"

    # --- in-dialog requests ---------------------------------------------------------
    def answer(self, req: SipRequest) -> SipResponse | None:
        """The answer to a request in this ended dialog (None for an ACK: absorbed)."""
        if req.method == "ACK":
            return None
        return make_response(req, 200 if req.method == "BYE" else 481)

    # --- responses: a 2xx our ACK did not stop ---------------------------------------
    def on_2xx(self, resp: SipResponse) -> None:
        """A 2xx to an INVITE of this dialog (or of another fork of our INVITE)."""
        ep = self.ep
        dialog = self.dialog
        if dialog is not None and (resp.to_tag or "") == dialog.remote_tag:
            ack = self.ack
            if ack is not None and ack.cseq[0] == resp.cseq[0]:
                ep.resend(ack, self.dest, self.transport)  # the same ACK again
                return
            with contextlib.suppress(DialogError):  # no INVITE in it: nothing to ACK
                ep.send_ack(dialog, self.dest, self.transport)
            return
        if self.invite is None or resp.cseq[0] != self.invite.cseq[0]:
            return
        # Another fork answered our INVITE after the leg ended: ACK it, hang it up.
        try:
            fork = Dialog.from_uac(self.invite, resp)
        except DialogError:
            return
        ep.send_ack(fork, self.dest, self.transport)
        bye = fork.create_request(
            "BYE", via=ep.via(self.transport, self.dest[0]), headers=ep.common_headers()
        )
        ep.request(bye, self.dest, self.transport, self)

    # --- ClientOwner: the INVITE in Accepted, a BYE to another fork ------------------
    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if req.method == "INVITE" and 200 <= resp.status < 300:
            self.on_2xx(resp)

    def on_timeout(self, req: SipRequest) -> None:
        """Nothing waits for it any more."""


class EndedDialogs:
    """Ended dialogs by id, each kept ``linger`` seconds (sans-IO: ``now`` is given),
    and the legs that ended since the endpoint last let go of them (``retired``)."""

    __slots__ = ("_by_id", "_order", "linger", "retired")

    def __init__(self, linger: float = LINGER) -> None:
        self.linger = linger
        self._by_id: dict[DialogId, EndedDialog] = {}
        self._order: deque[tuple[float, DialogId, EndedDialog]] = deque()
        self.retired: list[tuple[SipLeg, EndedDialog]] = []

    # --- legs that ended ----------------------------------------------------------------
    def retire(self, ep: SipEndpoint, leg: SipLeg, now: float) -> None:
        """``leg`` finished: its dialog leaves the live table for a record of what its
        late messages need; the leg is let go of once the message or timer being
        handled is done (``reap``: until then its own code may still run)."""
        if leg.retired:
            return
        leg.retired = True
        self.expire(now)
        dialog = leg.dialog
        record = EndedDialog(
            ep, dialog, leg.dest, leg.transport, ack=leg.last_ack, invite=leg.client_invite()
        )
        if dialog is not None:
            if ep.dialogs.get(dialog.id) is leg:
                del ep.dialogs[dialog.id]
            self.add(dialog.id, record, now)
        self.retired.append((leg, record))

    def reap(self, ep: SipEndpoint) -> None:
        """Let go of the legs retired meanwhile: their INVITE in Accepted answers to
        their record (a 2xx retransmission is ACKed again), what else they sent is no
        longer awaited, and their reference cycles are broken (``SipLeg.unlink``)."""
        retired, self.retired = self.retired, []
        owners = ep.client_owner
        for leg, record in retired:
            invite, record.invite = record.invite, None  # kept only while it is answered
            for key in leg.client_keys:
                owner = owners.get(key)
                if owner is None or owner[0] is not leg:
                    continue
                if invite is not None and owner[1] is invite and ep.txl.get(key) is not None:
                    owners[key] = (record, invite)
                    record.invite = invite
                else:
                    del owners[key]
            leg.client_keys.clear()
            leg.unlink()

    # --- the table ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._by_id

    def get(self, dialog_id: DialogId) -> EndedDialog | None:
        return self._by_id.get(dialog_id)

    def add(self, dialog_id: DialogId, record: EndedDialog, now: float) -> None:
        """Keep ``record`` for ``linger`` seconds from ``now`` (replacing one of that id)."""
        record.expires = now + self.linger
        self._by_id[dialog_id] = record
        self._order.append((record.expires, dialog_id, record))

    def discard(self, dialog_id: DialogId) -> None:
        """A live dialog took the id again (it is no longer ended)."""
        self._by_id.pop(dialog_id, None)

    def expire(self, now: float) -> int:
        """Forget the records whose time is over; how many went."""
        order = self._order
        by_id = self._by_id
        gone = 0
        while order and order[0][0] <= now:
            _, dialog_id, record = order.popleft()
            if by_id.get(dialog_id) is record:
                del by_id[dialog_id]
                gone += 1
        return gone

    def next_expiry(self) -> float | None:
        return self._order[0][0] if self._order else None
