"""asyncio TCP listener for SCCP (Skinny) phones, with the listener defences.

Theory of operation. ``SccpListener`` accepts TCP connections on
``[sccp] listen:port`` (2000): every address of the ``listen`` list, IPv4,
IPv6 or a dual-stack ``"::"`` (``net.listen``), all on one port. A peer's
address is normalised as it arrives (``common.addr.peer``: an IPv4-mapped
source of a dual-stack socket is plain IPv4), so the allow-list, the
per-source tables, logs, bindings and ``offhook status`` see one form. Its
``net.guard.ListenerGuard`` checks the source allow-list when a connection
is accepted, before a byte is read: a refused source is aborted at once and
leaves no state. Then the global and
per-source connection caps and one token of the source's rate bucket apply.
Frames a source sends beyond ``rate_per_source`` pause reading its
connection for a while (back-pressure; nothing is dropped). Each admitted
connection gets an
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
handshake timeout (``handshake_timeout``: the first frame), the register
timeout (``register_timeout``) until the phone registers, and the idle
timeout (``idle_timeout``: no frame at all, registered or not); one loop
timer for the handler (``next_timer``/``handle_timer``), re-checked after
every call into the handler, on ``timer_changed()`` and by a slow poll. A
half-closed (EOF) connection is closed at once; a phone that does not read
what we send is closed once its write backlog passes ``MAX_WRITE_BACKLOG``.
Every refusal is counted by reason through ``reject``. Nothing a peer sends
can raise out of the protocol callbacks. The per-connection part (framing,
session, timers, the link) is ``connection.PhoneConnection``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from offhook.common.addr import host_port
from offhook.common.location import Binding, LocationStore
from offhook.net.guard import LISTEN_BACKLOG, ListenerGuard, ListenerLimits
from offhook.net.listen import bind_plan, open_stream_servers
from offhook.sccp.autoreg import AutoRegistrar
from offhook.sccp.connection import Addr, PhoneConnection, SccpLink
from offhook.sccp.device import NOT_FORWARDED, DeviceProfile, Forwards
from offhook.sccp.link import PhoneHandler

__all__ = ["SccpLimits", "SccpLink", "SccpListener"]

log = logging.getLogger("offhook.sccp.transport")

BINDING_LIFETIME = 3600.0
"""Seconds a binding lives; refreshed on every keepalive, removed on unregister."""
HANDLER_POLL = 0.5
"""Seconds between checks of the handler's timer (when it changes outside our calls)."""


