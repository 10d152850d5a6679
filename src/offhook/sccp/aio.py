"""asyncio TCP listener for SCCP (Skinny) phones, with the listener defences.

Theory of operation. ``SccpListener`` accepts TCP connections on
``[sccp] listen:port`` (2000). The source allow-list is checked when a
connection is accepted, before a byte is read: a refused source is aborted at
once and leaves no state. Then the global and per-source connection caps
(``net.limits.ConnectionLimiter``) apply. Each admitted connection gets an
``SccpFramer`` (the length field is checked against ``max_message`` before
anything is buffered; a bad frame closes that connection only) and a sans-IO
``DeviceSession`` (registration, status requests, keepalive, unregister).

Each decoded message goes to the session; what it answers is written back,
encoded with the phone's header version. Its events drive the rest:

- ``Registered``: a ``Binding`` (protocol ``sccp``, contact ``sccp:<name>``,
  transport ``tcp``) goes into the location store so that call control sees
  the phone, and the handler (the call endpoint, ``link.PhoneHandler``) gets
  ``attach(link)``. A device registering again from another connection
  replaces the old one: the old link is detached and its connection closed.
- ``Unregistered`` / ``Closed`` / connection lost: the binding is removed and
  the handler gets ``detach(link, reason)``.

A registered phone's messages that are not registration business (no entry
for ``State.REGISTERED`` in ``device.TRANSITIONS``: hook, keypad, softkeys,
media acks) go to ``handler.on_message``. A message id outside the SCCP id
table closes a connection that has not registered; from a registered phone
it is counted and dropped (firmware sends ids we have no use for).

Timers: one loop timer per connection, armed lazily at the session's deadline
(it moves on every message, the timer re-arms when it fires early), plus the
register timeout (``register_timeout``) until the phone registers; one loop
timer for the handler (``next_timer``/``handle_timer``), re-checked after
every call into the handler, on ``timer_changed()`` and by a slow poll. A
half-closed (EOF) connection is closed at once; a phone that does not read
what we send is closed once its write backlog passes ``MAX_WRITE_BACKLOG``.
Every refusal is counted by reason through ``reject``. Nothing a peer sends
can raise out of the protocol callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from offhook.common.errors import ParseError
from offhook.common.location import Binding, LocationStore
from offhook.net.limits import ConnectionLimiter
from offhook.sccp.autoreg import AutoRegistrar
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
from offhook.sccp.link import PhoneHandler
from offhook.sccp.messages import Capability, KeepAlive, Message, MessageId, Register, Unknown

log = logging.getLogger("offhook.sccp.transport")

Addr = tuple[str, int]
BINDING_LIFETIME = 3600.0
"""Seconds a binding lives; refreshed on every keepalive, removed on unregister."""
MAX_WRITE_BACKLOG = 256 * 1024
"""Bytes queued to a phone that does not read before its connection is closed."""
HANDLER_POLL = 0.5
"""Seconds between checks of the handler's timer (when it changes outside our calls)."""
_KNOWN_IDS = frozenset(int(m) for m in MessageId)
# Session close reasons that are refusals, and the counter each one bumps.
_REFUSALS = {
    "unknown device": "unknown-device",
    "not registered": "not-registered",
    "keepalive timeout": "keepalive-timeout",
    "register timeout": "register-timeout",
}


@dataclass(slots=True)
class SccpLimits:
    """The [sccp] settings the listener enforces."""

    max_message: int = 4096
    keepalive: int = 30
    register_timeout: float = 30.0
    max_connections: int = 20000
    max_connections_per_source: int = 64


