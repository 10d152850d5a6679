"""A call: the inbound leg, the outbound legs rung for it, and its bookkeeping.

A call starts with the caller's inbound leg (A) and a ``Setup``. Routing adds
one outbound leg per binding rung (the forks); the first fork to connect
becomes the B leg and the others are released. The call ends when A or B
clears, when every fork failed, or on the ring timeout; ``CallEngine`` does
all of that — this module only holds the state and builds the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from offhook.core.causes import cause_text
from offhook.core.dialplan.router import TrunkChoice
from offhook.core.events import Setup
from offhook.core.features.coverage import Coverage
from offhook.core.leg import Leg, LegState
from offhook.core.media import MediaDescription
from offhook.core.records import CallRecord, CallStatus, LegStatus

if TYPE_CHECKING:
    from offhook.core.features.dial import Dial

AnswerHandler = Callable[[MediaDescription | None, int | None], None]


@dataclass(slots=True)
class PendingOffer:
    """A media offer sent to ``answerer`` on behalf of ``offerer``, not yet answered.

    ``offerer`` None: call control itself made the offer (a feature moving
    media); the answer goes to ``on_answer`` instead of a leg.
    """

    offerer: Leg | None
    answerer: Leg
    on_answer: AnswerHandler | None = field(default=None)


PICKUP_GROUP = "pickup-group"
PICKUP_LINE = "pickup-line"
RETRIEVE = "retrieve"
ASKS = (PICKUP_GROUP, PICKUP_LINE, RETRIEVE)


@dataclass(frozen=True, slots=True)
class WorkerAsk:
    """What a call's caller asks of the worker of this node that owns another call.

    ``PICKUP_GROUP``: pick up a call ringing in pickup group ``group``;
    ``PICKUP_LINE``: the call ringing ``line`` (a directed pickup);
    ``RETRIEVE``: the party parked on ``line`` (park number, partition).
    """

    kind: str
    group: str = ""
    line: tuple[str, str] = ("", "")


EARLY_MEDIA_DEVICE = "announcer"  # the device name of early media endpoints (ringback, prompts)


class Call:
    __slots__ = (
        "a_leg",
        "alerted",
        "announcing",
        "answer",
        "b_leg",
        "bridge",
        "called_device",
        "cause",
        "coverage",
        "deferred",
        "dial",
        "early_answer",
        "end",
        "ended",
        "extra",
        "failures",
        "forks",
        "holds",
        "hunt",
        "id",
        "internal",
        "peers",
        "pending",
        "relayed",
        "relayed_media",
        "resources",
        "ring_deadline",
        "ringback",
        "setup",
        "silent_holds",
        "start",
        "transfers",
        "trunk_queue",
        "visited",
        "worker_ask",
    )

    def __init__(self, call_id: str, a_leg: Leg, setup: Setup, start: float) -> None:
        self.id = call_id
        self.a_leg = a_leg
        self.setup = setup
        self.start = start
        self.forks: list[Leg] = []
        self.b_leg: Leg | None = None
        self.answer: float | None = None
        self.end: float | None = None
        self.ended = False
        self.cause: int | None = None
        self.called_device = ""
        self.failures: list[int] = []  # causes of failed forks, in arrival order
        # Offers in flight, by the id of the leg asked to answer.
        self.pending: dict[str, PendingOffer] = {}
        # Media peers that differ from A <-> B while a feature anchors media
        # (hold music, a bridge): leg id -> the leg its offers go to (None:
        # call control answers that leg's offers itself).
        self.peers: dict[str, Leg | None] = {}
        self.holds: dict[str, Leg] = {}  # holder's leg id -> the held party's leg
        # Holders whose hold offer went to the party as it came (no media server).
        self.silent_holds: set[str] = set()
        # A click-to-dial call (CTI make call): its state (features.dial); None otherwise.
        self.dial: Dial | None = None
        self.resources: list[Leg] = []  # legs ending on a media server
        self.announcing = 0  # the cause an announcement is being played for
        self.ringback = False  # the caller hears ringback from the media server
        # The first media relayed to the caller before answer: its dialog's SDP answer.
        self.early_answer: MediaDescription | None = None
        self.bridge = ""  # the bridge this call's parties talk through (a conference)
        self.extra: dict[str, str] = {}  # what a CDR adds (transfer links, bridge)
        # Offers that arrived while call control was moving this call's media.
        self.deferred: list[tuple[Leg, MediaDescription]] = []
        # Blind transfers under way, by the transferring leg's id: the stand-in
        # leg calling the target for the transferee.
        self.transfers: dict[str, Leg] = {}
        self.alerted = False
        self.relayed = False  # some Progress/Alerting was relayed to A
        self.relayed_media: MediaDescription | None = None
        self.ring_deadline: float | None = None  # monotonic
        # Trunks still to try, in route list order, when routed by a route pattern.
        self.trunk_queue: list[tuple[TrunkChoice, Setup]] = []
        self.hunt: list[tuple[str, int]] = []  # trunks that failed or were skipped
        # The feature that decides what happens when every fork failed or nobody
        # answers (see features.coverage); None: the call ends.
        self.coverage: Coverage | None = None
        # Directory numbers (dn, partition) this call was offered to: a forward
        # back to one of them is a loop.
        self.visited: set[tuple[str, str]] = set()
        # The far half of a call another worker of the node routed here (its node
        # leg, ``ring_device``): that worker keeps the call's record.
        self.internal = False
        # What another worker is asked to do for this call's caller (its ``node``
        # leg says so): a pickup or a park retrieval of a call that worker owns.
        self.worker_ask: WorkerAsk | None = None

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.setup.called!r} {self.state.value}>"

    @property
    def state(self) -> LegState:
        """The call's state is the caller's leg state (SETUP ... CONNECTED, RELEASED)."""
        return self.a_leg.state

    @property
    def connected(self) -> bool:
        return self.b_leg is not None

    def live_forks(self) -> list[Leg]:
        return [f for f in self.forks if not f.released]

    def ringing_forks(self) -> list[Leg]:
        """Live forks toward devices (not a ringback or announcement endpoint)."""
        return [f for f in self.forks if not f.released and f.device != EARLY_MEDIA_DEVICE]

    def legs(self) -> list[Leg]:
        return [self.a_leg, *self.forks, *self.resources]

    def other(self, leg: Leg) -> Leg | None:
        """The leg ``leg`` exchanges media with (A <-> B unless a feature anchors it), or None."""
        if leg.id in self.peers:
            return self.peers[leg.id]
        if self.b_leg is None:
            return None
        if leg is self.a_leg:
            return self.b_leg
        if leg is self.b_leg:
            return self.a_leg
        return None

    def record(self, end: float, cause: int, node: str = "") -> CallRecord:
        duration = 0 if self.answer is None else max(0, round(end - self.answer))
        last = self.setup.diversions[-1] if self.setup.diversions else None
        return CallRecord(
            call_id=self.id,
            calling=self.setup.calling.number,
            called=self.setup.called,
            original_called=self.setup.original_called or self.setup.called,
            calling_device=self.a_leg.device,
            called_device=self.called_device,
            start=self.start,
            answer=self.answer,
            end=end,
            duration=duration,
            cause=cause,
            cause_text=cause_text(cause),
            node=node,
            hunt=tuple(self.hunt),
            extra=tuple(sorted(self.extra.items())),
            last_redirecting=last.number if last is not None else "",
            redirect_reason=last.reason.value if last is not None else "",
            internal=self.internal,
        )

    def status(self) -> CallStatus:
        return CallStatus(
            call_id=self.id,
            calling=self.setup.calling.number,
            called=self.setup.called,
            state=self.state.value,
            legs=tuple(
                LegStatus(
                    leg.id,
                    leg.device,
                    leg.direction.value,
                    leg.state.value,
                    leg.binding.contact if leg.binding is not None else "",
                )
                for leg in self.legs()
                if not leg.quiet
            ),
            start=self.start,
            answer=self.answer,
        )
