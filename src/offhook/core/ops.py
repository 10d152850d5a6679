"""The feature side of the engine: adapters' feature requests and what features use.

``FeatureOps`` is mixed into ``CallEngine``. Adapters ask for features
(``transfer``, ``transfer_to``, ``replace``, ``conference``) and report what
the media server says (``on_resource_*``). Features move media between
legs (``offer_media``), add legs that end on a media server
(``add_resource``) or stand in for a device (``new_inbound``), and release
single legs or whole calls, always from inside call control's queue.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from offhook.core.call import EARLY_MEDIA_DEVICE, AnswerHandler, Call, PendingOffer
from offhook.core.causes import Cause
from offhook.core.events import Setup
from offhook.core.features import conference, transfer
from offhook.core.features.resources import ResourceDriver, resource_handle
from offhook.core.leg import Direction, Leg, LegEvent, LegState
from offhook.core.media import MediaDescription
from offhook.core.ports import LegDriver, MediaResources

if TYPE_CHECKING:
    from offhook.common.clock import Clock
    from offhook.core.bus import E, EventBus, Unsubscribe
    from offhook.core.engine import CallEngine


class FeatureOps:
    _bus: EventBus
    media: MediaResources | None
    _clock: Clock
    _leg_seq: int
    _legs: dict[str, Leg]
    _by_device: dict[str, dict[str, Leg]]
    _resources: dict[str, Leg]
    _later_seq: int
    timers: list[tuple[float, int, Callable[[], None]]]

    if TYPE_CHECKING:

        def _post(self, step: Callable[[], None]) -> None: ...
        def _drive(self, leg: Leg, action: Callable[[LegDriver], None]) -> None: ...
        def _fire(self, leg: Leg, event: LegEvent, cause: int | None = None) -> None: ...
        def _release_leg(self, leg: Leg, cause: int, *, notify: bool) -> None: ...
        def _end_call(self, call: Call, cause: int) -> None: ...
        def on_release(self, leg: Leg, cause: int = ...) -> None: ...
        def _new_leg(
            self, direction: Direction, device: str, *, driver: LegDriver | None = None
        ) -> Leg: ...

    def _engine(self) -> CallEngine:
        return cast("CallEngine", self)

    # ---------------------------------------------------------- adapter entry points
    def transfer(self, leg: Leg, target: str) -> None:
        """Blind transfer: the party connected to ``leg`` is called through to ``target``.

        Routed with the calling search space of ``leg``'s device; progress goes
        to ``leg``'s driver (``transfer_progress``). ``leg`` stays in its call
        until the target answers, then it is released (cause 16).
        """
        self._post(partial(transfer.blind, self._engine(), leg, target))

    def transfer_to(self, leg: Leg, other: Leg) -> None:
        """Attended transfer: join the parties connected to ``leg`` and ``other``.

        Both legs belong to the transferring device; both are released.
        """
        self._post(partial(transfer.attended, self._engine(), leg, other))

    def replace(self, leg: Leg, replaced: Leg, setup: Setup) -> None:
        """An inbound ``leg`` takes the place of the connected leg ``replaced`` (RFC 3891)."""
        self._post(partial(transfer.replace, self._engine(), leg, replaced, setup))

    def conference(self, leg: Leg, other: Leg) -> None:
        """Ad hoc conference: ``leg``'s call, ``leg`` itself and ``other``'s party join a bridge.

        Both legs belong to the conferencing device; ``other`` (the
        consultation) is released. Refused: ``leg``'s device is told.
        """

        def step() -> None:
            if not conference.adhoc(self._engine(), leg, other):
                self._drive(leg, lambda d: d.show_display("Cannot conference"))

        self._post(step)

    def on_resource_done(self, handle: str) -> None:
        """The media server finished playing on ``handle`` (an announcement)."""
        leg = self._resources.get(handle)
        if leg is not None and isinstance(leg.driver, ResourceDriver):
            leg.driver.played()

    def on_resource_digits(self, handle: str, digit: str) -> None:
        """A digit the media server received on ``handle`` (RFC 4733)."""
        leg = self._resources.get(handle)
        if leg is not None and isinstance(leg.driver, ResourceDriver):
            driver = leg.driver
            self._post(lambda: driver.collect(digit))

    def on_resource_lost(self, handle: str, cause: int) -> None:
        """The media server lost the endpoint ``handle``: its call is cleared with ``cause``."""
        leg = self._resources.get(handle)
        driver = leg.driver if leg is not None else None
        if leg is not None and not (isinstance(driver, ResourceDriver) and driver.opening):
            # (a failed open is answered through its own reply)
            self.on_release(leg, cause)

    # ---------------------------------------------------------- feature operations
    def offer_media(
        self,
        answerer: Leg,
        offer: MediaDescription,
        *,
        offerer: Leg | None = None,
        then: AnswerHandler | None = None,
    ) -> None:
        """Send ``offer`` to ``answerer``; its answer goes to ``offerer`` or to ``then``."""
        call = answerer.call
        if call is None or answerer.released:
            if then is not None:
                then(None, Cause.TEMPORARY_FAILURE)
            return
        call.pending[answerer.id] = PendingOffer(offerer=offerer, answerer=answerer, on_answer=then)
        self._drive(answerer, lambda d: d.update_media(offer))

    def after_offers(self, call: Call, legs: tuple[Leg, ...], step: Callable[[], None]) -> None:
        """Run ``step`` once no offer is in flight to any of ``legs`` (now, when none is).

        The answer to the offer in flight goes where it went before; ``step``
        follows it. If the offer is dropped unanswered (its call ended, its
        music stopped), ``step`` is dropped with it.
        """
        pending = next((call.pending[lg.id] for lg in legs if lg.id in call.pending), None)
        if pending is None:
            step()
            return
        before, offerer = pending.on_answer, pending.offerer

        def then(answer: MediaDescription | None, cause: int | None) -> None:
            if before is not None:
                before(answer, cause)
            elif offerer is not None and not offerer.released:
                self._drive(offerer, lambda d: d.media_answer(answer, cause))
            if not call.ended:
                self.after_offers(call, legs, step)

        pending.on_answer = then

    def drive(self, leg: Leg, action: Callable[[LegDriver], None]) -> None:
        self._drive(leg, action)

    def fire(self, leg: Leg, event: LegEvent) -> None:
        self._fire(leg, event)

    def release_leg(self, leg: Leg, cause: int) -> None:
        """Release one leg (its device is told) without ending its call."""
        self._release_leg(leg, cause, notify=True)

    def end_call(self, call: Call, cause: int) -> None:
        self._end_call(call, cause)

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def wall(self) -> float:
        return self._clock.wall()

    def later(self, delay: float, step: Callable[[], None]) -> None:
        """Run ``step`` in call control's queue ``delay`` seconds from now."""
        self._later_seq += 1
        heapq.heappush(self.timers, (self._clock.monotonic() + delay, self._later_seq, step))

    def publish(self, event: object) -> None:
        """Publish ``event`` on the event bus (a feature's own records and changes)."""
        self._bus.publish(event)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Unsubscribe:
        """Follow bus events of ``event_type`` (a feature keeping its own state)."""
        return self._bus.subscribe(event_type, handler)

    def post(self, step: Callable[[], None]) -> None:
        """Run ``step`` in call control's queue (callbacks from outside, e.g. the media server)."""
        self._post(step)

    def add_resource(
        self, call: Call, family: int, *, play: str = "", bridge: str = "", device: str = ""
    ) -> Leg:
        """A connected leg of ``call`` ending on a media server endpoint (``ResourceDriver``)."""
        assert self.media is not None
        self._leg_seq += 1
        leg = Leg(f"L{self._leg_seq}", Direction.OUTBOUND, "media", self._clock)
        leg.call = call
        driver = ResourceDriver(
            self._engine(),
            self.media,
            resource_handle(call.id, leg.id),
            family,
            play=play,
            bridge=bridge,
            device=device,
        )
        leg.driver = driver
        driver.leg = leg
        call.resources.append(leg)
        self._legs[leg.id] = leg
        self._resources[driver.handle] = leg
        self._fire(leg, LegEvent.OFFER)
        self._fire(leg, LegEvent.CONNECT)
        return leg

    def add_port(
        self,
        call: Call,
        family: int,
        *,
        bridge: str = "",
        pin: str = "",
        play: str = "",
        early: bool = False,
        device: str = "",
        loop: bool = True,
        name: str = "conference",
    ) -> Leg:
        """A fork of ``call`` answered by a media server endpoint (a meet-me bridge port,
        or an announcement played as early media); ``name`` is its device name (CDRs)."""
        assert self.media is not None
        leg = self._new_leg(Direction.OUTBOUND, EARLY_MEDIA_DEVICE if early else name)
        leg.call = call
        driver = ResourceDriver(
            self._engine(),
            self.media,
            resource_handle(call.id, leg.id),
            family,
            bridge=bridge,
            pin=pin,
            play=play,
            early=early,
            device=device,
            loop=loop,
        )
        leg.driver = driver
        driver.leg = leg
        call.forks.append(leg)
        if bridge:
            call.called_device = call.called_device or "conference"
        self._resources[driver.handle] = leg
        return leg

    def new_inbound(self, driver: LegDriver, device: str) -> Leg:
        return self._new_leg(Direction.INBOUND, device, driver=driver)

    def forget(self, leg: Leg) -> None:
        """Drop a stand-in leg that a transfer replaced, without telling anyone."""
        leg.state = LegState.RELEASED
        self._legs.pop(leg.id, None)
        on_device = self._by_device.get(leg.device)
        if on_device is not None:
            on_device.pop(leg.id, None)
            if not on_device:
                del self._by_device[leg.device]
