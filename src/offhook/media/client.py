"""The node's side of the media server control protocol: ``MediaClient``.

Theory of operation. Call processing never waits for media. Every method
of ``MediaClient`` writes one request and returns at once; what comes back
arrives as a callback from the event loop:

- ``open(handle, family, reply)``: ``reply((address, port))`` when the
  endpoint is open (``address`` "" when the media server listens on a
  wildcard and has no ``advertise`` address: the node puts its own), or
  ``reply(None)`` when it is not.
- ``connect``, ``play``, ``stop_play``, ``join``, ``leave``, ``dtmf`` and
  ``release`` have no reply: the media server does what was asked, or the
  handle is lost (below). ``sources`` and ``stats`` reply with the reply's
  fields, or None.
- ``on_lost(handle, cause)``: the handle's media is gone, reported once per
  opened handle, with a Q.850 cause for the node to clear the call with:
  38 (network out of order) when the connection to the media server drops
  or a request is made while there is none; 41 (temporary failure) when a
  request about it gets no reply within its deadline (1 s; the client then
  releases it on the server, in case it comes back); 47 (resource
  unavailable) when the media server refuses a request (``max_streams``
  reached, a full bridge, ...). A failed ``open`` calls ``on_lost`` first,
  then ``reply(None)``.
- ``on_event(event)``: ``dtmf`` (``{"event": "dtmf", "handle": H, "digit":
  D}``), ``rtp-timeout``, ``play-done``, as the JSON object.

Callbacks are never called from inside a method call (a request made while
disconnected fails on the next loop iteration), so the caller's own state
is settled first; an exception raised by a callback is logged and does not
disturb the client.

The client connects in the background and reconnects with backoff (0.1 s
doubling to 5 s) for as long as it runs; a ``hello`` opens each connection,
and the last ``sources`` list is sent again on every new connection (a
restarted media server knows nothing). A ``ping`` every ``ping_interval``
seconds checks an idle connection: no answer within the deadline closes it
(a hung server is a dead one). At most ``max_pending`` requests wait for
replies; beyond, a request fails at once as if it had timed out.

``offhook.media`` is independent of ``offhook.core``: the node adapts these
callbacks to its media port.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from offhook.media import control
from offhook.media.control import ControlError, Event, LineFramer, Reply

log = logging.getLogger("offhook.media.client")

NETWORK_OUT_OF_ORDER = 38
TEMPORARY_FAILURE = 41
RESOURCE_UNAVAILABLE = 47

DEADLINE = 1.0
SOURCES_DEADLINE = 60.0
PING_INTERVAL = 5.0
CONNECT_TIMEOUT = 2.0
MAX_PENDING = 10_000

OpenReply = Callable[[tuple[str, int] | None], None]
FieldsReply = Callable[[dict[str, Any] | None], None]


@dataclass(slots=True)
class _Pending:
    handle: str | None
    timer: asyncio.TimerHandle | None
    on_open: OpenReply | None = None
    on_fields: FieldsReply | None = None
    internal: Callable[[Reply | None], None] | None = None


class _Protocol(asyncio.Protocol):
    def __init__(self, client: MediaClient) -> None:
        self.client = client
        self.framer = LineFramer()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's Unix socket transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            for line in self.framer.feed(data):
                self.client._message(control.parse_message(line))
        except ControlError as exc:
            log.error("media server sent an unusable message (%s): dropping it", exc.reason)
            if self.transport is not None:
                self.transport.abort()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class MediaClient:
    """A control connection to one media server; see the module docstring."""

    def __init__(
        self,
        address: str,
        on_lost: Callable[[str, int], None],
        on_event: Callable[[dict[str, Any]], None],
        *,
        on_state: Callable[[bool], None] | None = None,
        deadline: float = DEADLINE,
        ping_interval: float = PING_INTERVAL,
        backoff: tuple[float, float] = (0.1, 5.0),
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.address = control.parse_control_address(address)
        self.on_lost = on_lost
        self.on_event = on_event
        self.on_state = on_state
        self.deadline = deadline
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.max_pending = max_pending
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._handles: set[str] = set()
        self._proto: _Protocol | None = None
        self._ready = False
        self._task: asyncio.Task[None] | None = None
        self._sources: tuple[control.SourceFile, ...] | None = None
        self._stopping = False
        self.connects = 0
        self.counters: dict[str, int] = dict.fromkeys(
            ("requests", "replies", "errors", "timeouts", "lost", "not_open", "events"), 0
        )

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting (in the background; ``connected`` tells when it is)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Close the connection and stop reconnecting; no callback is called any more."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            await _cancel(task)
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()
        self._handles.clear()

    @property
    def connected(self) -> bool:
        return self._ready

    @property
    def handles(self) -> frozenset[str]:
        """The handles open now (as far as the client knows)."""
        return frozenset(self._handles)

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a connection (for start-up and tests)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not self._ready and loop.time() < end:
            await asyncio.sleep(0.01)
        return self._ready

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            try:
                ok = await self._session()
            except asyncio.CancelledError:
                self._disconnected()
                raise
            except Exception:
                log.exception("media control connection failed")
                ok = False
            if ok:
                delay = self.backoff[0]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _session(self) -> bool:
        """One connection, from connect to loss; True when it got as far as ``hello``."""
        loop = asyncio.get_running_loop()
        factory = lambda: _Protocol(self)  # noqa: E731
        try:
            if self.address.unix:
                connecting = loop.create_unix_connection(factory, self.address.path)
            else:
                connecting = loop.create_connection(factory, self.address.host, self.address.port)
            _, proto = await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            log.debug("media server at %s: %s", self.address, exc)
            return False
        self._proto = proto
        hello: asyncio.Future[Reply | None] = loop.create_future()
        self._send(control.Hello(0), None, internal=_settle(hello))
        try:
            reply = await asyncio.wait_for(asyncio.shield(hello), self.deadline * 2)
        except TimeoutError:
            reply = None
        if reply is None or not reply.ok:
            log.error("media server at %s did not answer hello: %s", self.address, reply)
            self._close_session(proto)
            return False
        self._ready = True
        self.connects += 1
        log.info("connected to the media server at %s", self.address)
        if self._sources is not None:
            self._send(control.Sources(0, self._sources), None, internal=lambda r: None)
        self._call(self.on_state, True)
        try:
            while True:
                await asyncio.wait([proto.lost], timeout=self.ping_interval)
                if proto.lost.done():
                    break
                pong: asyncio.Future[Reply | None] = loop.create_future()
                self._send(control.Ping(0), None, internal=_settle(pong))
                waiting: list[asyncio.Future[Any]] = [pong, proto.lost]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if proto.lost.done():
                    break
                if pong.result() is None:
                    log.error("media server at %s does not answer: closing", self.address)
                    break
        finally:
            self._close_session(proto)
        return True

    def _close_session(self, proto: _Protocol) -> None:
        if proto.transport is not None:
            proto.transport.abort()
        self._disconnected()

    def _disconnected(self) -> None:
        was_ready = self._ready
        self._ready = False
        self._proto = None
        pending = list(self._pending.values())
        self._pending.clear()
        for p in pending:
            if p.timer is not None:
                p.timer.cancel()
            if p.internal is not None:
                p.internal(None)
        for handle in sorted(self._handles):
            self._lose(handle, NETWORK_OUT_OF_ORDER)
        for p in pending:
            self._fail_reply(p)
        if was_ready:
            log.warning("media server connection at %s lost", self.address)
            self._call(self.on_state, False)

    # -- requests ------------------------------------------------------------------

    def open(self, handle: str, family: int, reply: OpenReply) -> None:
        """Open an endpoint of IP ``family`` (4 or 6) named ``handle``; ``reply`` gets its
        address and RTP port (RTCP is port + 1), or None."""
        if handle in self._handles:
            log.error("media handle %s is already open", handle)
            self._later(reply, None)
            return
        self._handles.add(handle)
        self._request(control.Open(0, handle, family), handle, on_open=reply)

    def connect(
        self,
        handle: str,
        address: str,
        port: int,
        codec: str = "PCMU",
        pt: int | None = None,
        dtmf_pt: int | None = None,
        direction: str = "sendrecv",
    ) -> None:
        """Tell the endpoint where the far end is and how to talk to it."""
        if pt is None:
            pt = 8 if codec.upper() == "PCMA" else 0
        req = control.Connect(
            0,
            handle,
            address,
            port,
            control.Codec(codec.upper()),
            pt,
            dtmf_pt,
            control.Direction(direction),
        )
        self._handle_request(req)

    def play(self, handle: str, source: str, loop: bool = True) -> None:
        """Play ``source`` (``moh:NAME``, ``tone:NAME``, ``announce:NAME``) to the far end."""
        self._handle_request(control.Play(0, handle, control.parse_source(source), loop))

    def stop_play(self, handle: str) -> None:
        self._handle_request(control.Stop(0, handle))

    def join(self, handle: str, bridge: str, reply: FieldsReply | None = None) -> None:
        """Put the endpoint in conference ``bridge`` (created on first join)."""
        self._handle_request(control.Join(0, handle, bridge), on_fields=reply)

    def leave(self, handle: str) -> None:
        self._handle_request(control.Leave(0, handle))

    def dtmf(self, handle: str, digits: str) -> None:
        """Send ``digits`` to the far end as RFC 4733 events."""
        self._handle_request(control.Dtmf(0, handle, digits))

    def release(self, handle: str) -> None:
        """Close the endpoint (nothing is reported for it any more)."""
        if handle not in self._handles:
            return
        self._handles.discard(handle)
        if self._ready:
            self._send(control.Release(0, handle), None)

    def sources(self, files: Sequence[tuple[str, str]], reply: FieldsReply | None = None) -> None:
        """Replace the music on hold set (name, path); sent again on every reconnect."""
        items = tuple(control.SourceFile(name, path) for name, path in files)
        self._sources = items
        self._request(control.Sources(0, items), None, on_fields=reply)

    def stats(self, reply: FieldsReply) -> None:
        self._request(control.Stats(0), None, on_fields=reply)

    def _handle_request(self, req: control.Request, on_fields: FieldsReply | None = None) -> None:
        handle = getattr(req, "handle", "")
        if handle not in self._handles:
            self.counters["not_open"] += 1
            log.debug("media request %s for %s, which is not open: dropped", req.cmd, handle)
            if on_fields is not None:
                self._later(on_fields, None)
            return
        self._request(req, handle, on_fields=on_fields)

    def _request(
        self,
        req: control.Request,
        handle: str | None,
        *,
        on_open: OpenReply | None = None,
        on_fields: FieldsReply | None = None,
    ) -> None:
        pending = _Pending(handle, None, on_open, on_fields)
        if not self._ready:
            if handle is not None:
                self._lose(handle, NETWORK_OUT_OF_ORDER)
            self._fail_reply(pending)
            return
        if len(self._pending) >= self.max_pending:
            self.counters["timeouts"] += 1
            if handle is not None:
                self._lose(handle, TEMPORARY_FAILURE)
            self._fail_reply(pending)
            return
        self.counters["requests"] += 1
        self._send(req, handle, on_open=on_open, on_fields=on_fields)

    def _send(
        self,
        req: control.Request,
        handle: str | None,
        *,
        on_open: OpenReply | None = None,
        on_fields: FieldsReply | None = None,
        internal: Callable[[Reply | None], None] | None = None,
    ) -> None:
        proto = self._proto
        if proto is None or proto.transport is None:
            if internal is not None:
                internal(None)
            return
        rid = next(self._ids)
        loop = asyncio.get_running_loop()
        deadline = SOURCES_DEADLINE if isinstance(req, control.Sources) else self.deadline
        timer = loop.call_later(deadline, self._expire, rid)
        self._pending[rid] = _Pending(handle, timer, on_open, on_fields, internal)
        proto.transport.write(control.encode_request(_with_id(req, rid)))

    # -- replies, events, failures ---------------------------------------------------

    def _message(self, message: Reply | Event) -> None:
        if isinstance(message, Event):
            self.counters["events"] += 1
            self._call(
                self.on_event, {**message.fields, "event": message.name, "handle": message.handle}
            )
            return
        pending = self._pending.pop(message.id, None)
        if pending is None:
            return  # after its deadline: already failed
        if pending.timer is not None:
            pending.timer.cancel()
        self.counters["replies"] += 1
        if pending.internal is not None:
            pending.internal(message)
            return
        if not message.ok:
            self.counters["errors"] += 1
            log.warning("media server refused a request for %s: %s", pending.handle, message.error)
            if pending.handle is not None and pending.handle in self._handles:
                self._lose(pending.handle, RESOURCE_UNAVAILABLE)
                self._send(control.Release(0, pending.handle), None)
            self._fail_reply(pending)
            return
        if pending.on_open is not None:
            address, port = message.fields.get("address", ""), message.fields.get("port")
            if not isinstance(address, str) or type(port) is not int:
                self._fail_reply(pending)
                return
            self._call(pending.on_open, (address, port))
        elif pending.on_fields is not None:
            self._call(pending.on_fields, dict(message.fields))

    def _expire(self, rid: int) -> None:
        pending = self._pending.pop(rid, None)
        if pending is None:
            return
        self.counters["timeouts"] += 1
        if pending.internal is not None:
            pending.internal(None)
            return
        handle = pending.handle
        if handle is not None and handle in self._handles:
            log.warning("media server did not answer in time for %s", handle)
            self._lose(handle, TEMPORARY_FAILURE)
            self._send(control.Release(0, handle), None)
        self._fail_reply(pending)

    def _lose(self, handle: str, cause: int) -> None:
        if handle not in self._handles:
            return
        self._handles.discard(handle)
        self.counters["lost"] += 1
        self._later(self.on_lost, handle, cause)

    def _fail_reply(self, pending: _Pending) -> None:
        if pending.on_open is not None:
            self._later(pending.on_open, None)
        elif pending.on_fields is not None:
            self._later(pending.on_fields, None)

    def _later(self, callback: Callable[..., None], *args: Any) -> None:
        asyncio.get_running_loop().call_soon(self._call, callback, *args)

    def _call(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None or self._stopping:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("media client callback %s failed", getattr(callback, "__name__", ""))


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it (again and again: a cancellation that
    arrives as an inner ``wait_for`` completes is lost on Python 3.11)."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def _settle(future: asyncio.Future[Reply | None]) -> Callable[[Reply | None], None]:
    def done(reply: Reply | None) -> None:
        if not future.done():
            future.set_result(reply)

    return done


def _with_id(req: control.Request, rid: int) -> control.Request:
    return replace(req, id=rid)
