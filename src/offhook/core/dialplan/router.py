"""Call routing by the dial plan: digits in, a routing decision out.

Theory of operation
-------------------
:class:`DialPlan` is built once from a :class:`DialPlanSpec` (a snapshot of
the configuration; a plan change builds a new one). Construction validates
every reference and raises :class:`DialPlanError` with the path of the first
offending record, then puts every directory number (kind ``dn``), meet-me
conference number (``meetme``), route pattern (``route``) and translation
pattern (``translation``) into one :class:`PatternIndex`. A meet-me number
is an exact number like a DN, and like a DN it may not share its partition
with an equal DN or pattern.

:meth:`DialPlan.route` is en bloc digit analysis, as CallManager does it:

1. The caller's calling search space gives the ordered partitions searched
   (the null partition ``""`` is always searched, last).
2. The closest complete match wins. A translation pattern transforms the
   called and calling numbers and the analysis starts again with the
   translation's own CSS; after ``max_translations`` translations (or when a
   translation brings back a state already seen) the call is stopped as a
   loop, as CallManager stops translation loops.
3. A directory number routes to its line; a meet-me number to its
   conference (``Outcome.MEETME``, ``Decision.meetme``); a hunt pilot, pickup
   group number or call park number to its feature (``Outcome.HUNT``,
   ``PICKUP``, ``PARK`` and the ``Decision`` field of that name); a route pattern is either blocked
   or applies its transformations and expands its route list into the
   ordered trunks to try (route groups in list order; within a group
   top-down, or circular starting one further on each call).
4. No complete match: ``incomplete`` when a longer number could still match
   (SIP answers 484), ``unknown`` otherwise. A number in a partition outside
   the caller's CSS does not exist for that caller: ``unknown``, not blocked.

Q.850 causes of the non-routable outcomes: unknown -> 1 (unallocated number);
blocked -> the route pattern's ``block_cause`` (21 call rejected by default;
a blocked translation pattern gives 21); incomplete -> 28 (invalid number
format, "address incomplete"); loop -> 25 (exchange routing error: Q.850
defines it for a call released on reaching a hop-counter limit, which is what
a translation loop is).

:meth:`DialPlan.overlap` is the digit-by-digit view (SCCP phones, MGCP
lines): need more digits, route now, route when the inter-digit timer (T302)
expires, or no match.

Sans-IO and synchronous; the only state besides the index is the per-group
counter of circular route groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from offhook.core.dialplan.index import IndexEntry, PatternIndex
from offhook.core.dialplan.model import (
    NO_TRANSFORM,
    CallPark,
    CtiPort,
    CtiRoutePoint,
    DialPlanSpec,
    DirectoryNumber,
    Distribution,
    HuntPilot,
    MeetMe,
    PickupGroup,
    Presentation,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.dialplan.pattern import Pattern, PatternError, compile_pattern
from offhook.core.dialplan.transform import (
    apply_called,
    apply_calling,
    merge_override,
    validate_transform,
)

__all__ = [
    "CAUSE_BLOCKED",
    "CAUSE_INCOMPLETE",
    "CAUSE_LOOP",
    "CAUSE_UNKNOWN",
    "NULL_PARTITION",
    "Decision",
    "DialPlan",
    "DialPlanError",
    "Outcome",
    "OverlapState",
    "Step",
    "TrunkChoice",
]

NULL_PARTITION = ""
_MEETME_RE = re.compile(r"\+?[0-9*#]{1,32}")  # an exact number; a leading + is literal
_PIN_RE = re.compile(r"[0-9]{1,16}")

# Q.850 cause values of the non-routable outcomes (see the module docstring).
CAUSE_UNKNOWN = 1  # unallocated (unassigned) number
CAUSE_BLOCKED = 21  # call rejected (a blocked translation pattern)
CAUSE_LOOP = 25  # exchange routing error (hop limit reached)
CAUSE_INCOMPLETE = 28  # invalid number format (address incomplete)


ROUTE_CACHE = 4096
"""Most decisions one :class:`DialPlan` keeps (see :meth:`DialPlan.route`)."""


class DialPlanError(ValueError):
    """A plan that cannot be used: ``path`` says which record, ``message`` why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Outcome(StrEnum):
    DN = "dn"
    MEETME = "meetme"  # a meet-me conference number: ``Decision.meetme``
    HUNT = "hunt"  # a hunt pilot: ``Decision.hunt``
    PICKUP = "pickup"  # a pickup group's number (GPickUp): ``Decision.pickup``
    PARK = "park"  # a call park number (``Decision.called``): ``Decision.park``
    ROUTE = "route"
    BLOCKED = "blocked"
    INCOMPLETE = "incomplete"
    UNKNOWN = "unknown"
    LOOP = "loop"