class SccpLink:
    """``link.PhoneLink`` of one registered connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: _Conn) -> None:
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
        return f"SccpLink({self.name}, {self.address[0]}:{self.address[1]})"


class _Conn(asyncio.Protocol):
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
        self.admitted = False
        self.closing: str | None = None
        self.register_deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else ("", 0)
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
        )
        self.register_deadline = now + self.owner.limits.register_timeout
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
        for msg in messages:
            if self.closing is not None:
                return
            try:
                self._dispatch(msg)
            except Exception:  # a bug of ours: drop this phone, never the listener
                log.exception("error handling SCCP message from %s:%s", *self.peer)
                self.owner.reject("internal-error", self.peer)
                self.close("internal error")

    def eof_received(self) -> bool:
        # A half-closed socket is closed at once, never kept (CSCed37403).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
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
        transport.write(encode(msg, self.session.version))
        if transport.get_write_buffer_size() > MAX_WRITE_BACKLOG:
            self.owner.reject("write-backlog", self.peer)
            self.close("write backlog")

    def close(self, reason: str, abort: bool = False) -> None:
        if self.closing is not None:
            return
        self.closing = reason
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.owner.detach(self, reason)
        if self.transport is not None:
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
                self.close(event.reason)

    def _arm(self) -> None:
        when = self.session.next_timer()
        if self.session.state is State.CONNECTED:
            when = self.register_deadline if when is None else min(when, self.register_deadline)
        if when is not None and self.closing is None:
            self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closing is not None:
            return
        now = self.loop.time()
        try:
            if self.session.state is State.CONNECTED and now >= self.register_deadline:
                self.owner.reject("register-timeout", self.peer)
                self.close("register timeout")
                return
            self.session.handle_timer(now)
            self._run_session(now)
        except Exception:
            log.exception("SCCP session timer failed for %s:%s", *self.peer)
            self.close("internal error")
        self._arm()


class SccpListener:
    """The SCCP TCP listener: connections, registrations and the handler's timer."""

    def __init__(
        self,
        handler: PhoneHandler,
        lookup: Callable[[str], DeviceProfile | None],
        locations: LocationStore,
        allow: Callable[[str], bool],
        reject: Callable[[str, Addr], None] | None = None,
        limits: SccpLimits | None = None,
        *,
        auto_register: AutoRegistrar | None = None,
        node: str = "",
        server_name: str = "offhook",
    ) -> None:
        self.handler = handler
        self.lookup = lookup
        self.locations = locations
        self.allow = allow
        self._reject = reject
        self.limits = limits or SccpLimits()
        self.auto_register = auto_register
        self.node = node
        self.server_name = server_name
        self.loop = asyncio.get_running_loop()
        self.limiter = ConnectionLimiter(
            self.limits.max_connections,
            self.limits.max_connections_per_source,
            self.limits.max_connections,
        )
        self.connections: set[_Conn] = set()
        self.phones: dict[str, _Conn] = {}
        self.server: asyncio.Server | None = None
        self.local: Addr = ("", 0)
        self._handler_timer: asyncio.TimerHandle | None = None
        self._handler_when: float | None = None
        self._poll: asyncio.TimerHandle | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self, host: str, port: int) -> Addr:
        """Listen on ``host:port`` (0: any free port); returns the bound address."""
        self.server = await self.loop.create_server(
            lambda: _Conn(self), host=host, port=port, reuse_address=True
        )
        self.local = (host, int(self.server.sockets[0].getsockname()[1]))
        self._poll = self.loop.call_later(HANDLER_POLL, self._on_poll)
        return self.local

    async def close(self) -> None:
        """Stop listening; every phone is detached ("shutdown") and its connection aborted."""
        for handle in (self._poll, self._handler_timer):
            if handle is not None:
                handle.cancel()
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close("shutdown", abort=True)
        if self.server is not None:
            await self.server.wait_closed()

    @property
    def registered(self) -> int:
        """Phones registered now."""
        return len(self.phones)

    def status(self) -> dict[str, Any]:
        """Counts for the node status."""
        return {"connections": len(self.connections), "registered": len(self.phones)}

    # -- defences ----------------------------------------------------------

    def reject(self, reason: str, peer: Addr) -> None:
        if self._reject is not None:
            self._reject(reason, peer)

    def admit(self, peer: Addr) -> bool:
        """Allow-list first (no state for a refused source), then the caps."""
        if not self.allow(peer[0]):
            self.reject("acl", peer)
            return False
        if not self.limiter.try_acquire(peer[0]):
            total = self.limiter.total >= self.limiter.max_total
            self.reject("max-connections" if total else "max-connections-per-source", peer)
            return False
        return True

    def connection_closed(self, conn: _Conn) -> None:
        self.connections.discard(conn)
        self.limiter.release(conn.peer[0])

    # -- registrations -----------------------------------------------------

    def lookup_profile(self, name: str, device_type: int | None) -> DeviceProfile | None:
        try:
            profile = self.lookup(name)
            if profile is None and self.auto_register is not None:
                profile = self.auto_register.profile(name, device_type)
        except Exception:
            log.exception("SCCP device lookup failed for %r", name)
            return None
        return profile

    def attach(self, conn: _Conn, now: float) -> None:
        profile = conn.session.profile
        assert profile is not None
        old = self.phones.get(profile.name)
        if old is not None and old is not conn:
            log.info("SCCP %s re-registered from %s:%s", profile.name, *conn.peer)
            old.close("replaced")  # detaches it first
        link = SccpLink(conn)
        conn.link = link
        self.phones[profile.name] = conn
        conn.binding = Binding(
            device=profile.name,
            protocol="sccp",
            contact=f"sccp:{profile.name}",
            expires_at=now + BINDING_LIFETIME,
            source=conn.peer,
            transport="tcp",
            aor=profile.name,
            user_agent=f"Cisco {profile.model}",
            registered_at=time.time(),
            node=self.node,
        )
        self.locations.put(conn.binding)
        log.info("SCCP %s registered from %s:%s", profile.name, *conn.peer)
        self.call_handler("attach", link, now)

    def refresh(self, conn: _Conn, now: float) -> None:
        if conn.binding is not None and self.phones.get(conn.binding.device) is conn:
            conn.binding = conn.binding.with_expiry(now + BINDING_LIFETIME)
            self.locations.put(conn.binding)

    def detach(self, conn: _Conn, reason: str) -> None:
        link = conn.link
        if link is None:
            return
        conn.link = None
        binding = conn.binding
        if binding is not None and self.phones.get(binding.device) is conn:
            del self.phones[binding.device]
            self.locations.remove(binding.device, binding.contact)
        log.info("SCCP %s unregistered: %s", link.name, reason)
        self.call_handler("detach", link, reason, self.loop.time())

    # -- the handler and its timer -----------------------------------------

    def call_handler(self, method: str, *args: Any) -> None:
        """Call ``handler.<method>(*args)``; a handler bug is logged, never raised here."""
        try:
            getattr(self.handler, method)(*args)
        except Exception:
            log.exception("SCCP handler %s failed", method)
            self.reject("internal-error", ("", 0))
        self.timer_changed()

    def timer_changed(self) -> None:
        """Re-arm the handler's timer if ``next_timer()`` moved."""
        try:
            when = self.handler.next_timer()
        except Exception:
            log.exception("SCCP handler next_timer failed")
            when = None
        if when == self._handler_when and (when is None or self._handler_timer is not None):
            return
        if self._handler_timer is not None:
            self._handler_timer.cancel()
            self._handler_timer = None
        self._handler_when = when
        if when is not None:
            self._handler_timer = self.loop.call_at(when, self._on_handler_timer)

    def _on_handler_timer(self) -> None:
        self._handler_timer = None
        self._handler_when = None
        now = self.loop.time()
        try:
            self.handler.handle_timer(now)
        except Exception:
            log.exception("SCCP handler timer failed")
        try:
            when = self.handler.next_timer()
        except Exception:
            when = None
        if when is not None and when <= now:
            # A timer still due after handle_timer: retry shortly, never spin.
            self._handler_when = when
            self._handler_timer = self.loop.call_at(now + 0.01, self._on_handler_timer)
            return
        self.timer_changed()

    def _on_poll(self) -> None:
        self.timer_changed()
        self._poll = self.loop.call_later(HANDLER_POLL, self._on_poll)
