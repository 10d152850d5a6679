"""Trunks as trusted sources: recognised by address, held to their own limits.

Theory of operation. A SIP trunk (a carrier, a PBX, another call manager)
sends the traffic of many callers from one address. The anonymous per-source
flood bucket of ``[sip]`` (200 datagrams/s) is sized for one phone, not for
that: a trunk's calls would be dropped there long before the node is busy.
So the sources the plan names as trunks are admitted by the plan, each held
to limits of its own, kept in a ``TrunkQuota``:

* ``max_cps``: new calls a second (a token bucket of ``BURST_SECONDS``
  worth of calls). Over it, the trunk's new INVITE is refused with 503 and
  Retry-After before any routing (``TrunkQuota.admit_call``; the call intake
  asks it once per new INVITE, after the transaction layer has absorbed
  retransmissions, so a retransmitted INVITE is never counted twice).
* ``max_calls``: calls in progress with the trunk (0: no limit), refused the
  same way.
* datagrams: a trunk's address can be spoofed, so its datagrams still have a
  ceiling, a bucket of ``MESSAGES_PER_CALL`` datagrams per call of
  ``max_cps`` (at least the anonymous bucket), used by the transport instead
  of the per-source one (``net.guard.ListenerGuard.admit_datagram``).

``TrunkTable`` finds the quota of a source: first by exact (address, port),
one dict lookup per datagram, which is all an anonymous source costs when no
trunk lists ``inbound_addresses`` or names its host by a DNS name; then the
trunks' ``inbound_addresses`` networks (the answer per source address kept in
a bounded memo) and the trunks named by host name (the address the name
resolved to, and its port). ``rebuild`` replaces the table when the plan
changes; a trunk that stays (same name) keeps its buckets, so a reload is no
way around a limit.

Sans-IO: time arrives as ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from offhook.common.addr import canonical
from offhook.net.acl import AllowList
from offhook.net.limits import BoundedLRU, TokenBucket

__all__ = [
    "BURST_SECONDS",
    "DEFAULT_MAX_CPS",
    "MESSAGES_PER_CALL",
    "UNLIMITED_CPS_SIZING",
    "Refusal",
    "TrunkQuota",
    "TrunkSource",
    "TrunkTable",
]

DEFAULT_MAX_CPS = 100
"""New calls a second a trunk may send by default (see README "Trunks and rate limits")."""
BURST_SECONDS = 2.0
"""A trunk's call bucket holds this many seconds of ``max_cps`` (200 calls by default)."""
MESSAGES_PER_CALL = 20
"""Datagrams a trunk may send per call of ``max_cps``: a call needs 3 to 7 (INVITE,
ACK, BYE; 100/180/200 and the BYE's 200 when offhook called out through the same
trunk); the rest covers retransmissions, PRACK, UPDATE, session refreshes, INFO
digits, REFER/NOTIFY and OPTIONS pings."""
UNLIMITED_CPS_SIZING = 1000
"""A trunk without a call rate limit (``max_cps: 0``) still has a datagram ceiling,
sized as if its limit were this many calls a second."""
MEMO_SIZE = 4096
"""Source addresses whose ``inbound_addresses`` match is remembered."""

BUSY = "Trunk Busy"
RATE = "Trunk Call Rate Exceeded"


@dataclass(frozen=True, slots=True)
class TrunkSource:
    """What the table needs of one trunk of the plan."""

    name: str
    host: str  # an IP literal (any written form) or a host name
    port: int = 5060
    inbound_addresses: tuple[str, ...] = ()
    max_calls: int = 0  # calls in progress, 0 = no limit
    max_cps: int = DEFAULT_MAX_CPS  # new calls a second, 0 = no limit


@dataclass(frozen=True, slots=True)
class Refusal:
    """A trunk's new call refused: answer 503 ``reason`` with ``Retry-After: retry_after``."""

    reason: str
    retry_after: int


