"""The node's local control endpoint (``[admin]``) and its clients.

Theory of operation. A running node answers requests about itself and
takes live commands here: ``offhook status`` asks it for ``status``, the
web process for ``status``, ``coverage`` and sets ``forward_all`` and
``dnd`` for a user. The protocol is JSON lines over TCP
(``ris.control_codec``): one request a line, one answer a line in order,
several requests per connection.

``ControlServer(handlers, allow, reject, limits)`` serves the ops it is
given (``op`` name -> a callable taking the request's arguments as a dict
and returning what JSON can carry, or an awaitable of it). A handler
refuses a bad argument with ``ValueError`` (its text is the answer's
``error``) or ``KeyError`` (a missing argument); anything else it raises is
logged and answered ``internal error``. The listener has the defences of
every listener (``net.guard.ListenerGuard`` over the ``[admin]`` limits):
a source allow-list checked before a byte is read (a refused source is
reset and keeps no state), connection caps overall and per source, a
token bucket per source for connections and requests (a source over its
rate is read more slowly, not answered faster), a line bounded by
``max_message`` bytes (read in chunks, never more than that is held: a
longer line is answered with an error and the connection closed),
``handshake_timeout`` to deliver the first line and ``idle_timeout`` for
every later one and to take an answer. A line that is no request is
answered with an error and the connection closed; an unknown op or a bad
argument is answered with an error and the connection stays. Blank lines
are ignored. A peer's address is normalised as it arrives
(``common.addr.peer``: an IPv4-mapped source is IPv4).

Streaming ops (``events``): a handler may return ``Streaming(result,
source)``. Its answer line carries ``result``; then the connection carries
what ``source`` (a ``StreamSource``, e.g. ``cti.journal.Subscriber``) hands
over, one line at a time, until the source ends (it wrote its last line),
the peer closes, or the server does. The connection still counts against
the caps. The idle timeout does not apply while streaming (the peer sends
nothing; a byte from it, or its half-close, ends the stream), but a peer
that does not read is dropped: by its source when its bounded queue
overflows, and here when a write cannot be delivered within
``idle_timeout`` (the connection is reset, counted as ``stream-stalled``).
Any answer a peer leaves unread for ``idle_timeout`` resets its
connection the same way (a close would wait for the unread bytes).

Clients: ``ControlClient(host, port)`` (asyncio; one connection kept and
reopened when the node closed it) and ``control_request(settings, op,
**args)`` (blocking: the CLI, threads). Both raise ``NodeUnavailable``
(a ``ConnectionError``) when no node answers, and ``ControlError`` when it
answers with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from offhook.common.addr import host_port, is_wildcard
from offhook.common.addr import peer as normal_peer
from offhook.net.bindings import start_stream_servers
from offhook.net.guard import (
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    LISTEN_BACKLOG,
    MALFORMED,
    TOO_LARGE,
    ListenerGuard,
    ListenerLimits,
)
from offhook.ris.control_codec import (
    BadRequest,
    ControlProtocolError,
    LineBuffer,
    LineTooLong,
    encode_error,
    encode_request,
    encode_result,
    parse_answer,
    parse_request,
)

if TYPE_CHECKING:
    from offhook.config import Settings

log = logging.getLogger("offhook.control")

Handler = Callable[[dict[str, Any]], Any]
CHUNK = 16384
MAX_ANSWER = 64 << 20
"""Bytes of one answer a client accepts at most (a status of many thousand phones)."""
DEFAULT_TIMEOUT = 5.0


STALLED = "stream-stalled"
"""Rejection reason: a peer that did not take what was written within ``idle_timeout``."""


class StreamSource(Protocol):
    """Where a streaming op's lines come from (``cti.journal.Subscriber`` is one)."""

    def take(self) -> tuple[bytes, bool]:
        """Whole lines queued now (b"" none), and whether nothing more will come."""
        ...

    def set_waker(self, wake: Callable[[], None] | None) -> None:
        """Call ``wake()`` when there is something to take (None: stop)."""
        ...

    def close(self) -> None:
        """The connection is gone: release what the source holds."""
        ...


