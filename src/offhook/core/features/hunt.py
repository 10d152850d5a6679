"""Hunt pilots, hunt lists and line groups: a call to a pilot looks for a member who answers.

A hunt pilot (a number in a partition, ``HuntPilot``) names a hunt list: line
groups tried in list order. A line group (``LineGroup``) offers the call to
its member DNs in the order its distribution gives (:func:`member_order`):

============  ===============================================================
distribution  order of the members for a new call
============  ===============================================================
top-down      always from the first member
circular      from the member after the one last offered a call (per group,
              for the whole node)
longest-idle  the member idle longest first (the last time its line was
              offered a call or finished one); members on a call last
broadcast     every member at once; the group's ``rna_timeout`` applies to
              the whole group
============  ===============================================================

A member rings for the group's ``rna_timeout`` (ring no answer reversion:
its phones are released with cause 19). What happens when a member (a
broadcast group: the whole group) fails is the group's step for that
failure (``on_no_answer``, ``on_busy``, ``on_unavailable``) and what is
left to try (``NEXT``):

=============  ==================  ===========  ==========================
group's step   a member left here  a group left  the hunt
=============  ==================  ===========  ==========================
next-member    yes                 -            offers the next member
next-member    no                  yes          enters the next group
next-group     -                   yes          enters the next group
(any)          (nothing left)      no           the final step
stop           -                   -            the final step
=============  ==================  ===========  ==========================

Which failure a cause is: 17 busy; 18 and 19 no answer; anything else
(20 no registration, 27 out of order, ...) unavailable (``FAILURE_OF``).

Skipped without counting as a failure: a member DN that is the caller's own
line, and the devices of a member that are logged out of hunt groups (HLog,
``*36``) or have do not disturb on, or are the caller's device; a member
with no device left is skipped. Members' own forward settings are ignored:
a hunt rings the member's phones directly.

The final step: the pilot's ``final_forward`` (analysed with ``final_css``,
else the caller's CSS, as a redirection by the pilot with reason ``hunt``),
or the call ends with ``final_cause`` (17 when every member tried was busy
or nobody could be offered the call, 19 when someone rang unanswered, else
the best cause of the failures).

The record: every member's offer carries the pilot as the original called
number and a ``Diversion`` (pilot, ``hunt``); when a member answers, the
call's setup takes them, so the CDR shows the member's DN as called, the
pilot as original called and last redirecting number, reason ``hunt``;
``call.extra`` has ``hunt_pilot`` (and ``hunt_group`` once answered).

Node-wide memory (``HuntMemory``, one per engine): the circular position of
each group and when each member DN was last active, from the legs' state
changes on the bus. Bounded by the plan: only the line groups and member DNs
of the current plan are kept.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING

from offhook.core.causes import Cause, select_cause
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import HuntDistribution, HuntStep, LineGroup
from offhook.core.events import Diversion, RedirectReason
from offhook.core.features import forward
from offhook.core.features.linestate import IN_USE
from offhook.core.records import LegStateChanged

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.dialplan.model import DirectoryNumber, HuntPilot
    from offhook.core.directory import PlanSnapshot
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg

log = logging.getLogger(__name__)


class Failure(StrEnum):
    """What a member (or a broadcast group) did instead of answering."""

    NO_ANSWER = "no-answer"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


class Move(StrEnum):
    MEMBER = "next-member"
    GROUP = "next-group"
    FINAL = "final"


FAILURE_OF: Mapping[int, Failure] = {
    int(Cause.USER_BUSY): Failure.BUSY,
    int(Cause.NO_USER_RESPONDING): Failure.NO_ANSWER,
    int(Cause.NO_ANSWER): Failure.NO_ANSWER,
}
"""Which failure a member's cause is; causes not listed: ``Failure.UNAVAILABLE``."""

STEP_OF: Mapping[Failure, Callable[[LineGroup], HuntStep]] = {
    Failure.NO_ANSWER: attrgetter("on_no_answer"),
    Failure.BUSY: attrgetter("on_busy"),
    Failure.UNAVAILABLE: attrgetter("on_unavailable"),
}
"""Which of the group's settings says what a failure does."""

_NEXT_MEMBER, _NEXT_GROUP, _STOP = HuntStep.NEXT_MEMBER, HuntStep.NEXT_GROUP, HuntStep.STOP

