"""Registration history for real-time information: when each device last registered, and refusals.

Theory of operation. ``RegistrationIndex`` follows two bus events:
``RegistrationChanged`` (a device's first binding came, or its last went)
and ``RegistrationRejected`` (the node refused a registration: a SIP digest
failure on REGISTER, an SCCP RegisterReject). Per device it keeps a
``History``: the protocol, the wall-clock time of the last registration and
of the last unregistration, what the device's registration looked like
then (``last_binding``, asked of ``lookup`` when it registered: model,
firmware, address, for a device that is gone now), the last refusal
(``Rejection``: time, reason, source) and how many refusals there were.

Memory is bounded whatever arrives: a device of the plan (``known(name)``
true) has an entry in ``known`` (bounded by the plan); any other name (a
scanner trying names, a phone the plan does not have) goes into ``unknown``,
a least-recently-used table of at most ``max_unknown`` entries (1,000 by
default), so that a flood of made-up names replaces old entries instead of
growing the table. The plan changes: ``prune`` (called by ``histories``
when ``generation()`` moved) moves entries of devices that left the plan
into ``unknown``, and entries of devices the plan gained out of it.

Sans-IO: times come from the ``clock`` given (wall seconds); the bus is
only met in ``attach``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from offhook.common.location import Binding
from offhook.core.bus import EventBus, Unsubscribe
from offhook.core.records import RegistrationChanged, RegistrationRejected

MAX_UNKNOWN = 1000
"""Names not in the plan remembered at most (least recently seen dropped first)."""
MAX_NAME = 64
"""Characters of a claimed device name kept (a peer chooses it)."""
MAX_TEXT = 128
"""Characters of a reason or source kept."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused registration: when (wall seconds), why, and where from (``host:port``)."""

    time: float
    reason: str
    source: str


@dataclass(slots=True)
class History:
    """What the index knows of one device."""

    protocol: str
    last_registered: float | None = None
    last_unregistered: float | None = None
    last_binding: Binding | None = None
    last_rejection: Rejection | None = None
    rejections: int = 0
    registered: bool = False

    @property
    def rejected_last(self) -> bool:
        """The last thing that happened to it was a refusal (nothing since)."""
        r = self.last_rejection
        if r is None:
            return False
        later = [t for t in (self.last_registered, self.last_unregistered) if t is not None]
        return not self.registered and all(r.time >= t for t in later)


class RegistrationIndex:
    """Per-device registration history, bounded; see the module docstring."""

    def __init__(
        self,
        known: Callable[[str], bool],
        clock: Callable[[], float],
        *,
        lookup: Callable[[str], Binding | None] | None = None,
        generation: Callable[[], object] | None = None,
        max_unknown: int = MAX_UNKNOWN,
    ) -> None:
        if max_unknown < 0:
            raise ValueError("max_unknown must be >= 0")
        self._known_name = known
        self._clock = clock
        self._lookup = lookup
        self._generation = generation
        self._seen: object = generation() if generation is not None else None
        self.max_unknown = max_unknown
        self.known: dict[str, History] = {}
        self.unknown: OrderedDict[str, History] = OrderedDict()

    # -- the bus -----------------------------------------------------------

    def attach(self, bus: EventBus) -> Unsubscribe:
        """Follow ``bus``; returns what stops it."""
        stops = [
            bus.subscribe(RegistrationChanged, self.on_changed),
            bus.subscribe(RegistrationRejected, self.on_rejected),
        ]

        def stop() -> None:
            for unsubscribe in stops:
                unsubscribe()

        return stop

    def on_changed(self, ev: RegistrationChanged) -> None:
        now = self._clock()
        entry = self._entry(ev.device, ev.protocol)
        if entry is None:
            return
        entry.protocol = ev.protocol or entry.protocol
        entry.registered = ev.registered
        if ev.registered:
            entry.last_registered = now
            if self._lookup is not None:
                binding = self._lookup(ev.device)
                if binding is not None:
                    entry.last_binding = binding
        else:
            entry.last_unregistered = now

    def on_rejected(self, ev: RegistrationRejected) -> None:
        entry = self._entry(ev.device, ev.protocol)
        if entry is None:
            return
        entry.last_rejection = Rejection(
            self._clock(), _clip(ev.reason, MAX_TEXT), _clip(ev.source, MAX_TEXT)
        )
        entry.rejections += 1

    # -- reading -----------------------------------------------------------

    def get(self, name: str) -> History | None:
        """The history of ``name`` (without refreshing its place in the LRU)."""
        return self.known.get(name) or self.unknown.get(name)

    def histories(self) -> Iterator[tuple[str, History]]:
        """Every (name, history): the plan's devices', then the other names'."""
        self.prune()
        yield from list(self.known.items())
        yield from list(self.unknown.items())

    def __len__(self) -> int:
        return len(self.known) + len(self.unknown)

    def prune(self, force: bool = False) -> None:
        """Re-sort entries between ``known`` and ``unknown`` after the plan changed."""
        if self._generation is not None:
            current = self._generation()
            if current is self._seen and not force:
                return
            self._seen = current
        elif not force:
            return
        for name in [n for n in self.known if not self._known_name(n)]:
            self._remember_unknown(name, self.known.pop(name))
        for name in [n for n in self.unknown if self._known_name(n)]:
            self.known[name] = self.unknown.pop(name)

    # -- internals ---------------------------------------------------------

    def _entry(self, name: str, protocol: str) -> History | None:
        if not name:
            return None
        name = _clip(name, MAX_NAME)
        entry = self.known.get(name)
        if entry is not None:
            return entry
        if self._known_name(name):
            entry = self.unknown.pop(name, None) or History(protocol)
            self.known[name] = entry
            return entry
        if self.max_unknown == 0:
            return None
        entry = self.unknown.get(name)
        if entry is not None:
            self.unknown.move_to_end(name)
            return entry
        entry = History(protocol)
        self._remember_unknown(name, entry)
        return entry

    def _remember_unknown(self, name: str, entry: History) -> None:
        self.unknown[name] = entry
        self.unknown.move_to_end(name)
        while len(self.unknown) > self.max_unknown:
            self.unknown.popitem(last=False)


def _clip(text: str, size: int) -> str:
    return text[:size]