@dataclass(frozen=True, slots=True)
class Streaming:
    """A streaming op's outcome: the answer's ``result``, then ``source``'s lines."""

    result: Any
    source: StreamSource


class ControlError(Exception):
    """The node answered a request with an error (the text is its ``error``)."""


class NodeUnavailable(ConnectionError):
    """No node answered: nothing listens, the connection failed, or no answer came in time."""


def default_limits() -> ListenerLimits:
    return ListenerLimits(
        max_message=65536,
        idle_timeout=10.0,
        handshake_timeout=5.0,
        max_connections=32,
        max_connections_per_source=8,
        rate_per_source=50.0,
        rate_burst=100.0,
    )


class ControlServer:
    """The JSON-lines control listener; see the module docstring."""

    def __init__(
        self,
        handlers: dict[str, Handler],
        allow: Callable[[str], bool],
        reject: Callable[[str, tuple[str, int]], None] | None = None,
        limits: ListenerLimits | None = None,
    ) -> None:
        self.handlers = handlers
        self._reject = reject
        self.limits = limits or default_limits()
        self.guard = ListenerGuard(
            self.limits, allow, lambda reason, host: self._refuse(reason, (host, 0))
        )
        self.servers: list[asyncio.Server] = []
        self.requests = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str | Sequence[str], port: int) -> int:
        """Listen on every address of ``host`` (one or a list) on ``port``; the bound port."""
        self.servers, bound = await start_stream_servers(
            self.handle,
            host,
            port,
            limit=max(CHUNK, self.limits.max_message),
            backlog=LISTEN_BACKLOG,
        )
        return bound

    async def close(self) -> None:
        """Stop listening, close every open connection and wait for their handlers.

        Nothing of the server is left running once this returns (a handler
        left pending would be destroyed with its event loop).
        """
        for server in self.servers:
            server.close()
        for writer in list(self._open):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for server in self.servers:
            await server.wait_closed()

    def status(self) -> dict[str, int]:
        return self.guard.status()

    def _refuse(self, reason: str, peer: tuple[str, int]) -> None:
        if self._reject is not None:
            self._reject(reason, peer)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection (the stream server's callback)."""
        peer_info = writer.get_extra_info("peername")
        peer = normal_peer(peer_info) if peer_info else ("", 0)
        loop = asyncio.get_running_loop()
        if not self.guard.admit_connection(peer[0], loop.time()):
            writer.transport.abort()  # a reset: no answer
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._open.add(writer)
        try:
            await self._serve(reader, writer, peer)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._open.discard(writer)
            self.guard.release(peer[0])
            writer.close()
            try:
                # A close waits for the peer to take what is still buffered
                # (the last lines of a stream); a peer that does not is reset.
                async with asyncio.timeout(self.limits.idle_timeout):
                    await writer.wait_closed()
            except TimeoutError:
                writer.transport.abort()
            except (ConnectionError, OSError):
                pass
            if task is not None:
                self._tasks.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: tuple[str, int]
    ) -> None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        lines = LineBuffer(limits.max_message)
        pending: deque[bytes] = deque()
        deadline = loop.time() + limits.handshake_timeout
        first = True
        too_long: LineTooLong | None = None
        while True:
            if not pending:
                if too_long is not None:  # the lines before it are answered: now the error
                    self._refuse(TOO_LARGE, peer)
                    await self._send(writer, encode_error(str(too_long)), peer)
                    return
                try:
                    # asyncio.timeout, not wait_for: no inner task to be left unawaited
                    async with asyncio.timeout_at(deadline):
                        data = await reader.read(CHUNK)
                except TimeoutError:
                    self._refuse(HANDSHAKE_TIMEOUT if first else IDLE_TIMEOUT, peer)
                    return
                if not data:
                    return
                try:
                    pending.extend(lines.feed(data))
                except LineTooLong as exc:
                    pending.extend(exc.lines)
                    too_long = exc
                continue
            line = pending.popleft().strip()
            if not line:
                continue
            first = False
            delay = self.guard.throttle(peer[0], loop.time(), 1)
            if delay > 0:
                await asyncio.sleep(delay)  # a source over its rate is read more slowly
            try:
                request = parse_request(line)
            except BadRequest as exc:
                self._refuse(MALFORMED, peer)
                await self._send(writer, encode_error(str(exc)), peer)
                return
            self.requests += 1
            answer, stream = await self._answer(request.op, request.args)
            if stream is not None:
                # The peer sends nothing more: what it sent after the request ends it.
                more = (
                    too_long is not None
                    or lines.buffered > 0
                    or any(rest.strip() for rest in pending)
                )
                try:
                    if await self._send(writer, answer, peer) and not more:
                        await self._stream(reader, writer, peer, stream)
                finally:
                    stream.close()
                return
            if not await self._send(writer, answer, peer):
                return
            deadline = loop.time() + limits.idle_timeout

    async def _answer(self, op: str, args: dict[str, Any]) -> tuple[bytes, StreamSource | None]:
        handler = self.handlers.get(op)
        if handler is None:
            return encode_error(f"unknown op {op!r}"), None
        try:
            result = handler(args)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, Streaming):
                try:
                    return encode_result(result.result), result.source
                except BaseException:
                    result.source.close()
                    raise
            return encode_result(result), None
        except KeyError as exc:
            return encode_error(f"missing argument {exc}"), None
        except ValueError as exc:
            return encode_error(str(exc) or "bad argument"), None
        except Exception:
            log.exception("control op %s failed", op)
            return encode_error("internal error"), None

    async def _send(
        self, writer: asyncio.StreamWriter, answer: bytes, peer: tuple[str, int]
    ) -> bool:
        if writer.transport.is_closing():
            return False  # the peer is gone (reset): uvloop refuses writes to a closed transport
        writer.write(answer)
        try:
            async with asyncio.timeout(self.limits.idle_timeout):
                await writer.drain()
        except TimeoutError:
            # A peer that does not read: reset (a close would wait for it to read).
            self._refuse(STALLED, peer)
            writer.transport.abort()
            raise
        return True

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[str, int],
        source: StreamSource,
    ) -> None:
        """Write what ``source`` hands over until it ends or the peer closes or sends."""
        ready = asyncio.Event()
        gone = False

        async def watch() -> None:
            nonlocal gone
            with contextlib.suppress(ConnectionError, OSError):
                await reader.read(1)  # a byte or the end: either ends the stream
            gone = True
            ready.set()

        watcher = asyncio.create_task(watch())
        source.set_waker(ready.set)
        try:
            while not gone:
                data, ended = source.take()
                if data:
                    if not await self._send(writer, data, peer):
                        return
                    continue  # more may have come while this was written
                if ended:
                    return
                ready.clear()
                await ready.wait()
        finally:
            source.set_waker(None)
            watcher.cancel()
            await asyncio.wait([watcher])


