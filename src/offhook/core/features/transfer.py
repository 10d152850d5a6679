"""Transfer: blind, attended (consultation) and RFC 3891 Replaces.

Blind: the transferring device (X) names a number. A stand-in leg places a
new call to it on the transferee's (T's) behalf, routed with X's calling
search space, so a transfer reaches nothing X could not dial itself. X stays
in its call (T usually on hold, hearing music) until the target answers;
then T is moved into the new call in the stand-in's place, X's call ends
(cause 16) and T and the target exchange media afresh. If the target fails,
X is told and keeps T. If X hangs up first, T is moved at once and waits for
the target to answer.

Attended: X has a call with T and a consultation call with C. T is moved
into the consultation call in X's place; both of X's legs are released. If
C still rings, T waits for the answer.

Replaces: a new inbound leg takes the place of a connected leg; its offer
goes to the replaced leg's party, and the answer back to it.

CDRs link the calls: ``transferred_to`` on the call X left, ``transfer_of``
and ``transferred_by`` on the call T joined. Each transfer is published
(``CallTransferred``, ``by`` "device" or "cti", to X's device and then to
T's with ``role`` "transferee") once T is in the new call:
a blind one when the target answers (or X hangs up first), an attended one
at once.

======================  =================================  ==========================
event                   condition                          action
======================  =================================  ==========================
stand-in alerting       -                                  X told RINGING
stand-in answered       T still in X's call                move T, end X's call, join
stand-in released       transfer not done                  X told FAILED (cause)
X released              blind transfer under way           move T now
T released              blind transfer under way           end the target's call
consultation answered   T moved in while it rang           join T and the target
======================  =================================  ==========================
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from offhook.core.call import PendingOffer
from offhook.core.causes import Cause
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup, TransferState
from offhook.core.features import hold
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import LegEvent, LegState
from offhook.core.media import SENDRECV, MediaDescription
from offhook.core.ports import LegDriver
from offhook.core.records import CallTransferred

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg


def party_of(call: Call, leg: Leg) -> Leg | None:
    """The device ``leg`` talks to, or holds, in ``call`` (never a media endpoint)."""
    party = call.holds.get(leg.id) or call.other(leg)
    if party is None or party in call.resources or party.released:
        return None
    return party


def _publish(
    engine: CallEngine,
    origin: Call,
    x: Leg,
    t: Leg,
    kind: str,
    target: str,
    moved_to: Call,
    by: str = "device",
) -> None:
    """The transfer, once T is in ``moved_to``: to X's device, then to T's."""
    new_id = moved_to.id
    engine.publish(CallTransferred(origin.id, x.device, kind, target, new_id, by))
    if t.device:
        engine.publish(
            CallTransferred(origin.id, t.device, kind, target, new_id, by, role="transferee")
        )


def _progress(engine: CallEngine, leg: Leg, state: TransferState, cause: int | None = None) -> None:
    engine.drive(leg, lambda d: d.transfer_progress(state, cause))


def _party_info(call: Call, leg: Leg) -> PartyInfo:
    if leg is call.a_leg:
        return call.setup.calling
    return PartyInfo(number=call.setup.called, device=leg.device)


def sendrecv(media: MediaDescription) -> MediaDescription:
    return media.with_direction(SENDRECV)


def same_endpoint(a: MediaDescription | None, b: MediaDescription | None) -> bool:
    if a is None or b is None:
        return False
    sa, sb = a.active_streams(), b.active_streams()
    if len(sa) != len(sb):
        return False
    return all(
        (x.address, x.port, x.codecs[:1]) == (y.address, y.port, y.codecs[:1])
        for x, y in zip(sa, sb, strict=True)
    )


def join(
    engine: CallEngine,
    x: Leg,
    y: Leg,
    media: MediaDescription | None,
    *,
    y_offered: bool = False,
    known_to_y: MediaDescription | None = None,
) -> None:
    """Make ``x`` and ``y`` exchange media directly, from ``y``'s latest ``media``.

    ``y_offered``: ``media`` is an offer ``y`` waits to have answered (a
    delayed-offer answer). Otherwise ``media`` is offered to ``x``, and
    ``x``'s answer is offered to ``y`` unless ``y`` already sends there
    (``known_to_y``).
    """
    media = media or y.media
    if media is None:
        return
    if y_offered:
        engine.offer_media(x, media, then=lambda ans, cause: _answer_to(engine, y, ans, cause))
        return

    def answered(answer: MediaDescription | None, cause: int | None) -> None:
        if answer is None or y.released or same_endpoint(answer, known_to_y):
            return
        engine.offer_media(y, sendrecv(answer))

    engine.offer_media(x, sendrecv(media), then=answered)


def _answer_to(
    engine: CallEngine, leg: Leg, answer: MediaDescription | None, cause: int | None
) -> None:
    if not leg.released:
        engine.drive(leg, lambda d: d.media_answer(answer, cause))


def move_into(engine: CallEngine, leg: Leg, src: Call, dst: Call, slot: Leg) -> None:
    """Move ``leg`` from ``src`` into ``dst`` in ``slot``'s place (slot is not released)."""
    for holder_id, held in list(src.holds.items()):
        if held is leg:
            holder = src.a_leg if src.a_leg.id == holder_id else None
            holder = holder or next((lg for lg in src.legs() if lg.id == holder_id), None)
            if holder is not None:
                hold.end_hold(engine, src, holder)
    hold.end_hold(engine, src, leg)
    src.peers.pop(leg.id, None)
    src.pending.pop(leg.id, None)
    src.deferred = [(lg, o) for lg, o in src.deferred if lg is not leg]
    leg.call = dst
    if dst.a_leg is slot:
        dst.a_leg = leg
    if dst.b_leg is slot:
        dst.b_leg = leg
    dst.forks = [leg if f is slot else f for f in dst.forks]
    dst.pending.pop(slot.id, None)
    dst.peers.pop(slot.id, None)


