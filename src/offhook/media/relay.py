"""A media relay path between an IPv4 and an IPv6 device: who may send, where it goes.

Theory of operation. Media flows device to device, except when the two
devices of a call cannot reach each other's address family (an IPv6-only
phone and an IPv4 one). Then the node anchors each such stream: it owns a
socket pair (RTP, RTCP) per family, tells each device the address of its
own family, and forwards what arrives on one family's socket out of the
other's. ``RelayPath`` is the decision part of one stream, sans-IO:

- ``expect(version, far)``: the signalling learned that the device of IP
  ``version``'s *other* side is at ``far`` (an SDP written towards a device
  of ``version`` named ``far``, of the other family). Packets that arrive
  on the ``version`` side are sent to ``far``.
- ``receive(version, source)``: a packet arrived on the ``version`` side
  from ``source``. It is accepted only from the address the signalling
  gave for that side's device (its IP; the port may differ behind a NAT,
  and the path then latches on it: symmetric RTP, RFC 4961); anything else
  is dropped and counted (``UNEXPECTED``), so a relay port cannot be used to
  inject media or to bounce traffic elsewhere. Returns where the packet
  goes (the other side's target), or None.

RTCP travels the same way on the odd port of each pair (RFC 3550 §11).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Addr = tuple[str, int]

UNEXPECTED = "unexpected-source"
NO_TARGET = "no-target"


def other(version: int) -> int:
    return 10 - version  # 4 <-> 6


@dataclass(slots=True)
class RelayPath:
    """One anchored stream: per family, the device there and where its packets go."""

    # The device on each side (version -> address), as signalled, then latched.
    devices: dict[int, Addr] = field(default_factory=dict)
    forwarded: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def expect(self, version: int, far: Addr) -> None:
        """The device on the ``other(version)`` side is at ``far``."""
        self.devices[other(version)] = far

    def receive(self, version: int, source: Addr) -> Addr | str:
        """A packet on the ``version`` side from ``source``: where it goes, or why dropped."""
        device = self.devices.get(version)
        if device is None or device[0] != source[0]:
            return self._drop(UNEXPECTED)
        if device[1] != source[1]:
            self.devices[version] = source  # latch (symmetric RTP behind a NAT)
        target = self.devices.get(other(version))
        if target is None:
            return self._drop(NO_TARGET)
        self.forwarded += 1
        return target

    def _drop(self, reason: str) -> str:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return reason
