"""The call coverage side of the engine: what phones and applications set.

``CoverageOps`` is mixed into ``CallEngine``. Adapters (a SIP feature code
is analysed in core; an SCCP softkey, later the web and CTI) change a line's
forward all, a device's do not disturb and hunt group login, and a
voicemail system a line's message waiting, through these methods. Each
returns at once, changes ``features`` (:mod:`offhook.core.features.state`)
and publishes the change on the bus; the calls these settings steer are
in ``core.routing`` and ``core.features`` (forward, hunt, pickup, park).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from offhook.core.causes import Cause
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import Forward, LineInfo, PlanSnapshot
from offhook.core.features import barge, hunt, park
from offhook.core.features.codes import WITH_NUMBER
from offhook.core.features.linestate import LineStates
from offhook.core.features.state import FeatureState, Mwi
from offhook.core.records import DndChanged, ForwardChanged, HuntLoginChanged, MwiChanged

if TYPE_CHECKING:
    from offhook.core.bus import EventBus
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg

DEFAULT_CODES = {
    "forward_all": "*21",
    "forward_all_off": "#21",
    "dnd_on": "*78",
    "dnd_off": "*79",
    "pickup": "*8",
    "directed_pickup": "**",
    "voicemail": "*97",
    "park": "*68",
    "hunt_toggle": "*36",
    "barge": "*33",
}


class CoverageOps:
    _bus: EventBus
    features: FeatureState
    lines: LineStates
    codes: dict[str, str]
    cfna_timer: float
    max_forward_hops: int

    if TYPE_CHECKING:

        def snapshot(self) -> PlanSnapshot: ...
        def _post(self, step: Callable[[], None]) -> None: ...

    def _init_coverage(self) -> None:
        self.features = FeatureState()
        self.lines = LineStates(self._bus)  # busy-lamp state of every line in a call
        hunt.memory(cast("CallEngine", self))  # members' idle times, from the first call on
        self.codes = dict(DEFAULT_CODES)  # feature name -> code ("" or absent: off)
        self.cfna_timer = 12.0  # seconds before forward no answer (a line may override)
        self.max_forward_hops = 12

    def digit_codes(self) -> tuple[frozenset[str], frozenset[str]]:
        """(codes dialled as they are, codes a number follows): for overlap dialling
        (``DigitCollector(..., codes=, number_codes=)``)."""
        plain = {c for name, c in self.codes.items() if c and name not in WITH_NUMBER}
        numbered = {c for name, c in self.codes.items() if c and name in WITH_NUMBER}
        return frozenset(plain), frozenset(numbered)

    # ------------------------------------------------------------ lines
    def line_of(self, device: str, dn: str = "") -> LineInfo | None:
        """``device``'s line ``dn`` (its first line when ``dn`` is ""), or None."""
        for line in self.snapshot().lines_of(device):
            if not dn or line.dn == dn:
                return line
        return None

    def forward_all_of(self, dn: str, partition: str = "") -> Forward | None:
        """Where ``dn`` forwards all its calls now (a phone's setting beats the plan's)."""
        snapshot = self.snapshot()
        line = snapshot.line(dn, partition)
        planned = line.forward_all if line is not None else None
        override = self.features.forward_all.get((dn, partition))
        if override is None:
            return planned
        if not override:
            return None
        return Forward(override, planned.css if planned is not None else "")

    def forward_css(self, device: str, line: LineInfo, forward: Forward | None) -> str:
        """The CSS a forward of ``line`` is analysed with: its own, else the device's."""
        if forward is not None and forward.css:
            return forward.css
        info = self.snapshot().device(device)
        return info.css if info is not None else ""

    def set_forward_all(self, device: str, dn: str, destination: str | None) -> int | None:
        """Forward all of ``device``'s line ``dn`` to ``destination`` ("" off, None: the plan's).

        Refused (a Q.850 cause returned, nothing changed) when the device has no
        such line (1), or the destination is not a number the line's forward
        all CSS reaches (1 unallocated, or the dial plan's cause), or is the
        line itself (25, a loop). None when set.
        """
        line = self.line_of(device, dn)
        if line is None:
            return int(Cause.UNALLOCATED_NUMBER)
        if destination:
            if destination == line.dn:
                return 25
            snapshot = self.snapshot()
            css = self.forward_css(device, line, line.forward_all)
            decision = snapshot.dialplan.route(css, destination, line.dn)
            if not decision.routable or decision.outcome in (Outcome.PICKUP, Outcome.PARK):
                return decision.cause or int(Cause.UNALLOCATED_NUMBER)
        event = ForwardChanged(line.dn, line.partition, destination, device)
        self.features.apply(event)
        self._bus.publish(event)
        return None

    # ------------------------------------------------------------ devices
    def dnd(self, device: str) -> bool:
        return device in self.features.dnd

    def set_dnd(self, device: str, on: bool) -> bool:
        """Do not disturb on ``device`` on or off; False for a device the plan lacks."""
        if self.snapshot().device(device) is None:
            return False
        if (device in self.features.dnd) != on:
            event = DndChanged(device, on)
            self.features.apply(event)
            self._bus.publish(event)
        return True

    def hunt_logged_in(self, device: str) -> bool:
        return device not in self.features.hunt_logged_out

    def set_hunt_login(self, device: str, logged_in: bool) -> bool:
        """Log ``device`` into (or out of) every hunt group; False for an unknown device."""
        if self.snapshot().device(device) is None:
            return False
        if self.hunt_logged_in(device) != logged_in:
            event = HuntLoginChanged(device, logged_in)
            self.features.apply(event)
            self._bus.publish(event)
        return True

    # ------------------------------------------------------------ voicemail
    def voicemail_pilot(self, device: str, dn: str = "") -> str:
        """The voicemail number of ``device``'s line ``dn`` ("" when it has none)."""
        line = self.line_of(device, dn)
        if line is None:
            return ""
        shared = self.snapshot().line(line.dn, line.partition)
        return line.voicemail or (shared.voicemail if shared is not None else "")

    def messages(self, dn: str, partition: str = "") -> Mwi:
        return self.features.messages(dn, partition)

    def set_mwi(
        self, dn: str, waiting: bool, new: int = 0, old: int = 0, partition: str | None = None
    ) -> bool:
        """Message waiting on line ``dn`` (in ``partition``, or wherever the DN is).

        False (nothing changed) when the plan has no such line.
        """
        snapshot = self.snapshot()
        entry = snapshot.dns.get(dn)
        if entry is None or (partition is not None and entry.partition != partition):
            return False
        state = Mwi(waiting, max(0, new), max(0, old))
        if self.features.messages(dn, entry.partition) != state:
            event = MwiChanged(dn, entry.partition, state.waiting, state.new, state.old)
            self.features.apply(event)
            self._bus.publish(event)
        return True

    # ------------------------------------------------------------ other workers
    def adopt(self, event: ForwardChanged | DndChanged | HuntLoginChanged | MwiChanged) -> None:
        """A setting another worker of the node made (``offhook.workers``): held and
        published here as if made here, so this worker's calls, lamps and NOTIFYs follow it."""
        if isinstance(event, ForwardChanged | MwiChanged):
            known = self.snapshot().line(event.dn, event.partition) is not None
        else:
            known = self.snapshot().device(event.device) is not None
        if not known or self.features.holds(event):
            return  # not in this worker's plan (bounded by it), or nothing new
        self.features.apply(event)
        self._bus.publish(event)

    # ------------------------------------------------------------ barge
    def barge(self, leg: Leg, setup: Setup) -> None:
        """``leg`` (a new call from an appearance of a shared line) joins the call in
        progress on another appearance of that line (Barge, cBarge; see features.barge).

        ``leg.line`` must name the shared line; ``setup.media`` is the phone's
        offer (None: delayed, as SCCP phones do).
        """
        engine = cast("CallEngine", self)
        self._post(partial(engine._do_setup, leg, setup, partial(barge.start, engine)))

    # ------------------------------------------------------------ park
    def park(self, leg: Leg) -> None:
        """Park the party connected to ``leg`` (SCCP Park softkey); ``leg`` is released.

        The park number is shown to ``leg``'s device (``show_display``) before
        it is released; with no free number the call stays as it was.
        """
        self._post(partial(park.park_leg, cast("CallEngine", self), leg))
