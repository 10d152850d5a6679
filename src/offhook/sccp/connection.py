"""One SCCP phone's TCP connection (asyncio) and the PhoneLink it gives the endpoint.

``PhoneConnection`` is the ``asyncio.Protocol`` the listener (``aio.py``)
creates per accepted connection: it asks the listener to admit the peer
(allow-list, caps) before reading a byte, splits the stream with an
``SccpFramer``, feeds a ``DeviceSession``, writes what the session answers
in the phone's header version, turns session events into listener calls
(attach, detach, close), routes a registered phone's call-side messages to
the handler, and runs the session and register timers. ``SccpLink`` is the
``link.PhoneLink`` of a registered connection. See ``aio.py`` for the whole
theory of operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from offhook.common.addr import host_port, peer
from offhook.common.errors import ParseError
from offhook.common.location import Binding
from offhook.net.guard import HANDSHAKE_TIMEOUT, IDLE_TIMEOUT
from offhook.sccp.codec import SccpFramer, encode
from offhook.sccp.device import (
    TRANSITIONS,
    Closed,
    DeviceProfile,
    DeviceSession,
    Registered,
    State,
    Unregistered,
)
from offhook.sccp.inventory import StationInfo
from offhook.sccp.messages import (
    Alarm,
    Capability,
    KeepAlive,
    Message,
    MessageId,
    Register,
    Unknown,
)

if TYPE_CHECKING:
    from offhook.sccp.aio import SccpListener

log = logging.getLogger("offhook.sccp.transport")

Addr = tuple[str, int]
MAX_WRITE_BACKLOG = 256 * 1024
"""Bytes queued to a phone that does not read before its connection is closed."""
_KNOWN_IDS = frozenset(int(m) for m in MessageId)
# Session close reasons that are refusals, and the counter each one bumps.
_REFUSALS = {
    "unknown device": "unknown-device",
    "not registered": "not-registered",
    "keepalive timeout": "keepalive-timeout",
    "register timeout": "register-timeout",
}


class SccpLink:
    """``link.PhoneLink`` of one registered connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: PhoneConnection) -> None:
        self._conn = conn

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def version(self) -> int:
        return self._conn.session.version

    @property
    def profile(self) -> DeviceProfile:
        profile = self._conn.session.profile
        assert profile is not None  # a link exists only once registered
        return profile

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        return self._conn.session.capabilities

    @property
    def address(self) -> Addr:
        return self._conn.peer

    @property
    def connected(self) -> bool:
        """False once the connection is closing or closed."""
        return self._conn.closing is None

    def send(self, msg: Message) -> None:
        self._conn.send(msg)

    def close(self, reason: str) -> None:
        self._conn.close(reason)

    def __repr__(self) -> str:
        return f"SccpLink({self.name}, {host_port(*self.address)})"


