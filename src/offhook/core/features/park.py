"""Call park: park a party on a number, retrieve it from any phone, revert it to the parker.

Park numbers are the dial plan's ``call_park`` ranges (``CallPark``), each in a
partition; dialling one routes here (``Outcome.PARK``). Which numbers are
taken is node state (``slots(engine)``), one entry per number.

Parking is a blind transfer of the party to a park number: the transfer's
stand-in leg calls the number, a media server endpoint playing the parker's
music on hold answers, and the party is moved into that call (the *park
call*, answered by the music) while the parker's call ends (cause 16). The
ways in:

=================================  ============================================
how                                what happens
=================================  ============================================
Park softkey (SCCP, ``park_leg``)  the first free number the parker's CSS
                                   reaches; the party is blind-transferred there
transfer to a park number          that number (busy, 17, when taken)
(SIP REFER; ``dialled``)
transfer to the park code          the first free number the transferrer's CSS
(``*68``; ``dialled_code``)        reaches (17 when none is free)
=================================  ============================================

The parker is shown "Call park at <number>" (an SCCP phone's display; a SIP
phone gets it as an in-dialog MESSAGE, before its transfer's NOTIFY). With
no free number, or no media server, the call stays as it was and the parker
is told ("No park slot available", or the transfer fails).

=================================  ============================================
then                               what happens
=================================  ============================================
any phone dials a taken number     retrieval: the music stops, the party is
                                   moved into the caller's call and the two are
                                   joined (the caller's offer goes to the party,
                                   or the party's media is offered to a caller
                                   that offered none); the slot is free
a free number is dialled           cause 1 (nothing parked there)
the party hangs up                 the park call ends; the slot is free
``reversion`` seconds pass (not 0) the slot is freed and the parker's line is
                                   called for the party (a blind transfer from
                                   the music endpoint, with the parker's CSS,
                                   through the line's forwards); the party
                                   hears music until someone answers; if that
                                   call fails, the party's call ends with its
                                   cause
=================================  ============================================

With workers (``offhook.workers``) each worker parks its own calls; which
numbers are taken elsewhere is shared (``ParkChanged`` on the bus, kept here by
``adopt``): a number another worker holds is never chosen or parked on again
here, and dialling it retrieves the party through that worker (a ``node``
leg; ``for_worker`` runs the retrieval there, which records it).

Records: the park call names the number (``extra["parked_at"]``) and the
parker's device (``parked_by``); a retrieval's record has the parked party as
``called`` and ``called_device``, the park number as ``original_called`` and
last redirecting number (reason ``park``) and links the park call
(``park_call``); a reversion's record has the park number as last redirecting
number (reason ``park``).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from offhook.core.call import RETRIEVE, PendingOffer, WorkerAsk
from offhook.core.causes import Cause
from offhook.core.dialplan.router import Outcome
from offhook.core.events import Diversion, RedirectReason, Setup
from offhook.core.features import hold, transfer
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import LegEvent, LegState
from offhook.core.records import CallAnswered, ParkChanged

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.dialplan.model import CallPark
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg
    from offhook.core.media import MediaDescription

log = logging.getLogger(__name__)

PARKED_TEXT = "Call park at {number}"
NO_SLOT_TEXT = "No park slot available"
NOT_AVAILABLE_TEXT = "Park not available"

Slot = tuple[str, str]  # (partition, park number)


@dataclass(slots=True, eq=False)
class Parked:
    """A party parked on ``number``: ``call`` is the park call, ``port`` its music."""

    number: str
    park: CallPark
    call: Call
    port: Leg
    parker_device: str
    parker_line: tuple[str, str]  # the DN a reversion calls ("" : none)
    parker_css: str
    since: float  # monotonic

    @property
    def party(self) -> Leg | None:
        """The parked party, once it has been moved into the park call."""
        return self.call.a_leg if self.call.connected and not self.call.ended else None


_SLOTS: weakref.WeakKeyDictionary[CallEngine, dict[Slot, Parked]] = weakref.WeakKeyDictionary()
# Park numbers other workers of the node hold: slot -> the worker's index.
_ELSEWHERE: weakref.WeakKeyDictionary[CallEngine, dict[Slot, int]] = weakref.WeakKeyDictionary()


def slots(engine: CallEngine) -> dict[Slot, Parked]:
    """The park numbers taken on ``engine`` (stale entries are dropped, and told, here)."""
    taken = _SLOTS.setdefault(engine, {})
    for slot in [s for s, p in taken.items() if p.call.ended]:
        _free(engine, taken, slot)
    return taken


def _free(engine: CallEngine, taken: dict[Slot, Parked], slot: Slot) -> None:
    del taken[slot]
    engine.publish(ParkChanged(slot[1], slot[0], False))


def elsewhere(engine: CallEngine) -> dict[Slot, int]:
    """The park numbers other workers of the node hold, and which worker holds each."""
    return _ELSEWHERE.setdefault(engine, {})


def adopt(engine: CallEngine, worker: int, change: ParkChanged) -> None:
    """Another worker took or freed a park number."""
    slot = (change.partition, change.number)
    held = elsewhere(engine)
    if change.taken:
        held[slot] = worker
    elif held.get(slot) == worker:
        del held[slot]


def forget_worker(engine: CallEngine, worker: int) -> None:
    """Worker ``worker`` is gone (or started again): the numbers it held are free."""
    held = elsewhere(engine)
    for slot in [s for s, w in held.items() if w == worker]:
        del held[slot]


def taken_here(engine: CallEngine) -> list[ParkChanged]:
    """The park numbers this worker holds, as changes (for a worker that starts)."""
    return [ParkChanged(number, partition, True) for partition, number in slots(engine)]


def parked(engine: CallEngine) -> list[Parked]:
    """The parties parked now, by park number (for status pages)."""
    return sorted(slots(engine).values(), key=lambda p: (p.park.partition, p.number))


def first_free(engine: CallEngine, css: str, calling: str = "") -> tuple[str, CallPark] | None:
    """The first free park number, in plan order, of the ranges ``css`` reaches."""
    snapshot = engine.snapshot()
    taken, held = slots(engine), elsewhere(engine)
    for park in snapshot.dialplan_spec.call_park:
        numbers = park.numbers()
        if not numbers:
            continue
        decision = snapshot.dialplan.route(css, numbers[0], calling, rotate=False)
        if decision.outcome is not Outcome.PARK or decision.park != park:
            continue
        for number in numbers:
            if (park.partition, number) not in taken and (park.partition, number) not in held:
                return number, park
    return None


# ---------------------------------------------------------------- entry points
def park_leg(engine: CallEngine, leg: Leg) -> None:
    """Park the party connected to ``leg`` on the first free park number (SCCP Park)."""
    park_on(engine, leg)


def park_on(engine: CallEngine, leg: Leg, by: str = "device") -> str | None:
    """``park_leg``, saying who asked (``by``: "device" or "cti", an application):
    the park number chosen, or None when refused (the device is told why)."""
    call = leg.call
    party = transfer.party_of(call, leg) if call is not None and not call.ended else None
    if (
        call is None
        or party is None
        or leg.state is not LegState.CONNECTED
        or leg.id in call.transfers
        or engine.media is None
    ):
        engine.drive(leg, lambda d: d.show_display(NOT_AVAILABLE_TEXT))
        return None
    found = first_free(engine, engine.css_of(leg), leg.line[0])
    if found is None:
        engine.drive(leg, lambda d: d.show_display(NO_SLOT_TEXT))
        return None
    transfer.blind(engine, leg, found[0], by)
    return found[0]


def dialled(engine: CallEngine, call: Call, number: str, park: CallPark) -> None:
    """A call reached park number ``number``: retrieve what is parked there, or park
    the transferee when ``call`` is a blind transfer to it."""
    stand_in = call.a_leg.driver
    if isinstance(stand_in, transfer.StandIn):
        _park(engine, call, stand_in, number, park)
    else:
        _retrieve(engine, call, number, park)


def dialled_code(engine: CallEngine, call: Call) -> None:
    """A call to the park feature code: a blind transfer to it parks on the first free number."""
    a = call.a_leg
    stand_in = a.driver
    if not isinstance(stand_in, transfer.StandIn):
        engine.end_call(call, Cause.UNALLOCATED_NUMBER)  # only a transfer target
        return
    found = first_free(engine, engine.css_of(a), stand_in.transferrer.line[0])
    if found is None:
        _refuse(engine, call, stand_in, NO_SLOT_TEXT, Cause.USER_BUSY)
        return
    number, park = found
    setup = call.setup
    call.setup = replace(
        setup, called=number, original_called=setup.original_called or setup.called
    )
    _park(engine, call, stand_in, number, park)


# ---------------------------------------------------------------- parking
def _refuse(
    engine: CallEngine, call: Call, stand_in: transfer.StandIn, text: str, cause: int
) -> None:
    engine.drive(stand_in.transferrer, lambda d: d.show_display(text))
    engine.end_call(call, cause)  # the transferrer keeps its call (the transfer failed)


def _park(
    engine: CallEngine, call: Call, stand_in: transfer.StandIn, number: str, park: CallPark
) -> None:
    """The stand-in ``call`` of a blind transfer to ``number``: answer it with music."""
    taken = slots(engine)
    slot = (park.partition, number)
    if engine.media is None:
        _refuse(engine, call, stand_in, NOT_AVAILABLE_TEXT, Cause.RESOURCE_UNAVAILABLE)
        return
    if slot in taken or slot in elsewhere(engine):
        _refuse(engine, call, stand_in, NO_SLOT_TEXT, Cause.USER_BUSY)
        return
    x, t = stand_in.transferrer, stand_in.transferee
    port = engine.add_port(
        call,
        hold.family_of(call.setup.media),
        play=engine.moh_for(x),
        device=t.device,
        name="park",
    )
    entry = Parked(
        number=number,
        park=park,
        call=call,
        port=port,
        parker_device=x.device,
        parker_line=x.line,
        parker_css=engine.css_of(x),
        since=engine.monotonic(),
    )
    taken[slot] = entry
    engine.publish(ParkChanged(number, park.partition, True))
    call.extra["parked_at"] = number
    call.extra["parked_by"] = x.device
    log.info("call %s: %s parked on %s by %s", call.id, t.device, number, x.device)
    engine.drive(x, lambda d: d.show_display(PARKED_TEXT.format(number=number)))
    driver = port.driver
    assert isinstance(driver, ResourceDriver)
    engine.fire(port, LegEvent.OFFER)
    driver.offer(call.setup)
    if park.reversion > 0:
        engine.later(park.reversion, partial(_revert, engine, slot, entry))


# ---------------------------------------------------------------- retrieval
def for_worker(engine: CallEngine, ask: WorkerAsk, call: Call) -> None:
    """Another worker's phone, through its ``node`` leg (``call``'s caller), retrieves
    the party parked here on the number ``ask`` names; this call records it."""
    number, partition = ask.line
    for park in engine.snapshot().dialplan_spec.call_park:
        if park.partition == partition and number in park.numbers():
            _retrieve(engine, call, number, park, here_only=True)
            return
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)


def _retrieve(
    engine: CallEngine, call: Call, number: str, park: CallPark, *, here_only: bool = False
) -> None:
    """``call``'s caller dialled ``number``: it is joined with the party parked there
    (through the worker that holds it, when another does and not ``here_only``)."""
    slot = (park.partition, number)
    entry = slots(engine).get(slot)
    party = entry.party if entry is not None else None
    y = call.a_leg
    worker = None if entry is not None or here_only else elsewhere(engine).get(slot)
    if worker is not None:
        call.worker_ask = WorkerAsk(RETRIEVE, line=(number, park.partition))
        if engine.ring_worker(call, worker):
            call.internal = True  # that worker records the retrieval
            log.info(
                "call %s: %s retrieves %s through worker %d", call.id, y.device, number, worker
            )
            return
        call.worker_ask = None
    if entry is None or party is None or party.released:
        engine.drive(y, lambda d: d.show_display(f"No call parked at {number}"))
        engine.end_call(call, Cause.UNALLOCATED_NUMBER)
        return
    _free(engine, slots(engine), slot)
    park_call = entry.call
    log.info("call %s: %s retrieved from %s by %s", park_call.id, party.device, number, y.device)
    engine.release_leg(entry.port, Cause.NORMAL_CLEARING)  # the music stops
    transfer.move_into(engine, party, park_call, call, party)
    call.forks.append(party)
    call.b_leg = party
    call.called_device = party.device
    setup = call.setup
    call.setup = replace(
        setup,
        called=park_call.setup.calling.number or setup.called,
        original_called=setup.original_called or setup.called,
        diversions=(*setup.diversions, Diversion(number, RedirectReason.PARK)),
    )
    call.extra["park_call"] = park_call.id
    park_call.extra["retrieved_by"] = y.device
    reoffer = y.state is LegState.CONNECTED  # a click-to-dial call: its phone answered first
    if not reoffer:
        engine.fire(y, LegEvent.CONNECT)
    call.answer = engine.wall() if reoffer else y.answered_at
    engine.publish(CallAnswered(call.id, y.device, call.answer or 0.0))
    engine.end_call(park_call, Cause.NORMAL_CLEARING)  # the party has left it
    if reoffer:
        transfer.join(engine, y, party, party.media)
        return
    _join(engine, call, y, party)


def _join(engine: CallEngine, call: Call, y: Leg, party: Leg) -> None:
    """Answer the retriever ``y`` and re-offer the connected ``party`` (as Replaces does)."""

    def failed(cause: int | None) -> None:
        if not call.ended:
            engine.end_call(call, cause or Cause.TEMPORARY_FAILURE)

    offer = call.setup.media
    if offer is not None:

        def answered(answer: MediaDescription | None, cause: int | None) -> None:
            if answer is None:
                failed(cause)
            elif not y.released:
                engine.drive(y, lambda d: d.answer(answer))

        engine.offer_media(party, transfer.sendrecv(offer), then=answered)
        return
    ours = party.media
    if ours is None:
        failed(Cause.RESOURCE_UNAVAILABLE)
        return

    def y_answered(answer: MediaDescription | None, cause: int | None) -> None:
        if answer is None:
            failed(cause)
        elif not party.released:
            engine.offer_media(party, transfer.sendrecv(answer))

    call.pending[y.id] = PendingOffer(offerer=None, answerer=y, on_answer=y_answered)
    engine.drive(y, lambda d: d.answer(transfer.sendrecv(ours)))


# ---------------------------------------------------------------- reversion
class Reversion(transfer.StandIn):
    """The park call's party calling the parker's line back; if that fails, the party's
    call ends with the failure's cause."""

    def __init__(self, engine: CallEngine, entry: Parked) -> None:
        party = entry.party
        assert party is not None
        super().__init__(engine, entry.port, party, entry.call)
        self.entry = entry

    def answer(self, media: MediaDescription | None) -> None:
        super().answer(media)
        target = self.leg.call if self.leg is not None else None
        if target is not None:
            target.extra.pop("transferred_by", None)  # the music endpoint "transferred" it
            target.extra["park_reversion"] = self.entry.number

    def release(self, cause: int) -> None:
        failed = not self.done
        super().release(cause)
        origin = self.origin
        if failed and not origin.ended:
            log.info("call %s: park reversion failed (cause %d)", origin.id, cause)
            self.engine.post(lambda: None if origin.ended else self.engine.end_call(origin, cause))


def _revert(engine: CallEngine, slot: Slot, entry: Parked) -> None:
    """``entry`` has been parked ``reversion`` seconds: call the parker's line for it."""
    taken = slots(engine)
    party = entry.party
    if taken.get(slot) is not entry or party is None or party.released:
        return
    dn = entry.parker_line[0]
    if not dn:
        return  # a parker without a line (a trunk): the party stays parked
    _free(engine, taken, slot)
    call = entry.call
    log.info("call %s: parked on %s for too long, reverting to %s", call.id, entry.number, dn)
    stand_in = Reversion(engine, entry)
    port = entry.port
    leg = engine.new_inbound(stand_in, port.device)
    leg.css = entry.parker_css
    stand_in.leg = leg
    call.transfers[port.id] = leg
    media = transfer.sendrecv(party.media) if party.media is not None else None
    setup = Setup(
        calling=call.setup.calling,
        called=dn,
        media=media,
        original_called=entry.number,
        diversions=(Diversion(entry.number, RedirectReason.PARK),),
    )
    engine.setup(leg, setup)