class TrunkQuota:
    """One trunk's limits and buckets (kept across plan reloads while the trunk stays)."""

    __slots__ = (
        "admitted",
        "calls",
        "datagrams",
        "dropped",
        "max_calls",
        "max_cps",
        "name",
        "refused_busy",
        "refused_rate",
        "source",
    )

    def __init__(
        self, source: TrunkSource, floor_rate: float, floor_burst: float, now: float = 0.0
    ) -> None:
        self.name = source.name
        self.source = source
        self.max_calls = 0
        self.max_cps = 0
        self.calls: TokenBucket | None = None
        self.datagrams = TokenBucket(1.0, 1.0, now)
        self.admitted = 0  # new calls let through
        self.refused_busy = 0  # ... refused at max_calls
        self.refused_rate = 0  # ... refused over max_cps
        self.dropped = 0  # datagrams over its bucket (the transport counts them here)
        self.configure(source, floor_rate, floor_burst, now)
        self.datagrams.tokens = self.datagrams.burst  # starts full

    def configure(
        self, source: TrunkSource, floor_rate: float, floor_burst: float, now: float = 0.0
    ) -> None:
        """Limits from the plan (a reload): the buckets keep their balance."""
        self.source = source
        self.max_calls = max(0, source.max_calls)
        self.max_cps = max(0, source.max_cps)
        if self.max_cps:
            burst = max(1.0, self.max_cps * BURST_SECONDS)
            if self.calls is None:
                self.calls = TokenBucket(float(self.max_cps), burst, now)
            else:
                self.calls.update(float(self.max_cps), burst)
        else:
            self.calls = None
        sizing = self.max_cps or UNLIMITED_CPS_SIZING
        rate = max(floor_rate, float(sizing * MESSAGES_PER_CALL))
        burst = max(floor_burst, sizing * BURST_SECONDS * MESSAGES_PER_CALL)
        self.datagrams.update(rate, burst)

    def admit_call(self, now: float, active_calls: int) -> Refusal | None:
        """A new call from this trunk (``active_calls`` in progress with it now):
        None to go on, else the refusal (nothing is spent then)."""
        if self.max_calls and active_calls >= self.max_calls:
            self.refused_busy += 1
            return Refusal(BUSY, 1)
        calls = self.calls
        if calls is not None and not calls.take(now):
            self.refused_rate += 1
            wait = calls.wait(now)
            return Refusal(RATE, max(1, math.ceil(wait)) if math.isfinite(wait) else 1)
        self.admitted += 1
        return None

    def status(self) -> dict[str, Any]:
        """Its limits and counters (``offhook status``, metrics)."""
        return {
            "name": self.name,
            "max_calls": self.max_calls,
            "max_cps": self.max_cps,
            "calls_admitted": self.admitted,
            "refused_busy": self.refused_busy,
            "refused_rate": self.refused_rate,
            "datagrams_dropped": self.dropped,
        }

    def __repr__(self) -> str:
        return f"TrunkQuota({self.name!r}, max_calls={self.max_calls}, max_cps={self.max_cps})"


_MISS = object()


