"""Calls to a device another worker holds: the node leg (docs/workers.md section 2).

An SCCP phone's station lives with its TCP connection, in the worker that
accepted it (its address's home). A call that another worker owns (its
caller arrived there) reaches the phone as cluster nodes reach each other's
phones: over SIP. The owner's leg towards the phone is a SIP dialog with the
holding worker, carried on their local bus (transport ``node``); the holder
answers it by ringing exactly that device (``sip.incoming_call.on_node_invite``,
the ``X-Offhook-Ring`` header of ``sip.node_ring``). The owner keeps the call:
routing, coverage (forward busy, no answer), the CDR. Everything the phone
does afterwards (answer, hold, transfer) is an ordinary SIP dialog to the
owner. A leg to another worker itself (``NODE_PROTOCOL``) carries what the
call asks of it instead (``Call.worker_ask``: a pickup or a park retrieval of
a call that worker owns).

Addresses: worker ``i`` is ``(NODE_HOST, i + 1)`` on transport ``node``:
never a network address (``NodeLink.send`` puts it on the bus), one a
transaction and a dialog can name. Which worker a message goes to is what
its own tags say (``tags.forward_to``: a response's branch, an in-dialog
request's To tag), else the address (a new INVITE and its CANCEL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import quote

from offhook.common.location import Binding
from offhook.core.events import Setup
from offhook.core.leg import Leg
from offhook.core.ports import LegDriver, LegFactory
from offhook.core.routing import NODE_PROTOCOL
from offhook.sip.endpoint import SipEndpoint
from offhook.sip.node_ring import NODE, RING_HEADER, NodeRing, format_ring
from offhook.sip.outbound_leg import OutboundLeg
from offhook.workers.codec import MAX_DATAGRAM, NodeSip, encode
from offhook.workers.tags import forward_to

log = logging.getLogger("offhook.workers")

Addr = tuple[str, int]
NODE_HOST = "127.0.0.1"
USER_SAFE = "-_.!~*'()&=+$,;?/"  # RFC 3261 unreserved and user-unreserved marks


def node_address(index: int) -> Addr:
    """Worker ``index`` as the address of a ``node`` transport peer."""
    return (NODE_HOST, index + 1)


def node_index(addr: Addr) -> int | None:
    """The worker a ``node`` address names, or None."""
    if addr[0] != NODE_HOST or addr[1] < 1:
        return None
    return addr[1] - 1


class NodeLeg(OutboundLeg):
    """An outbound SIP leg to a device another worker holds, over the bus."""

    def __init__(self, ep: SipEndpoint, binding: Binding, line: tuple[str, str]) -> None:
        host, port = node_address(binding.worker)
        self.target = binding
        self.line = line
        sip = replace(
            binding,
            protocol="sip",
            contact=f"sip:node@{host}:{port}",
            source=(host, port),
            transport=NODE,
        )
        super().__init__(ep, sip)

    def offer(self, setup: Setup) -> None:
        # The Request-URI names what the caller dialled, as the owner analysed it.
        user = quote(setup.called, safe=USER_SAFE) or "node"
        host, port = self.dest
        self.binding = replace(self.binding, contact=f"sip:{user}@{host}:{port}")
        super().offer(setup)

    def extra_headers(self, setup: Setup) -> list[tuple[str, str]]:
        call = self.leg.call if self.leg is not None else None
        ask = call.worker_ask if call is not None else None
        if self.target.protocol == NODE_PROTOCOL and ask is not None:
            dn, partition = ask.line
            caller = setup.calling.device
            ring = NodeRing("", dn, partition, caller, ask=ask.kind, group=ask.group)
        else:
            ring = NodeRing(
                device=self.target.device,
                dn=self.line[0] or setup.called,
                partition=self.line[1],
                caller=setup.calling.device,
                auto_answer=setup.auto_answer,
                silent=setup.silent,
            )
        return [(RING_HEADER, format_ring(ring))]


class NodeLegFactory:
    """The engine's factory for bindings another worker holds (SCCP phones there), and
    for legs to another worker itself (``NODE_PROTOCOL``: a pickup it makes)."""

    def __init__(self, ep: SipEndpoint, index: int) -> None:
        self.ep = ep
        self.index = index

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        if binding.worker < 0 or binding.worker == self.index:
            raise ValueError(f"{binding.device}: held by this worker, not reachable here")
        out = NodeLeg(self.ep, binding, leg.line)
        out.leg = leg
        return out


class _HeldHereOrThere:
    """Legs to this worker's own bindings from ``here``, to copies from the node leg."""

    def __init__(self, here: LegFactory, there: NodeLegFactory) -> None:
        self.here = here
        self.there = there

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        factory = self.there if binding.worker >= 0 else self.here
        return factory.create(binding, leg)


def held_here_or_there(here: LegFactory | None, there: NodeLegFactory) -> LegFactory:
    """The factory for a protocol whose devices every worker may hold (SCCP phones):
    ``here`` (None: this worker holds none) for its own, the node leg for the others'."""
    return there if here is None else _HeldHereOrThere(here, there)


class NodeLink:
    """Puts the ``node`` transport's messages on the bus (``SipTransport.node_send``)."""

    def __init__(self, index: int, workers: int, send: Callable[[int, bytes], bool]) -> None:
        self.index = index
        self.workers = workers
        self._send = send
        self.sent = 0
        self.received = 0
        self.failed = 0

    def send(self, data: bytes, addr: Addr, on_error: Callable[[], None] | None) -> bool:
        """Pass ``data`` to the worker it is for; False when there is none (or too large)."""
        target = forward_to(data, self.index, self.workers)
        if target is None:
            target = node_index(addr)
        if target is None or target == self.index or target >= self.workers:
            log.warning("node message to %s:%s names no other worker", *addr)
            self.failed += 1
            return False
        if len(data) > MAX_DATAGRAM or not self._send(target, encode(NodeSip(data, self.index))):
            self.failed += 1
            return False
        self.sent += 1
        return True
