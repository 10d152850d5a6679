"""Routing a call: from the dialled number to the legs that ring.

``RoutingOps`` is mixed into ``CallEngine``. A new call's number is first
checked against the feature codes (``features.codes``: they never reach the
dial plan, so never a trunk), then analysed with the caller's calling search
space (``analyse``), and the decision is carried out: a directory number rings
its devices through call coverage (``features.forward``: forward all, busy,
no answer, unregistered, do not disturb), a hunt pilot hunts
(``features.hunt``), a pickup group number picks up (``features.pickup``), a
park number parks or retrieves (``features.park``), a meet-me number joins
its conference, a route pattern tries its trunks in route list order.

A feature that sends the call elsewhere calls ``analyse`` again with the new
number and the CSS that applies (``features.forward.redirect``); the call,
its caller's leg and its CDR stay the same.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from offhook.common.location import Binding, LocationStore
from offhook.core.call import Call
from offhook.core.causes import Cause, select_cause
from offhook.core.dialplan.model import DirectoryNumber, Presentation
from offhook.core.dialplan.router import Decision, Outcome
from offhook.core.directory import PlanSnapshot
from offhook.core.events import PartyInfo, Setup
from offhook.core.features import codes, conference, forward, hunt, park, pickup
from offhook.core.leg import Direction, Leg, LegEvent
from offhook.core.ports import LegDriver, LegFactory
from offhook.core.records import CallStarted

if TYPE_CHECKING:
    from offhook.common.clock import Clock
    from offhook.core.bus import EventBus

log = logging.getLogger(__name__)

NODE_PROTOCOL = "node"
"""The protocol of a leg to another worker of this node itself (``ring_worker``)."""


class RoutingOps:
    _snapshot: Callable[[], PlanSnapshot]
    _locations: LocationStore
    _clock: Clock
    _bus: EventBus
    _factories: dict[str, LegFactory]
    _ring_heap: list[tuple[float, str]]
    _trunk_up: Callable[[str], bool]
    ring_timeout: float | None

    if TYPE_CHECKING:

        def device_calls(self, device: str) -> int: ...
        def _end_call(self, call: Call, cause: int) -> None: ...
        def _fire(self, leg: Leg, event: LegEvent, cause: int | None = None) -> None: ...
        def _drive(self, leg: Leg, action: Callable[[LegDriver], None]) -> None: ...
        def _release_leg(self, leg: Leg, cause: int, *, notify: bool) -> None: ...
        def _new_leg(
            self,
            direction: Direction,
            device: str,
            *,
            driver: LegDriver | None = None,
            binding: Binding | None = None,
        ) -> Leg: ...

    # ------------------------------------------------------------ entry
    def _over_limit(self, snapshot: PlanSnapshot, device: str, extra: int = 0) -> bool:
        info = snapshot.device(device)
        if info is None or info.max_calls <= 0:
            return False
        return self.device_calls(device) - extra >= info.max_calls

    def _route(self, call: Call, leg: Leg, setup: Setup) -> None:
        snapshot = self._snapshot()
        calling = self._calling_party(snapshot, leg, setup.calling)
        self._bus.publish(CallStarted(call.id, calling, setup.called, leg.device, call.start))

        # The caller's own leg already counts towards its device's calls.
        if self._over_limit(snapshot, leg.device, extra=1):
            self._end_call(call, Cause.USER_BUSY)
            return
        if codes.intercept(self.engine, call, leg, setup):
            return
        self.analyse(call, setup, self.css_of(leg))

    def ring_one(self, device: str, call: Call, leg: Leg, setup: Setup) -> None:
        """Offer ``call`` to this process's bindings of ``device`` only (``ring_device``).

        The fork is no appearance of a line here: the owner's fork towards the
        device is, and its view of the line is shared with every worker, so
        the line is not counted twice and a pickup finds the call at its owner.
        """
        call.internal = True
        snapshot = self._snapshot()
        calling = self._calling_party(snapshot, leg, setup.calling)
        started = CallStarted(call.id, calling, setup.called, leg.device, call.start, True)
        self._bus.publish(started)
        now = self._clock.monotonic()
        bindings = [b for b in self._locations.bindings(device, now) if b.worker < 0]
        if not bindings:
            self._end_call(call, Cause.SUBSCRIBER_ABSENT)
            return
        if self._over_limit(snapshot, device):
            self._end_call(call, Cause.USER_BUSY)
            return
        self.arm_ring_timeout(call)  # the owner's coverage decides; this is a backstop
        for binding in bindings:
            self._start_fork(call, binding, setup)
        if not call.ringing_forks():
            self._end_call(call, select_cause(call.failures))

    def ring_worker(self, call: Call, worker: int) -> bool:
        """Offer ``call`` as it is to worker ``worker`` of this node (a ``node`` leg, for
        what only that worker can do: a pickup of a call it owns); False: none to offer."""
        if NODE_PROTOCOL not in self._factories:
            return False
        binding = Binding(NODE_PROTOCOL, NODE_PROTOCOL, f"node:w{worker}", math.inf, worker=worker)
        return self._start_fork(call, binding, call.setup) is not None

    @property
    def engine(self) -> CallEngine:
        return cast("CallEngine", self)

    def css_of(self, leg: Leg) -> str:
        """The calling search space ``leg``'s calls are routed with."""
        if leg.css is not None:
            return leg.css
        info = self._snapshot().device(leg.device)
        return info.css if info is not None else ""

    def analyse(self, call: Call, setup: Setup, css: str) -> None:
        """Route ``call`` to ``setup.called`` as seen from ``css`` and carry the decision out."""
        snapshot = self._snapshot()
        leg = call.a_leg
        calling = self._calling_party(snapshot, leg, setup.calling)
        decision = snapshot.dialplan.route(css, setup.called, calling.number)
        calling = presented(calling, decision.calling, decision.presentation)
        engine = self.engine
        match decision.outcome:
            case Outcome.ROUTE:
                self._route_trunks(call, setup, calling, decision)
            case Outcome.MEETME if decision.meetme is not None:
                conference.meetme(engine, call, leg, setup, decision.meetme)
            case Outcome.HUNT if decision.hunt is not None:
                hunt.start(engine, call, self._out(setup, calling, decision), decision.hunt)
            case Outcome.PICKUP if decision.pickup is not None:
                pickup.from_group(engine, call, decision.pickup.name)
            case Outcome.PARK if decision.park is not None:
                park.dialled(engine, call, decision.called, decision.park)
            case Outcome.DN if decision.dn is not None:
                forward.offer(engine, call, self._out(setup, calling, decision), decision.dn)
            case _:
                self._end_call(call, decision.cause or Cause.UNALLOCATED_NUMBER)

    @staticmethod
    def _out(setup: Setup, calling: PartyInfo, decision: Decision) -> Setup:
        """The setup the called side gets: the analysed numbers, the caller's media."""
        return Setup(
            calling=calling,
            called=decision.called,
            media=setup.media,
            original_called=setup.original_called or setup.called,
            diversions=setup.diversions,
        )

    # ------------------------------------------------------------ directory numbers
    def ring_dn(
        self, call: Call, dn: DirectoryNumber, setup: Setup, *, dnd: bool = True
    ) -> int | None:
        """Ring every live binding of ``dn``'s devices (not the caller's own device).

        Returns None when something rings, else the Q.850 cause why nothing
        does (20 no binding, 17 all busy or do not disturb). ``dnd`` False:
        ring devices with do not disturb too (a hunt ignores it).
        """
        snapshot = self._snapshot()
        now = self._clock.monotonic()
        targets: list[Binding] = []
        failures: list[int] = []
        engine = self.engine
        for device in dn.devices:
            if device == call.a_leg.device:
                continue  # never ring the phone the call comes from
            info = snapshot.device(device)
            bindings = self._locations.bindings(device, now)
            if dnd and engine.dnd(device) and info is not None and info.dnd_option == "reject":
                failures.append(Cause.USER_BUSY)
            elif not bindings:
                failures.append(Cause.SUBSCRIBER_ABSENT)
            elif self._over_limit(snapshot, device):
                failures.append(Cause.USER_BUSY)
            else:
                targets.extend(bindings)
        call.failures.extend(failures)
        if not targets:
            return select_cause(failures, default=Cause.USER_BUSY)
        self.arm_ring_timeout(call)
        silent = replace(setup, silent=True)
        for binding in targets:
            # Do not disturb with the ringer off: offered, shown, not rung.
            quiet = dnd and engine.dnd(binding.device)
            self._start_fork(call, binding, silent if quiet else setup, line=(dn.dn, dn.partition))
        if not call.ringing_forks():
            return select_cause(call.failures)
        return None

    def arm_ring_timeout(self, call: Call) -> None:
        if self.ring_timeout is not None:
            call.ring_deadline = self._clock.monotonic() + self.ring_timeout
            heapq.heappush(self._ring_heap, (call.ring_deadline, call.id))

    # ------------------------------------------------------------ trunks
    def _route_trunks(
        self, call: Call, setup: Setup, calling: PartyInfo, decision: Decision
    ) -> None:
        """Try the route list's trunks in order, failing over (see ``_do_release``)."""
        for choice in decision.trunks:
            out = Setup(
                calling=presented(calling, choice.calling, choice.presentation),
                called=choice.called,
                media=setup.media,
                original_called=setup.original_called or setup.called,
                diversions=setup.diversions,
            )
            call.trunk_queue.append((choice, out))
        self.arm_ring_timeout(call)
        if not self._next_trunk(call):
            self._end_call(call, select_cause(call.failures, default=Cause.NO_CIRCUIT_AVAILABLE))

    def _next_trunk(self, call: Call) -> bool:
        """Offer the call to the next usable trunk; False when none is left."""
        while call.trunk_queue:
            choice, out = call.trunk_queue.pop(0)
            trunk = choice.trunk
            if not self._trunk_up(trunk.name):
                # Its OPTIONS pings fail: skip it without waiting for Timer B.
                log.info("call %s: trunk %s is down, skipped", call.id, trunk.name)
                call.failures.append(Cause.NETWORK_OUT_OF_ORDER)
                call.hunt.append((trunk.name, Cause.NETWORK_OUT_OF_ORDER))
                continue
            if trunk.max_calls > 0 and self.device_calls(trunk.name) >= trunk.max_calls:
                log.info("call %s: trunk %s is at its limit, skipped", call.id, trunk.name)
                call.failures.append(Cause.NO_CIRCUIT_AVAILABLE)
                call.hunt.append((trunk.name, Cause.NO_CIRCUIT_AVAILABLE))
                continue
            # The adapter builds the request target from the called number
            # and the trunk's address (an empty contact).
            binding = Binding(
                device=trunk.name,
                protocol=trunk.protocol,
                contact="",
                expires_at=float("inf"),
                source=(trunk.host, trunk.port),
                transport=trunk.transport,
            )
            self._start_fork(call, binding, out)
            if call.ringing_forks():
                return True
        return False

    # ------------------------------------------------------------ legs
    def _calling_party(self, snapshot: PlanSnapshot, leg: Leg, party: PartyInfo) -> PartyInfo:
        """The caller as the called side sees it: device and name filled from the plan."""
        name = party.name
        if not name:
            info = snapshot.device(leg.device)
            if info is not None:
                name = next((ln.display for ln in info.lines if ln.dn == party.number), "")
                name = name or info.display
        return PartyInfo(
            number=party.number,
            name=name,
            device=party.device or leg.device,
            presentation_allowed=party.presentation_allowed,
        )

    def _start_fork(
        self, call: Call, binding: Binding, setup: Setup, line: tuple[str, str] = ("", "")
    ) -> Leg | None:
        """Offer ``call`` to ``binding``; ``line``: the DN the new leg is an appearance of."""
        factory = self._factories.get(binding.protocol)
        if factory is None:
            log.warning("no leg factory for protocol %r (%s)", binding.protocol, binding.device)
            call.failures.append(Cause.SERVICE_UNAVAILABLE)
            return None
        leg = self._new_leg(Direction.OUTBOUND, binding.device, binding=binding)
        leg.call = call
        leg.line = line
        call.forks.append(leg)
        if not call.called_device:
            call.called_device = leg.device
        try:
            leg.driver = factory.create(binding, leg)
        except Exception:
            log.exception("leg factory %r failed for %s", binding.protocol, binding.device)
            call.failures.append(Cause.TEMPORARY_FAILURE)
            self._release_leg(leg, Cause.TEMPORARY_FAILURE, notify=False)
            return None
        self._fire(leg, LegEvent.OFFER)
        self._drive(leg, lambda d: d.offer(setup))
        return leg


def presented(party: PartyInfo, number: str, presentation: Presentation | None) -> PartyInfo:
    """``party`` as a transformation left it: its ``number``, and ``presentation`` if set."""
    if presentation is None and number == party.number:
        return party
    allowed = (
        party.presentation_allowed if presentation is None else presentation is Presentation.ALLOWED
    )
    return replace(party, number=number, presentation_allowed=allowed)


def line_of(snapshot: PlanSnapshot, device: str, number: str) -> tuple[str, str]:
    """The line of ``device`` a call from ``number`` is placed on (its first line otherwise)."""
    lines = snapshot.lines_of(device)
    for line in lines:
        if line.dn == number:
            return (line.dn, line.partition)
    return (lines[0].dn, lines[0].partition) if lines else ("", "")


if TYPE_CHECKING:
    from offhook.core.engine import CallEngine
