"""The real-time information query: which devices are registered where, which calls are up.

In the spirit of Cisco RisPort's ``selectCmDevice``. Pure: the caller hands
in what the node holds (the plan's devices, the live bindings of the
location store, the registration history of ``ris.index``, the engine's
calls) and gets rows back; nothing here does I/O or reads a clock.

Devices: ``DeviceFilter.parse(args)`` reads the request (``name`` a glob
where ``*`` is any run of characters and ``?`` one, matched without regard
to case; ``protocol`` sip, sccp or cti; ``status`` registered, unregistered,
rejected or any; ``address`` an IP address (exact), a network
(``10.0.0.0/24``) or a leading part of one (``10.0.``, ``10.0.*``);
``limit``), refusing anything else with ``ValueError``. ``select_devices``
answers one ``DeviceRow`` per device, sorted by name: every device of the
plan, every device with a live binding, and every name the index remembers
(a name refused registration). Its status: ``registered`` when it has a
live binding, else ``rejected`` when the last thing that happened to it was
a refusal, else ``unregistered``; one not registered whose address is
blocked now for failed logins is ``blocked`` too (``select_devices``'
``blocked``). Its model is the SIP phone's User-Agent or
the SCCP station's device type, its firmware the SCCP load it reported (for
SIP: the version of the User-Agent's first product, ``Cisco-CP7960G/8.0``
-> ``8.0``); an unregistered device shows what it showed when it last
registered. Its address and port are where it registered from (a refused
name: where the refusal came from).

Calls: ``select_calls`` answers one ``CallRow`` per active call with its
legs still up (device, line, state, direction) and each leg's media as its
device described it (``MediaDescription``: RTP address, port, codec).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from offhook.common.addr import parse_ip
from offhook.common.location import Binding
from offhook.core.call import Call
from offhook.core.directory import DeviceInfo
from offhook.core.leg import Leg
from offhook.ris.index import History, Rejection

DEFAULT_LIMIT = 1000
"""Devices one answer holds unless ``limit`` says otherwise (RisPort's page)."""
MAX_LIMIT = 5000
MAX_PATTERN = 128
"""Characters of a name pattern or address filter accepted."""
PROTOCOLS = frozenset({"sip", "sccp", "cti"})

_ADDRESS_PREFIX = re.compile(r"[0-9A-Fa-f.:]{1,64}\Z")
_PRODUCT_VERSION = re.compile(r"[^\s/]+/([^\s/()]{1,32})")


class Status(StrEnum):
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    REJECTED = "rejected"
    ANY = "any"


def iso(ts: float | None) -> str | None:
    """Wall seconds as ISO 8601 UTC, None for None."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat()


# -- matching -----------------------------------------------------------------


def glob_match(pattern: str, name: str) -> bool:
    """``name`` matches ``pattern`` (``*`` any run, ``?`` one character), case ignored.

    The greedy two-pointer walk with one backtrack point: time in proportion
    to len(pattern) * len(name) at worst, whatever the pattern (a regular
    expression of many ``.*`` can take exponential time).
    """
    p, n = pattern.casefold(), name.casefold()
    i = j = 0
    star, mark = -1, 0
    while j < len(n):
        if i < len(p) and p[i] == "*":
            star, mark = i, j
            i += 1
        elif i < len(p) and (p[i] == "?" or p[i] == n[j]):
            i += 1
            j += 1
        elif star >= 0:
            i = star + 1
            mark += 1
            j = mark
        else:
            return False
    while i < len(p) and p[i] == "*":
        i += 1
    return i == len(p)


@dataclass(frozen=True, slots=True)
class AddressFilter:
    """An IP address (exact), a network, or the leading part of an address."""

    text: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    exact: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> AddressFilter:
        value = text.strip()
        if not value or len(value) > MAX_PATTERN:
            raise ValueError("address must be an IP address, a network or its leading part")
        if "/" in value:
            try:
                return cls(value, network=ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ValueError(f"address {value!r} is no network") from None
        try:
            return cls(value, exact=parse_ip(value))
        except ValueError:
            pass
        prefix = value[:-1] if value.endswith("*") else value
        if not _ADDRESS_PREFIX.match(prefix):
            raise ValueError(f"address {value!r} is no IP address, network or leading part")
        return cls(value, prefix=prefix.lower())

    def matches(self, address: str) -> bool:
        if not address:
            return False
        if self.prefix:
            return address.lower().startswith(self.prefix)
        try:
            addr = parse_ip(address, allow_zone=True)
        except ValueError:
            return False
        if self.exact is not None:
            return addr == self.exact
        assert self.network is not None
        return addr.version == self.network.version and addr in self.network


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """What ``ris_devices`` selects; see the module docstring."""

    name: str = "*"
    protocol: str | None = None
    status: Status = Status.ANY
    address: AddressFilter | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, args: Mapping[str, Any]) -> DeviceFilter:
        """The filter a request's arguments say (absent or null: no filter)."""
        unknown = set(args) - {"name", "protocol", "status", "address", "limit"}
        if unknown:
            raise ValueError(f"unknown argument {sorted(unknown)[0]!r}")
        name = _text(args, "name") or "*"
        if len(name) > MAX_PATTERN:
            raise ValueError(f"name pattern longer than {MAX_PATTERN} characters")
        protocol = (_text(args, "protocol") or "").lower() or None
        if protocol == "any":
            protocol = None
        if protocol is not None and protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(sorted(PROTOCOLS))}")
        status_text = (_text(args, "status") or "any").lower()
        try:
            status = Status(status_text)
        except ValueError:
            raise ValueError("status must be registered, unregistered, rejected or any") from None
        address_text = _text(args, "address")
        address = AddressFilter.parse(address_text) if address_text else None
        limit = args.get("limit")
        if limit is None:
            limit = DEFAULT_LIMIT
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        return cls(name, protocol, status, address, limit)

    def matches(self, row: DeviceRow) -> bool:
        return (
            (self.protocol is None or row.protocol == self.protocol)
            and (self.status is Status.ANY or row.status == self.status.value)
            and (self.address is None or self.address.matches(row.address))
            and glob_match(self.name, row.name)
        )


