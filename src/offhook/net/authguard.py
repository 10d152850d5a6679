"""Authentication abuse: failed logins counted, sources throttled then blocked.

Theory of operation
-------------------
``AuthGuard`` is protocol-neutral: a source is any hashable key (callers
pass :func:`source_key` of the peer address), an account any string (the
user name the peer *claimed*, whether it exists or not). SIP digest uses it
today; the web admin login will use the same object the same way.

For every request that may authenticate, the caller asks
:meth:`AuthGuard.admit` first:

- ``None``: the source is **blocked**; drop the request without an answer
  (no state is created for it).
- ``0.0``: go on at once.
- ``d > 0``: the source is **throttled**; take one of the bounded hold slots
  (:meth:`hold`, at most ``max_delayed`` at a time and one per source),
  process the request ``d`` seconds later and :meth:`release` the slot. No
  slot free: drop the request. A throttled source therefore gets at most one
  request through per ``d`` seconds whatever it sends; a real UA over UDP
  simply retransmits.

and reports each failed check with :meth:`failure`. Per source, failures
are counted in a fixed window of ``fail_window`` seconds that starts at the
first failure. From ``throttle_after`` failures on, requests are delayed by
``throttle_delay * 2**(n - throttle_after)`` seconds, at most ``max_delay``;
at ``block_after`` failures the source is blocked for ``block_for`` seconds
(``block_after = 0``: never block, throttle only).

Accounts are **never** blocked or throttled: that would let anyone who knows
a user name lock its legitimate device out from anywhere. They are counted
per account for visibility (``offhook status``) and alerting (a warning when
an account reaches ``account_alert_after`` failures in a window). While an
account is under attack, each failure against it counts twice for the
*source* that made it, so a distributed guesser is slowed and blocked at
half the usual count, while the device that knows the password, whose own
source has no failures, is not touched.

The delay and the block depend only on the source's history, never on
whether the claimed account exists: unknown users and wrong passwords get
the same answer after the same wait (no user enumeration).

Memory: sources and accounts live in two ``BoundedLRU`` tables
(``max_tracked_sources``, ``max_tracked_accounts``); account keys are cut to
``MAX_ACCOUNT_KEY`` characters; hold slots are a set of at most
``max_delayed`` entries. An entry whose window is over and that blocks
nothing is dropped from the old end as new ones arrive, so the tables hold
the sources and accounts that failed lately, not every one ever seen.
Forgetting an entry is the safe direction for memory: it costs an attacker
with more addresses than the table holds only a fresh count, which a new
address would have given them anyway. Nothing here reads a clock: ``now``
is an argument (seconds, monotonic).

Several processes (``[node] workers``): a source reaches one worker only, so
its count is exact there; an account's failures come from everywhere. A
guard made with ``share_accounts`` keeps the accounts' new failures in an
outbox (``take_shared``: at most ``MAX_SHARED`` accounts between two takes)
that the worker sends to the others, which add them with
``peer_failures``: every worker's account count is then the node's.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from offhook.net.limits import BoundedLRU

__all__ = ["MAX_ACCOUNT_KEY", "AuthGuard", "AuthPolicy", "PeerGate", "source_key"]

log = logging.getLogger("offhook.auth")

MAX_ACCOUNT_KEY = 128
MAX_SHARED = 1_000  # accounts kept for the other workers between two takes
MAX_PEER_FAILURES = 1_000_000  # one report's count, at most
TOP_ACCOUNTS = 10
LOG_PERIOD = 60.0
LOG_BLOCKS = 20  # "source blocked" lines per LOG_PERIOD; the rest are summed up


def source_key(host: str) -> str:
    """What a source is: an IPv4 address, or the /64 of an IPv6 one.

    An IPv6 host usually owns a whole /64, so counting single addresses
    would let it step around any block. IPv4-mapped addresses count as IPv4.
    """
    if ":" not in host:
        return host
    try:
        addr = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, 64), strict=False))


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The ``[auth]`` thresholds (see the module docstring)."""

    fail_window: float = 300.0
    throttle_after: int = 10
    throttle_delay: float = 0.25
    max_delay: float = 8.0
    block_after: int = 20
    block_for: float = 600.0
    account_alert_after: int = 50
    max_tracked_sources: int = 10_000
    max_tracked_accounts: int = 10_000
    max_delayed: int = 1_000

    def __post_init__(self) -> None:
        if self.fail_window <= 0 or self.block_for < 0:
            raise ValueError("fail_window > 0 and block_for >= 0 required")
        if self.throttle_after < 1 or self.block_after < 0 or self.account_alert_after < 1:
            raise ValueError("throttle_after >= 1, block_after >= 0, account_alert_after >= 1")
        if self.throttle_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")
        if min(self.max_tracked_sources, self.max_tracked_accounts, self.max_delayed) < 1:
            raise ValueError("table sizes must be >= 1")


