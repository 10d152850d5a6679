"""uvicorn's WebSocket protocol behind the web listener's defences (the CTI WebSocket).

A WebSocket starts as an HTTP request on a connection the listener's gate
admitted (``web.server``); on the upgrade, ``GuardedH11Protocol`` hands the
connection, and its admission, to ``GuardedWebSocketProtocol`` (uvicorn's
sans-IO ``websockets`` protocol) with:

- the admission released when the connection ends (the listener's caps
  count the connection until then);
- a message bounded by ``[cti] max_message`` (uvicorn's ``ws_max_size``:
  a larger one is answered 1009 and the connection closed); every broken
  frame counted as a refusal of the ``web`` listener (``malformed`` or
  ``too-large``); no compression (``ws_per_message_deflate`` off: no inflate
  bombs, no per-connection compressor memory);
- one message read at a time (uvicorn pauses reading until the app takes it);
- what is written bounded: the kernel's send buffer of the socket is
  ``SEND_BUFFER`` (no autotuning up to megabytes for a client that does not
  read) and the transport's buffer pauses the writer past ``SEND_BUFFER``
  too, so a stuck client holds little and its session overflows soon;
- several text frames in one write (``BATCH``: one system call for a burst
  of events, not one per event), or bytes framed already (``RAW``: what a
  ``cti.hub`` follower's writer renders with ``WS_WIRE``, the frames of
  ``text_frames``);
- a close that cannot wait for a client that stopped reading: a close frame,
  and a frame sent with the ``URGENT`` key (the overflow notice), are
  written without waiting for the transport to drain; and once the
  application is done, the close sent or the keepalive lost, the
  connection is aborted after ``close_timeout`` seconds if it is still open
  (``transport.close`` would wait for ever to flush to a peer that does
  not read).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from asyncio.transports import BaseTransport
from typing import Any, Protocol

from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import PayloadTooBig
from websockets.http11 import Request
from websockets.protocol import State

from offhook.cti.hub import Wire
from offhook.net.guard import MALFORMED, TOO_LARGE, ListenerGuard

__all__ = [
    "BATCH",
    "CLOSE_TIMEOUT",
    "RAW",
    "SEND_BUFFER",
    "TIMEOUT",
    "URGENT",
    "WS_WIRE",
    "Admission",
    "GuardedWebSocketProtocol",
    "text_frames",
]

CLOSE_TIMEOUT = 5.0
"""Seconds a closing WebSocket may take before it is aborted."""
SEND_BUFFER = 64 * 1024
"""Bytes the kernel (and then the transport) hold for one WebSocket client."""
URGENT = "offhook.urgent"
"""A key of a ``websocket.send`` message: write it even if the client is not reading."""
BATCH = "offhook.batch"
"""A key of a ``websocket.send`` message: a list of texts, sent as that many frames in
one write (the scope's ``extensions`` has it when the server takes it)."""
TIMEOUT = "offhook.timeout"
"""A key of a ``RAW`` message: seconds it may wait for a client that does not read
(then ``TimeoutError``); the caller needs no timer of its own for writes that do not wait."""
RAW = "offhook.raw"
"""A key of a ``websocket.send`` message: bytes of whole text frames, written as they are
(the scope's ``extensions`` has it, with the ``Wire`` that frames them, ``{"wire": ...}``)."""
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_head(length: int) -> bytes:
    """The header of an unmasked, unfragmented WebSocket text frame (RFC 6455 5.2)."""
    if length < 126:
        return _SHORT.pack(0x81, length)
    if length < 65536:
        return _MEDIUM.pack(0x81, 126, length)
    return _LONG.pack(0x81, 127, length)


WS_WIRE = Wire("websocket", text_head)
"""Text frames of a server without extensions (what ``websockets``' ``send_text`` writes)."""


def text_frames(texts: list[str]) -> bytes:
    """``texts`` as unmasked, unfragmented WebSocket text frames (RFC 6455 5.2), one buffer.

    What ``websockets``' ``send_text`` writes for a server without extensions,
    without building a ``Frame`` per text: the fan-out to CTI clients frames
    every event once per client.
    """
    return WS_WIRE.frames(texts)


class Admission(Protocol):
    """The connection's slot in the listener guard (``web.server._Admission``)."""

    guard: ListenerGuard
    host: str

    def release(self) -> None: ...


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with the admission, refusal counts and bounded close."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        admission: Admission | None = None,
        close_timeout: float = CLOSE_TIMEOUT,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.close_timeout = close_timeout
        self._admission = admission
        self._abort: asyncio.TimerHandle | None = None
        self._refused = False
        self._always = asyncio.Event()
        self._always.set()

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=SEND_BUFFER)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._abort is not None:
            self._abort.cancel()
            self._abort = None
        if self._admission is not None:
            self._admission.release()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        error = self.conn.parser_exc
        if error is not None and not self._refused and self._admission is not None:
            self._refused = True
            reason = TOO_LARGE if isinstance(error, PayloadTooBig) else MALFORMED
            self._admission.guard.refuse(reason, self._admission.host)
        if error is not None:
            self._linger()

    def handle_close(self, event: Any) -> None:
        super().handle_close(event)
        self._linger()

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._linger()

    async def run_asgi(self) -> None:
        try:
            await super().run_asgi()
        finally:
            self._linger()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][BATCH] = {}
            scope["extensions"][RAW] = {"wire": WS_WIRE}

    async def _send_batch(self, texts: list[str]) -> None:
        await self._send_frames(text_frames(texts))

    async def _send_frames(self, data: bytes, timeout: float | None = None) -> None:
        if not self.writable.is_set():
            # Only a paused transport waits, and no longer than ``timeout`` (TimeoutError):
            # no timer for a write that does not wait.
            async with asyncio.timeout(timeout):
                await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.close_sent or self.initial_response is not None:
            raise RuntimeError("a batch goes on an accepted, open WebSocket only")
        conn = self.conn
        if conn.state is not State.OPEN or conn.expect_continuation_frame or conn.extensions:
            raise ClientDisconnected()
        pending = conn.data_to_send()
        self.transport.write(b"".join([*pending, data]) if pending else data)

    async def send(self, message: Any) -> None:
        if message.get("type") == "websocket.send":
            raw = message.get(RAW)
            if raw is not None:
                await self._send_frames(raw, message.get(TIMEOUT))
                return
            texts = message.get(BATCH)
            if texts is not None:
                await self._send_batch(texts)
                return
        urgent = message.get("type") == "websocket.close" or bool(message.get(URGENT))
        if not urgent or self.writable.is_set():
            await super().send(message)
        else:
            # Past a stopped reader: the frame goes into the transport's buffer
            # now (one frame; the connection is aborted soon after anyway).
            # super().send does not yield when its writable event is set.
            waiting, self.writable = self.writable, self._always
            try:
                await super().send(message)
            finally:
                self.writable = waiting
        if message.get("type") == "websocket.close":
            self._linger()

    def _linger(self) -> None:
        """Abort the connection in ``close_timeout`` seconds unless it is gone by then."""
        transport = self.transport
        if self._abort is None and transport is not None and not self.disconnected:
            self._abort = self.loop.call_later(self.close_timeout, self._expire)

    def _expire(self) -> None:
        self._abort = None
        if self.transport is not None and not self.disconnected:
            self.transport.abort()