_ROUTABLE = frozenset(
    {Outcome.DN, Outcome.MEETME, Outcome.HUNT, Outcome.PICKUP, Outcome.PARK, Outcome.ROUTE}
)


class OverlapState(StrEnum):
    NEED_MORE = "need_more"
    ROUTE_NOW = "route_now"
    NO_MATCH = "no_match"
    ROUTE_ON_TIMEOUT = "route_on_timeout"  # complete, but longer possible: T302 decides


@dataclass(frozen=True, slots=True)
class Step:
    """One pattern matched during analysis (the dialed number analyzer's trace)."""

    kind: str  # "dn" | "meetme" | "hunt" | "pickup" | "park" | "route" | "translation"
    pattern: str
    partition: str
    searched: tuple[str, ...]  # the partitions searched, in order
    called_in: str
    called_out: str
    calling_in: str
    calling_out: str
    called_transform: Transform = NO_TRANSFORM
    calling_transform: Transform = NO_TRANSFORM
    presentation: Presentation | None = None
    blocked: bool = False


@dataclass(frozen=True, slots=True)
class TrunkChoice:
    """One trunk to try, with the numbers after its route group member's transforms."""

    trunk: Trunk
    group: str
    called: str
    calling: str
    presentation: Presentation | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    called: str
    calling: str
    presentation: Presentation | None = None
    dn: DirectoryNumber | None = None
    route_pattern: RoutePattern | None = None
    route_list: RouteList | None = None
    trunks: tuple[TrunkChoice, ...] = ()
    steps: tuple[Step, ...] = ()
    cause: int = 0  # Q.850, for blocked/incomplete/unknown/loop; 0 when routable
    meetme: MeetMe | None = None  # the conference, for Outcome.MEETME
    hunt: HuntPilot | None = None  # for Outcome.HUNT
    pickup: PickupGroup | None = None  # for Outcome.PICKUP
    park: CallPark | None = None  # the range ``called`` is in, for Outcome.PARK

    @property
    def routable(self) -> bool:
        return self.outcome in _ROUTABLE


