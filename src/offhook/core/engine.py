"""Call control: routes calls, forks them, joins the winning leg, ends them.

Theory of operation
-------------------
The engine is sans-IO and single-threaded. Adapters create an inbound leg for
a device that places a call (``inbound_leg``), hand it the caller's
``Setup`` (``setup``), and report what their devices do (``on_progress``,
``on_alerting``, ``on_connect``, ``on_media_offer``, ``on_media_answer``,
``on_digits``, ``on_release``). The engine acts by calling the legs'
``LegDriver`` methods. Every entry point is queued and run to completion, so a
driver (or a bus subscriber) that calls back into the engine from inside a
call is handled after the current step, never re-entrantly.

Routing (this version): the called number must be a directory number of the
plan snapshot (exact match), else cause 1. Every device carrying the DN is
rung at each of its live bindings, in parallel (a shared line forks),
except the calling device itself: calling your own shared line from one
phone rings the other phones, never the one you dial from. A device without a
live binding counts as cause 20; a device at its ``max_calls`` as cause 17.
With nothing to ring, the call is released with the best of those causes
(17 when the only device carrying the DN is the caller's).

Forking (RFC 3261 §16.7 in spirit): the first Progress/Alerting is relayed to
the caller, later ones only when they bring new media (or Alerting after only
Progress). The first fork to connect wins; the others get ``release(26)``. A
fork failing with a cause in ``fork_ending_causes`` (default: 21, call
rejected, the 6xx decline) ends the whole call at once; when every fork
failed, the caller gets ``causes.select_cause`` of the failures.

After connect, whichever side clears, the other side is released with the
same cause. Before connect, the caller clearing releases every fork with its
cause. Media descriptions are forwarded unchanged: a ``MediaOffer`` from one
side goes to the other's ``update_media``; its answer comes back to the
offerer's ``media_answer``. A second offer while one is pending (glare) is
refused with ``media_answer(None, 41)``. With a delayed offer (``Setup.media``
is None) the ``Connect`` media is an offer; the caller's answer is reported
with ``on_media_answer(a_leg, answer, None)`` and forwarded to the B leg.

Ring timeout: ``ring_timeout`` seconds after routing (None: never), an
unanswered call is released with cause 19 on every leg. Drive it with
``next_timer()`` / ``handle_timer(now)`` (monotonic seconds).

Digits a party sends once the call is established are published
(``DigitsReceived``) as they are relayed. A click-to-dial call (``Call.dial``,
``core.cti_ops``) rings the user's phone first: its progress and answer go to
``features.dial`` instead, which then routes the number with the phone's leg
as the (connected) caller; the far end's early media and ringback reach it
through ``features.dial`` too.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Any

from offhook.common.clock import Clock
from offhook.common.ids import token
from offhook.common.location import Binding, LocationStore
from offhook.core.bus import EventBus
from offhook.core.call import EARLY_MEDIA_DEVICE, RETRIEVE, Call, PendingOffer, WorkerAsk
from offhook.core.causes import Cause, select_cause
from offhook.core.coverage_ops import CoverageOps
from offhook.core.cti_ops import CtiOps
from offhook.core.directory import PlanSnapshot
from offhook.core.events import (
    Alerting,
    Connect,
    Digits,
    LegMessage,
    MediaAnswer,
    MediaOffer,
    Progress,
    Release,
    Setup,
)
from offhook.core.features import (
    announce,
    conference,
    coverage,
    dial,
    hold,
    park,
    pickup,
    transfer,
)
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import CoreError, Direction, Leg, LegEvent, LegState
from offhook.core.media import MediaDescription
from offhook.core.ops import FeatureOps
from offhook.core.ports import LegDriver, LegFactory, MediaResources
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallEnded,
    CallStatus,
    DigitsReceived,
    LegStateChanged,
    ParkChanged,
)
from offhook.core.routing import RoutingOps, line_of

log = logging.getLogger(__name__)

# Q.850 causes after which a route list tries its next trunk: the trunk (or the
# network behind it) failed, as opposed to the called user answering (busy,
# unknown number, rejected), which ends the hunt.
FAILOVER_CAUSES = frozenset({3, 27, 34, 38, 41, 42, 47, 63, 102})

DEFAULT_RING_TIMEOUT = 60.0


class CallEngine(RoutingOps, FeatureOps, CoverageOps, CtiOps):
    def __init__(
        self,
        snapshot_provider: Callable[[], PlanSnapshot],
        locations: LocationStore,
        clock: Clock,
        bus: EventBus,
        node: str = "",
        *,
        ring_timeout: float | None = DEFAULT_RING_TIMEOUT,
        fork_ending_causes: frozenset[int] = frozenset({Cause.CALL_REJECTED}),
        id_factory: Callable[[], str] | None = None,
        trunk_up: Callable[[str], bool] | None = None,
    ) -> None:
        self._snapshot = snapshot_provider
        # Whether a trunk answers its OPTIONS pings (default: every trunk is up).
        self._trunk_up = trunk_up or (lambda name: True)
        self._locations = locations
        self._clock = clock
        self._bus = bus
        self.node = node
        self.ring_timeout = ring_timeout
        self.fork_ending_causes = fork_ending_causes
        self._id_factory = id_factory or self._default_call_id
        self._factories: dict[str, LegFactory] = {}
        self._calls: dict[str, Call] = {}
        self._ring_heap: list[tuple[float, str]] = []
        self._legs: dict[str, Leg] = {}
        self._by_device: dict[str, dict[str, Leg]] = {}
        self._queue: deque[Callable[[], None]] = deque()
        self._running = False
        # Calls that ended since the queue last started running (``_let_go``).
        self._ended: list[Call] = []
        self._leg_seq = 0
        # The media server (music on hold, bridges); None: features that need
        # one fall back to what the phones can do alone (hold in silence).
        self.media: MediaResources | None = None
        self._resources: dict[str, Leg] = {}  # media server handle -> its leg
        self.moh_for: Callable[[Leg], str] = lambda leg: "moh:default"
        self.conferences: dict[str, conference.Conference] = {}
        self.adhoc_max_parties = 8
        self.adhoc_drop = "never"  # or "controller-leaves" (see features.conference)
        self.inband_ringback = False  # ringback as early media for trunk callers
        self.inband_progress = False  # why a trunk caller's call failed, as early media
        # Seconds after which a holder is reminded of a held call (None: never),
        # and the reminders due: (when, call id, holder's leg id).
        self.hold_reversion: float | None = None
        self.hold_reminders: list[tuple[float, str, str]] = []
        self.timers: list[tuple[float, int, Callable[[], None]]] = []  # see ``later``
        self._later_seq = 0
        self._init_coverage()

    def _default_call_id(self) -> str:
        return f"{self.node}-{token(8)}" if self.node else token(8)

    # ------------------------------------------------------------ registry
    def register_factory(self, protocol: str, factory: LegFactory) -> None:
        """Use ``factory`` for outbound legs to bindings of ``protocol`` (e.g. 'sip')."""
        self._factories[protocol] = factory

    def factory(self, protocol: str) -> LegFactory | None:
        """The factory of outbound legs to ``protocol``'s bindings, if any."""
        return self._factories.get(protocol)

    def inbound_leg(self, driver: LegDriver, device: str, css: str | None = None) -> Leg:
        """A new, idle leg for a call ``device`` is placing; follow with ``setup``.

        ``css`` overrides the calling search space the call is routed with
        (a trunk's, for calls arriving over it); by default the device's.
        """
        leg = self._new_leg(Direction.INBOUND, device, driver=driver)
        leg.css = css
        return leg

    def _new_leg(
        self,
        direction: Direction,
        device: str,
        *,
        driver: LegDriver | None = None,
        binding: Binding | None = None,
    ) -> Leg:
        self._leg_seq += 1
        leg = Leg(
            f"L{self._leg_seq}", direction, device, self._clock, binding=binding, driver=driver
        )
        self._legs[leg.id] = leg
        self._by_device.setdefault(device, {})[leg.id] = leg
        return leg

    # ------------------------------------------------------------ status
    def leg(self, leg_id: str) -> Leg | None:
        return self._legs.get(leg_id)

    def call(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def active_calls(self) -> list[Call]:
        return list(self._calls.values())

    def calls(self) -> list[CallStatus]:
        return [c.status() for c in self._calls.values()]

    def snapshot_state(self) -> dict[str, Any]:
        """JSON-ready view of the active calls for status pages."""
        return {
            "node": self.node,
            "active_calls": len(self._calls),
            "calls": [asdict(c) for c in self.calls()],
        }

    def device_calls(self, device: str) -> int:
        """How many calls ``device`` takes part in now (what ``max_calls`` limits)."""
        legs = self._by_device.get(device, {}).values()
        return len({leg.call.id if leg.call is not None else leg.id for leg in legs})

    # ------------------------------------------------------------ adapter entry points
    def setup(self, leg: Leg, setup: Setup) -> None:
        self._post(partial(self._do_setup, leg, setup))

    def ring_device(self, leg: Leg, setup: Setup, device: str) -> None:
        """``setup`` but ringing only ``device``: a call another worker routed here.

        That worker (the call's owner) analysed the number and applies the
        line's coverage; here the device is offered the call as it is, with no
        dial plan, no forward and no call record (``routing.ring_one``).
        """
        self._post(partial(self._do_setup, leg, setup, partial(self.ring_one, device)))

    # ------------------------------------------------------------ other workers
    def adopt_park(self, worker: int, change: ParkChanged) -> None:
        """Worker ``worker`` of this node took or freed a park number."""
        park.adopt(self, worker, change)

    def parked_here(self) -> list[ParkChanged]:
        """The park numbers this process holds (what a worker that starts is told)."""
        return park.taken_here(self)

    def forget_worker(self, worker: int) -> None:
        """Worker ``worker`` has gone (or started again): what it shared no longer holds."""
        self.lines.forget_peer(str(worker))
        park.forget_worker(self, worker)

    def act_for(self, leg: Leg, setup: Setup, ask: WorkerAsk) -> None:
        """``leg`` (another worker's phone, through its node leg) picks up a call
        ringing here or retrieves a party parked here, as ``ask`` says."""
        if ask.kind == RETRIEVE:
            act = partial(park.for_worker, self, ask)
        else:
            act = partial(pickup.for_worker, self, ask)
        self._post(partial(self._do_setup, leg, setup, lambda call, _leg, _setup: act(call)))

    def on_progress(self, leg: Leg, media: MediaDescription | None = None) -> None:
        self._post(partial(self._do_early, leg, media, LegEvent.PROGRESS))

    def on_alerting(self, leg: Leg, media: MediaDescription | None = None) -> None:
        self._post(partial(self._do_early, leg, media, LegEvent.ALERT))

    def on_connect(self, leg: Leg, media: MediaDescription | None = None) -> None:
        self._post(partial(self._do_connect, leg, media))

    def on_media_offer(self, leg: Leg, offer: MediaDescription) -> None:
        self._post(partial(self._do_media_offer, leg, offer))

    def on_media_answer(
        self, leg: Leg, answer: MediaDescription | None, cause: int | None = None
    ) -> None:
        self._post(partial(self._do_media_answer, leg, answer, cause))

    def on_digits(self, leg: Leg, digits: str) -> None:
        self._post(partial(self._do_digits, leg, digits))

    def on_release(self, leg: Leg, cause: int = Cause.NORMAL_CLEARING) -> None:
        self._post(partial(self._do_release, leg, cause))

    def dispatch(self, leg: Leg, message: LegMessage | Setup) -> None:
        """The ``on_*`` methods, taking a neutral event instead."""
        match message:
            case Setup():
                self.setup(leg, message)
            case Progress(media):
                self.on_progress(leg, media)
            case Alerting(media):
                self.on_alerting(leg, media)
            case Connect(media):
                self.on_connect(leg, media)
            case MediaOffer(media):
                self.on_media_offer(leg, media)
            case MediaAnswer(media, cause):
                self.on_media_answer(leg, media, cause)
            case Digits(digits):
                self.on_digits(leg, digits)
            case Release(cause):
                self.on_release(leg, cause)

    def snapshot(self) -> PlanSnapshot:
        return self._snapshot()

    def release_call(self, call_id: str, cause: int = Cause.NORMAL_CLEARING) -> bool:
        """Clear a call from outside (admin, CTI); False if there is no such call."""
        if call_id not in self._calls:
            return False
        self._post(partial(self._do_release_call, call_id, cause))
        return True

    # ------------------------------------------------------------ timers (sans-IO)
    def next_timer(self) -> float | None:
        """The monotonic time ``handle_timer`` should next be called, or None."""
        due = [
            t
            for t in (
                self._next_ring(),
                hold.next_reminder(self),
                self.timers[0][0] if self.timers else None,
            )
            if t is not None
        ]
        return min(due) if due else None

    def _next_ring(self) -> float | None:
        # A heap of (deadline, call id) with lazy deletion: entries whose call
        # ended, connected or got another deadline are dropped when they surface.
        heap = self._ring_heap
        while heap:
            deadline, call_id = heap[0]
            call = self._calls.get(call_id)
            if call is not None and not call.connected and call.ring_deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        self._post(partial(self._do_timers, now))

    # ------------------------------------------------------------ run to completion
    def _post(self, step: Callable[[], None]) -> None:
        self._queue.append(step)
        if self._running:
            return
        self._running = True
        if self._ended:
            self._let_go()
        try:
            while self._queue:
                item = self._queue.popleft()
                try:
                    item()
                except CoreError as exc:
                    log.warning("call control: %s", exc)
                except Exception:
                    # A bug must not stall the queue or the other calls.
                    log.exception("call control bug")
        finally:
            self._running = False

    def _let_go(self) -> None:
        """Break the leg <-> call cycles of the calls that ended before this run, so
        reference counting frees them once their adapters let go of the legs (the
        cyclic collector need not find them). Not at once: whoever ended a call may
        still read its legs' ``call`` until control returns (a CTI make call)."""
        ended, self._ended = self._ended, []
        for call in ended:
            for leg in call.legs():
                if leg.released and leg.call is call:
                    leg.call = None

    def _drive(self, leg: Leg, action: Callable[[LegDriver], None]) -> None:
        """Call ``leg``'s driver; a driver that raises gets its leg released (cause 41)."""
        driver = leg.driver
        if driver is None:
            return
        try:
            action(driver)
        except Exception:
            log.exception("driver of leg %s (%s) failed", leg.id, leg.device)
            if not leg.released:
                self._queue.append(partial(self._do_release, leg, Cause.TEMPORARY_FAILURE))

    def _fire(self, leg: Leg, event: LegEvent, cause: int | None = None) -> None:
        old = leg.fire(event)
        if old is not leg.state and not leg.quiet:
            self._bus.publish(
                LegStateChanged(
                    call_id=leg.call.id if leg.call is not None else "",
                    leg_id=leg.id,
                    device=leg.device,
                    direction=leg.direction.value,
                    old=old.value,
                    new=leg.state.value,
                    cause=cause,
                    line=leg.line[0],
                    partition=leg.line[1],
                )
            )

    def _release_leg(self, leg: Leg, cause: int, *, notify: bool) -> None:
        if leg.released:
            return
        leg.cause = cause
        self._fire(leg, LegEvent.RELEASE, cause)
        self._legs.pop(leg.id, None)
        driver = leg.driver
        if isinstance(driver, ResourceDriver):
            self._resources.pop(driver.handle, None)
            if driver.bridge:
                conference.port_gone(self, leg, driver.bridge)
        on_device = self._by_device.get(leg.device)
        if on_device is not None:
            on_device.pop(leg.id, None)
            if not on_device:
                del self._by_device[leg.device]
        if notify:
            self._drive(leg, lambda d: d.release(cause))

    def _end_call(self, call: Call, cause: int) -> None:
        """Release every leg still up with ``cause`` and publish the record."""
        if call.ended or announce.intercept(self, call, cause):
            return
        cause = call.announcing or cause  # a failed announcement still ends with its cause
        call.ended = True
        call.cause = cause
        call.ring_deadline = None
        call.pending.clear()
        for leg in call.legs():
            if leg.call is call:  # a leg moved to another call (transfer) stays up
                self._release_leg(leg, cause, notify=True)
        call.end = self._clock.wall()
        self._calls.pop(call.id, None)
        self._ended.append(call)
        self._bus.publish(CallEnded(call.record(call.end, cause, self.node)))
        if "parked_at" in call.extra:
            park.slots(self)  # its park number is free now: say so (ParkChanged)

    def _do_setup(
        self, leg: Leg, setup: Setup, route: Callable[[Call, Leg, Setup], None] | None = None
    ) -> None:
        """A new call from ``leg``: routed (``route``: a feature instead, e.g. barge)."""
        if leg.direction is not Direction.INBOUND or not leg.can(LegEvent.SETUP):
            raise CoreError(f"setup on {leg!r}")
        call = Call(self._id_factory(), leg, setup, self._clock.wall())
        leg.call = call
        leg.media = setup.media
        if leg.line == ("", ""):
            leg.line = line_of(self._snapshot(), leg.device, setup.calling.number)
        self._calls[call.id] = call
        self._fire(leg, LegEvent.SETUP)
        try:
            (route or self._route)(call, leg, setup)
        except Exception:
            # e.g. the plan or the location store failed: the call fails, cleanly.
            log.exception("routing call %s failed", call.id)
            self._end_call(call, Cause.TEMPORARY_FAILURE)

    # ------------------------------------------------------------ call progress
    def _live_outbound(self, leg: Leg, what: str) -> Call | None:
        """The call of an unanswered-or-winning outbound leg, or None (logged) if stale."""
        call = leg.call
        if leg.released and leg.direction is Direction.OUTBOUND:
            log.debug("%s on released %r ignored", what, leg)
            return None
        if leg.direction is not Direction.OUTBOUND or call is None:
            raise CoreError(f"{what} on {leg!r}: only an outbound leg reports {what}")
        if call.ended:
            log.debug("%s on released %r ignored", what, leg)
            return None
        return call

    def _do_early(self, leg: Leg, media: MediaDescription | None, event: LegEvent) -> None:
        call = self._live_outbound(leg, event.value)
        if call is None or call.connected:
            return
        if not leg.can(event):
            raise CoreError(f"{event.value} on {leg!r}")
        if call.dial is not None and call.dial.ringing:
            dial.device_early(self, call, leg, media, event)  # click-to-dial: the user's phone
            return
        self._fire(leg, event)
        if media is not None:
            leg.media = media
        alert = event is LegEvent.ALERT
        relay = (
            not call.relayed
            or (alert and not call.alerted)
            or (media is not None and media != call.relayed_media)
        )
        a = call.a_leg
        if media is not None and call.ringback and leg.device != EARLY_MEDIA_DEVICE:
            # The phone's own early media reaches the caller: the ringback stops.
            playing = announce.early_port(call)
            if playing is not None:
                self._release_leg(playing, Cause.NORMAL_CLEARING, notify=True)
        if relay and a.can(event):
            self._fire(a, event)
            call.relayed = True
            if media is not None:
                call.relayed_media = media
                call.early_answer = call.early_answer or media
            if alert:
                self._drive(a, lambda d: d.alert(media))
            else:
                self._drive(a, lambda d: d.progress(media))
        elif relay and call.dial is not None and a.state is LegState.CONNECTED:
            dial.early(self, call, leg, media, alert)  # the click-to-dial phone answered first
        if alert and media is None and not call.alerted:
            announce.ringback(self, call)
        if alert and not call.alerted:
            call.alerted = True
            self._bus.publish(CallAlerting(call.id, leg.device))

    def _do_connect(self, leg: Leg, media: MediaDescription | None) -> None:
        call = self._live_outbound(leg, "connect")
        if call is None or call.connected:
            return
        if not leg.can(LegEvent.CONNECT):
            raise CoreError(f"connect on {leg!r}")
        if call.dial is not None and call.dial.ringing:
            dial.device_answered(self, call, leg, media)  # click-to-dial: now call the number
            return
        self._fire(leg, LegEvent.CONNECT)
        if media is not None:
            leg.media = media
        call.b_leg = leg
        call.answer = self._clock.wall()
        call.called_device = leg.device
        call.ring_deadline = None
        for other in call.live_forks():
            if other is not leg:
                self._release_leg(other, Cause.NON_SELECTED_USER_CLEARING, notify=True)
        coverage.answered(self, call, leg)
        a = call.a_leg
        if a.state is LegState.CONNECTED:
            # A connected party was moved in while this leg rang (a transfer), or
            # placed the call connected (click-to-dial): the two exchange media afresh.
            dial.far_answered(self, call)
            transfer.connect_moved(self, call, a, leg, media)
        else:
            self._fire(a, LegEvent.CONNECT)
            if call.setup.media is None and media is not None:
                # Delayed offer: the answer's media is an offer; A answers it.
                call.pending[a.id] = PendingOffer(offerer=leg, answerer=a)
            self._drive(a, lambda d: d.answer(media))
            early = call.early_answer
            if (
                early is not None
                and call.setup.media is not None
                and media is not None
                and not transfer.same_endpoint(media, early)
            ):
                # A's dialog took its SDP answer from early media (ringback,
                # another fork): A is told where B is now.
                transfer.join(self, a, leg, media, known_to_y=call.setup.media)
        self._bus.publish(CallAnswered(call.id, leg.device, call.answer))

    # ------------------------------------------------------------ mid-call
    def _do_media_offer(self, leg: Leg, offer: MediaDescription) -> None:
        call = leg.call
        if call is None or call.ended or not leg.can(LegEvent.MEDIA):
            self._drive(
                leg, lambda d: d.media_answer(None, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
            )
            return
        blocking = self._offer_blocking(call, leg)
        if blocking is not None:
            if blocking.offerer is None or blocking.offerer in call.resources:
                # Call control is moving this call's media: this offer follows.
                call.deferred.append((leg, offer))
            else:
                # Glare: an offer is already in flight; the newcomer retries later.
                self._drive(leg, lambda d: d.media_answer(None, Cause.TEMPORARY_FAILURE))
            return
        if hold.on_offer(self, call, leg, offer):
            return
        other = call.other(leg)
        if other is None:
            self._drive(
                leg, lambda d: d.media_answer(None, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
            )
            return
        self._fire(leg, LegEvent.MEDIA)
        leg.media = offer
        self.offer_media(other, offer, offerer=leg)

    @staticmethod
    def _offer_blocking(call: Call, leg: Leg) -> PendingOffer | None:
        """The offer in flight that ``leg`` offering now would cross, if any."""
        if leg.id in call.pending:
            return call.pending[leg.id]
        for pending in call.pending.values():
            if pending.offerer is leg:
                return pending
        other = call.other(leg)
        return call.pending.get(other.id) if other is not None else None

    def _do_media_answer(
        self, leg: Leg, answer: MediaDescription | None, cause: int | None
    ) -> None:
        call = leg.call
        pending = call.pending.pop(leg.id, None) if call is not None else None
        if call is None or pending is None:
            log.warning("media answer on %r without a pending offer ignored", leg)
            return
        if answer is not None:
            leg.media = answer
        offerer = pending.offerer
        if pending.on_answer is not None:
            pending.on_answer(answer, cause)
        elif offerer is not None and not offerer.released:
            self._drive(offerer, lambda d: d.media_answer(answer, cause))
        if call.deferred and not call.ended:
            waiting, call.deferred = call.deferred, []
            for deferred_leg, offer in waiting:
                if not deferred_leg.released:
                    self._queue.append(partial(self._do_media_offer, deferred_leg, offer))

    def _do_digits(self, leg: Leg, digits: str) -> None:
        call = leg.call
        if call is None or call.ended or not leg.can(LegEvent.DIGITS):
            raise CoreError(f"digits on {leg!r}")
        other = call.other(leg)
        if other is None:
            log.debug("digits %r on %r before connect dropped", digits, leg)
            return
        self._bus.publish(DigitsReceived(call.id, leg.id, leg.device, digits))
        self._drive(other, lambda d: d.send_digits(digits))

    # ------------------------------------------------------------ clearing
    def _do_release(self, leg: Leg, cause: int) -> None:
        if leg.released:
            log.debug("release on released %r ignored", leg)
            return
        call = leg.call
        self._release_leg(leg, cause, notify=False)
        if call is None or call.ended:
            return
        if call.transfers:
            transfer.leaving(self, call, leg)
        if call.bridge and leg not in call.resources:
            conference.party_left(self, call, leg, cause)
            return
        if leg is call.a_leg or leg is call.b_leg or leg in call.resources:
            # A party, or the media server under a held party, is gone.
            self._end_call(call, cause)
            return
        if leg.device == EARLY_MEDIA_DEVICE:
            # The media server's ringback or announcement failed: the phones
            # still ring, or the call ends now with the announced cause.
            if call.announcing:
                self._end_call(call, call.announcing)
            return
        # An unanswered fork failed (losers after connect are released already).
        call.failures.append(cause)
        if leg.binding is not None and not leg.binding.contact:
            call.hunt.append((leg.device, cause))  # a trunk leg that failed
        if call.trunk_queue:
            if cause in FAILOVER_CAUSES:
                log.info("call %s: trunk %s failed (cause %d), next", call.id, leg.device, cause)
                if self._next_trunk(call):
                    return
            else:
                call.trunk_queue.clear()  # a user-level answer ends the hunt
        if cause in self.fork_ending_causes and not coverage.passes_declines(call):
            # RFC 3261 §16.7: a 6xx-class answer ends the whole fork at once
            # (a hunt member declining passes the call on instead).
            self._end_call(call, cause)
        elif not call.ringing_forks():
            failed = select_cause(call.failures)
            if not coverage.exhausted(self, call, failed):
                self._end_call(call, failed)

    def _do_release_call(self, call_id: str, cause: int) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            self._end_call(call, cause)

    def _do_timers(self, now: float) -> None:
        hold.remind_due(self, now)
        while self.timers and self.timers[0][0] <= now:
            _, _, step = heapq.heappop(self.timers)
            step()
        while True:
            deadline = self._next_ring()
            if deadline is None or deadline > now:
                return
            _, call_id = heapq.heappop(self._ring_heap)
            call = self._calls[call_id]
            call.ring_deadline = None
            self._end_call(call, Cause.NO_ANSWER)
