"""One listener's defences in one object: allow-list, connection caps, rate, counters.

Theory of operation. Every listener of the node (SIP UDP/TCP, SCCP, TFTP,
provisioning HTTP, the admin endpoint) owns a ``ListenerGuard`` built from
its settings section (``ListenerLimits``) and asks it, in this order:

1. ``allowed(host)``: the source allow-list, before a byte is parsed. A
   refused source is counted (``acl``) and leaves no other trace: the
   guard creates no per-source entry for it, so a refused flood from any
   number of addresses costs no memory.
2. ``admit_connection(host, now)`` (streams): the allow-list, then the global
   and per-source connection caps (``ConnectionLimiter``: only sources with
   an open connection are remembered), then one token of the source's rate
   bucket. Every admitted connection is ``release``\\ d exactly once.
   ``admit_datagram(host, now, ongoing, bucket)`` (datagrams): the
   allow-list, then one token; an empty bucket drops the datagram, but a
   datagram of work under way (``ongoing()``: a response, an in-dialog
   request, asked only when the bucket is empty) may go one burst into
   debt first. New requests are thus always the first dropped, and a flood
   of anything is still bounded: the refill rate is the same for all.
   A source the plan trusts (a trunk, ``net.trunk_admission``) brings its
   own ``bucket``, sized for its traffic, instead of the per-source one.
3. ``throttle(host, now, n)`` (streams, after ``n`` messages were framed):
   spends ``n`` tokens and returns how long the adapter should stop reading
   that connection (TCP back-pressure: the sender slows down, nothing is
   lost, nothing is buffered beyond one socket buffer).

Rate buckets live in a ``BoundedLRU`` of ``max_sources`` entries: a bucket
that is full again is forgotten as new sources arrive, and beyond the limit
the least recently seen source is (it then starts again with a full
bucket); the table never grows past it. Every refusal is reported
through ``reject(reason, host)``, which the node wires to its
``RejectionCounters`` under the listener's name; the reasons are the
hyphenated names below, shared by every listener.

Sans-IO: time arrives as ``now``; the asyncio adapters call it with
``loop.time()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from offhook.net.limits import ConnectionLimiter, RateLimiter, TokenBucket

ACL = "acl"
MAX_CONNECTIONS = "max-connections"
MAX_PER_SOURCE = "max-connections-per-source"
RATE_LIMIT = "rate-limit"
TOO_LARGE = "too-large"
IDLE_TIMEOUT = "idle-timeout"
HANDSHAKE_TIMEOUT = "handshake-timeout"
MALFORMED = "malformed"
GONE = "gone-before-accept"
"""A connection reset by its peer before the listener saw it (no peer address):
closed and counted apart, never as an ``acl`` refusal of an unknown source."""

MAX_SOURCES = 16384
"""Per-source rate buckets kept per listener at most (an LRU; about 230 bytes each)."""
LISTEN_BACKLOG = 1024
"""Accept queue of every TCP listener (the kernel caps it at net.core.somaxconn):
phones reconnecting together after a failover wait in it instead of having
their SYNs dropped (and retried a second later) by a queue of 100."""


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """The defence settings every listener section has (see ``config.ListenerSettings``).

    ``max_message``: bytes of the largest message (length field or header
    block) accepted. ``idle_timeout``: seconds without a complete message
    before a connection is closed. ``handshake_timeout``: seconds a new
    connection has to deliver its first complete message. ``rate_per_source``
    and ``rate_burst``: the token bucket of each source (messages, datagrams
    or connections a second, and at once).
    """

    max_message: int = 65535
    idle_timeout: float = 60.0
    handshake_timeout: float = 10.0
    max_connections: int = 4096
    max_connections_per_source: int = 64
    rate_per_source: float = 200.0
    rate_burst: float = 400.0
    max_sources: int = MAX_SOURCES

    @classmethod
    def of(cls, section: object, **overrides: Any) -> ListenerLimits:
        """The limits of a settings section: every field it has, then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if hasattr(section, f.name):
                values[f.name] = getattr(section, f.name)
        values.update(overrides)
        return cls(**values)