NEXT: Mapping[tuple[HuntStep, bool, bool], Move] = {
    # (the group's step, a member of this group left, a group left) -> the move
    (_NEXT_MEMBER, True, True): Move.MEMBER,
    (_NEXT_MEMBER, True, False): Move.MEMBER,
    (_NEXT_MEMBER, False, True): Move.GROUP,
    (_NEXT_MEMBER, False, False): Move.FINAL,
    (_NEXT_GROUP, True, True): Move.GROUP,
    (_NEXT_GROUP, True, False): Move.FINAL,
    (_NEXT_GROUP, False, True): Move.GROUP,
    (_NEXT_GROUP, False, False): Move.FINAL,
    (_STOP, True, True): Move.FINAL,
    (_STOP, True, False): Move.FINAL,
    (_STOP, False, True): Move.FINAL,
    (_STOP, False, False): Move.FINAL,
}


SKIPPED = -1  # (not a cause) every member offered was skipped


def failure_of(cause: int) -> Failure:
    return FAILURE_OF.get(cause, Failure.UNAVAILABLE)


def next_move(group: LineGroup, cause: int, member_left: bool, group_left: bool) -> Move:
    """What the hunt does after a member of ``group`` failed with ``cause``."""
    step = STEP_OF[failure_of(cause)](group)
    return NEXT[(step, member_left, group_left)]


def final_cause(causes: Iterable[int]) -> int:
    """The cause a hunt that found nobody ends with (``causes``: its members' failures)."""
    seen = list(causes)
    if all(c == Cause.USER_BUSY for c in seen):
        return int(Cause.USER_BUSY)  # also: nobody could be offered the call
    if any(failure_of(c) is Failure.NO_ANSWER for c in seen):
        return int(Cause.NO_ANSWER)
    return select_cause(seen)


# ------------------------------------------------------------ distribution (pure)
def member_order(
    group: LineGroup,
    *,
    last: str | None = None,
    last_active: Mapping[str, float] | None = None,
    busy: Collection[str] = (),
) -> tuple[str, ...]:
    """The order ``group``'s members are offered a new call in.

    ``last`` is the member last offered a call in this group (circular);
    ``last_active`` when each member DN was last offered or finished a call,
    ``busy`` the members on a call now (longest idle). Broadcast: every
    member, in list order (they ring together).
    """
    members = group.members
    match group.distribution:
        case HuntDistribution.CIRCULAR if last in members:
            start = members.index(last) + 1
            return members[start:] + members[:start]
        case HuntDistribution.LONGEST_IDLE:
            times = last_active or {}
            return tuple(sorted(members, key=lambda dn: (dn in busy, times.get(dn, float("-inf")))))
        case _:
            return members


@dataclass(slots=True)
class HuntMemory:
    """What a node remembers between hunts: circular positions and member activity.

    Sans-IO: times are passed in. ``sync`` keeps it to the current plan's
    line groups and member DNs.
    """

    last_offered: dict[str, str] = field(default_factory=dict)  # group -> member DN
    last_active: dict[str, float] = field(default_factory=dict)  # member DN -> when
    members: frozenset[str] = frozenset()  # every member DN of the plan
    groups: frozenset[str] = frozenset()
    plan: object = None  # the snapshot ``members`` and ``groups`` come from

    def sync(self, snapshot: PlanSnapshot) -> None:
        if snapshot is self.plan:
            return
        self.plan = snapshot
        self.groups = frozenset(snapshot.line_groups)
        self.members = frozenset(m for g in snapshot.line_groups.values() for m in g.members)
        self.last_offered = {g: m for g, m in self.last_offered.items() if g in self.groups}
        self.last_active = {m: t for m, t in self.last_active.items() if m in self.members}

    def active(self, dn: str, now: float) -> None:
        """Member ``dn``'s line was offered a call, or one of its calls changed or ended."""
        if dn in self.members:
            self.last_active[dn] = now

    def offered(self, group: str, dn: str, now: float) -> None:
        """The hunt offered a call to ``dn`` in ``group``."""
        if group in self.groups:
            self.last_offered[group] = dn
        self.active(dn, now)

    def order(self, group: LineGroup, busy: Collection[str] = ()) -> tuple[str, ...]:
        return member_order(
            group,
            last=self.last_offered.get(group.name),
            last_active=self.last_active,
            busy=busy,
        )


# One memory per engine (per node), following the engine's bus; the
# subscription holds the engine weakly so that a dropped engine goes away.
_MEMORIES: weakref.WeakKeyDictionary[CallEngine, HuntMemory] = weakref.WeakKeyDictionary()


def memory(engine: CallEngine) -> HuntMemory:
    """``engine``'s hunt memory (made, and subscribed to its bus, with the engine)."""
    found = _MEMORIES.get(engine)
    if found is not None:
        return found
    mem = HuntMemory()
    ref = weakref.ref(engine)

    def on_leg(event: LegStateChanged) -> None:
        owner = ref()
        if owner is not None and event.line:
            mem.sync(owner.snapshot())  # the plan a node runs on changes rarely: cheap
            mem.active(event.line, owner.monotonic())

    engine.subscribe(LegStateChanged, on_leg)
    _MEMORIES[engine] = mem
    return mem


