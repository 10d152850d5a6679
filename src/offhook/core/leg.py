"""A leg: one endpoint's side of a call, with an explicit state machine.

Theory of operation
-------------------
An inbound leg is created by an adapter when its device places a call
(``CallEngine.inbound_leg``) and set up with ``CallEngine.setup``; an outbound
leg is created by the engine for each binding it rings, and offered through
the driver a ``LegFactory`` made for it. Both walk the same states::

    inbound:   IDLE -SETUP-> SETUP ---.
    outbound:  IDLE -OFFER-> OFFERED -+-PROGRESS-> PROCEEDING -ALERT-> ALERTING
                                      '------------------------------------+-CONNECT-> CONNECTED
    any state but RELEASED -RELEASE-> RELEASED

Progress may follow alerting (new early media), alerting may repeat;
mid-call media (MEDIA) only happens in CONNECTED; digits once set up.
The tables below are the whole truth: anything not in them raises
``InvalidTransition`` (the engine checks ``can`` first and logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from offhook.common.errors import OffhookError

if TYPE_CHECKING:
    from offhook.common.clock import Clock
    from offhook.common.location import Binding
    from offhook.core.call import Call
    from offhook.core.media import MediaDescription
    from offhook.core.ports import LegDriver


class CoreError(OffhookError):
    """Call control was asked something that makes no sense in its state."""


class InvalidTransition(CoreError):
    def __init__(self, leg_id: str, state: LegState, event: LegEvent) -> None:
        super().__init__(f"leg {leg_id}: {event.value} not allowed in {state.value}")
        self.leg_id = leg_id
        self.state = state
        self.event = event


class Direction(StrEnum):
    INBOUND = "inbound"  # the device placed the call (the caller's side, A)
    OUTBOUND = "outbound"  # the engine rings the device (the called side, B)


class LegState(StrEnum):
    IDLE = "idle"
    SETUP = "setup"  # inbound: the caller's Setup was received
    OFFERED = "offered"  # outbound: the Setup was sent to the device
    PROCEEDING = "proceeding"
    ALERTING = "alerting"
    CONNECTED = "connected"
    RELEASED = "released"


class LegEvent(StrEnum):
    SETUP = "setup"
    OFFER = "offer"
    PROGRESS = "progress"
    ALERT = "alert"
    CONNECT = "connect"
    MEDIA = "media"
    DIGITS = "digits"
    RELEASE = "release"


def _table(
    first_event: LegEvent, first_state: LegState
) -> dict[tuple[LegState, LegEvent], LegState]:
    S, E = LegState, LegEvent
    table = {
        (S.IDLE, first_event): first_state,
        (S.IDLE, E.RELEASE): S.RELEASED,
        (first_state, E.PROGRESS): S.PROCEEDING,
        (first_state, E.ALERT): S.ALERTING,
        (first_state, E.CONNECT): S.CONNECTED,
        (first_state, E.DIGITS): first_state,
        (first_state, E.RELEASE): S.RELEASED,
        (S.PROCEEDING, E.PROGRESS): S.PROCEEDING,
        (S.PROCEEDING, E.ALERT): S.ALERTING,
        (S.PROCEEDING, E.CONNECT): S.CONNECTED,
        (S.PROCEEDING, E.DIGITS): S.PROCEEDING,
        (S.PROCEEDING, E.RELEASE): S.RELEASED,
        (S.ALERTING, E.PROGRESS): S.ALERTING,
        (S.ALERTING, E.ALERT): S.ALERTING,
        (S.ALERTING, E.CONNECT): S.CONNECTED,
        (S.ALERTING, E.DIGITS): S.ALERTING,
        (S.ALERTING, E.RELEASE): S.RELEASED,
        (S.CONNECTED, E.MEDIA): S.CONNECTED,
        (S.CONNECTED, E.DIGITS): S.CONNECTED,
        (S.CONNECTED, E.RELEASE): S.RELEASED,
    }
    return table


INBOUND_TRANSITIONS: Mapping[tuple[LegState, LegEvent], LegState] = _table(
    LegEvent.SETUP, LegState.SETUP
)
OUTBOUND_TRANSITIONS: Mapping[tuple[LegState, LegEvent], LegState] = _table(
    LegEvent.OFFER, LegState.OFFERED
)
TRANSITIONS: Mapping[Direction, Mapping[tuple[LegState, LegEvent], LegState]] = {
    Direction.INBOUND: INBOUND_TRANSITIONS,
    Direction.OUTBOUND: OUTBOUND_TRANSITIONS,
}


class Leg:
    """One side of a call. Adapters hold it as an opaque handle and pass it back."""

    __slots__ = (
        "_clock",
        "answered_at",
        "binding",
        "call",
        "cause",
        "created_at",
        "css",
        "device",
        "direction",
        "driver",
        "id",
        "line",
        "media",
        "quiet",
        "released_at",
        "requested",
        "state",
    )

    def __init__(
        self,
        leg_id: str,
        direction: Direction,
        device: str,
        clock: Clock,
        *,
        binding: Binding | None = None,
        driver: LegDriver | None = None,
    ) -> None:
        self.id = leg_id
        self.direction = direction
        self.device = device
        self.binding = binding
        self.driver = driver
        # The calling search space this leg's calls are routed with, when it is
        # not the device's own (a call arriving over a trunk uses the trunk's).
        self.css: str | None = None
        # The directory number (and its partition) this leg is an appearance
        # of: the caller's line for an inbound leg, the DN rung for a fork
        # ("" when none: a trunk, a media resource).
        self.line: tuple[str, str] = ("", "")
        self.call: Call | None = None
        self.state = LegState.IDLE
        self.cause: int | None = None
        self.media: MediaDescription | None = None  # latest description from this device
        # A stand-in call control keeps for itself (click-to-dial's originator):
        # its state changes are not published, CTI never finds it.
        self.quiet = False
        # What an application asked this leg's device to do (``RemoteAction``
        # value: "hold", "resume"), until the device is seen doing it.
        self.requested = ""
        self._clock = clock
        self.created_at = clock.wall()
        self.answered_at: float | None = None
        self.released_at: float | None = None

    def __repr__(self) -> str:
        return f"<Leg {self.id} {self.direction.value} {self.device!r} {self.state.value}>"

    @property
    def released(self) -> bool:
        return self.state is LegState.RELEASED

    @property
    def transitions(self) -> Mapping[tuple[LegState, LegEvent], LegState]:
        return TRANSITIONS[self.direction]

    def can(self, event: LegEvent) -> bool:
        return (self.state, event) in self.transitions

    def fire(self, event: LegEvent) -> LegState:
        """Apply ``event``; returns the previous state. Raises ``InvalidTransition``."""
        new = self.transitions.get((self.state, event))
        if new is None:
            raise InvalidTransition(self.id, self.state, event)
        old, self.state = self.state, new
        if new is LegState.CONNECTED and old is not LegState.CONNECTED:
            self.answered_at = self._clock.wall()
        elif new is LegState.RELEASED:
            self.released_at = self._clock.wall()
        return old
