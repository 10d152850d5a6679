"""Call pickup: answer, from one phone, a call ringing another (CallManager's PickUp).

A ringing call can be picked up when a directory number it rings has a
``pickup_group`` (``PlanSnapshot.line(dn, partition)``; each fork carries the
DN it rings in ``Leg.line``). The picker places a call of its own, which is
routed here:

===================  ===============================  ====================================
how                  which calls                      refused with
===================  ===============================  ====================================
``own_group``        ringing a line of the picker's   16 (and "No call for pickup")
(PickUp, ``*8``)     own line's pickup group          when nothing rings or the line has
                                                      no group
``from_group``       ringing a line of the group      16, as above
(GPickUp, the
group's number)
``directed``         ringing ``dn``, as the picker's  the dial plan's cause (1) when the
(``**dn``)           CSS reaches it                   CSS does not reach ``dn``; else 16
===================  ===============================  ====================================

The call that has rung longest wins (its oldest matching fork); a call the
picker's own device placed is never picked up. The picker takes the ringing
call's place: every fork still ringing is released (cause 26, "answered
elsewhere"), the picker's leg becomes the call's answering leg, and the
call's record names the picker's line as ``called``, its device as
``called_device``, and the ringing DN as the last redirecting number (reason
``pickup``). The picker's own call ends with cause 16 and its record links
to the picked-up call (``extra["picked_up"]``). Nothing else changes: the
call goes on with hold, transfer, park like any other.

With workers (``offhook.workers``), a call ringing on another worker of the
node is found by its lamp (that worker's own view of the line, shared with
every worker): the picker's call is offered to that worker (``ring_worker``,
a ``node`` leg carrying ``Call.worker_ask``), which makes the pickup for it
(``for_worker``) and whose record of the picked-up call names the picker.

Media: both parties are waiting for an answer, so one of them gets the
other's description to start from (RFC 3725's problem); then offers go where
they are needed:

===============  ===============  =============================================
caller offered   picker offered   steps
===============  ===============  =============================================
yes              yes              the picker is answered with the caller's
                                  offer, the caller with the picker's; the
                                  caller is then re-offered the picker's and
                                  its answer re-offered to the picker if it
                                  differs (``transfer.join``)
yes              no (SCCP)        the picker is answered with the caller's
                                  offer (an offer to it); its answer is the
                                  caller's answer
no (SCCP)        yes              the caller is answered with the picker's
                                  offer; its answer is the picker's answer
no               no               the picker is answered with a placeholder
                                  offer (``0.0.0.0``); its answer goes to the
                                  caller as an offer, the caller's answer is
                                  offered to the picker
===============  ===============  =============================================

A caller that is a blind transfer's stand-in hands over to its transferee
when answered (``transfer.StandIn``), which joins the picker itself; a
transferee already moved into the ringing call (connected) is offered the
picker's description instead of being answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from offhook.core.call import (
    EARLY_MEDIA_DEVICE,
    PICKUP_GROUP,
    PICKUP_LINE,
    PendingOffer,
    WorkerAsk,
)
from offhook.core.causes import Cause
from offhook.core.dialplan.router import Outcome
from offhook.core.events import Diversion, RedirectReason
from offhook.core.features import transfer
from offhook.core.features.resources import OFFERED
from offhook.core.leg import LegEvent, LegState
from offhook.core.media import SENDRECV, MediaDescription, MediaStream
from offhook.core.records import CallAnswered

if TYPE_CHECKING:
    from offhook.core.call import AnswerHandler, Call
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg

log = logging.getLogger(__name__)

NOTHING_TEXT = "No call for pickup"
# What a picker gets when there is nothing to pick up (SIP: 480).
NOTHING_CAUSE = Cause.NORMAL_CLEARING
# The offer a picker is answered with when neither side has offered media yet:
# it asks the picker's device for its own description (it sends nothing yet).
PLACEHOLDER = MediaDescription((MediaStream("audio", "0.0.0.0", 9, OFFERED, direction=SENDRECV),))

Line = tuple[str, str]  # (directory number, partition)
LineMatch = Callable[[Line], bool]


# ---------------------------------------------------------------- entry points
def from_group(engine: CallEngine, call: Call, group: str) -> None:
    """The caller of ``call`` picks up the oldest call ringing in pickup group ``group``."""
    ask = WorkerAsk(PICKUP_GROUP, group=group)
    _pick(engine, call, _in_group(engine, group) if group else None, ask)


def _in_group(engine: CallEngine, group: str) -> LineMatch:
    snapshot = engine.snapshot()
    cache: dict[Line, bool] = {}

    def in_group(line: Line) -> bool:
        if line not in cache:
            info = snapshot.line(*line) if line[0] else None
            cache[line] = info is not None and info.pickup_group == group
        return cache[line]

    return in_group


def own_group(engine: CallEngine, call: Call) -> None:
    """The caller picks up a call ringing in its own line's pickup group (PickUp, ``*8``)."""
    from_group(engine, call, group_of(engine, call.a_leg))