# ------------------------------------------------------------ members
_INDEX: tuple[object, dict[str, tuple[DirectoryNumber, ...]]] = (None, {})


def member_dn(snapshot: PlanSnapshot, dn: str, partition: str) -> DirectoryNumber | None:
    """Member ``dn`` as the dial plan has it: in ``partition`` (the pilot's), the null
    partition, or else the first partition that has it."""
    global _INDEX
    plan, index = _INDEX
    if plan is not snapshot:
        built: dict[str, list[DirectoryNumber]] = {}
        for entry in snapshot.dialplan_spec.directory_numbers:
            built.setdefault(entry.dn, []).append(entry)
        index = {k: tuple(v) for k, v in built.items()}
        _INDEX = (snapshot, index)
    found = index.get(dn, ())
    for wanted in (partition, ""):
        for entry in found:
            if entry.partition == wanted:
                return entry
    return found[0] if found else None


def ringable(engine: CallEngine, call: Call, dn: DirectoryNumber) -> DirectoryNumber | None:
    """``dn`` with only the devices a hunt may ring; None when none is left."""
    if dn.dn == call.a_leg.line[0]:
        return None  # the caller's own line
    caller = call.a_leg.device
    devices = tuple(
        d for d in dn.devices if d != caller and engine.hunt_logged_in(d) and not engine.dnd(d)
    )
    if not devices:
        return None
    return dn if devices == dn.devices else replace(dn, devices=devices)


