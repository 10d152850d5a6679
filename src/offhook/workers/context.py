"""What a worker adds to the node ``app.run`` builds (``[node] workers`` > 1).

A :class:`WorkerContext` holds the worker's index, the node's worker count,
its inherited SIP UDP sockets (its member of each SO_REUSEPORT group, from the
supervisor) and its end of the local bus: a Unix datagram socket
``w<index>`` in the supervisor's runtime directory. ``app.run`` asks it for

- ``ids``: the id maker whose Call-IDs, tags and branches carry the index;
- ``locations(now)``: the replicated location store (``replica``);
- ``share_state(engine, bus)``: this worker's own view of each line's busy
  lamp (``LineStates.share``) and every forward all, do not disturb, hunt
  login and message-waiting change made here go to the others; theirs are
  merged into the lamps here, and their settings adopted (``engine.adopt``:
  held and published as if made here, so this worker routes, lights lamps
  and sends NOTIFYs by them; ``unless_adopted`` keeps the database writer
  from storing them a second time). A worker that starts gets the others'
  lamps and settings with their tables; what a worker that went had shared
  is forgotten when its replacement asks;
- ``share_account_failures(guard, now)``: every ``SHARE_EVERY`` seconds the
  failed logins this worker counted against accounts go to the others, and
  theirs are added here (``net.authguard``: an account's count is the node's);
- ``attach(transport)``: the bus is read from then on, and the transport
  passes each datagram of another worker's dialog on (``tags.forward_to``)
  before parsing it; a datagram passed to this worker goes into the
  transport past its defences (they ran where it arrived), with its real
  source address, as if this worker had read it; replies go out of this
  worker's own socket of the group (same address and port).

The node leg: ``attach`` also carries the ``node`` transport, the SIP
messages of a call between two workers (``node_leg``: a call this worker owns
to an SCCP phone another worker holds, or a pickup or park retrieval of a
call another worker owns, through a SIP dialog with that worker), as ``N``.
Park numbers taken and freed here go to the others (``K``), which keep them
(``engine.adopt_park``).

SIP over TCP: the kernel hands every connection from one source address to
that address's home worker (``reuseport.home_of``, the TCP listeners are
groups as the UDP sockets are), so the connections to a peer live in one
worker. A message framed out of one that belongs to another worker's dialog
is passed on (``tags.message_forward_to``, as ``S``) with its transport; a
message this worker sends over TCP to a peer whose home is another worker is
written there (``W``), on the peer's connection or on one that worker opens:
a phone behind NAT is reached on the connection it registered on whichever
worker calls it, and a trunk over TCP has one connection, not one per worker.
When the worker that holds a peer's connections cannot write a message
relayed to it (no connection could be opened), it says so (``X``), and the
transaction that sent it learns of the transport error here as it would
have of its own (RFC 3261 §17.1.4), within ``RELAY_WAIT`` seconds.

A message to a worker that is not there (dead, restarting) is dropped and
counted: its peers retransmit, as they would into a lost datagram. A burst
larger than the peer's receive queue waits here (``_send``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from offhook.common.ids import Ids
from offhook.core.bus import EventBus
from offhook.core.features.linestate import LineStates, LineView
from offhook.core.features.state import FeatureState
from offhook.core.records import ParkChanged
from offhook.db.feature_state import FEATURE_EVENTS, FeatureEvent
from offhook.net.authguard import AuthGuard
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from offhook.sip.node_ring import NODE
from offhook.workers.codec import (
    MAX_ACCOUNTS,
    MAX_DATAGRAM,
    AccountFailures,
    BusError,
    Forward,
    LineShare,
    Message,
    NodeSip,
    ParkShare,
    Put,
    Remove,
    Setting,
    StreamFailed,
    StreamWrite,
    TableRequest,
    decode,
    encode,
)
from offhook.workers.node_leg import NodeLink, node_address
from offhook.workers.replica import ReplicatedLocationStore
from offhook.workers.reuseport import home_of
from offhook.workers.tags import forward_to, message_forward_to

log = logging.getLogger("offhook.workers")

Addr = tuple[str, int]
BUS_BUFFER = 4 * 1024 * 1024
QUEUE = 10_000  # messages waiting for one peer's queue to have room
SHARE_EVERY = 0.25  # seconds between two reports of account failures
RELAY_WAIT = 10.0  # seconds a relayed message's failure report is waited for (connect: 5 s)
MAX_RELAYS = 10_000  # failure reports waited for at once (the oldest given up beyond)


class SharedState(Protocol):
    """What the worker shares of call control (``core.engine.CallEngine``)."""

    lines: LineStates
    features: FeatureState

    def adopt(self, event: FeatureEvent) -> None: ...

    def adopt_park(self, worker: int, change: ParkChanged) -> None: ...

    def parked_here(self) -> list[ParkChanged]: ...

    def forget_worker(self, worker: int) -> None: ...


class Transport(Protocol):
    """What the worker needs of ``sip.aio.SipTransport``."""

    forward: Callable[[bytes, Addr], bool] | None

    forward_message: Callable[[SipMessage, Addr], bool] | None
    relay: Callable[[bytes, Addr, Callable[[], None] | None], bool] | None
    node_send: Callable[[bytes, Addr, Callable[[], None] | None], bool] | None

    def admitted(self, data: bytes, addr: Addr, transport: str = "udp") -> None: ...

    def write_stream(
        self, data: bytes, addr: Addr, on_error: Callable[[], None] | None = None
    ) -> None: ...

    async def serve_adopted(self) -> None: ...


def bus_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"w{index}")


@dataclass
class WorkerContext:
    index: int
    workers: int
    bus_dir: str
    udp_sockets: Sequence[socket.socket] = ()
    tcp_sockets: Sequence[socket.socket] = ()
    sccp_sockets: Sequence[socket.socket] = ()  # its listeners of the SCCP group
    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "forwarded",
                "received",
                "relayed",
                "relays_written",
                "relays_failed",
                "bus_dropped",
                "bus_waits",
                "bus_bad",
                "bindings_sent",
                "lines_sent",
                "settings_sent",
                "settings_adopted",
                "parks_sent",
                "account_reports",
            ),
            0,
        )
    )
    _sock: socket.socket | None = None
    _peers: dict[int, socket.socket] = field(default_factory=dict)
    _queues: dict[int, deque[bytes]] = field(default_factory=dict)
    _store: ReplicatedLocationStore | None = None
    _transport: Transport | None = None
    _guard: AuthGuard | None = None
    _clock: Callable[[], float] | None = None
    _sharing: asyncio.Task[None] | None = None
    _engine: SharedState | None = None
    # ref -> (when given up, the sender's error callback) of relayed TCP messages
    _relays: OrderedDict[int, tuple[float, Callable[[], None]]] = field(default_factory=OrderedDict)
    _next_ref: int = 0
    _node: NodeLink | None = None
    adopting: bool = False  # while another worker's setting is applied here

    @property
    def ids(self) -> Ids:
        return Ids.for_worker(self.index)

    def locations(self, now: Callable[[], float]) -> ReplicatedLocationStore:
        self._store = ReplicatedLocationStore(self._publish, now, self.index)
        return self._store

    # --- sending ---------------------------------------------------------
    def _send(self, index: int, data: bytes) -> bool:
        """Send to worker ``index``, or queue while its receive queue is full.

        One connected socket per peer: the kernel then reports it writable
        when the peer's queue has room (``net.unix.max_dgram_qlen``, often
        only 10 datagrams), so a burst waits here (up to ``QUEUE``) instead
        of being dropped. A peer that is not there drops the message.
        """
        if self._sock is None:
            return False
        queue = self._queues.get(index)
        if queue:
            return self._enqueue(index, queue, data)
        # A socket connected to a worker that has since been replaced fails once:
        # then a fresh one, connected to the replacement.
        for attempt in (1, 2):
            try:
                self._peer(index).send(data)
            except BlockingIOError:
                return self._enqueue(index, self._queues.setdefault(index, deque()), data)
            except OSError:  # not there (dead, restarting), or a stale connection
                self._forget(index)
                if attempt == 2:
                    self.counters["bus_dropped"] += 1
                    return False
            else:
                return True
        return False

    def _peer(self, index: int) -> socket.socket:
        sock = self._peers.get(index)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect(bus_path(self.bus_dir, index))
            except OSError:
                sock.close()
                raise
            self._peers[index] = sock
        return sock

    def _forget(self, index: int) -> None:
        sock = self._peers.pop(index, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_writer(sock.fileno())
            sock.close()
        dropped = self._queues.pop(index, deque())
        self.counters["bus_dropped"] += len(dropped)

    def _enqueue(self, index: int, queue: deque[bytes], data: bytes) -> bool:
        if len(queue) >= QUEUE:
            self.counters["bus_dropped"] += 1
            return False
        if not queue:
            self.counters["bus_waits"] += 1
            sock = self._peers[index]
            asyncio.get_running_loop().add_writer(sock.fileno(), self._flush, index)
        queue.append(data)
        return True

    def _flush(self, index: int) -> None:
        queue, sock = self._queues.get(index), self._peers.get(index)
        if queue is None or sock is None:
            return
        while queue:
            try:
                sock.send(queue[0])
            except BlockingIOError:
                return
            except OSError:
                self._forget(index)
                return
            queue.popleft()
        asyncio.get_running_loop().remove_writer(sock.fileno())

    def _publish(self, message: Message) -> None:
        self._to_others(encode(message))
        self.counters["bindings_sent"] += 1

    def _others(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.workers) if i != self.index)

    def _to_others(self, data: bytes) -> None:
        for other in self._others():
            self._send(other, data)

    def share_account_failures(self, guard: AuthGuard, now: Callable[[], float]) -> None:
        """Send this worker's account failures to the others, and add theirs to ``guard``."""
        self._guard, self._clock = guard, now
        if self._sharing is None:
            self._sharing = asyncio.get_running_loop().create_task(self._share())

    async def _share(self) -> None:
        while True:
            await asyncio.sleep(SHARE_EVERY)
            self.send_account_failures()

    def send_account_failures(self) -> None:
        """One report (or a few, ``MAX_ACCOUNTS`` each) of what the guard counted since."""
        if self._guard is None:
            return
        counts = list(self._guard.take_shared().items())
        for start in range(0, len(counts), MAX_ACCOUNTS):
            chunk = tuple(counts[start : start + MAX_ACCOUNTS])
            self._to_others(encode(AccountFailures(chunk)))
            self.counters["account_reports"] += 1

    # --- line state and feature settings ----------------------------------
    def share_state(self, engine: SharedState, bus: EventBus) -> None:
        """Share busy lamps and feature settings with the other workers (module docstring)."""
        self._engine = engine
        engine.lines.share = self._share_line
        for kind in FEATURE_EVENTS:
            bus.subscribe(kind, self._share_setting)
        bus.subscribe(ParkChanged, self._share_park)

    def unless_adopted(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """``handler``, skipped for the settings another worker made (they store their own)."""

        def call(event: Any) -> None:
            if not self.adopting:
                handler(event)

        return call

    def _share_line(self, line: tuple[str, str], view: LineView) -> None:
        self._to_others(encode(LineShare(self.index, line[0], line[1], view)))
        self.counters["lines_sent"] += 1

    def _share_setting(self, event: FeatureEvent) -> None:
        if self.adopting:
            return  # another worker's: it told the others itself
        self._to_others(encode(Setting(event)))
        self.counters["settings_sent"] += 1

    def _share_park(self, change: ParkChanged) -> None:
        self._to_others(encode(ParkShare(self.index, change)))
        self.counters["parks_sent"] += 1

    def _adopt(self, event: FeatureEvent) -> None:
        if self._engine is None:
            return
        self.adopting = True
        try:
            self._engine.adopt(event)
        finally:
            self.adopting = False
        self.counters["settings_adopted"] += 1

    def _send_state(self, index: int) -> None:
        """A worker that starts: forget what its predecessor shared, send it ours."""
        engine = self._engine
        if engine is None:
            return
        engine.forget_worker(index)
        for (dn, partition), view in engine.lines.local_views().items():
            self._send(index, encode(LineShare(self.index, dn, partition, view)))
        for event in engine.features.events():
            self._send(index, encode(Setting(event)))
        for change in engine.parked_here():
            self._send(index, encode(ParkShare(self.index, change)))

    def _forward(self, data: bytes, addr: Addr) -> bool:
        target = forward_to(data, self.index, self.workers)
        if target is None:
            return False
        self.counters["forwarded"] += 1
        if not self._send(target, encode(Forward(data, addr))):
            log.debug("datagram for worker %d from %s:%s dropped", target, *addr)
        return True

    def _forward_message(self, msg: SipMessage, addr: Addr) -> bool:
        target = message_forward_to(msg, self.index, self.workers)
        if target is None:
            return False
        if not isinstance(msg, SipRequest | SipResponse):
            return False
        data = msg.serialize()
        if len(data) > MAX_DATAGRAM:
            return False  # too large for the bus: handled here, as a stranger's
        self.counters["forwarded"] += 1
        if not self._send(target, encode(Forward(data, addr, "tcp"))):
            log.debug("TCP message for worker %d from %s:%s dropped", target, *addr)
        return True

    def _relay(self, data: bytes, addr: Addr, on_error: Callable[[], None] | None) -> bool:
        try:
            target = home_of(addr[0], self.workers)
        except ValueError:
            return False
        if target == self.index or len(data) > MAX_DATAGRAM:
            return False
        self.counters["relayed"] += 1
        ref = self._await_report(on_error) if on_error is not None else 0
        if not self._send(target, encode(StreamWrite(data, addr, self.index, ref))):
            log.debug("TCP message to %s:%s for worker %d dropped", *addr, target)
        return True

    def _await_report(self, on_error: Callable[[], None]) -> int:
        relays = self._relays
        now = asyncio.get_running_loop().time()
        while relays and (len(relays) >= MAX_RELAYS or next(iter(relays.values()))[0] <= now):
            relays.popitem(last=False)
        self._next_ref = self._next_ref % 0xFFFFFFFF + 1
        relays[self._next_ref] = (now + RELAY_WAIT, on_error)
        return self._next_ref

    def _relay_failed(self, sender: int, ref: int) -> None:
        self._send(sender, encode(StreamFailed(ref)))

    # --- receiving -------------------------------------------------------
    async def attach(self, transport: Transport) -> None:
        """Open the bus, pass other workers' datagrams on, and ask for their tables."""
        path = bus_path(self.bus_dir, self.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by the worker this one replaces
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, BUS_BUFFER)
        sock.bind(path)
        sock.setblocking(False)
        self._sock = sock
        self._transport = transport
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        transport.forward = self._forward
        transport.forward_message = self._forward_message
        transport.relay = self._relay
        self._node = NodeLink(self.index, self.workers, self._send)
        transport.node_send = self._node.send
        await transport.serve_adopted()
        self._to_others(encode(TableRequest(self.index)))

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(64):  # a bounded batch per loop turn
            try:
                data = sock.recv(70000)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.exception("bus read failed")
                return
            self.receive(data)

    def receive(self, data: bytes) -> None:
        """One bus datagram: handled, or counted as bad. Never raises."""
        try:
            message = decode(data)
        except BusError as exc:
            self.counters["bus_bad"] += 1
            log.debug("bad bus message: %s", exc)
            return
        try:
            self._handle(message)
        except Exception:
            log.exception("bus message %s failed", type(message).__name__)

    def _handle(self, message: Message) -> None:
        if isinstance(message, Forward):
            self.counters["received"] += 1
            if self._transport is not None:
                self._transport.admitted(message.data, message.source, message.transport)
        elif isinstance(message, StreamWrite):
            self.counters["relays_written"] += 1
            if self._transport is not None:
                report = None
                if message.ref and message.sender in self._others():
                    report = partial(self._relay_failed, message.sender, message.ref)
                self._transport.write_stream(message.data, message.dest, report)
        elif isinstance(message, NodeSip):
            node, transport = self._node, self._transport
            if node is not None and transport is not None and message.sender in self._others():
                node.received += 1
                transport.admitted(message.data, node_address(message.sender), NODE)
        elif isinstance(message, StreamFailed):
            entry = self._relays.pop(message.ref, None)
            if entry is not None:
                self.counters["relays_failed"] += 1
                entry[1]()
        elif isinstance(message, Put | Remove):
            if self._store is not None:
                self._store.apply(message)
        elif isinstance(message, AccountFailures):
            if self._guard is not None and self._clock is not None:
                now = self._clock()
                for account, count in message.counts:
                    self._guard.peer_failures(account, count, now)
        elif isinstance(message, LineShare):
            engine = self._engine
            if engine is not None and message.worker in self._others():
                peer = str(message.worker)
                engine.lines.remote(peer, message.dn, message.partition, message.view)
        elif isinstance(message, Setting):
            self._adopt(message.event)
        elif isinstance(message, ParkShare):
            if self._engine is not None and message.worker in self._others():
                self._engine.adopt_park(message.worker, message.change)
        elif message.index in self._others():
            if self._store is not None:
                self._store.forget_worker(message.index)  # its predecessor's SCCP phones
                for put in self._store.table(message.index):
                    self._send(message.index, encode(put))
            self._send_state(message.index)

    def close(self) -> None:
        if self._sharing is not None:
            self._sharing.cancel()
            self._sharing = None
        for index in list(self._peers):
            self._forget(index)
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(bus_path(self.bus_dir, self.index))

    def status(self) -> dict[str, Any]:
        node = self._node
        legs = {
            "node_sent": node.sent if node is not None else 0,
            "node_received": node.received if node is not None else 0,
            "node_failed": node.failed if node is not None else 0,
        }
        return {
            "index": self.index,
            "workers": self.workers,
            "pid": os.getpid(),
            **self.counters,
            **legs,
        }
