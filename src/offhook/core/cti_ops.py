"""The CTI command API: what an application may ask of a device's calls, protocol neutral.

``CtiOps`` is mixed into ``CallEngine``. Each ``cti_*`` method acts for one
device as its user would, whatever the device speaks. A command is checked
at once: a refusal raises ``CtiRefused`` (a Q.850 ``cause`` and a message
starting with a short reason: "no such call", "wrong device", "wrong
state", ...) and changes nothing. What is accepted runs in call control's
queue (at once when called from outside it, as the node's control endpoint
does), and what follows is published on the bus like anything a phone does.

=========================  =====================================================
command                    how
=========================  =====================================================
``cti_make_call``          click-to-dial (``features.dial``): the device rings
                           first, then the number is called as if dialled on it
``cti_answer``             the device's driver answers (``RemoteAction.ANSWER``:
                           SCCP's Answer stimulus, SIP where the phone can);
                           refused when it cannot
``cti_hangup``             the device's leg is released (16) as if it hung up
``cti_hold``/``cti_resume``  the device is asked (``RemoteAction.HOLD``/``RESUME``);
                           when it cannot, hold from the network side: the
                           device is offered ``inactive``, the party hears music
                           (``hold.network_hold``); resume joins the two again
``cti_transfer``           blind transfer (``transfer.blind``)
``cti_consult``            hold, then click-to-dial from the device (answered by
                           itself); ``cti_complete_transfer`` joins the held
                           party and the consulted one (``transfer.attended``)
``cti_conference``         ad hoc conference of two calls (``conference.adhoc``)
``cti_redirect``           a ringing (unanswered) leg is released and the call
                           goes to the target, redirected (reason deflection)
``cti_park``               the party is parked (``park.park_on``)
``cti_pickup``             click-to-dial of the pickup code (or directed pickup)
``cti_send_dtmf``          digits as if the device sent them in the call
=========================  =====================================================

Every event published on behalf of a command says ``by="cti"`` where its
record has a ``by`` (held, resumed, transferred, conferenced).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from offhook.core.call import Call
from offhook.core.causes import Cause, select_cause
from offhook.core.dialplan.router import Outcome
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.core.features import conference, dial, forward, hold, park, transfer
from offhook.core.leg import CoreError, Direction, Leg, LegEvent, LegState
from offhook.core.ports import RemoteAction
from offhook.core.records import CallResumed, CallStarted

if TYPE_CHECKING:
    from offhook.common.location import Binding
    from offhook.core.directory import LineInfo
    from offhook.core.engine import CallEngine

log = logging.getLogger(__name__)

T = TypeVar("T")

RINGING_STATES = frozenset({LegState.OFFERED, LegState.PROCEEDING, LegState.ALERTING})
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MAX_DIGITS = 32  # digits one cti_send_dtmf may carry
MAX_NUMBER = 64  # characters of a number to call


class CtiRefused(CoreError):
    """A CTI command call control does not carry out: ``cause`` (Q.850) and why."""

    def __init__(self, cause: int, message: str) -> None:
        super().__init__(message)
        self.cause = int(cause)
        self.message = message


def _no_call(call_id: str) -> CtiRefused:
    return CtiRefused(Cause.INVALID_CALL_REFERENCE, f"no such call: {call_id}")


def _wrong_state(why: str) -> CtiRefused:
    return CtiRefused(Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE, f"wrong state: {why}")


class CtiOps:
    """The ``cti_*`` commands of ``CallEngine`` (see the module docstring)."""

    def _cti(self) -> CallEngine:
        return cast("CallEngine", self)

    # ------------------------------------------------------------ lookups
    def _cti_call(self, call_id: str) -> Call:
        call = self._cti().call(call_id)
        if call is None or call.ended:
            raise _no_call(call_id)
        return call

    @staticmethod
    def _cti_legs(call: Call, device: str) -> list[Leg]:
        """``device``'s live legs in ``call``, connected ones first."""
        legs = [
            leg
            for leg in (call.a_leg, *call.forks)
            if leg.device == device and leg.call is call and not leg.released and not leg.quiet
        ]
        return sorted(legs, key=lambda leg: leg.state is not LegState.CONNECTED)

    def _cti_leg(self, call: Call, device: str) -> Leg:
        legs = self._cti_legs(call, device)
        if not legs:
            raise CtiRefused(
                Cause.INVALID_CALL_REFERENCE, f"wrong device: {device} is not in call {call.id}"
            )
        return legs[0]

    def _cti_connected(self, call_id: str, device: str) -> tuple[Call, Leg]:
        """``device``'s connected leg in ``call_id``, with its call (an established call)."""
        call = self._cti_call(call_id)
        leg = self._cti_leg(call, device)
        if leg.state is not LegState.CONNECTED:
            raise _wrong_state(f"{device} is not connected in call {call_id}")
        return call, leg

    def _cti_party(self, call: Call, leg: Leg) -> Leg:
        party = transfer.party_of(call, leg)
        if party is None:
            raise _wrong_state(f"{leg.device} has no party in call {call.id}")
        return party

    def _cti_now(self, step: Callable[[], T]) -> T | None:
        """Run ``step`` in call control's queue; its result, or None when it had to wait
        (a command from inside call control: it runs after the current step)."""
        box: list[T] = []
        self._cti()._post(lambda: box.append(step()))
        return box[0] if box else None

    def _cti_remote(self, leg: Leg, action: RemoteAction) -> bool:
        """Ask ``leg``'s device to do ``action`` as its user would; False: it cannot."""
        driver = leg.driver
        if driver is None or leg.released:
            return False
        try:
            return bool(driver.remote(action))
        except Exception:
            log.exception("driver of leg %s (%s) failed on remote %s", leg.id, leg.device, action)
            return False

    # ------------------------------------------------------------ make call
    def _cti_dial_check(
        self, device: str, number: str, line: str
    ) -> tuple[LineInfo, list[Binding]]:
        engine = self._cti()
        snapshot = engine.snapshot()
        if snapshot.device(device) is None:
            raise CtiRefused(Cause.UNALLOCATED_NUMBER, f"no such device: {device}")
        info = engine.line_of(device, line)
        if info is None:
            raise CtiRefused(Cause.UNALLOCATED_NUMBER, f"no such line: {device} has no {line}")
        if not number or len(number) > MAX_NUMBER or not number.isprintable() or " " in number:
            raise CtiRefused(Cause.INVALID_NUMBER_FORMAT, f"invalid number: {number!r}")
        bindings = engine._locations.bindings(device, engine.monotonic())
        if not bindings:
            raise CtiRefused(Cause.SUBSCRIBER_ABSENT, f"not registered: {device}")
        if engine._over_limit(snapshot, device):
            raise CtiRefused(Cause.USER_BUSY, f"device busy: {device} is at its call limit")
        return info, bindings

    def cti_make_call(
        self, device: str, number: str, *, line: str = "", auto_answer: bool = False
    ) -> str:
        """Click-to-dial: ring ``device`` (on ``line``, its first by default), and when it
        answers call ``number`` from it as if dialled there. Returns the call's id."""
        info, bindings = self._cti_dial_check(device, number, line)
        engine = self._cti()
        call_id = engine._id_factory()
        engine._post(lambda: self._cti_dial(call_id, device, info, bindings, number, auto_answer))
        return call_id

    def _cti_dial(
        self,
        call_id: str,
        device: str,
        line: LineInfo,
        bindings: list[Binding],
        number: str,
        auto_answer: bool,
    ) -> None:
        engine = self._cti()
        origin = engine._new_leg(Direction.INBOUND, device, driver=dial.Originator())
        origin.quiet = True
        origin.line = (line.dn, line.partition)
        calling = PartyInfo(line.dn, line.display, device)
        call = Call(call_id, origin, Setup(calling, number), engine.wall())
        call.dial = dial.Dial(number)
        origin.call = call
        engine._calls[call.id] = call
        engine.fire(origin, LegEvent.SETUP)
        engine.publish(CallStarted(call.id, calling, number, device, call.start))
        log.info("call %s: click-to-dial %s from %s (%s)", call.id, number, device, line.dn)
        engine.arm_ring_timeout(call)
        ring = Setup(PartyInfo(number, number), line.dn, None, auto_answer=auto_answer)
        for binding in bindings:
            engine._start_fork(call, binding, ring, line=(line.dn, line.partition))
        if not call.ringing_forks() and not call.ended:
            engine.end_call(call, select_cause(call.failures, Cause.TEMPORARY_FAILURE))

    # ------------------------------------------------------------ answer, hang up
    def cti_answer(self, device: str, call_id: str) -> None:
        """``device`` answers the call ringing it (its driver's ``remote(ANSWER)``)."""
        call = self._cti_call(call_id)
        legs = self._cti_legs(call, device)
        if not legs:
            self._cti_leg(call, device)  # raises: wrong device
        ringing = [
            lg for lg in legs if lg.direction is Direction.OUTBOUND and lg.state in RINGING_STATES
        ]
        if not ringing:
            raise _wrong_state(f"call {call_id} is not ringing {device}")
        answered = self._cti_now(
            lambda: any(self._cti_remote(lg, RemoteAction.ANSWER) for lg in ringing)
        )
        if answered is False:
            raise CtiRefused(Cause.SERVICE_NOT_IMPLEMENTED, "device cannot answer remotely")

    def cti_hangup(self, device: str, call_id: str) -> None:
        """``device``'s leg in ``call_id`` is released (16) as if its user hung up."""
        call = self._cti_call(call_id)
        leg = self._cti_leg(call, device)
        engine = self._cti()

        def step() -> None:
            if leg.released:
                return
            engine.drive(leg, lambda d: d.release(Cause.NORMAL_CLEARING))
            engine._do_release(leg, Cause.NORMAL_CLEARING)

        engine._post(step)

    # ------------------------------------------------------------ hold, resume
    def cti_hold(self, device: str, call_id: str) -> None:
        """``device`` holds its party: the device does it where it can, else the network."""
        call, leg = self._cti_connected(call_id, device)
        if leg.id in call.holds or leg.id in call.silent_holds:
            raise _wrong_state(f"{device} holds call {call_id} already")
        party = call.other(leg)
        if party is None or party in call.resources or party.released:
            raise _wrong_state(f"{device} has nobody to hold in call {call_id}")
        self._cti()._post(lambda: self._cti_hold(call, leg))

    def _cti_hold(self, call: Call, leg: Leg) -> None:
        if leg.released or call.ended or leg.id in call.holds:
            return
        leg.requested = RemoteAction.HOLD.value
        if self._cti_remote(leg, RemoteAction.HOLD):
            return
        leg.requested = ""
        engine = self._cti()
        party = call.other(leg)
        legs = (leg, party) if party is not None else (leg,)

        def network() -> None:
            if not leg.released and not call.ended and not hold.network_hold(engine, call, leg):
                log.info("call %s: %s could not be held", call.id, leg.device)

        engine.after_offers(call, legs, network)

    def cti_resume(self, device: str, call_id: str) -> None:
        """``device`` takes its party off hold: the device does it where it can, else the
        network joins the two again."""
        call, leg = self._cti_connected(call_id, device)
        if leg.id not in call.holds and leg.id not in call.silent_holds:
            raise _wrong_state(f"{device} does not hold call {call_id}")
        self._cti()._post(lambda: self._cti_resume(call, leg))

    def _cti_resume(self, call: Call, leg: Leg) -> None:
        if leg.released or call.ended:
            return
        leg.requested = RemoteAction.RESUME.value
        if self._cti_remote(leg, RemoteAction.RESUME):
            return
        leg.requested = ""
        engine = self._cti()
        party = call.holds.get(leg.id) or call.other(leg)
        legs = (leg, party) if party is not None else (leg,)
        engine.after_offers(call, legs, lambda: self._cti_network_resume(call, leg))

    def _cti_network_resume(self, call: Call, holder: Leg) -> None:
        engine = self._cti()
        if holder.released or call.ended:
            return
        if holder.id in call.silent_holds:
            call.silent_holds.discard(holder.id)
            party = call.other(holder)
        else:
            party = hold.end_hold(engine, call, holder)
        if party is None or party.released:
            return
        transfer.join(engine, holder, party, party.media)
        engine.publish(CallResumed(call.id, holder.id, holder.device, "cti"))

    # ------------------------------------------------------------ transfer, conference
    def cti_transfer(self, device: str, call_id: str, target: str) -> None:
        """Blind transfer of ``device``'s party to ``target``."""
        call, leg = self._cti_connected(call_id, device)
        self._cti_party(call, leg)
        if not target or len(target) > MAX_NUMBER:
            raise CtiRefused(Cause.INVALID_NUMBER_FORMAT, f"invalid number: {target!r}")
        if leg.id in call.transfers:
            raise _wrong_state(f"{device} is transferring call {call_id} already")
        engine = self._cti()
        engine._post(lambda: transfer.blind(engine, leg, target, "cti"))

    def cti_consult(self, device: str, call_id: str, number: str) -> str:
        """Hold ``device``'s party and call ``number`` from the device (answered by itself,
        where it can): the consultation call's id."""
        call, leg = self._cti_connected(call_id, device)
        self._cti_party(call, leg)
        info, bindings = self._cti_dial_check(device, number, leg.line[0])
        if leg.id not in call.holds and leg.id not in call.silent_holds:
            self.cti_hold(device, call_id)
        engine = self._cti()
        consult = engine._id_factory()
        engine._post(lambda: self._cti_dial(consult, device, info, bindings, number, True))
        return consult

    def _cti_pair(self, device: str, call_id: str, other_call_id: str) -> tuple[Leg, Leg]:
        """``device``'s legs in two different calls: the held (or first) one, and the other."""
        if call_id == other_call_id:
            raise _wrong_state("the two calls are the same")
        call, x1 = self._cti_connected(call_id, device)
        self._cti_party(call, x1)
        other = self._cti_call(other_call_id)
        x2 = self._cti_leg(other, device)
        return x1, x2

    def cti_complete_transfer(self, device: str, call_id: str, other_call_id: str) -> None:
        """Consult transfer: ``device``'s party in ``call_id`` is joined with its party in
        ``other_call_id`` (which may still ring); the device leaves both."""
        x1, x2 = self._cti_pair(device, call_id, other_call_id)
        other = x2.call
        assert other is not None
        ringing = not other.connected and x2 is other.a_leg
        if not ringing:
            if x2.state is not LegState.CONNECTED:
                raise _wrong_state(f"{device} is not connected in call {other_call_id}")
            self._cti_party(other, x2)
        engine = self._cti()
        engine._post(lambda: transfer.attended(engine, x1, x2, "cti"))

    def cti_conference(self, device: str, call_id: str, other_call_id: str) -> None:
        """Ad hoc conference: ``device``, its party in ``call_id`` and its party in
        ``other_call_id`` talk together in one bridge."""
        engine = self._cti()
        if engine.media is None:
            raise CtiRefused(Cause.RESOURCE_UNAVAILABLE, "no conference bridge: no media server")
        x1, x2 = self._cti_pair(device, call_id, other_call_id)
        other = x2.call
        assert other is not None
        if x2.state is not LegState.CONNECTED:
            raise _wrong_state(f"{device} is not connected in call {other_call_id}")
        self._cti_party(other, x2)
        done = self._cti_now(lambda: conference.adhoc(engine, x1, x2, "cti"))
        if done is False:
            raise CtiRefused(Cause.FACILITY_REJECTED, "cannot conference: the bridge is full")

    # ------------------------------------------------------------ redirect, park, pickup
    def cti_redirect(self, call_id: str, target: str, device: str = "") -> None:
        """Send a call that rings ``device`` (any ringing device when "") to ``target``:
        deflected as a forward would (the caller keeps its leg; redirect reason
        deflection, analysed with the deflecting device's calling search space)."""
        engine = self._cti()
        call = self._cti_call(call_id)
        if call.connected or call.announcing or (call.dial is not None and call.dial.ringing):
            raise _wrong_state(f"call {call_id} does not ring")
        if device:
            self._cti_leg(call, device)
        ringing = [
            f
            for f in call.ringing_forks()
            if f.state in RINGING_STATES and (not device or f.device == device)
        ]
        if not ringing:
            raise _wrong_state(f"call {call_id} does not ring {device or 'any device'}")
        leg = ringing[0]
        if not target or len(target) > MAX_NUMBER:
            raise CtiRefused(Cause.INVALID_NUMBER_FORMAT, f"invalid number: {target!r}")
        if len(call.setup.diversions) >= engine.max_forward_hops:
            raise CtiRefused(Cause.NO_ROUTE_TO_DESTINATION, "too many redirections")
        snapshot = engine.snapshot()
        css = engine.css_of(leg)
        dn = leg.line[0] or call.setup.called
        decision = snapshot.dialplan.route(css, target, dn)
        if not decision.routable or decision.outcome in (Outcome.PICKUP, Outcome.PARK):
            raise CtiRefused(decision.cause or Cause.UNALLOCATED_NUMBER, f"cannot route: {target}")
        entry = snapshot.dns.get(dn)
        by = Diversion(dn, RedirectReason.DEFLECTION, entry.display if entry is not None else "")

        def step() -> None:
            if call.ended or call.connected or leg.released:
                return
            log.info("call %s: %s deflected to %s", call.id, leg.device, target)
            for fork in call.live_forks():
                cause = Cause.NORMAL_CLEARING if fork is leg else Cause.NON_SELECTED_USER_CLEARING
                engine.release_leg(fork, cause)
            call.ringback = False  # its endpoint went with the forks
            forward.moved(engine, call, target, css, by)

        engine._post(step)

    def cti_park(self, device: str, call_id: str) -> str:
        """Park ``device``'s party: the park number it waits on."""
        engine = self._cti()
        call, leg = self._cti_connected(call_id, device)
        self._cti_party(call, leg)
        if engine.media is None:
            raise CtiRefused(Cause.RESOURCE_UNAVAILABLE, "park not available: no media server")
        if leg.id in call.transfers:
            raise _wrong_state(f"{device} is transferring call {call_id}")
        if park.first_free(engine, engine.css_of(leg), leg.line[0]) is None:
            raise CtiRefused(Cause.USER_BUSY, "no park slot available")
        number = self._cti_now(lambda: park.park_on(engine, leg, "cti"))
        if number is None:
            raise CtiRefused(Cause.USER_BUSY, "no park slot available")
        return number

    def cti_pickup(self, device: str, number: str = "", *, auto_answer: bool = False) -> str:
        """Pick up, from ``device``, a call ringing in its pickup group (or ringing
        ``number``: directed pickup): click-to-dial of the pickup code. The id of
        the picking call (the device's leg moves into the picked-up call)."""
        engine = self._cti()
        name = "directed_pickup" if number else "pickup"
        code = engine.codes.get(name, "")
        if not code:
            raise CtiRefused(Cause.SERVICE_NOT_IMPLEMENTED, f"no {name} code configured")
        return self.cti_make_call(device, code + number, auto_answer=auto_answer)

    # ------------------------------------------------------------ digits
    def cti_send_dtmf(self, device: str, call_id: str, digits: str) -> None:
        """DTMF ``digits`` in ``call_id`` as if ``device`` sent them (out of band)."""
        call = self._cti_call(call_id)
        leg = self._cti_leg(call, device)
        if not digits or len(digits) > MAX_DIGITS or not set(digits.upper()) <= DTMF_DIGITS:
            raise CtiRefused(Cause.INVALID_NUMBER_FORMAT, f"invalid digits: {digits!r}")
        if call.other(leg) is None or not leg.can(LegEvent.DIGITS):
            raise _wrong_state(f"call {call_id} is not established for {device}")
        engine = self._cti()
        engine._post(lambda: engine._do_digits(leg, digits.upper()))
