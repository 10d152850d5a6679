"""The in-memory snapshot of the telephony plan that call processing reads.

The hot path never waits on the database: the node loads a ``PlanSnapshot``
from the database at start and whenever the plan changes, and swaps the
reference atomically. A snapshot is immutable; lookups are dict reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LineInfo:
    """A line appearance: a directory number on a device."""

    dn: str
    display: str = ""
    partition: str = ""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A provisioned device (phone, gateway, trunk, ...).

    ``ha1_md5``/``ha1_sha256`` are the digest secrets for ``realm``
    (RFC 2617/8760 H(username:realm:password)); the clear password is never kept.
    """

    name: str
    protocol: str
    lines: tuple[LineInfo, ...] = ()
    realm: str = ""
    ha1_md5: str = ""
    ha1_sha256: str = ""
    css: str = ""
    max_calls: int = 4

    @property
    def display(self) -> str:
        for line in self.lines:
            if line.display:
                return line.display
        return ""


@dataclass(frozen=True, slots=True)
class DnEntry:
    """A directory number and the devices that carry it (several = shared line)."""

    dn: str
    devices: tuple[str, ...]
    display: str = ""
    partition: str = ""


@dataclass(frozen=True, slots=True)
class PlanSnapshot:
    """An immutable view of the plan; build it with :meth:`build`."""

    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    dns: dict[str, DnEntry] = field(default_factory=dict)
    version: int = 0

    @classmethod
    def build(cls, devices: Iterable[DeviceInfo], version: int = 0) -> PlanSnapshot:
        devs = {d.name: d for d in devices}
        owners: dict[str, list[str]] = {}
        first: dict[str, LineInfo] = {}
        for dev in devs.values():
            for line in dev.lines:
                owners.setdefault(line.dn, []).append(dev.name)
                if line.dn not in first or (not first[line.dn].display and line.display):
                    first[line.dn] = line
        dns = {
            dn: DnEntry(dn, tuple(names), first[dn].display, first[dn].partition)
            for dn, names in owners.items()
        }
        return cls(devices=devs, dns=dns, version=version)

    def device(self, name: str) -> DeviceInfo | None:
        return self.devices.get(name)

    def lookup_dn(self, digits: str) -> DnEntry | None:
        return self.dns.get(digits)

    def device_for_user(self, user: str) -> DeviceInfo | None:
        """A device by its name or, failing that, the single device owning DN ``user``."""
        dev = self.devices.get(user)
        if dev is not None:
            return dev
        entry = self.dns.get(user)
        if entry is not None and len(entry.devices) == 1:
            return self.devices.get(entry.devices[0])
        return None
