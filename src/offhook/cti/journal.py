"""The node's CTI journal: node-wide event ids, the recent events, and their streams.

Theory of operation. ``Journal.record(event)`` takes each CTI event
(``cti.events``) as it happens and gives it the next node-wide ``id``: the
first id of a node run is its start time in microseconds since the epoch
(``first_id``), then +1 per event, so ids grow across restarts and an id
from before a restart is older than any this run holds. The last
``capacity`` events are kept in a ring for clients that reconnect.

A client streams with ``subscribe(after)`` (the control op ``events``):
it gets a ``Subscriber`` and a ``StreamStart`` (``first_id``: the oldest id
held, ``last_id``: the newest given, ``resync``). With ``after`` an id this
run still holds (or the last one), the events after it are replayed first;
an ``after`` the ring no longer holds, or one of another run, gets no
replay and ``resync`` true (the client takes a snapshot); no ``after``: new
events only. Replay and live events join without a gap or a duplicate:
everything here is synchronous in the node's loop.

Cost on the call path (the bus is synchronous): ``record`` stores the dict
as it is. An event is serialised (JSON, one line) only when someone wants
it: once when it happens while a client streams, the same bytes going to
every client, or once when a reconnecting client first replays it.

Each subscriber has a bounded queue (``queue_bytes`` of lines not yet
taken by its connection). A subscriber whose queue would pass the bound is
dropped: its queue is replaced by one last line ``{"type": "overflow"}``
and it ends (its connection closes; the client reconnects with its last
id). Nothing else slows down: a slow client costs only itself.

Commands (``command()``): a CTI command gets an id (``c1``, ``c2``, ...);
every call event published while it runs tags its call with that id, as
does ``tag(call_id, command)``, and the later events of a tagged call carry
``command`` until the call's ``call.ended`` (the last one tagged). The tag
follows the call's legs: a leg of a tagged call that moves into another
call (pickup, park, transfer) tags that call too, until the leg's
``call.cleared``; a ``call.transferred`` passes it to its ``new_call_id``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from offhook.ris.control_codec import StreamStart, encode_event

__all__ = ["OVERFLOW", "Journal", "StreamStart", "Subscriber"]

Event = dict[str, Any]

OVERFLOW = encode_event({"type": "overflow", "reason": "the stream fell behind"})
"""The last line of a stream whose client fell behind."""
MAX_TAGS = 16384
"""Calls (and legs) tagged with a command at most (a tag goes at its call's or leg's end)."""


def _bounded_set(tags: dict[str, str], key: str, command: str) -> None:
    if key not in tags and len(tags) >= MAX_TAGS:
        del tags[next(iter(tags))]  # the oldest: a call (or leg) whose end never came
    tags[key] = command


class _Entry:
    __slots__ = ("event", "id", "line")

    def __init__(self, event_id: int, event: Event) -> None:
        self.id = event_id
        self.event = event
        self.line: bytes | None = None

    def encoded(self) -> bytes:
        line = self.line
        if line is None:
            line = self.line = encode_event(self.event)
        return line


class Subscriber:
    """One stream's queue of event lines (a ``ris.control.StreamSource``).

    ``take()`` hands over what is queued, as one chunk of lines, and whether
    the stream has ended (overflow or ``close``); ``set_waker(f)``: ``f()``
    is called when there is something to take.
    """

    __slots__ = ("_bytes", "_journal", "_limit", "_queue", "_wake", "ended", "overflowed")

    def __init__(self, journal: Journal, limit: int) -> None:
        self._journal = journal
        self._limit = limit
        self._queue: list[bytes] = []
        self._bytes = 0
        self._wake: Callable[[], None] | None = None
        self.ended = False
        self.overflowed = False

    @property
    def queued(self) -> int:
        """Bytes queued now."""
        return self._bytes

    def push(self, line: bytes) -> None:
        if self.ended:
            return
        size = self._bytes + len(line)
        if size > self._limit:
            self._queue = [OVERFLOW]
            self._bytes = len(OVERFLOW)
            self.ended = self.overflowed = True
            self._journal.dropped(self)
        else:
            self._queue.append(line)
            self._bytes = size
        if self._wake is not None:
            self._wake()

    def _preload(self, data: bytes) -> None:
        """The replay: queued before any live event, whatever its size (the ring bounds it)."""
        if data:
            self._queue.append(data)
            self._bytes += len(data)

    def take(self) -> tuple[bytes, bool]:
        queue = self._queue
        if not queue:
            return b"", self.ended
        data = queue[0] if len(queue) == 1 else b"".join(queue)
        self._queue = []
        self._bytes = 0
        return data, self.ended

    def set_waker(self, wake: Callable[[], None] | None) -> None:
        self._wake = wake
        if wake is not None and (self._queue or self.ended):
            wake()

    def close(self) -> None:
        """The stream is over (its connection closed): no more events."""
        if not self.ended:
            self.ended = True
            self._journal.dropped(self)
        self._queue = []
        self._bytes = 0
        self._wake = None


class Journal:
    """Numbers, keeps and streams CTI events; see the module docstring."""

    def __init__(self, first_id: int, *, capacity: int = 10000, queue_bytes: int = 4 << 20) -> None:
        if capacity < 1 or queue_bytes < 1:
            raise ValueError("capacity and queue_bytes must be positive")
        self.run_first_id = first_id
        self.queue_bytes = queue_bytes
        self._next = first_id
        self._ring: deque[_Entry] = deque(maxlen=capacity)
        self._subs: list[Subscriber] = []
        self._tags: dict[str, str] = {}  # call id -> command
        self._legs: dict[str, str] = {}  # leg id -> command, while the leg lives
        self._scope: str | None = None
        self._commands = 0
        self.overflows = 0  # subscribers dropped because they fell behind
        self.streams = 0  # subscribers ever

    # ------------------------------------------------------------ ids
    @property
    def last_id(self) -> int:
        """The id of the newest event (``first_id - 1`` before the first)."""
        return self._next - 1

    @property
    def first_id(self) -> int:
        """The id of the oldest event held (``last_id + 1`` when none is)."""
        ring = self._ring
        return ring[0].id if ring else self._next

    def __len__(self) -> int:
        return len(self._ring)

    # ------------------------------------------------------------ recording
    def record(self, event: Event | None) -> None:
        """Number and keep ``event`` (a ``cti.events`` dict; None: nothing), send it on."""
        if event is None:
            return
        event_id = event["id"] = self._next
        self._next += 1
        if self._tags or self._legs or self._scope is not None:
            self._tag(event)
        entry = _Entry(event_id, event)
        self._ring.append(entry)
        if self._subs:
            line = entry.encoded()
            for sub in tuple(self._subs):
                sub.push(line)

    def _tag(self, event: Event) -> None:
        call_id = event.get("call_id")
        if call_id is None:
            return
        command = self._scope
        leg_id = event.get("leg_id")
        if command is None:
            command = self._tags.get(call_id)
            if command is None:
                if not leg_id or (command := self._legs.get(leg_id)) is None:
                    return
                self.tag(call_id, command)  # a tagged leg moved into this call
        else:
            self.tag(call_id, command)
        event["command"] = command
        kind = event["type"]
        if kind == "call.ended":
            self._tags.pop(call_id, None)
        elif event.get("new_call_id"):
            self.tag(event["new_call_id"], command)
        if leg_id:
            if kind == "call.cleared":
                self._legs.pop(leg_id, None)
            else:
                _bounded_set(self._legs, leg_id, command)

    # ------------------------------------------------------------ commands
    def new_command(self) -> str:
        self._commands += 1
        return f"c{self._commands}"

    def tag(self, call_id: str, command: str) -> None:
        """Mark ``call_id``'s later events with ``command`` (until the call ends)."""
        _bounded_set(self._tags, call_id, command)

    @contextlib.contextmanager
    def command(self, *call_ids: str) -> Iterator[str]:
        """A new command id; the calls named and every call with an event meanwhile get it."""
        command = self.new_command()
        for call_id in call_ids:
            if call_id:
                self.tag(call_id, command)
        outer, self._scope = self._scope, command
        try:
            yield command
        finally:
            self._scope = outer

    def command_of(self, call_id: str) -> str | None:
        return self._tags.get(call_id)

    # ------------------------------------------------------------ streams
    def subscribe(self, after: int | None = None) -> tuple[Subscriber, StreamStart]:
        """A new stream from after ``after`` (see the module docstring)."""
        sub = Subscriber(self, self.queue_bytes)
        first, last = self.first_id, self.last_id
        resync = False
        if after is not None:
            if first - 1 <= after <= last and after >= self.run_first_id - 1:
                missed = itertools.islice(self._ring, after + 1 - first, None)
                sub._preload(b"".join(entry.encoded() for entry in missed))
            else:
                resync = True
        self._subs.append(sub)
        self.streams += 1
        return sub, StreamStart(first, last, resync)

    def dropped(self, sub: Subscriber) -> None:
        """``sub`` ended (overflow or closed): it gets no more events."""
        if sub in self._subs:
            self._subs.remove(sub)
            if sub.overflowed:
                self.overflows += 1

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def status(self) -> dict[str, int]:
        return {
            "first_id": self.first_id,
            "last_id": self.last_id,
            "published": self._next - self.run_first_id,
            "held": len(self._ring),
            "subscribers": len(self._subs),
            "streams": self.streams,
            "overflows": self.overflows,
            "tagged_calls": len(self._tags),
            "tagged_legs": len(self._legs),
        }