def directed(engine: CallEngine, call: Call, dn: str) -> None:
    """The caller picks up the call ringing directory number ``dn`` (``**dn``).

    ``dn`` is analysed with the caller's calling search space: a DN it could
    not dial cannot be picked up (the dial plan's cause).
    """
    a = call.a_leg
    snapshot = engine.snapshot()
    decision = snapshot.dialplan.route(engine.css_of(a), dn, a.line[0])
    if decision.outcome is not Outcome.DN or decision.dn is None:
        engine.end_call(call, decision.cause or Cause.UNALLOCATED_NUMBER)
        return
    target = (decision.dn.dn, decision.dn.partition)
    _pick(engine, call, lambda line: line == target, WorkerAsk(PICKUP_LINE, line=target))


def for_worker(engine: CallEngine, ask: WorkerAsk, call: Call) -> None:
    """Another worker's phone picks up, through its ``node`` leg (``call``'s caller), a
    call ringing here: in the group, or on the line ``ask`` names (``from_group`` or
    ``directed`` as that worker decided), with no dial plan and no record of its own."""
    call.internal = True
    if ask.kind == PICKUP_GROUP:
        _pick(engine, call, _in_group(engine, ask.group) if ask.group else None)
    else:
        _pick(engine, call, lambda found: found == ask.line)


def group_of(engine: CallEngine, leg: Leg) -> str:
    """The pickup group of ``leg``'s line: its device's appearance, else the DN's."""
    dn, partition = leg.line
    if not dn:
        return ""
    own = engine.line_of(leg.device, dn)
    if own is not None and own.pickup_group:
        return own.pickup_group
    shared = engine.snapshot().line(dn, partition)
    return shared.pickup_group if shared is not None else ""


# ---------------------------------------------------------------- choosing
def _live_calls(engine: CallEngine) -> Iterator[Call]:
    yield from engine.active_calls()


def ringing(engine: CallEngine, matches: LineMatch, picker: Leg) -> tuple[Call, Leg] | None:
    """The call ringing a line ``matches`` accepts the longest, and its oldest such fork."""
    best: tuple[float, Call, Leg] | None = None
    for call in _live_calls(engine):
        if (
            call.ended
            or call.connected
            or call.announcing
            or call is picker.call
            or call.a_leg.device == picker.device
        ):
            continue
        for fork in call.ringing_forks():
            if fork.line[0] and matches(fork.line) and (best is None or fork.created_at < best[0]):
                best = (fork.created_at, call, fork)
    return (best[1], best[2]) if best is not None else None


def _pick(
    engine: CallEngine,
    call: Call,
    matches: LineMatch | None,
    ask: WorkerAsk | None = None,
) -> None:
    """Pick up what ``matches``; else, with ``ask``, a call another worker rings so."""
    picker = call.a_leg
    found = ringing(engine, matches, picker) if matches is not None else None
    standin = isinstance(picker.driver, transfer.StandIn)
    if (
        found is None
        and not standin
        and matches is not None
        and ask is not None
        and _elsewhere(engine, call, matches, ask)
    ):
        return
    if found is None or standin:
        engine.drive(picker, lambda d: d.show_display(NOTHING_TEXT))
        engine.end_call(call, NOTHING_CAUSE)
        return
    target, fork = found
    log.info(
        "call %s: picked up by %s (call %s) from %s", target.id, picker.device, call.id, fork.line
    )
    take(engine, target, fork.line, call)


def _elsewhere(engine: CallEngine, call: Call, matches: LineMatch, ask: WorkerAsk) -> bool:
    """A line ``matches`` accepts rings on another worker of the node (its lamp says
    so): that worker, which owns the call, is asked to make the pickup for this
    caller (``for_worker``). This call then only carries the picker to it, so it
    leaves no record (the picked-up call's names the picker)."""
    peer = engine.lines.ringing_elsewhere(matches)
    if peer is None or not peer.isdigit():
        return False
    call.worker_ask = ask
    if not engine.ring_worker(call, int(peer)):
        call.worker_ask = None
        return False
    call.internal = True
    log.info("call %s: pickup asked of worker %s for %s", call.id, peer, call.a_leg.device)
    return True