@dataclass(slots=True)
class _Entry:
    count: int
    window_start: float
    blocked_until: float = 0.0
    alerted: bool = False


class AuthGuard:
    """Failed authentications per source and per account; throttle, then block."""

    __slots__ = (
        "_accounts",
        "_held",
        "_lead",
        "_log_start",
        "_logged",
        "_outbox",
        "_sources",
        "_unlogged",
        "blocks",
        "dropped_blocked",
        "dropped_throttled",
        "failures_total",
        "policy",
        "throttled_total",
    )

    def __init__(
        self, policy: AuthPolicy | None = None, *, share_accounts: bool = False, lead: bool = True
    ) -> None:
        self.policy = policy or AuthPolicy()
        self._outbox: dict[str, int] | None = {} if share_accounts else None
        self._lead = lead  # logs an alert that other workers' failures brought about
        self._sources: BoundedLRU[Hashable, _Entry] = BoundedLRU(self.policy.max_tracked_sources)
        self._accounts: BoundedLRU[str, _Entry] = BoundedLRU(self.policy.max_tracked_accounts)
        self._held: set[Hashable] = set()
        self.failures_total = 0
        self.blocks = 0  # sources blocked so far
        self.throttled_total = 0  # requests held back
        self.dropped_blocked = 0  # requests dropped: source blocked
        self.dropped_throttled = 0  # requests dropped: no hold slot
        self._log_start = float("-inf")
        self._logged = 0
        self._unlogged = 0

    def update_policy(self, policy: AuthPolicy) -> None:
        """New thresholds (a settings reload): they apply to the next failure and
        admission; blocks already given keep their end time, and smaller tables
        forget their least recently used entries as new ones arrive."""
        self.policy = policy
        self._sources.max_size = policy.max_tracked_sources
        self._accounts.max_size = policy.max_tracked_accounts

    # --- counting -------------------------------------------------------------
    def _live(self, entry: _Entry | None, now: float) -> int:
        if entry is None or now - entry.window_start >= self.policy.fail_window:
            return 0
        return entry.count

    def _bump(self, table: BoundedLRU[Any, _Entry], key: Hashable, now: float, n: int) -> _Entry:
        entry = table.get(key)
        if entry is None:
            window = self.policy.fail_window
            table.prune_oldest(lambda e: now - e.window_start >= window and now >= e.blocked_until)
            entry = _Entry(0, now)
            table[key] = entry
        elif now - entry.window_start >= self.policy.fail_window:
            entry.count = 0
            entry.window_start = now
            entry.alerted = False
        entry.count += n
        return entry

    def failure(self, source: Hashable, account: str | None, now: float) -> None:
        """Count one failed authentication from ``source``, claiming ``account``."""
        policy = self.policy
        self.failures_total += 1
        weight = 1
        if account:
            key = account[:MAX_ACCOUNT_KEY]
            acc = self._bump(self._accounts, key, now, 1)
            outbox = self._outbox
            if outbox is not None and (key in outbox or len(outbox) < MAX_SHARED):
                outbox[key] = outbox.get(key, 0) + 1
            if acc.count >= policy.account_alert_after:
                weight = 2
                self._alert(key, acc, True)
        entry = self._bump(self._sources, source, now, weight)
        if policy.block_after and entry.count >= policy.block_after and now >= entry.blocked_until:
            entry.blocked_until = now + policy.block_for
            self.blocks += 1
            self._log_block(source, entry.count, now)

    def _alert(self, key: str, acc: _Entry, local: bool) -> None:
        if acc.alerted:
            return
        acc.alerted = True
        if local or self._lead:
            log.warning(
                "auth: account %r under attack: %d failed logins in %.0f s",
                key,
                acc.count,
                self.policy.fail_window,
            )

    def take_shared(self) -> dict[str, int]:
        """The accounts' failures counted here since the last take (``share_accounts``)."""
        outbox = self._outbox
        if not outbox:
            return {}
        self._outbox = {}
        return outbox

    def peer_failures(self, account: str, count: int, now: float) -> None:
        """``count`` failures against ``account`` that another worker counted."""
        if not account or count < 1:
            return
        key = account[:MAX_ACCOUNT_KEY]
        acc = self._bump(self._accounts, key, now, min(count, MAX_PEER_FAILURES))
        if acc.count >= self.policy.account_alert_after:
            self._alert(key, acc, False)

    def _log_block(self, source: Hashable, count: int, now: float) -> None:
        """A warning per blocked source, at most ``LOG_BLOCKS`` a minute (a flood
        from many addresses must not flood the log): the rest are counted and
        summed up in one line when the next minute starts."""
        if now - self._log_start >= LOG_PERIOD:
            if self._unlogged:
                log.warning(
                    "auth: %d more sources blocked in the last %.0f s (not logged one by one)",
                    self._unlogged,
                    LOG_PERIOD,
                )
            self._log_start, self._logged, self._unlogged = now, 0, 0
        if self._logged >= LOG_BLOCKS:
            self._unlogged += 1
            return
        self._logged += 1
        log.warning(
            "auth: source %s blocked for %.0f s after %d failed logins",
            source,
            self.policy.block_for,
            count,
            extra={"source": str(source)},
        )

    # --- admission --------------------------------------------------------------
    def is_blocked(self, source: Hashable, now: float) -> bool:
        entry = self._sources.peek(source)
        return entry is not None and now < entry.blocked_until

    def delay(self, source: Hashable, now: float) -> float:
        """Seconds to hold a request of ``source`` back (0: none)."""
        policy = self.policy
        n = self._live(self._sources.peek(source), now)
        if n < policy.throttle_after:
            return 0.0
        return float(
            min(policy.max_delay, policy.throttle_delay * 2 ** min(n - policy.throttle_after, 32))
        )

    def admit(self, source: Hashable, now: float) -> float | None:
        """None: drop (blocked); otherwise the delay to apply (see the module docstring)."""
        entry = self._sources.peek(source)
        if entry is None:
            return 0.0
        if now < entry.blocked_until:
            self.dropped_blocked += 1
            return None
        return self.delay(source, now)

    def hold(self, source: Hashable) -> bool:
        """Take a hold slot for one delayed request of ``source``; False: drop it."""
        if source in self._held or len(self._held) >= self.policy.max_delayed:
            self.dropped_throttled += 1
            return False
        self._held.add(source)
        self.throttled_total += 1
        return True

    def release(self, source: Hashable) -> None:
        self._held.discard(source)

    # --- views ------------------------------------------------------------------
    def failures(self, source: Hashable, now: float) -> int:
        return self._live(self._sources.peek(source), now)

    def account_failures(self, account: str, now: float) -> int:
        return self._live(self._accounts.peek(account[:MAX_ACCOUNT_KEY]), now)

    def status(self, now: float) -> dict[str, Any]:
        """JSON-ready counters for ``offhook status`` (O(tracked entries))."""
        policy = self.policy
        blocked = throttled = 0
        for entry in self._sources.values():
            if now < entry.blocked_until:
                blocked += 1
            elif self._live(entry, now) >= policy.throttle_after:
                throttled += 1
        accounts = sorted(
            ((self._live(e, now), name) for name, e in self._accounts.items()),
            reverse=True,
        )
        return {
            "failures": self.failures_total,
            "blocked_now": blocked,
            "throttled_now": throttled,
            "held_now": len(self._held),
            "blocks": self.blocks,
            "throttled": self.throttled_total,
            "dropped_blocked": self.dropped_blocked,
            "dropped_throttled": self.dropped_throttled,
            "tracked_sources": len(self._sources),
            "tracked_accounts": len(self._accounts),
            "evicted": self._sources.evictions + self._accounts.evictions,
            "accounts_under_attack": [
                {"account": name, "failures": n}
                for n, name in accounts[:TOP_ACCOUNTS]
                if n >= policy.account_alert_after
            ],
        }

    def __len__(self) -> int:
        return len(self._sources) + len(self._accounts)


class PeerGate:
    """An ``AuthGuard`` seen from a listener: peers are ``(host, port)``, time is ``clock()``.

    The port is ignored and the host reduced with :func:`source_key`; this is
    what the SIP endpoint gets as its ``AuthGate`` (and what the web admin
    login will get).
    """

    __slots__ = ("clock", "guard")

    def __init__(self, guard: AuthGuard, clock: Callable[[], float]) -> None:
        self.guard = guard
        self.clock = clock

    def admit(self, peer: tuple[str, int]) -> float | None:
        return self.guard.admit(source_key(peer[0]), self.clock())

    def hold(self, peer: tuple[str, int]) -> bool:
        return self.guard.hold(source_key(peer[0]))

    def release(self, peer: tuple[str, int]) -> None:
        self.guard.release(source_key(peer[0]))

    def failure(self, peer: tuple[str, int], account: str | None) -> None:
        self.guard.failure(source_key(peer[0]), account or None, self.clock())

    def status(self) -> dict[str, Any]:
        return self.guard.status(self.clock())
