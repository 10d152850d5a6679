"""The location store of a worker: its own bindings, and copies of the other workers'.

A binding added, refreshed or removed here is applied here and sent to every
other worker (``publish``), marked with this worker's index
(``Binding.worker``), and each applies it to its copy
(:meth:`ReplicatedLocationStore.apply`, without sending it on):

- ``sip`` bindings with a finite expiry: a call from a phone on one worker
  reaches a phone that registered on another, directly;
- ``sccp`` bindings: an SCCP phone's station lives with its connection, so a
  call to it from another worker goes through that worker
  (``workers.node_leg``, the copy says which). A phone's keepalive refreshes
  its binding every half minute; a refresh travels only when it adds
  ``REPUBLISH`` seconds to what the others hold (or its source changed).

CTI devices are reached through the worker that holds them: not across
workers yet. Expiry: every copy carries its own deadline (the sender gives
seconds left), and each worker expires its copies by its own clock. A worker
that starts asks the others for their tables (:meth:`table`: each sends its
own bindings, and the SIP bindings of the starting worker's predecessor it
held copies of); they forget the SCCP phones its predecessor held
(:meth:`forget_worker`: its connections closed with it). Sans-IO: ``now`` is
passed in.

``on_applied(device)``, once set, hears of every change applied from another
worker, as the registrar's ``on_change`` hears of this worker's own: the node
then publishes the device's first binding or its last one going
(``RegistrationChanged``), so real-time information, CTI and presence watchers
on every worker see a phone that registered on another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace

from offhook.common.location import Binding, MemoryLocationStore
from offhook.workers.codec import Message, Put, Remove

REPLICATED = frozenset({"sip", "sccp"})
REPUBLISH = 600.0  # seconds of lifetime an SCCP refresh must add to be sent on


class ReplicatedLocationStore(MemoryLocationStore):
    """A ``MemoryLocationStore`` whose SIP and SCCP changes go to ``publish`` as bus messages."""

    def __init__(
        self, publish: Callable[[Message], None], now: Callable[[], float], index: int = 0
    ) -> None:
        super().__init__()
        self._publish = publish
        self._now = now
        self.index = index
        self.applied = 0  # changes from other workers applied here
        self.on_applied: Callable[[str], None] | None = None
        # (device, contact) -> (source, expiry) last sent of this worker's SCCP bindings
        self._sent: dict[tuple[str, str], tuple[tuple[str, int], float]] = {}

    def put(self, binding: Binding) -> None:
        super().put(binding)
        ttl = binding.expires_at - self._now()
        if binding.protocol not in REPLICATED or not math.isfinite(ttl) or binding.worker >= 0:
            return
        if binding.protocol == "sccp":
            key = (binding.device, binding.contact)
            sent = self._sent.get(key)
            fresh = sent is not None and binding.expires_at - sent[1] < REPUBLISH
            if sent is not None and sent[0] == binding.source and fresh:
                return  # the others' copies live long enough
            self._sent[key] = (binding.source, binding.expires_at)
        self._publish(Put(replace(binding, expires_at=ttl, worker=self.index)))

    def remove(self, device: str, contact: str) -> None:
        if self._holds_own(device, contact):
            self._publish(Remove(device, contact))
        self._sent.pop((device, contact), None)
        super().remove(device, contact)

    def remove_device(self, device: str) -> None:
        if self._holds_own(device, None):
            self._publish(Remove(device, None))
        for contact in self._by_device.get(device, {}):
            self._sent.pop((device, contact), None)
        super().remove_device(device)

    def expire(self, now: float) -> list[Binding]:
        gone = super().expire(now)
        for b in gone:
            self._sent.pop((b.device, b.contact), None)
        return gone

    def _holds_own(self, device: str, contact: str | None) -> bool:
        contacts = self._by_device.get(device, {})
        found = contacts.values() if contact is None else [contacts.get(contact)]
        return any(b is not None and b.protocol in REPLICATED and b.worker < 0 for b in found)

    def apply(self, message: Put | Remove) -> None:
        """A change another worker made: applied here only."""
        self.applied += 1
        if isinstance(message, Put):
            b = message.binding
            if b.protocol in REPLICATED and math.isfinite(b.expires_at) and b.worker >= 0:
                mine = b.worker == self.index  # my predecessor's, given back: mine now
                worker = -1 if mine else b.worker
                super().put(replace(b, expires_at=self._now() + b.expires_at, worker=worker))
        elif message.contact is None:
            contacts = self._by_device.get(message.device, {})
            for contact in [c for c, b in contacts.items() if b.worker >= 0]:
                super().remove(message.device, contact)
        else:
            held = self._by_device.get(message.device, {}).get(message.contact)
            if held is not None and held.worker >= 0:
                super().remove(message.device, message.contact)
        if self.on_applied is not None:
            self.on_applied(message.binding.device if isinstance(message, Put) else message.device)

    def forget_worker(self, index: int) -> list[str]:
        """Drop the SCCP phones worker ``index`` held (it was replaced); their devices."""
        gone = [
            (device, contact)
            for device, contacts in self._by_device.items()
            for contact, b in contacts.items()
            if b.worker == index and b.protocol == "sccp"
        ]
        for device, contact in gone:
            super().remove(device, contact)
        return sorted({device for device, _ in gone})

    def table(self, starting: int = -1) -> Iterator[Put]:
        """What worker ``starting`` is sent when it starts: this worker's own bindings, and
        the copies of those its predecessor held (its phones until they register again)."""
        now = self._now()
        for b in self.all(now):
            if b.protocol in REPLICATED and math.isfinite(b.expires_at):
                if b.worker < 0:
                    yield Put(replace(b, expires_at=b.expires_at - now, worker=self.index))
                elif b.worker == starting:
                    yield Put(b.with_expiry(b.expires_at - now))
