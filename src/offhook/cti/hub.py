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

Followers (``follow``): a session subscribed to everything, with nothing
held back (no backlog, no resync), is not offered each event. The hub keeps
a short *feed* of the events since the oldest follower's cursor, each
encoded once per wire format (``Wire``: a WebSocket frame, a JSON line) as
a *template*, ``{"seq":%10d,`` + the event's text with ``%`` escaped:
``seq`` right-aligned in ``SEQ_WIDTH`` places (JSON allows blanks before a
number), so a frame's length does not depend on its client. A follower's
writer takes the events past its cursor in one ``render``: the templates
joined and formatted with its ``seq`` numbers (one C-level ``%``), so the
per-client cost of an event is a copy, not Python code. What a per-event
filter would decide is decided here once per event: a ``call.ended`` goes
to a follower that got an event of that call, as ``EventFilter`` decides
(the feed notes the position of each live call's last event,
``MAX_LIVE_CALLS`` at most; a follower that came after it notes the ending
as one to skip; one of a call no follower saw is an empty template). A
follower that falls ``limit`` events (and control frames) behind is
overflowed when the next event it gets comes (``FollowSink.fell_behind``),
as its queue would have been; the hub checks only when a follower could be
that far behind (``_check_at``).

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
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from offhook.ris.control import ControlError

__all__ = [
    "SEQ_WIDTH",
    "Follow",
    "FollowSink",
    "Hub",
    "HubStats",
    "Sink",
    "StreamStart",
    "Upstream",
    "Wire",
    "encode",
]

log = logging.getLogger("offhook.cti")

YIELD_EVERY = 32
"""Events taken from one read of the node's stream before the loop runs others."""

SEQ_WIDTH = 10
"""Places of a follower's ``seq`` (right-aligned: ``{"seq":         7,``)."""
SEQ_LIMIT = 10**SEQ_WIDTH
"""A follower whose ``seq`` would reach it leaves the feed (the per-event path has no width)."""
MAX_LIVE_CALLS = 65_536
"""Calls the feed remembers (for their ``call.ended``) while there are followers."""
_NOT_ENDED = 1 << 62
"""The feed's ``ended`` of an event that is not a ``call.ended`` (every follower gets it)."""
_ORPHAN = -1
"""The feed's ``ended`` of a ``call.ended`` of a call no follower got an event of."""

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Wire:
    """How a transport frames a text: ``head(length)`` before its UTF-8, ``tail`` after."""

    name: str
    head: Callable[[int], bytes]
    tail: bytes = b""

    def frames(self, texts: Iterable[str]) -> bytes:
        """``texts`` framed, in one buffer."""
        head, tail = self.head, self.tail
        parts: list[bytes] = []
        for text in texts:
            data = text.encode()
            parts.append(head(len(data)))
            parts.append(data)
            if tail:
                parts.append(tail)
        return b"".join(parts)

    def template(self, body: str) -> bytes:
        """The frame of ``body`` (an event's text, ``{`` first) numbered by ``%`` with one int:
        ``{"seq":`` + the int in ``SEQ_WIDTH`` places + ``,`` + the rest of ``body``."""
        data = body.encode()
        length = len(data) + 7 + SEQ_WIDTH  # '{"seq":' + digits + ',' for the '{'
        head = self.head(length).replace(b"%", b"%%")
        rest = data[1:].replace(b"%", b"%%")
        tail = self.tail.replace(b"%", b"%%")
        return b"".join((head, b'{"seq":%', str(SEQ_WIDTH).encode(), b"d,", rest, tail))


class FollowSink(Protocol):
    """A sink that can follow the feed (``cti.session.Session``)."""

    def offer(self, event: Event, body: str) -> None: ...

    @property
    def limit(self) -> int: ...

    def controls(self) -> int:
        """Stream control frames it has queued (they count against ``limit``)."""
        ...

    def wake(self) -> None: ...
    def fell_behind(self, dropped: int) -> None: ...
    def gap(self) -> None: ...


@dataclass(slots=True, eq=False)
class Follow:
    """A follower's place in the hub's feed (absolute positions: the n-th event fed)."""

    sink: FollowSink
    wire: Wire
    start: int
    """Its first event's position: a call with no event from there on is not its."""
    cursor: int
    """The position of its next event."""
    skips: deque[int] = field(default_factory=deque)
    """Positions past its cursor of ``call.ended`` events of calls it did not see."""
    waiting: bool = False


def encode(event: Event) -> str:
    """``event`` as one compact JSON text (what every client gets, after its ``seq``).

    Text as it is, but a lone surrogate (what the SIP parser keeps of bytes that
    are not UTF-8, e.g. in a caller's display name) escaped as ``\\udcff``: it has
    no UTF-8 form, and every client's frame of the event is UTF-8.
    """
    text = _TEXT.encode(event)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return _ESCAPED.encode(event)
    return text


# Built once (``json.dumps`` with options builds an encoder a call): every event is encoded.
_TEXT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
_ESCAPED = json.JSONEncoder(separators=(",", ":"), default=str)


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
        # The feed (see the module doc): parallel lists from position ``_fbase``.
        self._follows: list[Follow] = []
        self._end = 0
        self._fbase = 0
        self._f_ids: list[int] = []
        self._f_bodies: list[str] = []
        self._f_ended: list[int] = []
        self._f_cum: list[int] = []
        """Events before each that are not orphans (the ``%`` fields of a range)."""
        self._cum = 0
        self._f_tpl: dict[Wire, list[bytes]] = {}
        self._live: OrderedDict[str, int] = OrderedDict()
        """Live calls: the position of their last event, oldest first."""
        self._check_at = 0
        self._waiting: list[Follow] = []

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
        for follow in self._follows:
            if follow.sink is sink:
                self.drop(follow)
                break

    # --- followers (the feed) ------------------------------------------------------

    @property
    def followers(self) -> int:
        return len(self._follows)

    @property
    def end(self) -> int:
        """The position of the next event fed."""
        return self._end

    def follow(self, sink: FollowSink, wire: Wire) -> Follow:
        """``sink`` (attached) follows the feed from the next event instead of being offered."""
        self._sinks = tuple(s for s in self._sinks if s is not sink)
        if not self._follows:
            self._fbase = self._end
        follow = Follow(sink, wire, self._end, self._end)
        self._follows.append(follow)  # in the order of ``start``
        if wire not in self._f_tpl:
            self._f_tpl[wire] = [b""] * len(self._f_ids)
        self._check_at = 0
        return follow

    def pending(self, follow: Follow) -> int:
        """Events fed past ``follow``'s cursor that it gets."""
        return self._cum_at(self._end) - self._cum_at(follow.cursor) - len(follow.skips)

    def wait(self, follow: Follow) -> None:
        """Wake ``follow.sink`` when the next event is fed."""
        if not follow.waiting:
            follow.waiting = True
            self._waiting.append(follow)

    def recheck(self) -> None:
        """A follower queued a control frame: check the limits at the next event."""
        self._check_at = 0

    def drop(self, follow: Follow) -> None:
        """``follow`` leaves the feed (what it had not taken is forgotten)."""
        if follow not in self._follows:
            return
        self._follows = [f for f in self._follows if f is not follow]
        follow.waiting = False
        self._waiting = [f for f in self._waiting if f is not follow]
        self._forget_unused()

    def unfollow(self, follow: Follow) -> tuple[list[tuple[int, int, str]], list[str]]:
        """``follow`` leaves the feed and its sink is offered events again: the events
        it had not taken and would have got (position, id, text), and the calls it got
        an event of that have not ended, oldest first (for its filter)."""
        base, ended, start = self._fbase, self._f_ended, follow.start
        skips = set(follow.skips)
        events = [
            (pos, self._f_ids[pos - base], self._f_bodies[pos - base])
            for pos in range(follow.cursor, self._end)
            if ended[pos - base] != _ORPHAN and pos not in skips
        ]
        calls = [call for call, at in self._live.items() if at >= start]
        self.drop(follow)
        self.attach(follow.sink)
        return events, calls

    def render(
        self, follow: Follow, limit: int, seq: int, upto: int | None = None
    ) -> tuple[bytes, int] | None:
        """The events it gets among the next ``limit`` fed past ``follow``'s cursor (and
        before position ``upto``), as frames of its wire numbered from ``seq`` + 1, and
        how many; None when ``seq`` would outgrow ``SEQ_WIDTH`` (it must leave the feed)."""
        first = follow.cursor
        last = min(self._end, first + max(0, limit))
        if upto is not None:
            last = min(last, upto)
        if last <= first:
            return b"", 0
        base = self._fbase
        templates = self._f_tpl[follow.wire]
        skips = follow.skips
        skipped = 0
        for skip in skips:
            if skip >= last:
                break
            skipped += 1
        count = self._cum_at(last) - self._cum_at(first) - skipped
        if seq + count >= SEQ_LIMIT:
            return None
        if skipped:
            parts: list[bytes] = []
            at = first
            for _ in range(skipped):
                skip = skips.popleft()
                parts += templates[at - base : skip - base]
                at = skip + 1
            parts += templates[at - base : last - base]
            joined = b"".join(parts)
        else:
            joined = b"".join(templates[first - base : last - base])
        follow.cursor = last
        return joined % tuple(range(seq + 1, seq + count + 1)), count

    def _cum_at(self, pos: int) -> int:
        return self._cum if pos >= self._end else self._f_cum[pos - self._fbase]

    def _feed(self, event_id: int, event: Event, body: str) -> None:
        pos = self._end
        ended = _NOT_ENDED
        call_id = event.get("call_id")
        live = self._live
        if isinstance(call_id, str):
            if event.get("type") == "call.ended":
                ended = live.pop(call_id, _ORPHAN)
            else:
                live[call_id] = pos
                live.move_to_end(call_id)
                if len(live) > MAX_LIVE_CALLS:
                    live.popitem(last=False)
        if pos >= self._check_at:
            self._check(pos, ended)
            if not self._follows:
                self._end = pos + 1
                return
        self._f_ids.append(event_id)
        self._f_bodies.append(body)
        self._f_ended.append(ended)
        self._f_cum.append(self._cum)
        if ended == _ORPHAN:
            for templates in self._f_tpl.values():
                templates.append(b"")
        else:
            self._cum += 1
            for wire, templates in self._f_tpl.items():
                templates.append(wire.template(body))
            if ended != _NOT_ENDED:
                # The followers that came after the call's last event did not see it.
                for follow in reversed(self._follows):
                    if follow.start <= ended:
                        break
                    follow.skips.append(pos)
        self._end = pos + 1
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            for follow in waiting:
                follow.waiting = False
                follow.sink.wake()

    def _check(self, pos: int, ended: int) -> None:
        """Overflow the followers too far behind to take the event at ``pos`` (``ended``:
        its feed note); the next position to check at; the feed cut to the laggiest
        cursor."""
        keep: list[Follow] = []
        check_at, low = _NOT_ENDED, pos
        for follow in self._follows:
            room = follow.sink.limit - follow.sink.controls()
            behind = self.pending(follow)
            gets = ended == _NOT_ENDED or (ended >= 0 and follow.start <= ended)
            if gets and behind >= room:
                follow.waiting = False
                follow.sink.fell_behind(behind + 1)  # and the event at ``pos``
                continue
            keep.append(follow)
            check_at = min(check_at, pos + max(1, room - behind))
            low = min(low, follow.cursor)
        if len(keep) != len(self._follows):
            self._follows = keep
            self._waiting = [f for f in self._waiting if f in keep]
            self._forget_unused()
        self._check_at = check_at
        cut = low - self._fbase
        if cut > 0:
            for column in (self._f_ids, self._f_bodies, self._f_ended, self._f_cum):
                del column[:cut]
            for templates in self._f_tpl.values():
                del templates[:cut]
            self._fbase = low

    def _forget_unused(self) -> None:
        """Templates of wires no follower uses are not built; with no follower, no feed."""
        used = {f.wire for f in self._follows}
        for wire in [w for w in self._f_tpl if w not in used]:
            del self._f_tpl[wire]
        if not self._follows:
            for column in (self._f_ids, self._f_bodies, self._f_ended, self._f_cum):
                column.clear()
            self._fbase = self._end
            self._live.clear()
            self._check_at = 0

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
            for follow in list(self._follows):
                follow.sink.gap()  # it leaves the feed (and is offered events again)

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
        if self._follows:
            self._feed(event_id, event, body)
        else:
            self._end += 1
        for sink in self._sinks:
            sink.offer(event, body)
        return True

    def feed(self, events: Iterable[Event]) -> int:
        """Take several events (tests, benchmarks); how many were new."""
        return sum(1 for e in events if self.take(e))