@dataclass(slots=True)
class SccpLimits:
    """The [sccp] settings the listener enforces."""

    max_message: int = 4096
    keepalive: int = 30
    register_timeout: float = 30.0
    max_connections: int = 20000
    max_connections_per_source: int = 64
    idle_timeout: float = 90.0
    handshake_timeout: float = 10.0
    rate_per_source: float = 100.0
    rate_burst: float = 1000.0

    def listener(self) -> ListenerLimits:
        """The part every listener shares (for the guard)."""
        return ListenerLimits.of(self)


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
        forwards: Callable[[str, int], Forwards] | None = None,
        on_rejected: Callable[[str, str, Addr], None] | None = None,
    ) -> None:
        self.handler = handler
        self._on_rejected = on_rejected  # (device name, reason, source): RegisterReject sent
        self._forwards = forwards
        self.lookup = lookup
        self.locations = locations
        self.allow = allow
        self._reject = reject
        self.limits = limits or SccpLimits()
        self.auto_register = auto_register
        self.node = node
        self.server_name = server_name
        self.loop = asyncio.get_running_loop()
        self.guard = ListenerGuard(
            self.limits.listener(), allow, lambda reason, host: self.reject(reason, (host, 0))
        )
        self.limiter = self.guard.connections
        self.connections: set[PhoneConnection] = set()
        self.phones: dict[str, PhoneConnection] = {}
        self.servers: list[asyncio.Server] = []
        self.local: Addr = ("", 0)
        self._handler_timer: asyncio.TimerHandle | None = None
        self._handler_when: float | None = None
        self._poll: asyncio.TimerHandle | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(
        self, host: str | Sequence[str], port: int, sockets: Sequence[socket.socket] = ()
    ) -> Addr:
        """Listen on every address of ``host`` (one or a list, see ``net.listen``) on ``port``.

        Port 0 picks a free one, shared by every address. Returns (first
        address, port); an address that cannot be bound raises OSError.
        ``sockets``: listening sockets to accept on instead, one per address
        (a worker's members of the node's SCCP group, ``offhook.workers``).
        """
        if sockets:
            self.servers = [
                await self.loop.create_server(
                    lambda: PhoneConnection(self), sock=sock, backlog=LISTEN_BACKLOG
                )
                for sock in sockets
            ]
            bound = sockets[0].getsockname()[1]
        else:
            self.servers, bound = await open_stream_servers(
                lambda: PhoneConnection(self), host, port, backlog=LISTEN_BACKLOG
            )
        self.local = (bind_plan(host)[0].host, bound)
        self._poll = self.loop.call_later(HANDLER_POLL, self._on_poll)
        return self.local

    async def close(self) -> None:
        """Stop listening; every phone is detached ("shutdown") and its connection aborted."""
        for handle in (self._poll, self._handler_timer):
            if handle is not None:
                handle.cancel()
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.close("shutdown", abort=True)
        for server in self.servers:
            await server.wait_closed()

    @property
    def registered(self) -> int:
        """Phones registered now."""
        return len(self.phones)

    def status(self) -> dict[str, Any]:
        """Counts for the node status."""
        return {
            "connections": len(self.connections),
            "registered": len(self.phones),
            "rate_sources": len(self.guard.rates),
        }

    # -- defences ----------------------------------------------------------

    def reject(self, reason: str, peer: Addr) -> None:
        if self._reject is not None:
            self._reject(reason, peer)

    def admit(self, peer: Addr) -> bool:
        """Allow-list first (no state for a refused source), then the caps and the rate."""
        return self.guard.admit_connection(peer[0], self.loop.time())

    def connection_closed(self, conn: PhoneConnection) -> None:
        self.connections.discard(conn)
        self.guard.release(conn.peer[0])

    def throttle(self, conn: PhoneConnection, now: float, frames: int) -> None:
        """Charge ``frames`` to the source; over its rate, stop reading for a while."""
        delay = self.guard.throttle(conn.peer[0], now, frames)
        if delay > 0:
            conn.pause(delay)

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

    def forwards(self, name: str, line: int) -> Forwards:
        """How line ``line`` of ``name`` forwards now (ForwardStatReq); a lookup bug
        answers "not forwarded"."""
        if self._forwards is None:
            return NOT_FORWARDED
        try:
            return self._forwards(name, line)
        except Exception:
            log.exception("SCCP forward lookup failed for %r line %d", name, line)
            return NOT_FORWARDED

    def attach(self, conn: PhoneConnection, now: float) -> None:
        profile = conn.session.profile
        assert profile is not None
        old = self.phones.get(profile.name)
        if old is not None and old is not conn:
            where = host_port(*conn.peer)
            context = {"device": profile.name, "source": where}
            log.info("SCCP %s re-registered from %s", profile.name, where, extra=context)
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
            user_agent=conn.station.model or f"Cisco {profile.model}",
            registered_at=time.time(),
            node=self.node,
            firmware=conn.station.firmware,
        )
        self.locations.put(conn.binding)
        where = host_port(*conn.peer)
        context = {"device": profile.name, "source": where}
        log.info("SCCP %s registered from %s", profile.name, where, extra=context)
        self.call_handler("attach", link, now)

    def registration_rejected(self, conn: PhoneConnection, reason: str) -> None:
        """``conn``'s Register was answered RegisterReject: tell ``on_rejected``."""
        if self._on_rejected is None:
            return
        try:
            self._on_rejected(conn.device_name, reason, conn.peer)
        except Exception:
            log.exception("SCCP rejection callback failed")

    def refresh(self, conn: PhoneConnection, now: float) -> None:
        if conn.binding is not None and self.phones.get(conn.binding.device) is conn:
            conn.binding = conn.binding.with_expiry(now + BINDING_LIFETIME)
            self.locations.put(conn.binding)

    def detach(self, conn: PhoneConnection, reason: str) -> None:
        link = conn.link
        if link is None:
            return
        conn.link = None
        binding = conn.binding
        if binding is not None and self.phones.get(binding.device) is conn:
            del self.phones[binding.device]
            self.locations.remove(binding.device, binding.contact)
        context = {"device": link.name, "source": host_port(*conn.peer)}
        log.info("SCCP %s unregistered: %s", link.name, reason, extra=context)
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