def _text(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    return value


# -- devices ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One device as ``ris_devices`` answers it."""

    name: str
    protocol: str
    status: str
    model: str
    firmware: str
    lines: tuple[str, ...]
    address: str
    port: int
    transport: str
    registered_at: float | None
    unregistered_at: float | None
    last_rejection: Rejection | None
    rejections: int
    node: str
    configured: bool
    blocked: bool = False
    """Not registered, and its address is blocked now for failed logins."""

    def as_json(self) -> dict[str, Any]:
        r = self.last_rejection
        return {
            "name": self.name,
            "protocol": self.protocol,
            "status": self.status,
            "model": self.model,
            "firmware": self.firmware,
            "lines": list(self.lines),
            "address": self.address,
            "port": self.port,
            "transport": self.transport,
            "registered_at": iso(self.registered_at),
            "unregistered_at": iso(self.unregistered_at),
            "last_rejection": (
                None if r is None else {"time": iso(r.time), "reason": r.reason, "source": r.source}
            ),
            "rejections": self.rejections,
            "node": self.node,
            "configured": self.configured,
            "blocked": self.blocked,
        }


@dataclass(frozen=True, slots=True)
class DeviceSelection:
    """The rows a filter selected (at most ``limit``) and how many matched in all."""

    rows: tuple[DeviceRow, ...]
    total: int

    def as_json(self, node: str) -> dict[str, Any]:
        return {
            "node": node,
            "total": self.total,
            "truncated": self.total > len(self.rows),
            "devices": [row.as_json() for row in self.rows],
        }


def sip_firmware(user_agent: str) -> str:
    """The version of a User-Agent's first product (RFC 3261 §20.41), or ""."""
    match = _PRODUCT_VERSION.match(user_agent.strip())
    return match.group(1) if match is not None else ""


def split_source(source: str) -> tuple[str, int]:
    """``host:port`` (IPv6 bracketed) -> (host, port); ("", 0) when unreadable."""
    host, sep, port = source.rpartition(":")
    if not sep or not port.isdigit():
        return "", 0
    return host.strip("[]"), int(port)


def device_row(
    name: str,
    plan: DeviceInfo | None,
    bindings: list[Binding],
    history: History | None,
    node: str,
) -> DeviceRow:
    """One device's row from what the node holds of it (see the module docstring)."""
    live = max(bindings, key=lambda b: (b.registered_at, b.expires_at)) if bindings else None
    shown = live or (history.last_binding if history is not None else None)
    if live is not None:
        protocol = live.protocol
    elif plan is not None:
        protocol = plan.protocol
    else:
        protocol = history.protocol if history is not None else ""
    if live is not None:
        status = Status.REGISTERED
    elif history is not None and history.rejected_last:
        status = Status.REJECTED
    else:
        status = Status.UNREGISTERED
    model = firmware = address = transport = ""
    port = 0
    if shown is not None:
        model = shown.user_agent
        firmware = shown.firmware or (sip_firmware(shown.user_agent) if protocol == "sip" else "")
        address, port = shown.source
        transport = shown.transport
    elif plan is not None and plan.model:
        model = f"Cisco {plan.model}" if protocol == "sccp" else plan.model
    rejection = history.last_rejection if history is not None else None
    if status is Status.REJECTED and rejection is not None:
        address, port = split_source(rejection.source)
    registered_at = history.last_registered if history is not None else None
    if live is not None and live.registered_at:
        registered_at = live.registered_at
    return DeviceRow(
        name=name,
        protocol=protocol,
        status=status.value,
        model=model,
        firmware=firmware,
        lines=tuple(line.dn for line in plan.lines) if plan is not None else (),
        address=address,
        port=port,
        transport=transport,
        registered_at=registered_at,
        unregistered_at=history.last_unregistered if history is not None else None,
        last_rejection=rejection,
        rejections=history.rejections if history is not None else 0,
        node=(live.node if live is not None and live.node else node),
        configured=plan is not None,
    )


def select_devices(
    devices: Mapping[str, DeviceInfo],
    bindings: Iterable[Binding],
    histories: Iterable[tuple[str, History]],
    flt: DeviceFilter,
    node: str = "",
    blocked: Callable[[str], bool] | None = None,
) -> DeviceSelection:
    """The devices ``flt`` selects, sorted by name, at most ``flt.limit`` of them.

    ``blocked(address)``: is that address blocked now for failed logins (a
    device not registered from there shows ``blocked``: its registrations
    are dropped unanswered, which is why it does not register)."""
    by_device: dict[str, list[Binding]] = {}
    for b in bindings:
        by_device.setdefault(b.device, []).append(b)
    history = dict(histories)
    names = set(devices) | set(by_device) | set(history)
    quick = _quick_check(flt)
    rows: list[DeviceRow] = []
    for name in names:
        if not quick(name):
            continue
        row = device_row(name, devices.get(name), by_device.get(name, []), history.get(name), node)
        if not flt.matches(row):
            continue
        if (
            blocked is not None
            and row.status != Status.REGISTERED
            and row.address
            and blocked(row.address)
        ):
            row = replace(row, blocked=True)
        rows.append(row)
    rows.sort(key=lambda r: (r.name.casefold(), r.name))
    return DeviceSelection(tuple(rows[: flt.limit]), len(rows))


def _quick_check(flt: DeviceFilter) -> Callable[[str], bool]:
    """The name test alone, to skip building rows of devices the pattern excludes."""
    if flt.name == "*":
        return lambda name: True
    return lambda name: glob_match(flt.name, name)


# -- calls --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaRow:
    """One media stream of a leg, as its device described it."""

    kind: str
    address: str
    port: int
    codec: str
    direction: str

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "address": self.address,
            "port": self.port,
            "codec": self.codec,
            "direction": self.direction,
        }


