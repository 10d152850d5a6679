"""The location store of a worker: its own bindings, and copies of the other workers'.

A SIP binding added, refreshed or removed here is applied here and sent to
every other worker (``publish``), which applies it to its copy
(:meth:`ReplicatedLocationStore.apply`, without sending it on): a call from a
phone on one worker reaches a phone that registered on another. Only
``sip`` bindings with a finite expiry travel (SCCP phones and CTI devices
are reached through the worker that holds them: not across workers yet).
Expiry: every copy carries its own deadline (the sender gives seconds left),
and each worker expires its copies by its own clock. A worker that starts
asks the others for their tables (:meth:`table`). Sans-IO: ``now`` is passed in.

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

REPLICATED = "sip"


class ReplicatedLocationStore(MemoryLocationStore):
    """A ``MemoryLocationStore`` whose SIP changes go to ``publish`` as bus messages."""

    def __init__(self, publish: Callable[[Message], None], now: Callable[[], float]) -> None:
        super().__init__()
        self._publish = publish
        self._now = now
        self.applied = 0  # changes from other workers applied here
        self.on_applied: Callable[[str], None] | None = None

    def put(self, binding: Binding) -> None:
        super().put(binding)
        ttl = binding.expires_at - self._now()
        if binding.protocol == REPLICATED and math.isfinite(ttl):
            self._publish(Put(binding.with_expiry(ttl)))

    def remove(self, device: str, contact: str) -> None:
        if self._holds_sip(device, contact):
            self._publish(Remove(device, contact))
        super().remove(device, contact)

    def remove_device(self, device: str) -> None:
        if self._holds_sip(device, None):
            self._publish(Remove(device, None))
        super().remove_device(device)

    def _holds_sip(self, device: str, contact: str | None) -> bool:
        contacts = self._by_device.get(device, {})
        found = contacts.values() if contact is None else [contacts.get(contact)]
        return any(b is not None and b.protocol == REPLICATED for b in found)

    def apply(self, message: Put | Remove) -> None:
        """A change another worker made: applied here only."""
        self.applied += 1
        if isinstance(message, Put):
            b = message.binding
            if b.protocol == REPLICATED and math.isfinite(b.expires_at):
                super().put(replace(b, expires_at=self._now() + b.expires_at))
        elif message.contact is None:
            contacts = self._by_device.get(message.device, {})
            for contact in [c for c, b in contacts.items() if b.protocol == REPLICATED]:
                super().remove(message.device, contact)
        else:
            super().remove(message.device, message.contact)
        if self.on_applied is not None:
            self.on_applied(message.binding.device if isinstance(message, Put) else message.device)

    def table(self) -> Iterator[Put]:
        """Every SIP binding held here, as changes to apply (for a worker that starts)."""
        now = self._now()
        for b in self.all(now):
            if b.protocol == REPLICATED and math.isfinite(b.expires_at):
                yield Put(b.with_expiry(b.expires_at - now))