class DialPlan:
    """The analyzer for one dial plan snapshot."""

    def __init__(self, spec: DialPlanSpec) -> None:
        self.spec = spec
        self._partitions: frozenset[str] = frozenset(spec.partitions) | {NULL_PARTITION}
        self._css: dict[str, tuple[str, ...]] = {}
        self._trunks: dict[str, Trunk] = {}
        self._groups: dict[str, RouteGroup] = {}
        self._lists: dict[str, RouteList] = {}
        # Circular route groups: where the next call starts, by group name.
        self._rotation: dict[str, int] = {}
        # Decisions already made on this snapshot (see ``route``): at most
        # ROUTE_CACHE of them, emptied when full (dialled digits come from outside).
        self._decisions: dict[tuple[tuple[str, ...], str, str, int], Decision] = {}
        entries = list(self._validate(spec))
        self._index = PatternIndex(entries)

    # -- construction -----------------------------------------------------

    def _validate(self, spec: DialPlanSpec) -> Iterator[IndexEntry]:
        for i, name in enumerate(spec.partitions):
            if not name:
                raise DialPlanError(f"partitions[{i}]", "empty partition name")
        if len(set(spec.partitions)) != len(spec.partitions):
            dup = _first_duplicate(spec.partitions)
            raise DialPlanError("partitions", f"partition {dup!r} is listed twice")

        for i, css in enumerate(spec.calling_search_spaces):
            path = f"calling_search_spaces[{i}] ({css.name})"
            if css.name in self._css:
                raise DialPlanError(path, f"calling search space {css.name!r} is defined twice")
            for p in css.partitions:
                if p not in self._partitions:
                    raise DialPlanError(path, f"partition {p!r} does not exist")
            self._css[css.name] = _with_null(css.partitions)

        for i, trunk in enumerate(spec.trunks):
            path = f"trunks[{i}] ({trunk.name})"
            if trunk.name in self._trunks:
                raise DialPlanError(path, f"trunk {trunk.name!r} is defined twice")
            self._check_css(path, trunk.css)
            self._trunks[trunk.name] = trunk

        for i, group in enumerate(spec.route_groups):
            path = f"route_groups[{i}] ({group.name})"
            if group.name in self._groups:
                raise DialPlanError(path, f"route group {group.name!r} is defined twice")
            if not isinstance(group.distribution, Distribution):
                raise DialPlanError(path, f"unknown distribution {group.distribution!r}")
            if not group.members:
                raise DialPlanError(path, "route group has no members")
            for j, member in enumerate(group.members):
                mpath = f"{path}.members[{j}] ({member.trunk})"
                if member.trunk not in self._trunks:
                    raise DialPlanError(mpath, f"trunk {member.trunk!r} does not exist")
                self._check_transforms(mpath, member.called_transform, member.calling_transform)
            self._groups[group.name] = group

        for i, rl in enumerate(spec.route_lists):
            path = f"route_lists[{i}] ({rl.name})"
            if rl.name in self._lists:
                raise DialPlanError(path, f"route list {rl.name!r} is defined twice")
            if not rl.groups:
                raise DialPlanError(path, "route list has no route groups")
            for g in rl.groups:
                if g not in self._groups:
                    raise DialPlanError(path, f"route group {g!r} does not exist")
            self._lists[rl.name] = rl

        seen: dict[tuple[str, str], str] = {}

        def entry(
            path: str, text: str, partition: str, kind: str, payload: object, urgent: bool
        ) -> IndexEntry:
            if partition not in self._partitions:
                raise DialPlanError(path, f"partition {partition!r} does not exist")
            key = (text, partition)
            if key in seen:
                raise DialPlanError(
                    path, f"{text!r} in partition {partition!r} is already used by {seen[key]}"
                )
            seen[key] = path
            try:
                pattern = compile_pattern(text)
            except PatternError as exc:
                raise DialPlanError(path, f"invalid pattern: {exc}") from None
            return IndexEntry(pattern, partition, kind, payload, urgent)

        for i, dn in enumerate(spec.directory_numbers):
            path = f"directory_numbers[{i}] ({dn.dn})"
            # A DN is its own pattern; an E.164 DN's leading + is a literal (\+).
            text = "\\" + dn.dn if dn.dn.startswith("+") else dn.dn
            yield entry(path, text, dn.partition, "dn", dn, False)

        for i, mm in enumerate(spec.meetme):
            path = f"meetme[{i}] ({mm.number})"
            if not _MEETME_RE.fullmatch(mm.number):
                raise DialPlanError(path, f"{mm.number!r} is not a number (+, 0-9, * and #)")
            if mm.pin and not _PIN_RE.fullmatch(mm.pin):
                raise DialPlanError(path, "a PIN is 1-16 digits")
            if mm.max_parties < 2:
                raise DialPlanError(path, f"max_parties {mm.max_parties} is fewer than 2")
            text = "\\" + mm.number if mm.number.startswith("+") else mm.number
            yield entry(path, text, mm.partition, "meetme", mm, False)

        for i, hp in enumerate(spec.hunt_pilots):
            path = f"hunt_pilots[{i}] ({hp.pattern})"
            if not _MEETME_RE.fullmatch(hp.pattern):
                raise DialPlanError(path, f"{hp.pattern!r} is not a number (+, 0-9, * and #)")
            text = "\\" + hp.pattern if hp.pattern.startswith("+") else hp.pattern
            yield entry(path, text, hp.partition, "hunt", hp, False)

        for i, pg in enumerate(spec.pickup_groups):
            if not pg.number:
                continue  # a group only its members pick up from (PickUp)
            path = f"pickup_groups[{i}] ({pg.number})"
            if not _MEETME_RE.fullmatch(pg.number):
                raise DialPlanError(path, f"{pg.number!r} is not a number (+, 0-9, * and #)")
            text = "\\" + pg.number if pg.number.startswith("+") else pg.number
            yield entry(path, text, pg.partition, "pickup", pg, False)

        for i, park in enumerate(spec.call_park):
            path = f"call_park[{i}] ({park.first}-{park.last})"
            first, last = park.first, park.last
            if not (first.isdigit() and last.isdigit() and len(first) == len(last)):
                raise DialPlanError(path, "a park range is two numbers of the same length")
            if int(last) < int(first) or int(last) - int(first) >= 1000:
                raise DialPlanError(path, "a park range runs up, with at most 1000 numbers")
            for number in park.numbers():
                yield entry(f"{path} {number}", number, park.partition, "park", park, False)

        self._check_cti(spec)

        for i, rp in enumerate(spec.route_patterns):
            path = f"route_patterns[{i}] ({rp.pattern})"
            if rp.route_list is None and not rp.block:
                raise DialPlanError(path, "route pattern has no route list and is not blocked")
            if rp.route_list is not None and rp.route_list not in self._lists:
                # Refused even on a blocked pattern: unblocking it must not
                # reveal a dangling reference later.
                raise DialPlanError(path, f"route list {rp.route_list!r} does not exist")
            if rp.block and not 1 <= rp.block_cause <= 127:
                raise DialPlanError(path, f"block_cause {rp.block_cause} is not a Q.850 cause")
            self._check_transforms(path, rp.called_transform, rp.calling_transform)
            yield entry(path, rp.pattern, rp.partition, "route", rp, rp.urgent)

        for i, tp in enumerate(spec.translation_patterns):
            path = f"translation_patterns[{i}] ({tp.pattern})"
            self._check_css(path, tp.css)
            self._check_transforms(path, tp.called_transform, tp.calling_transform)
            yield entry(path, tp.pattern, tp.partition, "translation", tp, tp.urgent)

    def _check_cti(self, spec: DialPlanSpec) -> None:
        """CTI route points and ports: their DN is a directory number on them alone."""
        dns = {(d.dn, d.partition): d.devices for d in spec.directory_numbers}
        devices: list[tuple[str, CtiRoutePoint | CtiPort]] = [
            *(
                (f"cti_route_points[{i}] ({d.name})", d)
                for i, d in enumerate(spec.cti_route_points)
            ),
            *((f"cti_ports[{i}] ({d.name})", d) for i, d in enumerate(spec.cti_ports)),
        ]
        for path, device in devices:
            if device.partition not in self._partitions:
                raise DialPlanError(path, f"partition {device.partition!r} does not exist")
            self._check_css(path, device.css)
            carriers = dns.get((device.dn, device.partition))
            if carriers is None:
                raise DialPlanError(path, f"DN {device.dn!r} is no directory number of the plan")
            if carriers != (device.name,):
                others = ", ".join(d for d in carriers if d != device.name)
                raise DialPlanError(path, f"DN {device.dn!r} is also on {others}")

    def _check_css(self, path: str, name: str) -> None:
        # "" is the "no CSS" of a device or trunk: the null partition only.
        if name and name not in self._css:
            raise DialPlanError(path, f"calling search space {name!r} does not exist")

    @staticmethod
    def _check_transforms(path: str, called: Transform, calling: Transform) -> None:
        try:
            validate_transform(called)
        except ValueError as exc:
            raise DialPlanError(f"{path}.called_transform", str(exc)) from None
        try:
            validate_transform(calling, calling=True)
        except ValueError as exc:
            raise DialPlanError(f"{path}.calling_transform", str(exc)) from None

    # -- lookups ----------------------------------------------------------

    def css_partitions(self, name: str) -> tuple[str, ...]:
        """The partitions CSS ``name`` searches, in order, the null partition last.

        An unknown name (or ``""``, no CSS) searches the null partition only.
        """
        return self._css.get(name, (NULL_PARTITION,))

    def trunk(self, name: str) -> Trunk | None:
        return self._trunks.get(name)

    def _searched(self, css: str | Sequence[str]) -> tuple[str, ...]:
        if isinstance(css, str):
            return self.css_partitions(css)
        return _with_null(css)

    # -- en bloc ----------------------------------------------------------

    def route(
        self,
        css: str | Sequence[str],
        digits: str,
        calling: str = "",
        max_translations: int = 10,
        *,
        rotate: bool = True,
    ) -> Decision:
        """Analyse a whole number dialed by a caller with ``css``.

        ``css`` is a CSS name or an explicit sequence of partitions.
        ``rotate=False`` leaves the circular route groups' counters alone
        (the dialed number analyzer looks without routing).

        A plan snapshot never changes, so the same number from the same
        partitions always gets the same decision: it is kept and given again
        (``Decision`` is immutable), unless it tries a circular route group,
        whose order moves on with every call.
        """
        searched = self._searched(css)
        key = (searched, digits, calling, max_translations)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        decided = self._analyse(searched, digits, calling, max_translations, rotate)
        if not self._rotating(decided):
            if len(self._decisions) >= ROUTE_CACHE:
                self._decisions.clear()
            self._decisions[key] = decided
        return decided

    def _rotating(self, decision: Decision) -> bool:
        """Whether ``decision`` went through a circular route group (an order that moves)."""
        if decision.route_list is None:
            return False
        for name in decision.route_list.groups:
            group = self._groups[name]
            if group.distribution is Distribution.CIRCULAR and len(group.members) > 1:
                return True
        return False

    def _analyse(
        self,
        searched: tuple[str, ...],
        digits: str,
        calling: str,
        max_translations: int,
        rotate: bool,
    ) -> Decision:
        called = digits
        presentation: Presentation | None = None
        steps: list[Step] = []
        translations = 0
        states = {(called, calling, searched)}

        def decision(
            outcome: Outcome,
            cause: int = 0,
            dn: DirectoryNumber | None = None,
            meetme: MeetMe | None = None,
            hunt: HuntPilot | None = None,
            pickup: PickupGroup | None = None,
            park: CallPark | None = None,
        ) -> Decision:
            return Decision(
                outcome,
                called,
                calling,
                presentation,
                dn=dn,
                steps=tuple(steps),
                cause=cause,
                meetme=meetme,
                hunt=hunt,
                pickup=pickup,
                park=park,
            )

        while True:
            analysis = self._index.analyze(called, searched)
            match = analysis.match
            if match is None:
                if analysis.more_possible:
                    return decision(Outcome.INCOMPLETE, CAUSE_INCOMPLETE)
                return decision(Outcome.UNKNOWN, CAUSE_UNKNOWN)
            payload = match.payload

            if isinstance(payload, TranslationPattern):
                if payload.block:
                    steps.append(
                        _step(match, searched, called, called, calling, calling, blocked=True)
                    )
                    return decision(Outcome.BLOCKED, CAUSE_BLOCKED)
                translations += 1
                if translations > max_translations:
                    return decision(Outcome.LOOP, CAUSE_LOOP)
                new_called = apply_called(payload.called_transform, called, match.pattern)
                new_calling, pres = apply_calling(payload.calling_transform, calling)
                steps.append(
                    _step(
                        match,
                        searched,
                        called,
                        new_called,
                        calling,
                        new_calling,
                        payload.called_transform,
                        payload.calling_transform,
                        pres,
                    )
                )
                called, calling = new_called, new_calling
                presentation = pres or presentation
                searched = self.css_partitions(payload.css)
                state = (called, calling, searched)
                if state in states:
                    # The same number analysed with the same CSS again: it
                    # can only go round (CallManager stops translation loops).
                    return decision(Outcome.LOOP, CAUSE_LOOP)
                states.add(state)
                continue

            if isinstance(payload, DirectoryNumber):
                steps.append(_step(match, searched, called, called, calling, calling))
                return decision(Outcome.DN, dn=payload)

            if isinstance(payload, MeetMe):
                steps.append(_step(match, searched, called, called, calling, calling))
                return decision(Outcome.MEETME, meetme=payload)

            if isinstance(payload, HuntPilot | PickupGroup | CallPark):
                steps.append(_step(match, searched, called, called, calling, calling))
                if isinstance(payload, HuntPilot):
                    return decision(Outcome.HUNT, hunt=payload)
                if isinstance(payload, PickupGroup):
                    return decision(Outcome.PICKUP, pickup=payload)
                return decision(Outcome.PARK, park=payload)

            if isinstance(payload, RoutePattern):
                return self._route_pattern(
                    payload, match, searched, called, calling, presentation, steps, rotate
                )

            raise TypeError(f"unexpected index payload {payload!r}")  # pragma: no cover

    def _route_pattern(
        self,
        rp: RoutePattern,
        match: IndexEntry,
        searched: tuple[str, ...],
        called: str,
        calling: str,
        presentation: Presentation | None,
        steps: list[Step],
        rotate: bool,
    ) -> Decision:
        if rp.block:
            steps.append(_step(match, searched, called, called, calling, calling, blocked=True))
            return Decision(
                Outcome.BLOCKED,
                called,
                calling,
                presentation,
                route_pattern=rp,
                steps=tuple(steps),
                cause=rp.block_cause,
            )
        pattern = match.pattern
        out_called = apply_called(rp.called_transform, called, pattern)
        out_calling, pres = apply_calling(rp.calling_transform, calling)
        steps.append(
            _step(
                match,
                searched,
                called,
                out_called,
                calling,
                out_calling,
                rp.called_transform,
                rp.calling_transform,
                pres,
            )
        )
        out_presentation = pres or presentation
        assert rp.route_list is not None  # checked at construction
        route_list = self._lists[rp.route_list]
        choices: list[TrunkChoice] = []
        for group in (self._groups[name] for name in route_list.groups):
            for member in self._members(group, rotate):
                # Route list details override the route pattern's settings
                # field by field, and apply to the digits the pattern matched.
                m_called_t = merge_override(rp.called_transform, member.called_transform)
                m_calling_t = merge_override(rp.calling_transform, member.calling_transform)
                m_called = apply_called(m_called_t, called, pattern)
                m_calling, m_pres = apply_calling(m_calling_t, calling)
                choices.append(
                    TrunkChoice(
                        self._trunks[member.trunk],
                        group.name,
                        m_called,
                        m_calling,
                        m_pres or presentation,
                    )
                )
        return Decision(
            Outcome.ROUTE,
            out_called,
            out_calling,
            out_presentation,
            route_pattern=rp,
            route_list=route_list,
            trunks=tuple(choices),
            steps=tuple(steps),
        )

    def _members(self, group: RouteGroup, rotate: bool) -> tuple[RouteGroupMember, ...]:
        members = group.members
        if group.distribution is Distribution.CIRCULAR and len(members) > 1:
            start = self._rotation.get(group.name, 0) % len(members)
            if rotate:
                self._rotation[group.name] = (start + 1) % len(members)
            return members[start:] + members[:start]
        return members

    # -- overlap ----------------------------------------------------------

    def overlap(self, css: str | Sequence[str], digits: str) -> OverlapState:
        """What to do after another digit of an overlap-dialed number.

        ``route_now``: an urgent pattern matches, or a pattern matches and no
        longer number could; ``route_on_timeout``: a pattern matches but a
        longer one could too (the inter-digit timer T302 decides);
        ``need_more``: only longer numbers could match; ``no_match``: nothing
        can (reorder tone).
        """
        analysis = self._index.analyze(digits, self._searched(css))
        if analysis.match is None:
            return OverlapState.NEED_MORE if analysis.more_possible else OverlapState.NO_MATCH
        if analysis.match.urgent or not analysis.more_possible:
            return OverlapState.ROUTE_NOW
        return OverlapState.ROUTE_ON_TIMEOUT


def _with_null(partitions: Sequence[str]) -> tuple[str, ...]:
    out = tuple(p for p in partitions if p != NULL_PARTITION)
    return (*out, NULL_PARTITION)


def _first_duplicate(items: Sequence[str]) -> str:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return ""  # pragma: no cover


def _step(
    match: IndexEntry,
    searched: tuple[str, ...],
    called_in: str,
    called_out: str,
    calling_in: str,
    calling_out: str,
    called_t: Transform = NO_TRANSFORM,
    calling_t: Transform = NO_TRANSFORM,
    presentation: Presentation | None = None,
    *,
    blocked: bool = False,
) -> Step:
    pattern: Pattern = match.pattern
    return Step(
        match.kind,
        pattern.text,
        match.partition,
        searched,
        called_in,
        called_out,
        calling_in,
        calling_out,
        called_t,
        calling_t,
        presentation,
        blocked,
    )