# ------------------------------------------------------------ the hunt
@dataclass(slots=True, eq=False)
class HuntCoverage:
    """One call hunting over a pilot's hunt list (``call.coverage`` while it does)."""

    pilot: HuntPilot
    setup: Setup  # what members are offered (``called`` set per member)
    groups: tuple[LineGroup, ...]
    memory: HuntMemory
    group_index: int = -1
    order: tuple[str, ...] = ()  # the current group's members, in offer order
    next_member: int = 0  # index in ``order``
    ringing: tuple[str, ...] = ()  # the member DNs ringing now
    seq: int = 0  # which offer a ring no answer timer belongs to
    causes: list[int] = field(default_factory=list)  # every member failure
    passes_declines: bool = True  # a member declining: the hunt goes on (CallManager)

    @property
    def group(self) -> LineGroup:
        return self.groups[self.group_index]

    # -- the Coverage protocol
    def failed(self, engine: CallEngine, call: Call, cause: int) -> bool:
        if call.coverage is not self:
            return False
        self._failed(engine, call, cause)
        return True

    def answered(self, engine: CallEngine, call: Call, leg: Leg) -> None:
        dn = leg.line[0]
        if dn not in self.ringing:
            return
        self.memory.active(dn, engine.monotonic())
        setup = call.setup
        call.setup = replace(
            setup,
            called=dn,
            original_called=setup.original_called or setup.called,
            diversions=self.setup.diversions,
        )
        call.extra["hunt_group"] = self.group.name

    # -- moving on
    def _failed(self, engine: CallEngine, call: Call, cause: int) -> None:
        self.ringing = ()
        self._advance(engine, call, self._after(cause))

    def _after(self, cause: int) -> Move:
        """The move after the member (a broadcast group: the group) failed with ``cause``."""
        self.causes.append(cause)
        member_left = self.next_member < len(self.order)
        group_left = self.group_index + 1 < len(self.groups)
        return next_move(self.group, cause, member_left, group_left)

    def _advance(self, engine: CallEngine, call: Call, move: Move) -> None:
        """Offer the call as ``move`` says, on and on until something rings or the end."""
        while True:
            if move is Move.FINAL:
                self._final(engine, call)
                return
            if move is Move.GROUP and not self._enter_next_group(engine):
                move = Move.FINAL
                continue
            members = self._take_members()
            if not members:
                move = Move.GROUP
                continue
            cause = self._offer(engine, call, members)
            if cause is None:
                return
            if cause == SKIPPED:
                move = Move.MEMBER  # nobody to ring there: no failure either
                continue
            move = self._after(cause)

    def _enter_next_group(self, engine: CallEngine) -> bool:
        if self.group_index + 1 >= len(self.groups):
            return False
        self.group_index += 1
        group = self.group
        busy: Collection[str] = ()
        if group.distribution is HuntDistribution.LONGEST_IDLE:
            busy = _busy_members(engine, group.members, self.pilot.partition)
        self.order = self.memory.order(group, busy)
        self.next_member = 0
        return True

    def _take_members(self) -> tuple[str, ...]:
        """The next member to offer (a broadcast group: every member), taken."""
        if self.next_member >= len(self.order):
            return ()
        if self.group.distribution is HuntDistribution.BROADCAST:
            taken = self.order[self.next_member :]
        else:
            taken = self.order[self.next_member : self.next_member + 1]
        self.next_member += len(taken)
        return taken

    def _offer(self, engine: CallEngine, call: Call, members: tuple[str, ...]) -> int | None:
        """Ring ``members``: None when something rings, ``SKIPPED`` when none could
        be offered the call, else the cause why nothing rings."""
        snapshot = engine.snapshot()
        now = engine.monotonic()
        group = self.group
        ringing: list[str] = []
        causes: list[int] = []
        call.failures.clear()  # (the engine's cause, when these fail, is theirs)
        for member in members:
            entry = member_dn(snapshot, member, self.pilot.partition)
            dn = ringable(engine, call, entry) if entry is not None else None
            if dn is None:
                log.debug("call %s: hunt member %s skipped", call.id, member)
                continue
            self.memory.offered(group.name, member, now)
            cause = engine.ring_dn(call, dn, replace(self.setup, called=member), dnd=False)
            if cause is None:
                ringing.append(member)
            else:
                causes.append(cause)
        if not ringing:
            return select_cause(causes) if causes else SKIPPED
        self.ringing = tuple(ringing)
        call.ring_deadline = None  # the group's ring no answer timer bounds the ringing
        self.seq += 1
        engine.later(group.rna_timeout, partial(self._no_answer, engine, call, self.seq))
        log.info("call %s: hunt %s rings %s", call.id, self.pilot.pattern, ",".join(ringing))
        return None

    def _no_answer(self, engine: CallEngine, call: Call, seq: int) -> None:
        if call.ended or call.connected or call.coverage is not self or seq != self.seq:
            return
        for fork in call.ringing_forks():
            engine.release_leg(fork, Cause.NO_ANSWER)
        self._failed(engine, call, Cause.NO_ANSWER)

    def _final(self, engine: CallEngine, call: Call) -> None:
        pilot = self.pilot
        destination = pilot.final_forward
        if destination:
            css = pilot.final_css or engine.css_of(call.a_leg)
            hops = len(call.setup.diversions)
            decision = engine.snapshot().dialplan.route(css, destination, call.setup.calling.number)
            if hops >= engine.max_forward_hops:
                log.info("call %s: pilot %s final forward: %d hops", call.id, pilot.pattern, hops)
            elif not decision.routable or decision.outcome in (Outcome.PICKUP, Outcome.PARK):
                log.info(
                    "call %s: pilot %s final forward %s not routable with css %r",
                    call.id,
                    pilot.pattern,
                    destination,
                    css,
                )
            else:
                for fork in call.ringing_forks():
                    engine.release_leg(fork, Cause.NO_ANSWER)
                by = Diversion(pilot.pattern, RedirectReason.HUNT)
                forward.moved(engine, call, destination, css, by)
                return
        engine.end_call(call, final_cause(self.causes))


def _busy_members(engine: CallEngine, members: Iterable[str], partition: str) -> set[str]:
    """The member DNs with a device on a call now (here, or on another worker of the
    node: its line is in use, ``core.features.linestate``)."""
    snapshot = engine.snapshot()
    busy: set[str] = set()
    for member in members:
        entry = member_dn(snapshot, member, partition)
        if entry is None:
            continue
        if any(engine.device_calls(d) for d in entry.devices) or (
            engine.lines.state(entry.dn, entry.partition) == IN_USE
        ):
            busy.add(member)
    return busy


def start(engine: CallEngine, call: Call, setup: Setup, pilot: HuntPilot) -> None:
    """Hunt ``call`` (to ``setup.called``, the pilot's number) over ``pilot``'s hunt list."""
    snapshot = engine.snapshot()
    names = snapshot.hunt_lists.get(pilot.hunt_list, ())
    groups = tuple(snapshot.line_groups[n] for n in names if n in snapshot.line_groups)
    mem = memory(engine)
    mem.sync(snapshot)
    call.extra["hunt_pilot"] = pilot.pattern
    offer = replace(
        setup,
        original_called=setup.original_called or setup.called,
        diversions=(*setup.diversions, Diversion(pilot.pattern, RedirectReason.HUNT)),
    )
    hunt = HuntCoverage(pilot, offer, groups, mem)
    call.coverage = hunt
    hunt._advance(engine, call, Move.GROUP)
