"""A client of the node's event stream (the control op ``events``).

The web process (the CTI hub) follows the node's CTI events with it::

    async with EventStream(host, port, after=last_id) as stream:
        if stream.start.resync:
            ...  # take a snapshot (control op ``cti_snapshot``)
        async for event in stream:
            ...  # one dict per event, ids increasing

``stream.start`` is the node's ``StreamStart`` (``first_id``, ``last_id``,
``resync``); ``stream.last_id`` the id of the last event received (``after``
until one came), to reconnect with. The stream ends (the iteration stops)
after an ``{"type": "overflow"}`` line: the client fell behind and the node
dropped it; reconnect with ``last_id``. A node that cannot be reached, does
not answer within ``timeout`` seconds, or closes the stream otherwise
raises ``ris.control.NodeUnavailable``; a node that refuses the request or
writes a line that is no event raises ``ris.control.ControlError``. An event
line longer than ``max_line`` bytes is refused the same way, never held.
Events may be far apart: only connecting and the answer have a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, Self

from offhook.ris.control import CHUNK, ControlError, NodeUnavailable, _unavailable
from offhook.ris.control_codec import (
    ControlProtocolError,
    LineBuffer,
    LineTooLong,
    StreamStart,
    encode_request,
    parse_answer,
    parse_event,
)

__all__ = ["MAX_LINE", "EventStream", "StreamStart"]

MAX_LINE = 1 << 20
"""Bytes of one event line a client accepts at most."""


def _start_of(result: Any) -> StreamStart:
    if not isinstance(result, dict):
        raise ControlError("bad answer from the node: the events op answers an object")
    first, last, resync = result.get("first_id"), result.get("last_id"), result.get("resync")
    if not (isinstance(first, int) and isinstance(last, int) and isinstance(resync, bool)):
        raise ControlError("bad answer from the node: first_id, last_id and resync expected")
    return StreamStart(first, last, resync)


class EventStream:
    """One stream of the node's events; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        after: int | None = None,
        timeout: float = 5.0,
        *,
        max_line: int = MAX_LINE,
    ) -> None:
        self.host = host
        self.port = port
        self.after = after
        self.timeout = timeout
        self.start = StreamStart(0, 0, False)
        self.last_id = after
        self.received = 0
        self._lines = LineBuffer(max_line)
        self._pending: deque[bytes] = deque()
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._over = False

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> StreamStart:
        """Connect, ask for the events after ``after``; the node's ``StreamStart``."""
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    reader, writer = await asyncio.open_connection(
                        self.host, self.port, limit=CHUNK
                    )
                except OSError as exc:
                    raise _unavailable(self.host, self.port, exc) from None
                return await self.attach(reader, writer)
        except TimeoutError:
            await self.close()
            raise _unavailable(self.host, self.port, "no answer in time") from None

    async def attach(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> StreamStart:
        """Ask for the events on a connection already open (``open`` does; tests, fuzzing)."""
        self._conn = reader, writer
        try:
            writer.write(encode_request("events", {"after": self.after}))
            await writer.drain()
            line = await self._line()
        except BaseException:
            await self.close()
            raise
        try:
            answer = parse_answer(line)
        except ControlProtocolError as exc:
            await self.close()
            raise ControlError(f"bad answer from the node: {exc}") from None
        if not answer.ok:
            await self.close()
            raise ControlError(answer.error)
        try:
            self.start = _start_of(answer.result)
        except ControlError:
            await self.close()
            raise
        return self.start

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        writer = conn[1]
        writer.transport.abort()  # nothing to say to the node; no wait for a flush
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    async def _line(self) -> bytes:
        """The next line from the node (without its ``\\n``)."""
        while not self._pending:
            if self._conn is None:
                raise NodeUnavailable("the event stream is closed")
            try:
                data = await self._conn[0].read(CHUNK)
            except (ConnectionError, OSError) as exc:
                raise _unavailable(self.host, self.port, exc) from None
            if not data:
                raise _unavailable(self.host, self.port, "the node closed the event stream")
            try:
                self._pending.extend(self._lines.feed(data))
            except LineTooLong as exc:
                raise ControlError(f"event from the node: {exc}") from None
        return self._pending.popleft()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            if self._over:
                raise StopAsyncIteration
            line = (await self._line()).strip()
            if not line:
                continue
            try:
                event = parse_event(line)
            except ControlProtocolError as exc:
                raise ControlError(f"bad event from the node: {exc}") from None
            event_id = event.get("id")
            if isinstance(event_id, int) and not isinstance(event_id, bool):
                self.last_id = event_id
            elif event.get("type") == "overflow":
                self._over = True
            self.received += 1
            return event