# ---------------------------------------------------------------- blind
class StandIn(LegDriver):
    """The caller's side of a blind transfer's new call, until the transferee moves in."""

    def __init__(
        self,
        engine: CallEngine,
        transferrer: Leg,
        transferee: Leg,
        origin: Call,
        target: str = "",
        by: str = "device",
    ):
        self.engine = engine
        self.transferrer = transferrer
        self.transferee = transferee
        self.origin = origin
        self.target = target  # the number dialled
        self.by = by  # who asked: "device" (its user) or "cti" (an application)
        self.leg: Leg | None = None
        self.done = False

    def published(self, target_call: Call) -> None:
        """The transferee is in ``target_call`` now: the transfer is published."""
        x = self.transferrer
        if isinstance(x.driver, ResourceDriver):
            return  # a park reversion: the music endpoint "transferred" the party back
        t = self.transferee
        _publish(self.engine, self.origin, x, t, "blind", self.target, target_call, self.by)

    def offer(self, setup: Setup) -> None:  # pragma: no cover - an inbound stand-in
        return None

    def progress(self, media: MediaDescription | None) -> None:
        return None

    def alert(self, media: MediaDescription | None) -> None:
        if not self.done:
            _progress(self.engine, self.transferrer, TransferState.RINGING)

    def answer(self, media: MediaDescription | None) -> None:
        leg = self.leg
        if self.done or leg is None or leg.call is None:
            return
        self.done = True
        target_call = leg.call
        t, x, origin = self.transferee, self.transferrer, self.origin
        origin.transfers.pop(x.id, None)
        target = target_call.b_leg
        if t.released or t.call is not origin or target is None:
            self.engine.end_call(target_call, Cause.NORMAL_CLEARING)
            return
        move_into(self.engine, t, origin, target_call, leg)
        retire(self.engine, leg)
        _link(origin, target_call, x)
        self.published(target_call)
        _progress(self.engine, x, TransferState.DONE)
        self.engine.end_call(origin, Cause.NORMAL_CLEARING)
        offered = target_call.setup.media is None and media is not None
        target_call.pending.pop(leg.id, None)
        join(
            self.engine,
            t,
            target,
            media,
            y_offered=offered,
            known_to_y=target_call.setup.media,
        )

    def update_media(self, offer: MediaDescription) -> None:
        if self.leg is not None:
            self.engine.on_media_answer(self.leg, None, Cause.TEMPORARY_FAILURE)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        return None

    def release(self, cause: int) -> None:
        if self.done:
            return
        self.done = True
        self.origin.transfers.pop(self.transferrer.id, None)
        if not self.transferrer.released:
            _progress(self.engine, self.transferrer, TransferState.FAILED, cause)


def retire(engine: CallEngine, stand_in: Leg) -> None:
    """T took ``stand_in``'s place: its end is published like any leg's (the transferrer's
    line is no longer in use, CTI shows the transferrer's leg in the new call cleared),
    then call control forgets it (its driver, the ``StandIn``, is not told)."""
    if not stand_in.released:
        engine.fire(stand_in, LegEvent.RELEASE)
    engine.forget(stand_in)


def _link(origin: Call, target_call: Call, transferrer: Leg) -> None:
    origin.extra["transferred_to"] = target_call.id
    target_call.extra["transfer_of"] = origin.id
    target_call.extra["transferred_by"] = transferrer.device
    if transferrer.line[0]:
        # The CDR's last redirecting number and reason: the transferrer's line.
        setup = target_call.setup
        by = Diversion(transferrer.line[0], RedirectReason.TRANSFER)
        target_call.setup = dataclasses.replace(setup, diversions=(*setup.diversions, by))