def control_address(settings: Settings) -> tuple[str, int]:
    """Where a client on this machine reaches the node: ``[admin]``'s first address.

    A wildcard listen address means this machine's loopback of its family.
    """
    if not settings.admin.enabled:
        raise NodeUnavailable("the node's control endpoint is off ([admin] enabled = false)")
    host = settings.admin.listen[0]
    if is_wildcard(host):
        host = "::1" if ":" in host else "127.0.0.1"
    return host.strip("[]"), settings.admin.port


def _unavailable(host: str, port: int, why: object) -> NodeUnavailable:
    return NodeUnavailable(f"no node answering on {host_port(host.split('%', 1)[0], port)}: {why}")


def _result(line: bytes) -> Any:
    try:
        answer = parse_answer(line)
    except ControlProtocolError as exc:
        raise ControlError(f"bad answer from the node: {exc}") from None
    if not answer.ok:
        raise ControlError(answer.error)
    return answer.result


class ControlClient:
    """An asyncio client of the control endpoint; one request at a time on one connection.

    ``request(op, **args)`` returns the answer's ``result``. A connection the
    node closed while it was idle is reopened once, transparently (and a
    client used from another event loop opens its own there); a request
    without an answer within ``timeout`` seconds, its wait behind other
    requests included, raises ``NodeUnavailable`` (one that was on the wire
    drops the connection: the next request opens a new one).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_answer: int = MAX_ANSWER,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_answer = max_answer
        self._lock = asyncio.Lock()
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT
    ) -> ControlClient:
        host, port = control_address(settings)
        return cls(host, port, timeout=timeout)

    async def request(self, op: str, **args: Any) -> Any:
        line = encode_request(op, args)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # used from another event loop: start afresh there
            self._abandon()
            self._loop, self._lock = loop, asyncio.Lock()
        try:
            # The wait for the connection counts too: behind a request the node
            # never answers, the others give up in time instead of queueing
            # without bound (a hung node must not stall the web process).
            async with asyncio.timeout(self.timeout), self._lock:
                try:
                    answer = await self._exchange(line)
                except BaseException:
                    self._abort()  # the stream may hold half an answer now
                    raise
        except TimeoutError:
            raise _unavailable(self.host, self.port, "no answer in time") from None
        return _result(answer)

    async def _exchange(self, line: bytes) -> bytes:
        reused = self._conn is not None
        while True:
            reader, writer = await self._connection()
            try:
                writer.write(line)
                await writer.drain()
                return await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                await self._drop()
                if reused and not exc.partial:
                    reused = False  # the node closed an idle connection: once more, afresh
                    continue
                raise _unavailable(self.host, self.port, "connection closed") from None
            except asyncio.LimitOverrunError:
                raise ControlError(f"answer longer than {self.max_answer} bytes") from None
            except (ConnectionError, OSError) as exc:
                await self._drop()
                if reused:
                    reused = False
                    continue
                raise _unavailable(self.host, self.port, exc) from None

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._conn is None:
            try:
                self._conn = await asyncio.open_connection(
                    self.host, self.port, limit=self.max_answer
                )
            except OSError as exc:
                raise _unavailable(self.host, self.port, exc) from None
        return self._conn

    def _abandon(self) -> None:
        """Let go of the connection of the loop used before (it cannot be awaited here).

        Shut down at once, so the node frees its slot (its per-source cap
        would otherwise fill up, one loop after another); its old loop
        closes it if it still runs.
        """
        conn, self._conn = self._conn, None
        if conn is None:
            return
        transport = conn[1].transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        old = self._loop
        with contextlib.suppress(RuntimeError):
            if old is not None and not old.is_closed():
                old.call_soon_threadsafe(transport.abort)
            else:
                transport.abort()  # marks it closing; the closed loop cannot finish it

    def _abort(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn[1].transport.abort()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn[1].close()
            with contextlib.suppress(Exception):
                await conn[1].wait_closed()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


def control_request(
    settings: Settings, op: str, timeout: float = DEFAULT_TIMEOUT, **args: Any
) -> Any:
    """One request to the node of ``settings`` (blocking); the answer's ``result``."""
    host, port = control_address(settings)
    return request_at(host, port, op, timeout=timeout, **args)


def request_at(
    host: str,
    port: int,
    op: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_answer: int = MAX_ANSWER,
    **args: Any,
) -> Any:
    """One request to the control endpoint at ``host``:``port`` (blocking, its own connection)."""
    line = encode_request(op, args)
    data = bytearray()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(line)
            while b"\n" not in data:
                chunk = sock.recv(min(1 << 20, max_answer + 1 - len(data)))
                if not chunk:
                    raise _unavailable(host, port, "connection closed")
                data += chunk
                if len(data) > max_answer and b"\n" not in data:
                    raise ControlError(f"answer longer than {max_answer} bytes")
    except TimeoutError:
        raise _unavailable(host, port, "no answer in time") from None
    except NodeUnavailable:
        raise
    except OSError as exc:
        raise _unavailable(host, port, exc) from None
    return _result(bytes(data[: data.index(b"\n")]))
