"""One CTI client's stream: its filter, its own sequence numbers and a bounded queue.

Theory of operation. The hub offers every event to every session
(``offer``, synchronous, never waits): the session's ``EventFilter`` keeps
what the client may see and asked for, and queues its pre-encoded text. The
queue is bounded (``queue`` frames): a client that falls that far behind is
*overflowed*: its queue is dropped (the events counted as dropped), ``done``
is set and the client is told ``{"type": "overflow"}`` and disconnected by
its connection (``web.cti_ws``); nobody else notices. A session never holds
more than ``queue`` live frames plus a resume's replay (references to the
hub's ring).

The connection's writer takes frames with ``await next_frame()``. Each
event gets the connection's next ``seq`` (1, 2, ...) as it is taken, so
events dropped before sending (covered by a snapshot) leave no hole. Stream
control frames (hello, subscribed, resumed, resync, error, pong) have no
``seq`` and no ``id``.

Client requests (``handle``; parsed by ``cti.client_protocol``):

- subscribe: narrow the filter; a device or line outside the scope is an
  error and changes nothing;
- resume after ``ID``: what is queued is dropped, the hub's ring replays the
  events after ``ID`` through the filter (``resumed`` first; the held events
  up to ``ID`` tell the filter which calls the client knows, so their
  ``call.ended`` comes too), then live events follow; an ``ID`` the ring
  no longer covers gives a resync: the node's snapshot (``snapshot()``,
  cut to the scope) as ``{"type": "resync", "snapshot": ...}``, after which
  only events newer than the snapshot's ``last_id`` follow. The hub asks for the same when its own
  stream from the node had a gap (``gap``).

Following. A session made with a ``wire`` (how its transport frames a
text) whose client sees and asked for everything, with nothing held back,
``follow``s the hub's feed (``cti.hub``: the hub renders its events with
one template for every such client) instead of being offered each event;
its writer takes bytes (``next_bytes``: stream control frames first, then
the events past its cursor). A subscribe that narrows, a resume, a resync,
a narrower scope, or a ``seq`` past ``SEQ_WIDTH`` places makes it leave the
feed for good (``_unfollow``): what it had not taken is queued as if it had
been offered, and its filter learns the calls it saw. Either way an event's
``seq`` is right-aligned in ``SEQ_WIDTH`` places (``{"seq":         1,``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from offhook.cti.client_protocol import ClientMessage, Ping, Resume, Subscribe
from offhook.cti.hub import SEQ_WIDTH, Follow, Hub, Wire, encode
from offhook.cti.scope import EventFilter, Scope

__all__ = ["Overflowed", "ReplaySource", "Session", "SessionCounters"]

Event = dict[str, Any]
Snapshot = Callable[[], Awaitable[dict[str, Any]]]

OVERFLOW_QUEUE = "client queue full: the client reads more slowly than events come"


class ReplaySource(Protocol):
    """What a session needs of the hub: its last id and its replay ring."""

    @property
    def last_id(self) -> int | None: ...

    def replay(self, after: int) -> list[tuple[Event, str]] | None: ...

    def held_upto(self, after: int) -> list[Event]: ...


class Overflowed(Exception):
    """The client fell behind: its session is over (the text says why)."""


@dataclass(slots=True)
class SessionCounters:
    """Shared by every session of an app (``/metrics``)."""

    delivered: int = 0
    dropped: int = 0
    overflows: int = 0
    resyncs: int = 0
    replayed: int = 0


class Session:
    """One client's filter, queue and sequence numbers (see the module doc)."""

    def __init__(
        self,
        hub: ReplaySource,
        scope: Scope,
        snapshot: Snapshot,
        *,
        queue: int = 1000,
        user: str = "",
        counters: SessionCounters | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.hub = hub
        self.wire = wire
        """How the connection frames texts (None: it takes texts, ``next_frames``)."""
        self._follow: Follow | None = None
        self._control_at: deque[int] = deque()
        """While following: the feed position each queued control frame comes before."""
        self.filter = EventFilter(scope)
        self.snapshot = snapshot
        self.user = user
        self.limit = max(1, queue)
        self.counters = counters if counters is not None else SessionCounters()
        self.seq = 0
        self.floor = -1
        """Events with an id at or below it are not sent (a replay or snapshot covered them)."""
        self.overflow: str | None = None
        self.need_resync = False
        self._resyncing = False
        self.done = asyncio.Event()
        """Set when the session is over (overflowed or closed)."""
        self._over = False
        """``done`` is set (a plain attribute: ``offer`` reads it for every event)."""
        self._queue: deque[tuple[int | None, str, str | None]] = deque()
        # (event id or None for stream control, the text, a call id whose
        # call.ended is decided when it is sent: see offer)
        self._backlog: deque[tuple[int, str]] = deque()
        self._ready = asyncio.Event()

    @property
    def scope(self) -> Scope:
        return self.filter.scope

    @property
    def queued(self) -> int:
        follow = self._follow
        behind = self._feed_hub().pending(follow) if follow is not None else 0
        return len(self._queue) + len(self._backlog) + behind

    @property
    def following(self) -> bool:
        return self._follow is not None

    def _feed_hub(self) -> Hub:
        hub = self.hub
        assert isinstance(hub, Hub)
        return hub

    # --- the feed (see the module doc) ---------------------------------------------------

    def follow(self) -> bool:
        """Follow the hub's feed if this client can (attached; see the module doc)."""
        if (
            self._follow is None
            and self.wire is not None
            and isinstance(self.hub, Hub)
            and not self._over
            and self.filter.everything
            and self.scope.everything
            and not self._backlog
            and not self.need_resync
            and not self._resyncing
            and all(item[0] is None for item in self._queue)
        ):
            self._follow = follow = self.hub.follow(self, self.wire)
            self._control_at = deque(follow.cursor for _ in self._queue)
        return self._follow is not None

    def controls(self) -> int:
        return len(self._queue)

    def wake(self) -> None:
        self._ready.set()

    def fell_behind(self, dropped: int) -> None:
        """The hub overflowed this follower (it has left the feed)."""
        self._follow = None
        if self.overflow is None:
            self.counters.dropped += dropped
            self._overflowed(OVERFLOW_QUEUE)

    def _unfollow(self) -> None:
        """Leave the feed: offered events from now on, the untaken ones queued."""
        follow, self._follow = self._follow, None
        if follow is None:
            return
        events, calls = self._feed_hub().unfollow(follow)
        for call_id in calls:
            self.filter.remember(call_id)
        # Control frames and events in the order they came.
        controls, at = self._queue, self._control_at
        queue: deque[tuple[int | None, str, str | None]] = deque()
        for pos, event_id, body in events:
            while at and at[0] <= pos:
                at.popleft()
                queue.append(controls.popleft())
            queue.append((event_id, body, None))
        queue.extend(controls)
        self._queue, self._control_at = queue, deque()
        self._ready.set()

    def rescope(self, scope: Scope) -> None:
        """The user's scope changed (their devices or role)."""
        if scope != self.filter.scope:
            if not scope.everything:
                self._unfollow()
            self.filter.scope = scope

    # --- from the hub (synchronous, never waits) ------------------------------------

    def offer(self, event: Event, body: str) -> None:
        if self._over:
            return
        event_id = event.get("id")
        if type(event_id) is not int or event_id <= self.floor:
            return
        if self.filter.admits(event):
            self._push(event_id, body)
        elif self._resyncing and event.get("type") == "call.ended":
            # The snapshot to come may show this call: decided when it is sent.
            call_id = event.get("call_id")
            if isinstance(call_id, str):
                self._push(event_id, body, call_id)

    def gap(self) -> None:
        """The hub missed events: this client gets a snapshot."""
        self._unfollow()
        if self.overflow is None:
            self.need_resync = self._resyncing = True
            self._ready.set()

    # --- from the connection ----------------------------------------------------------

    def hello(self) -> None:
        self.control({"type": "hello", "last_id": self.hub.last_id, "scope": self.scope.describe()})

    def control(self, message: dict[str, Any]) -> None:
        """Queue a stream control frame (no seq)."""
        self._push(None, encode(message), None)

    def error(self, reason: str, **detail: Any) -> None:
        self.control({"type": "error", "reason": reason, **detail})

    def handle(self, message: ClientMessage) -> None:
        """A client request (see the module doc)."""
        if isinstance(message, Ping):
            self.control({"type": "pong", "last_id": self.hub.last_id})
        elif isinstance(message, Subscribe):
            self._subscribe(message)
        elif isinstance(message, Resume):
            self.resume(message.after)

    def _subscribe(self, message: Subscribe) -> None:
        scope = self.scope
        devices = message.devices or ()
        lines = message.lines or ()
        outside_devices = [d for d in devices if not scope.has_device(d)]
        outside_lines = [dn for dn in lines if not scope.has_line(dn)]
        if outside_devices or outside_lines:
            self.error("not yours", devices=outside_devices, lines=outside_lines)
            return
        if message.everything:
            self.filter.subscribe(None, None)
        else:
            self._unfollow()
            self.filter.subscribe(message.devices, message.lines)
        self.control(
            {
                "type": "subscribed",
                "all": self.filter.everything,
                "devices": sorted(self.filter.devices or ()),
                "lines": sorted(self.filter.lines or ()),
            }
        )

    def resume(self, after: int) -> None:
        """Replay the events after ``after`` (or resynchronise when it is too old)."""
        if self.overflow is not None:
            return
        self._unfollow()
        events = self.hub.replay(after)
        # The events queued so far are dropped (the replay or the snapshot has
        # them); the stream control frames stay.
        self._queue = deque(item for item in self._queue if item[0] is None)
        self._backlog.clear()
        if events is None:
            self.need_resync = self._resyncing = True
            self._ready.set()
            return
        # The calls the client saw before ``after`` (on this connection or an
        # earlier one): their call.ended is in the replay for it.
        for event in self.hub.held_upto(after):
            self.filter.seed(event)
        backlog = self._backlog
        for event, body in events:
            if self.filter.admits(event):
                backlog.append((int(event["id"]), body))
        last = self.hub.last_id
        self.floor = max(after, last if last is not None else after)
        self.counters.replayed += len(backlog)
        # The "resumed" notice goes first: it is in the queue, the backlog follows it.
        self._queue.append(
            (None, encode({"type": "resumed", "after": after, "events": len(backlog)}), None)
        )
        self._ready.set()

    async def next_frame(self) -> str:
        """The next text to send (waits for one); ``Overflowed`` once the client fell behind."""
        while True:
            if self.overflow is not None:
                raise Overflowed(self.overflow)
            if self.need_resync:
                self.need_resync = False
                try:
                    return await self._resync()
                finally:
                    self._resyncing = self.need_resync
            frame = self._ready_frame()
            if frame is not None:
                return frame
            self._ready.clear()
            await self._ready.wait()

    async def next_bytes(self, limit: int, linger: float = 0.0) -> bytes:
        """``next_frames`` framed by the session's wire; a follower's events rendered by
        the hub (about ``limit`` frames at most, ``linger`` seconds after one is ready,
        at once when ``limit`` are ready: a linger per write would cap a client's rate)."""
        wire = self.wire
        assert wire is not None, "next_bytes needs a session made with a wire"
        while True:
            follow = self._follow
            if follow is None:
                return wire.frames(await self.next_frames(limit, linger))
            if self.overflow is not None:
                raise Overflowed(self.overflow)
            hub = self._feed_hub()
            if not self._queue and not hub.pending(follow):
                self._ready.clear()
                hub.wait(follow)
                await self._ready.wait()
                continue
            if linger > 0 and len(self._queue) + hub.pending(follow) < limit:
                await asyncio.sleep(linger)
                if self.overflow is not None:
                    raise Overflowed(self.overflow)
                if self._follow is not follow:
                    continue  # it left the feed meanwhile: its events are queued
            data = self._render(follow, wire, limit)
            if data:
                return data

    def _render(self, follow: Follow, wire: Wire, limit: int) -> bytes:
        """A follower's control frames, each after the events fed before it, and events."""
        hub, queue, at = self._feed_hub(), self._queue, self._control_at
        parts: list[bytes] = []
        budget = limit
        while budget > 0:
            upto = at[0] if at else None
            if upto is None or follow.cursor < upto:
                rendered = hub.render(follow, budget, self.seq, upto)
                if rendered is None:
                    self._unfollow()  # seq outgrows its places: the per-event path from here
                    break
                data, count = rendered
                parts.append(data)
                self.seq += count
                self.counters.delivered += count
                budget -= max(1, count)
                if upto is None or follow.cursor < upto:
                    break
            at.popleft()
            parts.append(wire.frames([queue.popleft()[1]]))
            budget -= 1
        return b"".join(parts)

    async def next_frames(self, limit: int, linger: float = 0.0) -> list[str]:
        """The next frame (waits for one) and up to ``limit`` - 1 more that are ready
        ``linger`` seconds later (at once when that many are ready already)."""
        self._unfollow()  # a caller that takes texts
        frames = [await self.next_frame()]
        if linger > 0 and 1 + len(self._queue) + len(self._backlog) < limit:
            await asyncio.sleep(linger)
        if self.overflow is None and not self.need_resync:
            self._take_ready(frames, limit)
        return frames

    def _ready_frame(self) -> str | None:
        """The next queued frame, numbered if it is an event (None: nothing to send now)."""
        frames: list[str] = []
        self._take_ready(frames, 1)
        return frames[0] if frames else None

    def _take_ready(self, frames: list[str], limit: int) -> None:
        """Append queued frames to ``frames`` until it holds ``limit``: control frames
        first, then the backlog, then the queue's events, each numbered as it is taken."""
        queue, backlog, floor = self._queue, self._backlog, self.floor
        seq = first = self.seq
        while len(frames) < limit:
            if queue and queue[0][0] is None:
                frames.append(queue.popleft()[1])
                continue
            if backlog:
                text = backlog.popleft()[1]
            elif queue:
                event_id, text, ended = queue.popleft()
                if event_id is None or event_id <= floor:
                    continue
                if ended is not None and not self.filter.ended(ended):
                    continue
            else:
                break
            seq += 1
            frames.append(f'{{"seq":{seq:{SEQ_WIDTH}d},{text[1:]}')
        self.seq = seq
        self.counters.delivered += seq - first

    def close(self) -> None:
        follow, self._follow = self._follow, None
        if follow is not None:
            self._feed_hub().drop(follow)
        self._queue.clear()
        self._control_at.clear()
        self._backlog.clear()
        self._over = True
        self.done.set()
        self._ready.set()

    # --- inside ------------------------------------------------------------------------

    def _push(self, event_id: int | None, text: str, ended: str | None = None) -> None:
        if self.overflow is not None:
            return
        follow = self._follow
        behind = self._feed_hub().pending(follow) if follow is not None else 0
        if len(self._queue) + behind >= self.limit:
            self._overflowed(OVERFLOW_QUEUE, event_id is not None)
            return
        self._queue.append((event_id, text, ended))
        if follow is not None:
            hub = self._feed_hub()
            self._control_at.append(hub.end)
            hub.recheck()
        self._ready.set()

    def _overflowed(self, reason: str, offered: bool = False) -> None:
        dropped = int(offered) + sum(1 for item in self._queue if item[0] is not None)
        dropped += len(self._backlog)
        follow, self._follow = self._follow, None
        if follow is not None:
            hub = self._feed_hub()
            dropped += hub.pending(follow)
            hub.drop(follow)
        self.counters.dropped += dropped
        self.counters.overflows += 1
        self.overflow = reason
        self._queue.clear()
        self._control_at.clear()
        self._backlog.clear()
        self._over = True
        self.done.set()
        self._ready.set()

    def overflowed(self, reason: str) -> None:
        """The connection gave up on the client (it stopped reading)."""
        if self.overflow is None:
            self._overflowed(reason)

    async def _resync(self) -> str:
        """The scoped snapshot as a resync frame; what it covers is not sent again."""
        snap = self.scope.snapshot(await self.snapshot())
        last_id = snap.get("last_id")
        if isinstance(last_id, int) and not isinstance(last_id, bool):
            self.floor = max(self.floor, last_id)
        self._backlog.clear()
        for call in snap.get("calls") or []:
            if isinstance(call, dict) and isinstance(call.get("call_id"), str):
                self.filter.remember(call["call_id"])
        self.counters.resyncs += 1
        return encode({"type": "resync", "snapshot": snap})