class PhoneConnection(asyncio.Protocol):
    """One phone's TCP connection."""

    def __init__(self, owner: SccpListener) -> None:
        self.owner = owner
        self.loop = owner.loop
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)
        self.framer = SccpFramer(owner.limits.max_message)
        self.session = DeviceSession(lambda name: None, 0.0)  # replaced when admitted
        self.link: SccpLink | None = None
        self.binding: Binding | None = None
        self.device_type: int | None = None
        self.device_name = ""  # as its Register claims (a rejected one too)
        self.station = StationInfo()  # model and firmware load, as the phone says
        self.admitted = False
        self.closing: str | None = None
        self.register_deadline = 0.0
        self.handshake_deadline = 0.0  # the first frame must arrive before this
        self.last_frame = 0.0  # idle_timeout counts from here
        self.framed = False  # a whole frame has arrived
        self.timer: asyncio.TimerHandle | None = None
        self.resume: asyncio.TimerHandle | None = None
        # Frames sent in one turn of the loop go out in one write (a registration
        # answers with nine frames; one write each was a third of a storm's CPU).
        self.outbox: list[bytes] = []
        self.flush_handle: asyncio.Handle | None = None

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        # One form for every source: an IPv4-mapped peer of a dual-stack socket is IPv4.
        name = transport.get_extra_info("peername")
        self.peer = peer(name) if name else ("", 0)
        if not self.owner.admit(self.peer):
            self.closing = "refused"
            self.transport.abort()
            return
        self.admitted = True
        now = self.loop.time()
        self.session = DeviceSession(
            self._lookup,
            now,
            self.owner.limits.keepalive,
            wall_offset=time.time() - now,
            server_name=self.owner.server_name,
            forwards=self.owner.forwards,
        )
        self.register_deadline = now + self.owner.limits.register_timeout
        self.handshake_deadline = now + self.owner.limits.handshake_timeout
        self.last_frame = now
        self.owner.connections.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.closing is not None:
            return
        try:
            messages = self.framer.feed(data)
        except ParseError as exc:
            self.owner.reject("framing", self.peer)
            self.close(f"bad frame: {exc.reason}")
            return
        if messages:
            now = self.loop.time()
            self.framed = True
            self.last_frame = now
            self.owner.throttle(self, now, len(messages))
        for msg in messages:
            if self.closing is not None:
                return
            try:
                self._dispatch(msg)
            except Exception:  # a bug of ours: drop this phone, never the listener
                log.exception("error handling SCCP message from %s", host_port(*self.peer))
                self.owner.reject("internal-error", self.peer)
                self.close("internal error")

    def eof_received(self) -> bool:
        # A half-closed socket is closed at once, never kept (CSCed37403).
        if self.admitted and self.framer.buffered:
            self.owner.reject("truncated", self.peer)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.resume is not None:
            self.resume.cancel()
            self.resume = None
        if not self.admitted:
            return
        self.admitted = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        reason = self.closing or "connection lost"
        self.closing = reason
        self.owner.detach(self, reason)
        self.owner.connection_closed(self)

    # -- link side ---------------------------------------------------------

    def send(self, msg: Message) -> None:
        transport = self.transport
        if self.closing is not None or transport is None or transport.is_closing():
            return
        self.outbox.append(encode(msg, self.session.version))
        if self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what ``send`` queued, in one write."""
        self.flush_handle = None
        transport = self.transport
        if not self.outbox or transport is None or transport.is_closing():
            self.outbox.clear()
            return
        data = b"".join(self.outbox)
        self.outbox.clear()
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_WRITE_BACKLOG:
            self.owner.reject("write-backlog", self.peer)
            self.close("write backlog")

    def pause(self, delay: float) -> None:
        """Stop reading for ``delay`` seconds (the source is over its rate)."""
        transport = self.transport
        if self.resume is not None or transport is None or transport.is_closing():
            return
        transport.pause_reading()
        self.resume = self.loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self.resume = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self, reason: str, abort: bool = False) -> None:
        if self.closing is not None:
            return
        self.closing = reason
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.owner.detach(self, reason)
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.transport is not None:
            if not abort and self.outbox and not self.transport.is_closing():
                self.transport.write(b"".join(self.outbox))  # e.g. RegisterReject
            self.outbox.clear()
            if abort:
                self.transport.abort()
            else:
                self.transport.close()  # what was written is still sent

    # -- session -----------------------------------------------------------

    def _lookup(self, name: str) -> DeviceProfile | None:
        return self.owner.lookup_profile(name, self.device_type)

    def _dispatch(self, msg: Message) -> None:
        session = self.session
        registered = session.state is State.REGISTERED
        if isinstance(msg, Unknown) and msg.unknown_id not in _KNOWN_IDS:
            self.owner.reject("unknown-message", self.peer)
            if not registered:
                self.close("unknown message")
            return
        if isinstance(msg, Register):
            self.device_type = msg.device_type
            self.device_name = msg.device_name
        if isinstance(msg, Register | Alarm):
            self.station.learn(msg)
        now = self.loop.time()
        session.receive(msg, now)
        self._run_session(now)
        if not registered or self.link is None or self.closing is not None:
            return
        if isinstance(msg, KeepAlive):
            self.owner.refresh(self, now)
        elif (State.REGISTERED, type(msg)) not in TRANSITIONS:
            self.owner.call_handler("on_message", self.link, msg, now)

    def _run_session(self, now: float) -> None:
        for out in self.session.messages_to_send():
            self.send(out)
        for event in self.session.events():
            if isinstance(event, Registered):
                self.owner.attach(self, now)
            elif isinstance(event, Unregistered):
                self.owner.detach(self, event.reason)
            elif isinstance(event, Closed):
                counter = _REFUSALS.get(event.reason)
                if counter is not None:
                    self.owner.reject(counter, self.peer)
                if event.reason == "unknown device":  # answered RegisterReject
                    self.owner.registration_rejected(self, "unknown-device")
                self.close(event.reason)

    def _arm(self) -> None:
        limits = self.owner.limits
        deadlines = [self.last_frame + limits.idle_timeout]
        session = self.session.next_timer()
        if session is not None:
            deadlines.append(session)
        if self.session.state is State.CONNECTED:
            deadlines.append(self.register_deadline)
        if not self.framed:
            deadlines.append(self.handshake_deadline)
        if self.closing is None:
            self.timer = self.loop.call_at(min(deadlines), self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closing is not None:
            return
        now = self.loop.time()
        try:
            if not self.framed and now >= self.handshake_deadline:
                self.owner.reject(HANDSHAKE_TIMEOUT, self.peer)
                self.close("handshake timeout")
                return
            if self.session.state is State.CONNECTED and now >= self.register_deadline:
                self.owner.reject("register-timeout", self.peer)
                self.close("register timeout")
                return
            if now >= self.last_frame + self.owner.limits.idle_timeout:
                self.owner.reject(IDLE_TIMEOUT, self.peer)
                self.close("idle timeout")
                return
            self.session.handle_timer(now)
            self._run_session(now)
        except Exception:
            log.exception("SCCP session timer failed for %s", host_port(*self.peer))
            self.close("internal error")
        self._arm()