class ListenerGuard:
    """Allow-list, connection caps and per-source rate of one listener."""

    __slots__ = ("_allow", "_reject", "connections", "limits", "rates")

    def __init__(
        self,
        limits: ListenerLimits,
        allow: Callable[[str], bool] | None = None,
        reject: Callable[[str, str], None] | None = None,
    ) -> None:
        self.limits = limits
        self._allow = allow
        self._reject = reject
        self.connections = ConnectionLimiter(
            limits.max_connections,
            min(limits.max_connections_per_source, limits.max_connections),
            limits.max_connections,
        )
        self.rates = RateLimiter(
            limits.rate_per_source, max(1.0, limits.rate_burst), limits.max_sources
        )

    def update(
        self, limits: ListenerLimits | None = None, allow: Callable[[str], bool] | None = None
    ) -> None:
        """New limits and/or allow-list (a settings reload, ``node_reload``).

        They hold from the next connection, datagram or message on:
        connections already open stay (even above a lowered cap, or from a
        source the new list refuses: the listener decides whether to close
        them), the rate buckets keep their tokens up to the new burst.
        """
        if limits is not None:
            conns = self.connections
            conns.max_total = limits.max_connections
            conns.max_per_source = min(limits.max_connections_per_source, limits.max_connections)
            conns.max_sources = limits.max_connections
            self.rates.update(
                limits.rate_per_source, max(1.0, limits.rate_burst), limits.max_sources
            )
            self.limits = limits
        if allow is not None:
            self._allow = allow

    def refuse(self, reason: str, host: str) -> None:
        """Count one refusal (the listener's ``reject`` callback)."""
        if self._reject is not None:
            self._reject(reason, host)

    def allowed(self, host: str) -> bool:
        """The allow-list alone; a refusal is counted under ``acl``."""
        if self._allow is None or self._allow(host):
            return True
        self.refuse(ACL, host)
        return False

    def admit_connection(self, host: str, now: float) -> bool:
        """A new inbound connection: allow-list, caps, one rate token.

        ``host`` "" (the socket had no peer address any more: reset before
        it was accepted) is refused and counted under ``gone-before-accept``.
        """
        if not host:
            self.refuse(GONE, host)
            return False
        if not self.allowed(host):
            return False
        conns = self.connections
        if not conns.try_acquire(host):
            total = conns.total >= conns.max_total or conns.sources >= conns.max_sources
            self.refuse(MAX_CONNECTIONS if total else MAX_PER_SOURCE, host)
            return False
        if not self.rates.allow(host, now):
            conns.release(host)
            self.refuse(RATE_LIMIT, host)
            return False
        return True

    def release(self, host: str) -> None:
        """An admitted connection is gone."""
        self.connections.release(host)

    def admit_datagram(
        self,
        host: str,
        now: float,
        ongoing: Callable[[], bool] | None = None,
        bucket: TokenBucket | None = None,
    ) -> bool:
        """A datagram: allow-list, then one rate token (an empty bucket drops it).

        ``bucket``: the source's own bucket (a trunk the plan names) instead
        of the per-source one. ``ongoing``: asked only when the bucket is
        empty, True when the datagram belongs to work already under way (a
        response, an in-dialog request): it may then draw on a reserve of
        one more burst below zero, so that such datagrams are dropped only
        after every new one is (the debt is paid back by the same refill:
        the source's sustained rate stays what it was).
        """
        if not self.allowed(host):
            return False
        if bucket is not None:
            if bucket.take(now) or (
                ongoing is not None and ongoing() and bucket.take(now, reserve=bucket.burst)
            ):
                return True
        else:
            rates = self.rates
            if rates.allow(host, now) or (
                ongoing is not None and ongoing() and rates.allow(host, now, reserve=rates.burst)
            ):
                return True
        self.refuse(RATE_LIMIT, host)
        return False

    def throttle(
        self, host: str, now: float, messages: int, bucket: TokenBucket | None = None
    ) -> float:
        """Charge ``messages`` read from a stream; seconds to stop reading it (0: go on).

        ``bucket``: the source's own bucket (a trunk), as for datagrams.
        """
        if messages <= 0:
            return 0.0
        if bucket is not None:
            delay = bucket.charge(now, float(messages))
        else:
            delay = self.rates.charge(host, now, float(messages))
        if delay > 0:
            self.refuse(RATE_LIMIT, host)
        return delay

    def status(self) -> dict[str, int]:
        """Open connections and the per-source entries held (for ``offhook status``)."""
        return {
            "connections": self.connections.total,
            "connection_sources": self.connections.sources,
            "rate_sources": len(self.rates),
        }