# ---------------------------------------------------------------- taking the call
def take(engine: CallEngine, target: Call, line: Line, picker_call: Call) -> None:
    """``picker_call``'s caller answers ``target``, ringing ``line``, in its place."""
    pk = picker_call.a_leg
    a = target.a_leg
    target.coverage = None
    target.ring_deadline = None
    target.trunk_queue.clear()
    for fork in target.live_forks():
        elsewhere = fork.device != EARLY_MEDIA_DEVICE  # a ringback endpoint just stops
        engine.release_leg(
            fork, Cause.NON_SELECTED_USER_CLEARING if elsewhere else Cause.NORMAL_CLEARING
        )
    target.ringback = False

    snapshot = engine.snapshot()
    entry = snapshot.dns.get(line[0])
    setup = target.setup
    target.setup = replace(
        setup,
        called=pk.line[0] or setup.called,
        original_called=setup.original_called or setup.called,
    )
    by = Diversion(line[0], RedirectReason.PICKUP, entry.display if entry is not None else "")
    # A picker connected already (a click-to-dial call: its phone answered
    # first) is re-offered media instead of being answered.
    reoffer = pk.state is LegState.CONNECTED
    picker_offer = None if reoffer else picker_call.setup.media
    picker_call.pending.clear()
    pk.call = target
    target.forks.append(pk)
    target.b_leg = pk
    target.called_device = pk.device
    target.extra["picked_up_by"] = pk.device
    picker_call.extra["picked_up"] = target.id
    if reoffer:
        target.answer = engine.wall()
    else:
        engine.fire(pk, LegEvent.CONNECT)
        target.answer = pk.answered_at
    engine.publish(CallAnswered(target.id, pk.device, target.answer or 0.0))
    engine.end_call(picker_call, Cause.NORMAL_CLEARING)  # pk has moved: only a record is left
    connect(engine, target, a, pk, picker_offer, reoffer=reoffer)
    # After connecting: a transfer's stand-in answered in it records its own redirection.
    target.setup = replace(target.setup, diversions=(*target.setup.diversions, by))


def connect(
    engine: CallEngine,
    call: Call,
    a: Leg,
    pk: Leg,
    picker_offer: MediaDescription | None,
    *,
    reoffer: bool = False,
) -> None:
    """Start media between the caller ``a`` and the picker ``pk`` (the table above).

    ``reoffer``: the picker is connected already (click-to-dial); what the
    table answers it with is offered to it instead, and its current
    description stands in for the placeholder's answer.
    """
    answered = a.state is LegState.CONNECTED
    caller_offer = a.media if answered else call.setup.media

    def failed(cause: int | None) -> None:
        if not call.ended:
            engine.end_call(call, cause or Cause.TEMPORARY_FAILURE)

    if answered and caller_offer is None:
        failed(Cause.RESOURCE_UNAVAILABLE)  # a moved transferee without media: nothing to join
        return
    if not answered:
        engine.fire(a, LegEvent.CONNECT)

    if caller_offer is not None:
        if picker_offer is not None:
            engine.drive(pk, lambda d: d.answer(transfer.sendrecv(caller_offer)))
            _to_caller(engine, call, a, pk, picker_offer, caller_offer, answered, proper=False)
            return

        def picker_answered(answer: MediaDescription | None, cause: int | None) -> None:
            if answer is None:
                failed(cause)
                return
            _to_caller(engine, call, a, pk, answer, caller_offer, answered, proper=True)

        _ask(engine, call, pk, transfer.sendrecv(caller_offer), picker_answered, reoffer)
        return

    def caller_answered(answer: MediaDescription | None, cause: int | None) -> None:
        if answer is None:
            failed(cause)
        elif picker_offer is not None:
            engine.drive(pk, lambda d: d.answer(answer))
        elif not pk.released:
            engine.offer_media(pk, transfer.sendrecv(answer))

    if picker_offer is not None:
        _ask(engine, call, a, transfer.sendrecv(picker_offer), caller_answered)
        return

    def placeholder_answered(answer: MediaDescription | None, cause: int | None) -> None:
        if answer is None:
            failed(cause)
            return
        _ask(engine, call, a, transfer.sendrecv(answer), caller_answered)

    if reoffer and pk.media is not None:
        placeholder_answered(pk.media, None)
        return
    _ask(engine, call, pk, PLACEHOLDER, placeholder_answered)


def _ask(
    engine: CallEngine,
    call: Call,
    leg: Leg,
    offer: MediaDescription,
    then: AnswerHandler,
    reoffer: bool = False,
) -> None:
    """Answer ``leg``'s call with ``offer`` (its delayed offer): its answer goes to ``then``.

    ``reoffer``: ``leg`` is connected already; ``offer`` is a new offer to it."""
    if reoffer:
        engine.offer_media(leg, offer, then=then)
        return
    call.pending[leg.id] = PendingOffer(offerer=None, answerer=leg, on_answer=then)
    engine.drive(leg, lambda d: d.answer(offer))


def _to_caller(
    engine: CallEngine,
    call: Call,
    a: Leg,
    pk: Leg,
    picker_media: MediaDescription,
    caller_offer: MediaDescription,
    answered: bool,
    *,
    proper: bool,
) -> None:
    """The caller ``a`` gets the picker's description (``proper``: an answer to its offer)."""
    if answered:
        transfer.join(engine, a, pk, picker_media, known_to_y=caller_offer)
        return
    engine.drive(a, lambda d: d.answer(transfer.sendrecv(picker_media)))
    if call.a_leg is not a:
        return  # a transfer's stand-in handed over to its transferee, who joins the picker
    early = call.early_answer
    if not proper or (early is not None and not transfer.same_endpoint(picker_media, early)):
        # The caller's dialog has another answer (made up, or early media's):
        # it is offered the picker's description afresh.
        transfer.join(engine, a, pk, picker_media, known_to_y=caller_offer)
