"""Per-source limits in bounded structures, so that a flood cannot grow memory.

Theory of operation: everything keyed by a peer-controlled value (source
address, account name) lives in a ``BoundedLRU``: an insertion-ordered map
with a fixed maximum size that forgets its least recently used entry when a
new key arrives at the limit. Forgetting is always the *safe* direction for
memory and costs an attacker only a fresh start for one forgotten key, which
they could have had from a new address anyway. Nothing here reads a clock:
time comes in as ``now`` (seconds, monotonic) so that tests drive it.

- ``RateLimiter``: a token bucket per source (``rate`` tokens a second, at
  most ``burst``); ``allow(source, now)`` spends one token if there is one
  (datagrams: drop when not); ``charge(source, now, n)`` spends ``n`` after
  the fact and says how long to stop reading (streams: back-pressure).
- ``ConnectionLimiter``: open connections in total and per source.
- ``AuthFailureTracker``: failed authentications per source and per account
  within a window; a source over the threshold is blocked for a while, and
  both counts drive an exponential back-off delay for answers. Accounts are
  never blocked (that would let anyone lock a user out); they only slow down.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from dataclasses import dataclass
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

    def allow(self, source: Hashable, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``source``'s bucket if it has them."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[source] = bucket
        elif now > bucket.stamp:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= cost:
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


@dataclass(slots=True)
class _Failures:
    count: int
    window_start: float
    blocked_until: float = 0.0


class AuthFailureTracker:
    """Failed authentications per source and per account, memory-bounded.

    Failures are counted in a fixed window of ``window`` seconds starting at
    the first failure; at ``threshold`` failures in one window a source is
    blocked for ``block_for`` seconds (callers then drop or answer it
    uniformly without checking credentials). ``delay`` is the back-off to
    apply before answering: ``base_delay * 2**(n - 1)`` capped at
    ``max_delay``, where ``n`` is the larger of the source's and the
    account's failure count (0 failures: no delay). Each of the two tables
    keeps at most ``max_entries`` entries.
    """

    __slots__ = (
        "_accounts",
        "_sources",
        "base_delay",
        "block_for",
        "max_delay",
        "threshold",
        "window",
    )

    def __init__(
        self,
        threshold: int,
        window: float,
        block_for: float,
        max_entries: int,
        *,
        base_delay: float = 0.25,
        max_delay: float = 4.0,
    ) -> None:
        if threshold < 1 or window <= 0 or block_for < 0:
            raise ValueError("threshold >= 1, window > 0 and block_for >= 0 required")
        self.threshold = threshold
        self.window = float(window)
        self.block_for = float(block_for)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sources: BoundedLRU[Hashable, _Failures] = BoundedLRU(max_entries)
        self._accounts: BoundedLRU[str, _Failures] = BoundedLRU(max_entries)

    def _bump(self, table: BoundedLRU[K, _Failures], key: K, now: float) -> _Failures:
        entry = table.get(key)
        if entry is None or now - entry.window_start >= self.window:
            blocked = entry.blocked_until if entry is not None else 0.0
            entry = _Failures(0, now, blocked)
            table[key] = entry
        entry.count += 1
        if entry.count >= self.threshold:
            entry.blocked_until = max(entry.blocked_until, now + self.block_for)
        return entry

    def _count(self, entry: _Failures | None, now: float) -> int:
        if entry is None or now - entry.window_start >= self.window:
            return 0
        return entry.count

    def record_failure(self, source: Hashable, account: str | None, now: float) -> None:
        """Count one failed authentication from ``source`` for ``account`` (if known)."""
        self._bump(self._sources, source, now)
        if account is not None:
            self._bump(self._accounts, account, now)

    def record_success(self, source: Hashable, account: str | None) -> None:
        """A successful authentication clears the account's count.

        The source's count is kept (it expires with its window): otherwise one
        valid account would let a source reset its counter between guesses at
        other accounts.
        """
        del source
        if account is not None:
            self._accounts.pop(account, None)

    def is_blocked(self, source: Hashable, now: float) -> bool:
        entry = self._sources.peek(source)
        return entry is not None and now < entry.blocked_until

    def failures(self, source: Hashable, now: float) -> int:
        return self._count(self._sources.peek(source), now)

    def account_failures(self, account: str, now: float) -> int:
        return self._count(self._accounts.peek(account), now)

    def delay(self, source: Hashable, now: float, account: str | None = None) -> float:
        """Seconds to wait before answering this source (and account), 0 when clean."""
        n = self.failures(source, now)
        if account is not None:
            n = max(n, self.account_failures(account, now))
        if n == 0:
            return 0.0
        return float(min(self.max_delay, self.base_delay * 2 ** min(n - 1, 32)))

    def __len__(self) -> int:
        return len(self._sources) + len(self._accounts)
