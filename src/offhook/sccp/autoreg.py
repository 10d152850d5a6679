"""SCCP auto-registration: a profile with the next free DN for an unknown phone (sans-IO).

When ``[sccp].auto_register`` names a DN range (``"2000-2099"``), a phone
whose name is a ``SEP<12 hex digits>`` the plan does not know registers
anyway, as CallManager's auto-registration does: it gets an in-memory
``DeviceProfile`` with one line, the lowest DN of the range that no plan
device carries and no other auto-registered phone holds, and the model of
its Register ``device_type`` (a 7960 layout when the type is not one we
know). A phone re-registering gets its DN back; the node also stores the
assignments (``on_change``, into the database) and hands them to
:meth:`AutoRegistrar.restore` when it starts again, so that a phone keeps
its number across restarts. A DN the plan later gives to a device is taken
back from the auto-registered phone at its next registration.

Memory is bounded: at most ``min(range size, max_entries)`` phones hold a DN;
beyond that an unknown phone is rejected like without auto-registration.
``on_change(name, profile)`` tells the
node whenever a phone's assignment changes (a new DN or model; ``None``
when it lost its DN), so that the node can put the phone in its plan
snapshot (its DN in ``[sccp] auto_register_partition``, dialing with
``auto_register_css``) and the phone can be called.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from offhook.sccp.device import DeviceProfile

DEFAULT_MODEL = "7960"
"""Layout given to a phone whose Register device type we do not know."""
MAX_ENTRIES = 10_000
"""Most auto-registered phones remembered (whatever the range size)."""

# Register.device_type values (packet-skinny.c ``DeviceType``).
DEVICE_TYPES: Mapping[int, str] = MappingProxyType(
    {
        7: "7960",
        8: "7940",
        115: "7941",
        119: "7971",
        308: "7961",  # 7961G-GE
        309: "7941",  # 7941G-GE
        30006: "7970",
        30007: "7912",
        30018: "7961",
    }
)

_SEP = re.compile(r"SEP[0-9A-Fa-f]{12}\Z")


def model_for(device_type: int | None) -> str:
    """The model name of a Register ``device_type`` (``DEFAULT_MODEL`` when unknown)."""
    if device_type is None:
        return DEFAULT_MODEL
    return DEVICE_TYPES.get(device_type, DEFAULT_MODEL)


def auto_profile(name: str, dn: str, model: str) -> DeviceProfile:
    """The profile of an auto-registered phone: one line ``Auto <dn>``."""
    return DeviceProfile(name, model or DEFAULT_MODEL, lines=((dn, f"Auto {dn}"),))


def parse_range(text: str) -> tuple[int, int, int]:
    """``"2000-2099"`` -> (low, high, digits); ValueError when malformed."""
    low, sep, high = text.strip().partition("-")
    if not sep or not low.isdigit() or not high.isdigit() or len(low) != len(high):
        raise ValueError(f"auto_register range {text!r}: expected e.g. 2000-2099")
    if int(low) > int(high):
        raise ValueError(f"auto_register range {text!r}: start above end")
    return int(low), int(high), len(low)


class AutoRegistrar:
    """Hands out DNs of one range to unknown SEP phones."""

    def __init__(
        self,
        dn_range: str,
        taken: Callable[[str], bool],
        max_entries: int = MAX_ENTRIES,
        on_change: Callable[[str, DeviceProfile | None], None] | None = None,
    ) -> None:
        """``taken(dn)`` says whether the plan already carries ``dn``.

        ``on_change(name, profile)`` is called after a phone's assignment
        changed: a new profile (first DN, a new DN, another model), or None
        when it lost its DN (taken back by the plan and the range full).
        """
        self._low, self._high, self._width = parse_range(dn_range)
        self._taken = taken
        self._cap = min(self._high - self._low + 1, max_entries)
        self._by_device: dict[str, str] = {}
        self._by_dn: dict[str, str] = {}
        self._given: dict[str, DeviceProfile] = {}
        self._on_change = on_change
        self._hint = self._low
        """Every DN below this one was held or in the plan when last scanned."""

    @property
    def assigned(self) -> Mapping[str, str]:
        """device name -> DN, a read-only view."""
        return MappingProxyType(self._by_device)

    def restore(self, assignments: Iterable[tuple[str, str]]) -> list[str]:
        """Take back stored ``(name, dn)`` assignments (a node starting again).

        An assignment is kept when the name is a SEP name, the DN is of the
        range, the plan does not carry it, and neither name nor DN is held
        already (first come first kept), within the cap. Returns the names
        kept; ``on_change`` is not called (the phones have not registered).
        """
        kept: list[str] = []
        for name, dn in assignments:
            if len(self._by_device) >= self._cap:
                break
            if not _SEP.match(name) or name in self._by_device or dn in self._by_dn:
                continue
            if len(dn) != self._width or not dn.isdigit():
                continue
            if not self._low <= int(dn) <= self._high or self._taken(dn):
                continue
            self._by_device[name] = dn
            self._by_dn[dn] = name
            kept.append(name)
        return kept

    def profile(self, name: str, device_type: int | None) -> DeviceProfile | None:
        """A profile for unknown phone ``name``, or None (not a SEP name, range full)."""
        if not _SEP.match(name):
            return None
        dn = self._by_device.get(name)
        if dn is not None and self._taken(dn):
            self._release(name)
            dn = None
        if dn is None:
            dn = self._next_free()
            if dn is None:
                if self._given.pop(name, None) is not None and self._on_change is not None:
                    self._on_change(name, None)
                return None
            self._by_device[name] = dn
            self._by_dn[dn] = name
        profile = auto_profile(name, dn, model_for(device_type))
        if self._given.get(name) != profile:
            self._given[name] = profile
            if self._on_change is not None:
                self._on_change(name, profile)
        return profile

    def _release(self, name: str) -> None:
        dn = self._by_device.pop(name, None)
        if dn is not None:
            self._by_dn.pop(dn, None)
            self._hint = min(self._hint, int(dn))

    def _next_free(self) -> str | None:
        if len(self._by_device) >= self._cap:
            return None
        # Every DN skipped is held or in the plan, so the scan is bounded by
        # what we hold plus the plan's DNs, not by the range size. Below the
        # hint every DN is held, unless the plan freed one since: look there
        # only when the rest of the range is full.
        for start, end in ((self._hint, self._high), (self._low, self._hint - 1)):
            for n in range(start, end + 1):
                dn = str(n).zfill(self._width)
                if dn not in self._by_dn and not self._taken(dn):
                    self._hint = n + 1
                    return dn
        return None