def blind(engine: CallEngine, x: Leg, target: str, by: str = "device") -> None:
    call = x.call
    t = party_of(call, x) if call is not None and not call.ended else None
    if call is None or t is None or x.state is not LegState.CONNECTED or not target:
        _progress(engine, x, TransferState.FAILED, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
        return
    if x.id in call.transfers:
        _progress(engine, x, TransferState.FAILED, Cause.TEMPORARY_FAILURE)
        return
    _progress(engine, x, TransferState.TRYING)
    stand_in = StandIn(engine, x, t, call, target, by)
    leg = engine.new_inbound(stand_in, x.device)
    leg.css = x.css
    stand_in.leg = leg
    call.transfers[x.id] = leg
    offer = sendrecv(t.media) if t.media is not None else None
    setup = Setup(calling=_party_info(call, t), called=target, media=offer)
    engine.setup(leg, setup)


def leaving(engine: CallEngine, call: Call, leg: Leg) -> None:
    """``leg`` of ``call`` is released: carry on any blind transfer it takes part in."""
    stand_in_leg = call.transfers.pop(leg.id, None)
    if stand_in_leg is not None:
        # The transferrer hung up before the target answered: T goes over now.
        stand_in = stand_in_leg.driver
        target_call = stand_in_leg.call
        if isinstance(stand_in, StandIn) and target_call is not None and not target_call.ended:
            t = stand_in.transferee
            if not t.released and t.call is call:
                stand_in.done = True
                move_into(engine, t, call, target_call, stand_in_leg)
                retire(engine, stand_in_leg)
                _link(call, target_call, leg)
                stand_in.published(target_call)
                return
    for x_id, stand_in_leg in list(call.transfers.items()):
        stand_in = stand_in_leg.driver
        if isinstance(stand_in, StandIn) and stand_in.transferee is leg:
            call.transfers.pop(x_id, None)
            target_call = stand_in_leg.call
            if target_call is not None:
                engine.end_call(target_call, Cause.NORMAL_CLEARING)


def connect_moved(
    engine: CallEngine, call: Call, moved: Leg, answered: Leg, media: MediaDescription | None
) -> None:
    """``answered`` picked up a call a transferee was moved into while it rang."""
    offered = call.setup.media is None and media is not None
    known = call.setup.media
    engine.after_offers(
        call,
        (moved,),
        lambda: join(engine, moved, answered, media, y_offered=offered, known_to_y=known),
    )


# ---------------------------------------------------------------- attended
def attended(engine: CallEngine, x1: Leg, x2: Leg, by: str = "device") -> None:
    c1, c2 = x1.call, x2.call
    if c1 is None or c2 is None or c1 is c2 or c1.ended or c2.ended:
        _progress(engine, x1, TransferState.FAILED, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
        return
    t = party_of(c1, x1)
    c = party_of(c2, x2) if c2.connected else None
    ringing = not c2.connected and x2 is c2.a_leg
    if t is None or (c is None and not ringing):
        _progress(engine, x1, TransferState.FAILED, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
        return
    _progress(engine, x1, TransferState.TRYING)
    hold.end_hold(engine, c2, x2)
    move_into(engine, t, c1, c2, x2)
    c2.transfers.pop(x2.id, None)
    engine.release_leg(x2, Cause.NORMAL_CLEARING)
    _link(c1, c2, x1)
    target = c2.setup.called if c2.a_leg is t else c2.setup.calling.number
    _publish(engine, c1, x1, t, "consult", target, c2, by)
    _progress(engine, x1, TransferState.DONE)
    engine.end_call(c1, Cause.NORMAL_CLEARING)
    if c is not None:
        join(engine, t, c, c.media)


# ---------------------------------------------------------------- replaces
def replace(engine: CallEngine, new: Leg, old: Leg, setup: Setup) -> None:
    call = old.call
    party = party_of(call, old) if call is not None and not call.ended else None
    if (
        call is None
        or party is None
        or old.state is not LegState.CONNECTED
        or not new.can(LegEvent.SETUP)
    ):
        engine.release_leg(new, Cause.INVALID_CALL_REFERENCE)
        return
    new.call = call
    engine.fire(new, LegEvent.SETUP)
    engine.fire(new, LegEvent.CONNECT)
    hold.end_hold(engine, call, old)
    move_into(engine, new, call, call, old)
    engine.release_leg(old, Cause.NORMAL_CLEARING)
    call.extra["replaced"] = old.device
    if setup.media is not None:
        new.media = setup.media

        def answered(answer: MediaDescription | None, cause: int | None) -> None:
            if answer is not None:
                engine.drive(new, lambda d: d.answer(answer))
            else:
                engine.on_release(new, cause or Cause.TEMPORARY_FAILURE)

        engine.offer_media(party, setup.media, then=answered)
        return
    ours = party.media
    if ours is None:
        engine.on_release(new, Cause.TEMPORARY_FAILURE)
        return

    def answered_late(answer: MediaDescription | None, cause: int | None) -> None:
        if answer is not None and not party.released:
            engine.offer_media(party, sendrecv(answer))

    call.pending[new.id] = PendingOffer(offerer=None, answerer=new, on_answer=answered_late)
    offer = sendrecv(ours)
    engine.drive(new, lambda d: d.answer(offer))