class TrunkTable:
    """The plan's trunks by source address, each with its ``TrunkQuota``.

    ``floor_rate``/``floor_burst``: the anonymous per-source bucket (a trunk's
    datagram bucket is never smaller). ``resolve_cached``: the transport's
    name cache, for trunks named by host name.
    """

    __slots__ = (
        "_exact",
        "_memo",
        "_names",
        "_networks",
        "_quotas",
        "_slow",
        "floor_burst",
        "floor_rate",
        "resolve_cached",
    )

    def __init__(
        self,
        floor_rate: float = 200.0,
        floor_burst: float = 400.0,
        resolve_cached: Callable[[str], str | None] | None = None,
    ) -> None:
        self.floor_rate = floor_rate
        self.floor_burst = floor_burst
        self.resolve_cached = resolve_cached
        self._exact: dict[tuple[str, int], TrunkQuota] = {}
        self._networks: list[tuple[AllowList, TrunkQuota]] = []
        self._names: list[tuple[str, int, TrunkQuota]] = []
        self._quotas: dict[str, TrunkQuota] = {}
        self._memo: BoundedLRU[str, object] = BoundedLRU(MEMO_SIZE)
        self._slow = False

    def rebuild(
        self,
        sources: Iterable[TrunkSource],
        now: float = 0.0,
        warn: Callable[[str, str], None] | None = None,
    ) -> None:
        """The trunks of a new plan. ``warn(trunk, why)`` hears of unusable networks."""
        exact: dict[tuple[str, int], TrunkQuota] = {}
        networks: list[tuple[AllowList, TrunkQuota]] = []
        names: list[tuple[str, int, TrunkQuota]] = []
        quotas: dict[str, TrunkQuota] = {}
        for source in sources:
            quota = self._quotas.get(source.name)
            if quota is None:
                quota = TrunkQuota(source, self.floor_rate, self.floor_burst, now)
            else:
                quota.configure(source, self.floor_rate, self.floor_burst, now)
            quotas[source.name] = quota
            if source.inbound_addresses:
                try:
                    allow = AllowList(source.inbound_addresses)
                except ValueError as exc:  # rows stored before the plan checked them
                    if warn is not None:
                        warn(source.name, f"inbound_addresses ignored: {exc}")
                else:
                    networks.append((allow, quota))
                    continue
            try:
                # Any written form of the address matches the source the transport
                # reports (common.addr.peer: the kernel's canonical form).
                host = canonical(source.host)
            except ValueError:
                names.append((source.host.lower(), source.port, quota))
                continue
            exact[(host, source.port)] = quota  # the last of two on one address wins
        self._exact, self._networks, self._names, self._quotas = exact, networks, names, quotas
        self._memo.clear()
        self._slow = bool(networks or names)

    def set_floor(self, floor_rate: float, floor_burst: float) -> None:
        """New anonymous bucket (a ``[sip]`` settings reload): every trunk's datagram
        bucket is sized again (never below it)."""
        self.floor_rate, self.floor_burst = floor_rate, floor_burst
        for quota in self._quotas.values():
            quota.configure(quota.source, floor_rate, floor_burst)

    def quota(self, name: str) -> TrunkQuota | None:
        """The quota of the trunk called ``name``."""
        return self._quotas.get(name)

    def source(self, addr: tuple[str, int]) -> TrunkQuota | None:
        """The trunk a datagram from ``addr`` (as the transport reports it) comes from.

        Per datagram: one dict lookup, unless the plan has network or
        host-name trunks.
        """
        quota = self._exact.get(addr)
        if quota is not None or not self._slow:
            return quota
        return self._other(addr)

    def match(self, addr: tuple[str, int]) -> TrunkQuota | None:
        """``source`` for an address in any written form (IPv6 not in RFC 5952 form)."""
        quota = self._exact.get(addr)
        if quota is None and ":" in addr[0]:
            try:
                quota = self._exact.get((canonical(addr[0]), addr[1]))
            except ValueError:
                quota = None
        if quota is not None or not self._slow:
            return quota
        return self._other(addr)

    def _other(self, addr: tuple[str, int]) -> TrunkQuota | None:
        host = addr[0]
        if self._networks:
            memo = self._memo
            hit = memo.get(host, _MISS)
            if hit is _MISS:
                hit = next((q for allow, q in self._networks if allow.allows(host)), None)
                memo[host] = hit
            if isinstance(hit, TrunkQuota):
                return hit
        resolve = self.resolve_cached
        if self._names and resolve is not None:
            for name, port, quota in self._names:
                if port == addr[1] and resolve(name) == host:
                    return quota
        return None

    def status(self) -> list[dict[str, Any]]:
        """Every trunk's limits and counters, by name."""
        return [self._quotas[name].status() for name in sorted(self._quotas)]

    def __len__(self) -> int:
        return len(self._quotas)