@dataclass(frozen=True, slots=True)
class LegRow:
    leg_id: str
    device: str
    line: str
    state: str
    direction: str
    media: tuple[MediaRow, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "leg_id": self.leg_id,
            "device": self.device,
            "line": self.line,
            "state": self.state,
            "direction": self.direction,
            "media": [m.as_json() for m in self.media],
        }


@dataclass(frozen=True, slots=True)
class CallRow:
    call_id: str
    calling: str
    called: str
    state: str
    start: float
    answer: float | None
    legs: tuple[LegRow, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "calling": self.calling,
            "called": self.called,
            "state": self.state,
            "start": iso(self.start),
            "answer": iso(self.answer),
            "legs": [leg.as_json() for leg in self.legs],
        }


def leg_media(leg: Leg) -> tuple[MediaRow, ...]:
    """The streams ``leg``'s device last described (rejected streams left out)."""
    if leg.media is None:
        return ()
    return tuple(
        MediaRow(
            s.kind,
            s.address,
            s.port,
            s.codecs[0].name if s.codecs else "",
            s.direction,
        )
        for s in leg.media.active_streams()
    )


def call_row(call: Call) -> CallRow:
    held = set(call.holds)  # the legs that put the call on hold
    legs = tuple(
        LegRow(
            leg.id,
            leg.device,
            leg.line[0],
            "held" if leg.id in held else leg.state.value,
            leg.direction.value,
            leg_media(leg),
        )
        for leg in call.legs()
        if not leg.released
    )
    return CallRow(
        call.id,
        call.setup.calling.number,
        call.setup.called,
        call.state.value,
        call.start,
        call.answer,
        legs,
    )


def select_calls(calls: Iterable[Call], device: str = "*") -> list[CallRow]:
    """The active calls (with a leg of a device matching ``device``), oldest first."""
    rows = [call_row(c) for c in calls if not c.ended]
    if device != "*":
        rows = [r for r in rows if any(glob_match(device, leg.device) for leg in r.legs)]
    rows.sort(key=lambda r: (r.start, r.call_id))
    return rows
