"""Where registered devices can be reached: the location store interface.

The SIP registrar (and later the SCCP/MGCP adapters) write bindings here;
call control reads them to find the contacts to ring. It sits behind a small
interface so that a cluster can keep it in Redis; ``MemoryLocationStore`` is
the single-node implementation. Times are monotonic seconds passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Binding:
    """One reachable contact of a device.

    ``contact`` is the URI to send requests to; ``source``/``transport`` are
    where the registration really came from (RFC 3581 received/rport), which
    is where requests are sent when the contact is unreachable behind NAT.
    """

    device: str
    protocol: str
    contact: str
    expires_at: float
    source: tuple[str, int] = ("", 0)
    transport: str = "udp"
    aor: str = ""
    call_id: str = ""
    cseq: int = 0
    user_agent: str = ""
    registered_at: float = 0.0  # wall clock, for display
    node: str = ""
    firmware: str = ""  # the load the device said it runs ("" unknown; SCCP phones tell)
    # Another worker process of this node holds the device (a copy of its binding,
    # ``offhook.workers.replica``): its index; -1: this process does.
    worker: int = -1

    def with_expiry(self, expires_at: float) -> Binding:
        return replace(self, expires_at=expires_at)


class LocationStore(Protocol):
    def bindings(self, device: str, now: float) -> list[Binding]: ...

    def put(self, binding: Binding) -> None: ...

    def remove(self, device: str, contact: str) -> None: ...

    def remove_device(self, device: str) -> None: ...

    def expire(self, now: float) -> list[Binding]: ...

    def all(self, now: float) -> list[Binding]: ...


class MemoryLocationStore:
    """Bindings of this node, keyed by device then contact URI."""

    def __init__(self) -> None:
        self._by_device: dict[str, dict[str, Binding]] = {}

    def bindings(self, device: str, now: float) -> list[Binding]:
        return [b for b in self._by_device.get(device, {}).values() if b.expires_at > now]

    def put(self, binding: Binding) -> None:
        self._by_device.setdefault(binding.device, {})[binding.contact] = binding

    def remove(self, device: str, contact: str) -> None:
        contacts = self._by_device.get(device)
        if contacts is not None:
            contacts.pop(contact, None)
            if not contacts:
                del self._by_device[device]

    def remove_device(self, device: str) -> None:
        self._by_device.pop(device, None)

    def expire(self, now: float) -> list[Binding]:
        gone: list[Binding] = []
        for device in list(self._by_device):
            contacts = self._by_device[device]
            for contact, b in list(contacts.items()):
                if b.expires_at <= now:
                    gone.append(b)
                    del contacts[contact]
            if not contacts:
                del self._by_device[device]
        return gone

    def all(self, now: float) -> list[Binding]:
        return [b for c in self._by_device.values() for b in c.values() if b.expires_at > now]

    def count(self) -> int:
        return sum(len(c) for c in self._by_device.values())
