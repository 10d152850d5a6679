"""Per-source limits in bounded structures, so that a flood cannot grow memory.

Theory of operation: everything keyed by a peer-controlled value (source
address, account name) lives in a ``BoundedLRU``: an insertion-ordered map
with a fixed maximum size that forgets its least recently used entry when a
new key arrives at the limit. Forgetting is always the *safe* direction for
memory and costs an attacker only a fresh start for one forgotten key, which
they could have had from a new address anyway. Entries that no longer say
anything (a bucket full again, a failure window over) are also dropped from
the old end as new ones arrive (``prune_oldest``), so that the tables hold
the sources active lately, not every source ever seen up to the limit: a
flood from random addresses keeps memory near its working set instead of
filling every table to its cap. Nothing here reads a clock:
time comes in as ``now`` (seconds, monotonic) so that tests drive it.

- ``RateLimiter``: a token bucket per source (``rate`` tokens a second, at
  most ``burst``); ``allow(source, now)`` spends one token if there is one
  (datagrams: drop when not); ``charge(source, now, n)`` spends ``n`` after
  the fact and says how long to stop reading (streams: back-pressure).
- ``TokenBucket``: one such bucket on its own, for a source the plan names
  (a trunk: ``offhook.net.trunk_admission``), kept across table changes.
- ``ConnectionLimiter``: open connections in total and per source.

Failed logins are tracked by ``offhook.net.authguard`` on these structures.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import (
    Callable,
    Hashable,
    ItemsView,
    Iterator,
    KeysView,
    MutableMapping,
    ValuesView,
)
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class BoundedLRU(MutableMapping[K, V], Generic[K, V]):
    """A mapping of at most ``max_size`` entries, evicting the least recently used.

    Reads with ``[]`` and ``get`` and writes count as use; ``in``, ``peek``,
    ``len``, iteration and the keys/values/items views (oldest first) do not.
    ``evictions`` counts entries dropped for room.
    """

    __slots__ = ("_data", "evictions", "max_size")

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.evictions = 0
        self._data: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        data = self._data
        if key in data:
            data.move_to_end(key)
        else:
            while len(data) >= self.max_size:
                data.popitem(last=False)
                self.evictions += 1
        data[key] = value

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, /, default: V | D) -> V | D: ...
    def get(self, key: K, /, default: object = None) -> object:
        if key in self._data:
            return self[key]
        return default

    def keys(self) -> KeysView[K]:
        return self._data.keys()

    def values(self) -> ValuesView[V]:
        return self._data.values()  # no touching: iteration must not reorder

    def items(self) -> ItemsView[K, V]:
        return self._data.items()

    def peek(self, key: K) -> V | None:
        """The value without marking it used."""
        return self._data.get(key)

    def prune_oldest(self, stale: Callable[[V], bool], limit: int = 2) -> int:
        """Drop those of the ``limit`` least recently used entries for which
        ``stale(value)`` holds; returns how many went. Nothing is reordered:
        a live entry at the old end (a long block, say) is evicted at the cap
        as before, and holds up pruning behind it only until it goes stale.
        Called once per insertion with a limit above 1, this keeps a table
        near the number of its live entries, at O(1) per call."""
        data = self._data
        if not data:
            return 0
        dropped = [key for key in islice(data, limit) if stale(data[key])]
        for key in dropped:
            del data[key]
        return len(dropped)

    def clear(self) -> None:
        self._data.clear()

    def __repr__(self) -> str:
        return f"BoundedLRU(max_size={self.max_size}, len={len(self._data)})"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token bucket per source: ``rate_per_second`` sustained, ``burst`` at once.

    A new (or forgotten) source starts with a full bucket. Time going
    backwards (``now`` smaller than the last call) adds no tokens.
    """

    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate_per_second: float, burst: float, max_sources: int) -> None:
        if rate_per_second < 0 or burst < 1:
            raise ValueError("rate_per_second must be >= 0 and burst >= 1")
        self.rate = float(rate_per_second)
        self.burst = float(burst)
        self._buckets: BoundedLRU[Hashable, _Bucket] = BoundedLRU(max_sources)

    def update(self, rate_per_second: float, burst: float, max_sources: int | None = None) -> None:
        """New rate, burst and table size (a settings reload). Buckets keep their
        tokens (at most the new burst); a smaller table forgets its least recently
        used sources as new ones arrive."""
        if rate_per_second < 0 or burst < 1:
            raise ValueError("rate_per_second must be >= 0 and burst >= 1")
        if max_sources is not None and max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        self.rate = float(rate_per_second)
        self.burst = float(burst)
        if max_sources is not None:
            self._buckets.max_size = max_sources
        for bucket in self._buckets.values():
            bucket.tokens = min(bucket.tokens, self.burst)

    def allow(self, source: Hashable, now: float, cost: float = 1.0, reserve: float = 0.0) -> bool:
        """Spend ``cost`` tokens of ``source``'s bucket if it has them.

        ``reserve``: how far below zero the balance may go for this spend (a
        message of higher priority draws on an allowance that lower ones
        cannot reach; the debt is paid back by the same refill, so the
        sustained rate stays ``rate``). At most ``burst``.
        """
        bucket = self._buckets.get(source)
        if bucket is None:
            self._prune(now)
            bucket = _Bucket(self.burst, now)
            self._buckets[source] = bucket
        elif now > bucket.stamp:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens + min(reserve, self.burst) >= cost:
            bucket.tokens -= cost
            return True
        return False

    def charge(self, source: Hashable, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens even when the bucket cannot cover them (it goes
        into debt, never below ``-burst``); return the seconds until the balance
        is back to zero (0.0 when it never went below). A stream adapter that
        has already read ``cost`` messages pauses reading for that long."""
        bucket = self._buckets.get(source)
        if bucket is None:
            self._prune(now)
            bucket = _Bucket(self.burst, now)
            self._buckets[source] = bucket
        elif now > bucket.stamp:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        bucket.tokens = max(-self.burst, bucket.tokens - cost)
        if bucket.tokens >= 0:
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return -bucket.tokens / self.rate

    def _prune(self, now: float) -> None:
        """Forget the oldest buckets that are full again: a new source starts
        with a full bucket anyway, so they carry no information."""
        rate, burst = self.rate, self.burst
        self._buckets.prune_oldest(
            lambda b: b.tokens + max(0.0, now - b.stamp) * rate >= burst, limit=2
        )

    def tokens(self, source: Hashable, now: float) -> float:
        """Tokens ``source`` would have at ``now`` (a full bucket when unknown)."""
        bucket = self._buckets.peek(source)
        if bucket is None:
            return self.burst
        return min(self.burst, bucket.tokens + max(0.0, now - bucket.stamp) * self.rate)

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def evictions(self) -> int:
        return self._buckets.evictions


class TokenBucket:
    """One token bucket (a source the plan names: a trunk), ``rate`` a second, ``burst`` at once.

    The same arithmetic as one entry of ``RateLimiter``: it starts full, time
    going backwards adds nothing, ``take`` may draw on a ``reserve`` below
    zero (at most ``burst``) for messages that must pass before others.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate_per_second: float, burst: float, now: float = 0.0) -> None:
        if rate_per_second < 0 or burst < 1:
            raise ValueError("rate_per_second must be >= 0 and burst >= 1")
        self.rate = float(rate_per_second)
        self.burst = float(burst)
        self.tokens = self.burst
        self.stamp = now

    def update(self, rate_per_second: float, burst: float) -> None:
        """New rate and burst; the balance is kept (at most the new burst)."""
        if rate_per_second < 0 or burst < 1:
            raise ValueError("rate_per_second must be >= 0 and burst >= 1")
        self.rate = float(rate_per_second)
        self.burst = float(burst)
        self.tokens = min(self.tokens, self.burst)

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float, cost: float = 1.0, reserve: float = 0.0) -> bool:
        """Spend ``cost`` tokens if the balance (plus ``reserve``) covers them."""
        self._refill(now)
        if self.tokens + min(reserve, self.burst) >= cost:
            self.tokens -= cost
            return True
        return False

    def charge(self, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` even into debt (never below ``-burst``); seconds until
        the balance is back to zero (``RateLimiter.charge`` for streams)."""
        self._refill(now)
        self.tokens = max(-self.burst, self.tokens - cost)
        if self.tokens >= 0:
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return -self.tokens / self.rate

    def wait(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``take(cost)`` would succeed (0.0: now); nothing is spent."""
        self._refill(now)
        short = cost - self.tokens
        if short <= 0:
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return short / self.rate


class ConnectionLimiter:
    """Open connections: at most ``max_total``, ``max_per_source`` from one source,
    and connections from at most ``max_sources`` distinct sources at a time.

    Only sources with an open connection are remembered, so memory is bounded
    by ``min(max_total, max_sources)`` entries. Every successful
    ``try_acquire`` must be paired with one ``release``; releasing a source
    with nothing open is ignored.
    """

    __slots__ = ("_per_source", "max_per_source", "max_sources", "max_total", "total")

    def __init__(self, max_total: int, max_per_source: int, max_sources: int) -> None:
        if min(max_total, max_per_source, max_sources) < 1:
            raise ValueError("connection limits must be at least 1")
        self.max_total = max_total
        self.max_per_source = max_per_source
        self.max_sources = max_sources
        self.total = 0
        self._per_source: dict[Hashable, int] = {}

    def try_acquire(self, source: Hashable) -> bool:
        if self.total >= self.max_total:
            return False
        count = self._per_source.get(source, 0)
        if count >= self.max_per_source:
            return False
        if count == 0 and len(self._per_source) >= self.max_sources:
            return False
        self._per_source[source] = count + 1
        self.total += 1
        return True

    def release(self, source: Hashable) -> None:
        count = self._per_source.get(source, 0)
        if count <= 0:
            return
        if count == 1:
            del self._per_source[source]
        else:
            self._per_source[source] = count - 1
        self.total -= 1

    def count(self, source: Hashable) -> int:
        return self._per_source.get(source, 0)

    @property
    def sources(self) -> int:
        return len(self._per_source)
