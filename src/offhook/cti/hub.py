"""The web process's one upstream connection to the node's CTI event stream, fanned out.

Theory of operation. ``Hub.run()`` keeps one stream open to the node's
control endpoint (op ``events``, ``ris.event_client.EventStream``): it asks
for the events after the last id it saw, so a reconnect loses nothing the
node still holds; when the node says ``resync`` (those ids are gone, or
from before a restart) the hub's ring is cut there and every attached sink
is told (``Sink.gap``: its client gets a snapshot). A failed or lost
connection is retried after a back-off that doubles from ``backoff_min``
to ``backoff_max`` (with jitter; back to the minimum once a stream has
delivered events).

Every event is encoded once (``encode``: compact JSON, ``id`` first) and
kept in a bounded ring (``replay`` events) for clients that reconnect and
resume (``replay(after)``: the events after ``after``, or None when the
ring no longer covers them), then offered to every sink with
``Sink.offer(event, body)``, a synchronous call: a sink filters and queues
or gives up on its client, it never makes the hub wait. The sink list is
copied on change (attach/detach), never while an event is fanned out.

Only events with an ``id`` above the last one are taken (a node replays
after the id asked for; nothing is delivered twice); a stream control line
``{"type": "overflow"}`` (the hub fell behind the node) ends the stream
and the hub reconnects after its last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from offhook.ris.control import ControlError

__all__ = ["Hub", "HubStats", "Sink", "StreamStart", "Upstream", "encode"]

log = logging.getLogger("offhook.cti")

YIELD_EVERY = 32
"""Events taken from one read of the node's stream before the loop runs others."""

Event = dict[str, Any]


def encode(event: Event) -> str:
    """``event`` as one compact JSON text (what every client gets, after its ``seq``)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str)


class StreamStart(Protocol):
    """The node's answer to ``events``: what it holds and whether the client must resync."""

    @property
    def first_id(self) -> int | None: ...
    @property
    def last_id(self) -> int | None: ...
    @property
    def resync(self) -> bool: ...


class Upstream(Protocol):
    """An open event stream (``ris.event_client.EventStream`` inside its ``async with``)."""

    @property
    def start(self) -> StreamStart: ...

    def __aiter__(self) -> AsyncIterator[Event]: ...


Connect = Callable[[int | None], AbstractAsyncContextManager[Upstream]]
"""``connect(after)``: an event stream from the node, starting after id ``after``."""


class Sink(Protocol):
    """One client's end of the hub (``cti.session.Session``)."""

    def offer(self, event: Event, body: str) -> None: ...
    def gap(self) -> None: ...


@dataclass(slots=True)
class HubStats:
    """Counters of the hub (``/metrics``)."""

    received: int = 0
    connects: int = 0
    failures: int = 0
    resyncs: int = 0
    upstream_overflows: int = 0


class Hub:
    """One upstream event stream, a replay ring, and the sinks it feeds."""

    def __init__(
        self,
        connect: Connect,
        *,
        replay: int = 10_000,
        backoff_min: float = 0.2,
        backoff_max: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self._connect = connect
        self._keep = max(replay, 0)
        self._ring: deque[tuple[int, Event, str]] = deque(maxlen=self._keep)
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._random = random.Random(seed)
        self._sinks: tuple[Sink, ...] = ()
        self.last_id: int | None = None
        """The newest event id seen (None: never connected)."""
        self._base: int | None = None
        """Every event after this id is in the ring (None: nothing is covered yet)."""
        self.connected = False
        self.stats = HubStats()
        self._task: asyncio.Task[None] | None = None

    # --- sinks --------------------------------------------------------------------

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return self._sinks

    def attach(self, sink: Sink) -> None:
        if sink not in self._sinks:
            self._sinks = (*self._sinks, sink)

    def detach(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    # --- replay -------------------------------------------------------------------

    @property
    def ring_size(self) -> int:
        return len(self._ring)

    def replay(self, after: int) -> list[tuple[Event, str]] | None:
        """The held events with an id above ``after``, oldest first; None when some
        are no longer held (``after`` too old, from another run, or not yet seen)."""
        base, last = self._base, self.last_id
        if base is None or last is None or after < base or after > last:
            return None
        if after == last:
            return []
        ring = self._ring
        # Ids are increasing: skip from the right end, few are usually asked for.
        out: list[tuple[Event, str]] = []
        for event_id, event, body in reversed(ring):
            if event_id <= after:
                break
            out.append((event, body))
        out.reverse()
        return out

    def held_upto(self, after: int) -> list[Event]:
        """The held events with an id at or below ``after``, oldest first (what a
        resuming client saw before: which calls it knows)."""
        return [event for event_id, event, _ in self._ring if event_id <= after]

    # --- the upstream ---------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run the hub in a task of the running loop (once)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="cti-hub")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    async def run(self) -> None:
        """Follow the node's event stream for ever (until cancelled)."""
        delay = self.backoff_min
        while True:
            delivered = False
            try:
                delivered = await self._follow()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, ValueError, ControlError) as exc:
                self.stats.failures += 1
                log.debug("cti hub: event stream from the node: %s", exc)
            finally:
                self.connected = False
            if delivered:
                delay = self.backoff_min
            await asyncio.sleep(delay * (0.5 + self._random.random()))
            if not delivered:
                delay = min(self.backoff_max, delay * 2)

    async def _follow(self) -> bool:
        """One stream, until it ends; True when it delivered an event."""
        delivered = False
        async with self._connect(self.last_id) as stream:
            self.connected = True
            self.stats.connects += 1
            self._started(stream.start)
            taken = 0
            async for event in stream:
                if self.take(event):
                    delivered = True
                    taken += 1
                    if taken % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # a burst from the node: let the writers run
                elif event.get("type") == "overflow" and "id" not in event:
                    self.stats.upstream_overflows += 1
                    log.warning("cti hub: fell behind the node's event stream; reconnecting")
                    break
        return delivered

    def _started(self, start: StreamStart) -> None:
        node_last = start.last_id
        if self.last_id is None:
            # A first stream: it starts with new events; the ring covers from here.
            self._base = node_last if node_last is not None else 0
            self.last_id = self._base
            return
        if start.resync:
            # Events were missed (or the node restarted): the ring is cut here.
            self.stats.resyncs += 1
            self._ring.clear()
            self._base = node_last if node_last is not None else self.last_id
            self.last_id = self._base
            for sink in self._sinks:
                sink.gap()

    def take(self, event: Event) -> bool:
        """One event from the node: ring and fan-out (False: not an event, or seen)."""
        event_id = event.get("id")
        if isinstance(event_id, bool) or not isinstance(event_id, int):
            return False
        last = self.last_id
        if last is not None and event_id <= last:
            return False
        self.stats.received += 1
        self.last_id = event_id
        if self._base is None:
            self._base = event_id - 1
        body = encode(event)
        if self._keep:
            if len(self._ring) == self._keep:
                self._base = self._ring[0][0]  # that one leaves the ring
            self._ring.append((event_id, event, body))
        else:
            self._base = event_id
        for sink in self._sinks:
            sink.offer(event, body)
        return True

    def feed(self, events: Iterable[Event]) -> int:
        """Take several events (tests, benchmarks); how many were new."""
        return sum(1 for e in events if self.take(e))
