"""Subscriptions of the notifier (RFC 6665): their state machine and a bounded table. Sans-IO.

Theory of operation. Each accepted SUBSCRIBE is a ``Subscription`` to one
event package of one resource (a line: (DN, partition)). The notifier
sends a NOTIFY when the subscription starts, when it is refreshed and on
every change of the resource, never more than one at a time per
subscription (a change while one is outstanding is sent, as full state,
once it is answered: bursts of changes coalesce). The table below is the
whole machine::

    IDLE     -CHANGE->   WAITING  send NOTIFY
    WAITING  -CHANGE->   STALE
    WAITING  -ANSWERED-> IDLE
    STALE    -ANSWERED-> WAITING  send NOTIFY (the latest state)
    IDLE     -END->      CLOSING  send the final NOTIFY (terminated)
    WAITING, STALE -END-> ENDING  (the final NOTIFY waits for the answer)
    ENDING   -ANSWERED-> CLOSING  send the final NOTIFY
    CLOSING  -ANSWERED-> ENDED    drop
    any live -FAILED->   ENDED    drop (481, timeout: the subscriber is gone)

END is an unsubscribe (Expires: 0), the expiry, or a refusal on refresh.
``SubscriptionTable.fire`` applies the table and returns the action for
the caller (the SIP side) to take; it drops ENDED subscriptions itself.

Bounded: at most ``Limits.per_device`` subscriptions per device and
``Limits.total`` in all; a new subscription of a device to the package and
resource it already watches replaces the old one (a phone that rebooted
and subscribes afresh). ``admit`` says whether one more fits. Expiry times
sit in a heap: ``next_timer()`` says when to call ``expired(now)``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = [
    "TRANSITIONS",
    "Action",
    "Admission",
    "Limits",
    "SubEvent",
    "SubState",
    "Subscription",
    "SubscriptionTable",
]

T = TypeVar("T")
Resource = tuple[str, str]  # (directory number, partition)


class SubState(StrEnum):
    IDLE = "idle"  # active, no NOTIFY outstanding
    WAITING = "waiting"  # active, a NOTIFY outstanding
    STALE = "stale"  # active, a NOTIFY outstanding and a change since
    ENDING = "ending"  # terminated: the final NOTIFY waits behind an outstanding one
    CLOSING = "closing"  # terminated: the final NOTIFY outstanding
    ENDED = "ended"


class SubEvent(StrEnum):
    CHANGE = "change"  # the resource changed, or the subscription started or was refreshed
    ANSWERED = "answered"  # a 2xx to the outstanding NOTIFY
    FAILED = "failed"  # the outstanding NOTIFY failed (error response, timeout)
    END = "end"  # unsubscribed, expired, refused on refresh


class Action(StrEnum):
    NOTIFY = "notify"
    FINAL = "final"  # the NOTIFY with Subscription-State: terminated
    DROP = "drop"


S, E, A = SubState, SubEvent, Action
TRANSITIONS: Mapping[tuple[SubState, SubEvent], tuple[SubState, Action | None]] = {
    (S.IDLE, E.CHANGE): (S.WAITING, A.NOTIFY),
    (S.IDLE, E.END): (S.CLOSING, A.FINAL),
    (S.IDLE, E.FAILED): (S.ENDED, A.DROP),
    (S.IDLE, E.ANSWERED): (S.IDLE, None),  # nothing outstanding: a stray answer
    (S.WAITING, E.CHANGE): (S.STALE, None),
    (S.WAITING, E.ANSWERED): (S.IDLE, None),
    (S.WAITING, E.END): (S.ENDING, None),
    (S.WAITING, E.FAILED): (S.ENDED, A.DROP),
    (S.STALE, E.CHANGE): (S.STALE, None),
    (S.STALE, E.ANSWERED): (S.WAITING, A.NOTIFY),
    (S.STALE, E.END): (S.ENDING, None),
    (S.STALE, E.FAILED): (S.ENDED, A.DROP),
    (S.ENDING, E.CHANGE): (S.ENDING, None),
    (S.ENDING, E.END): (S.ENDING, None),
    (S.ENDING, E.ANSWERED): (S.CLOSING, A.FINAL),
    (S.ENDING, E.FAILED): (S.ENDED, A.DROP),
    (S.CLOSING, E.CHANGE): (S.CLOSING, None),
    (S.CLOSING, E.END): (S.CLOSING, None),
    (S.CLOSING, E.ANSWERED): (S.ENDED, A.DROP),
    (S.CLOSING, E.FAILED): (S.ENDED, A.DROP),
}
del S, E, A

LIVE = frozenset({SubState.IDLE, SubState.WAITING, SubState.STALE})


@dataclass(frozen=True, slots=True)
class Limits:
    per_device: int = 100
    total: int = 10000


class Admission(StrEnum):
    OK = "ok"
    DEVICE_FULL = "device-full"
    FULL = "full"


@dataclass(slots=True, eq=False)
class Subscription(Generic[T]):
    """One subscription; ``data`` is what the SIP side keeps with it (its dialog ...)."""

    key: Hashable
    device: str
    package: str
    resource: Resource
    expires_at: float
    data: T
    state: SubState = SubState.IDLE
    version: int = 0  # NOTIFYs sent so far (dialog-info's version counter)
    reason: str = "timeout"  # the terminated NOTIFY's reason
    seq: int = field(default=0, repr=False)

    @property
    def live(self) -> bool:
        return self.state in LIVE


class SubscriptionTable(Generic[T]):
    """Every subscription, by key, by watched resource and by device; bounded."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._subs: dict[Hashable, Subscription[T]] = {}
        self._watching: dict[tuple[str, Resource], dict[Hashable, Subscription[T]]] = {}
        self._devices: dict[str, dict[Hashable, Subscription[T]]] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self._subs)

    def __iter__(self) -> Iterator[Subscription[T]]:
        return iter(list(self._subs.values()))

    def get(self, key: Hashable) -> Subscription[T] | None:
        return self._subs.get(key)

    def watching(self, package: str, resource: Resource) -> list[Subscription[T]]:
        return list(self._watching.get((package, resource), {}).values())

    def of_device(self, device: str) -> int:
        return len(self._devices.get(device, {}))

    def devices(self) -> int:
        return len(self._devices)

    def same(self, device: str, package: str, resource: Resource) -> Subscription[T] | None:
        """A live subscription of ``device`` to ``package`` of ``resource``, if any."""
        for sub in self._watching.get((package, resource), {}).values():
            if sub.device == device and sub.live:
                return sub
        return None

    def admit(self, device: str, *, replacing: bool = False) -> Admission:
        """Whether one more subscription of ``device`` fits (one less when ``replacing``)."""
        spare = 1 if replacing else 0
        if self.of_device(device) - spare >= self.limits.per_device:
            return Admission.DEVICE_FULL
        if len(self._subs) - spare >= self.limits.total:
            return Admission.FULL
        return Admission.OK

    def add(self, sub: Subscription[T]) -> None:
        if sub.key in self._subs:
            raise ValueError(f"subscription {sub.key!r} exists")
        self._subs[sub.key] = sub
        self._watching.setdefault((sub.package, sub.resource), {})[sub.key] = sub
        self._devices.setdefault(sub.device, {})[sub.key] = sub
        self._schedule(sub)

    def remove(self, sub: Subscription[T]) -> None:
        """Forget ``sub`` at once (replaced by a newer one; nothing is sent)."""
        if self._subs.get(sub.key) is not sub:
            return
        del self._subs[sub.key]
        watch = (sub.package, sub.resource)
        watchers = self._watching.get(watch)
        if watchers is not None:
            watchers.pop(sub.key, None)
            if not watchers:
                del self._watching[watch]
        owned = self._devices.get(sub.device)
        if owned is not None:
            owned.pop(sub.key, None)
            if not owned:
                del self._devices[sub.device]
        sub.state = SubState.ENDED

    def refresh(self, sub: Subscription[T], expires_at: float) -> None:
        sub.expires_at = expires_at
        self._schedule(sub)

    def fire(self, sub: Subscription[T], event: SubEvent) -> Action | None:
        """Apply ``event`` (see TRANSITIONS); an ENDED subscription leaves the table."""
        if sub.state is SubState.ENDED:
            return None
        new, action = TRANSITIONS[(sub.state, event)]
        sub.state = new
        if action in (Action.NOTIFY, Action.FINAL):
            sub.version += 1
        if new is SubState.ENDED:
            self.remove(sub)
        return action

    # ------------------------------------------------------------ expiry
    def _schedule(self, sub: Subscription[T]) -> None:
        sub.seq = next(self._seq)
        heapq.heappush(self._heap, (sub.expires_at, sub.seq, sub.key))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._subs):
            self._heap = [e for e in self._heap if self._current(e)]
            heapq.heapify(self._heap)

    def _current(self, entry: tuple[float, int, Hashable]) -> bool:
        sub = self._subs.get(entry[2])
        return sub is not None and sub.seq == entry[1] and sub.live

    def next_timer(self) -> float | None:
        heap = self._heap
        while heap:
            if self._current(heap[0]):
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def expired(self, now: float) -> list[Subscription[T]]:
        """The live subscriptions whose time is up at ``now`` (the caller ENDs them)."""
        out: list[Subscription[T]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._current(entry):
                sub = self._subs[entry[2]]
                sub.reason = "timeout"
                out.append(sub)
        return out
