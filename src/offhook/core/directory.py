"""The in-memory snapshot of the telephony plan that call processing reads.

The hot path never waits on the database: the node loads a ``PlanSnapshot``
from the database at start and whenever the plan changes, and swaps the
reference atomically. A snapshot is immutable; lookups are dict reads.

The snapshot also carries the dial plan: ``dialplan_spec`` (partitions, CSSs,
patterns, trunks, ... as configured; empty by default) and ``dialplan``, the
analyzer built from it (:class:`offhook.core.dialplan.router.DialPlan`).
:meth:`PlanSnapshot.build` builds the analyzer at once, so that a plan the
analyzer refuses fails at load time and the first call does not pay for the
index; a snapshot made directly builds it on first use.

And the media plane's plan: ``moh_sources`` (music on hold files by name)
with :meth:`PlanSnapshot.moh_source_for` (which one a held party hears), and
the media resource groups and lists with :meth:`PlanSnapshot.media_servers_for`
(which media servers serve a device's calls).

And call coverage: each line's forwards, voicemail pilot and pickup group
(:class:`LineInfo`, :meth:`PlanSnapshot.line`), hunt line groups and hunt
lists (hunt pilots, pickup group numbers and park numbers are in the dial plan).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from offhook.core.dialplan.model import DialPlanSpec, DirectoryNumber

if TYPE_CHECKING:
    from offhook.core.dialplan.router import DialPlan

DEFAULT_MOH_SOURCE = "default"
"""The music on hold source used when neither the line nor the device names one
(the media server plays its built-in tone pattern when the plan declares no
file by this name)."""
EMBEDDED_MEDIA_SERVER = "embedded"
"""The media server ``offhook serve`` starts: it always exists, and serves the
calls of every device without a media resource list."""


@dataclass(frozen=True, slots=True)
class Forward:
    """Where a line forwards, and the CSS the destination is analysed with.

    ``css`` "" is the line's device's CSS (CallManager's forward CSS default
    is the null CSS; offhook never lets a forward reach what the line's owner
    could not dial).
    """

    destination: str
    css: str = ""


class HuntDistribution(StrEnum):
    TOP_DOWN = "top-down"
    CIRCULAR = "circular"
    LONGEST_IDLE = "longest-idle"
    BROADCAST = "broadcast"


class HuntStep(StrEnum):
    """What a line group does when a member does not answer, is busy or absent."""

    NEXT_MEMBER = "next-member"  # try the group's next member
    NEXT_GROUP = "next-group"  # skip the rest of this group
    STOP = "stop"  # stop hunting: the pilot's final forward


@dataclass(frozen=True, slots=True)
class LineGroup:
    """A hunt line group: member DNs (in the null or their own partition), in order."""

    name: str
    members: tuple[str, ...] = ()
    distribution: HuntDistribution = HuntDistribution.TOP_DOWN
    rna_timeout: float = 10.0  # seconds a member rings before the next is tried
    on_no_answer: HuntStep = HuntStep.NEXT_MEMBER
    on_busy: HuntStep = HuntStep.NEXT_MEMBER
    on_unavailable: HuntStep = HuntStep.NEXT_MEMBER


@dataclass(frozen=True, slots=True)
class LineInfo:
    """A line appearance: a directory number on a device.

    ``moh_source`` is what a party this line holds hears ("" = the device's).
    Coverage (the DN's, whichever appearance of a shared line carries it):
    ``forward_*`` where calls go instead (``forward_*_external``: for
    callers from a trunk, CallManager's external variants), ``cfna_timer`` seconds before
    forward no answer (None: ``[features] cfna_timer``), ``voicemail`` the
    line's voicemail pilot number, ``pickup_group`` its call pickup group.
    """

    dn: str
    display: str = ""
    partition: str = ""
    moh_source: str = ""
    forward_all: Forward | None = None
    forward_busy: Forward | None = None
    forward_no_answer: Forward | None = None
    forward_unregistered: Forward | None = None
    # For callers from outside (a trunk), when set; else the ones above.
    forward_busy_external: Forward | None = None
    forward_no_answer_external: Forward | None = None
    forward_unregistered_external: Forward | None = None
    cfna_timer: float | None = None
    voicemail: str = ""
    pickup_group: str = ""
    intercom: bool = False  # calls to it are answered by the phone at once, never forwarded


@dataclass(frozen=True, slots=True)
class SpeedDial:
    """A speed-dial button: the number it dials and the label the phone shows."""

    number: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A provisioned device (phone, gateway, trunk, ...).

    ``ha1_md5``/``ha1_sha256`` are the digest secrets for ``realm``
    (RFC 2617/8760 H(username:realm:password)); the clear password is never kept.
    ``model`` is the phone model ("7960" for an SCCP phone; "" when not
    configured) and ``speed_dials`` its speed-dial buttons in button order.
    ``moh_source`` is the music on hold a party this device holds hears when
    the line names none ("" = ``DEFAULT_MOH_SOURCE``); ``media_resource_list``
    names the media servers that serve its calls ("" = the embedded one).
    """

    name: str
    protocol: str
    lines: tuple[LineInfo, ...] = ()
    realm: str = ""
    ha1_md5: str = ""
    ha1_sha256: str = ""
    css: str = ""
    max_calls: int = 4
    model: str = ""
    speed_dials: tuple[SpeedDial, ...] = ()
    moh_source: str = ""
    media_resource_list: str = ""
    dnd_option: str = "ringer-off"  # or "reject": what do not disturb does on this device
    privacy: bool = False  # other appearances of its shared lines may not barge in

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
    """An immutable view of the plan; build it with :meth:`build`.

    ``moh_sources`` maps a music on hold source's name to its file (an
    absolute path); ``media_resource_groups`` a group's name to its media
    servers and ``media_resource_lists`` a list's name to its groups, both in
    order.
    """

    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    dns: dict[str, DnEntry] = field(default_factory=dict)
    version: int = 0
    dialplan_spec: DialPlanSpec = field(default_factory=DialPlanSpec)
    _dialplan: DialPlan | None = field(default=None, repr=False, compare=False)
    moh_sources: Mapping[str, str] = field(default_factory=dict)
    line_groups: Mapping[str, LineGroup] = field(default_factory=dict)
    hunt_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    media_resource_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    media_resource_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def dialplan(self) -> DialPlan:
        """The analyzer for ``dialplan_spec`` (built once, then cached)."""
        plan = self._dialplan
        if plan is None:
            from offhook.core.dialplan.router import DialPlan

            plan = DialPlan(self.dialplan_spec)
            # Frozen dataclass: caching is the one mutation (a benign race:
            # two builders produce equal analyzers).
            object.__setattr__(self, "_dialplan", plan)
        return plan

    @classmethod
    def build(
        cls,
        devices: Iterable[DeviceInfo],
        version: int = 0,
        dialplan_spec: DialPlanSpec | None = None,
        *,
        moh_sources: Mapping[str, str] | None = None,
        media_resource_groups: Mapping[str, tuple[str, ...]] | None = None,
        media_resource_lists: Mapping[str, tuple[str, ...]] | None = None,
        line_groups: Mapping[str, LineGroup] | None = None,
        hunt_lists: Mapping[str, tuple[str, ...]] | None = None,
    ) -> PlanSnapshot:
        """A snapshot of ``devices``; with ``dialplan_spec``, its analyzer is built now.

        Raises :class:`offhook.core.dialplan.router.DialPlanError` when the
        analyzer refuses ``dialplan_spec``.
        """
        sources = dict(moh_sources or {})
        groups = dict(media_resource_groups or {})
        lists = dict(media_resource_lists or {})
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
        built = dialplan_spec
        if built is None:
            # Directory numbers only, from the devices' lines (no patterns).
            built = DialPlanSpec(
                partitions=tuple(sorted({e.partition for e in dns.values()} - {""})),
                directory_numbers=tuple(
                    DirectoryNumber(e.dn, e.partition, e.devices, e.display) for e in dns.values()
                ),
            )
        snapshot = cls(
            devices=devs,
            dns=dns,
            version=version,
            dialplan_spec=built,
            moh_sources=sources,
            media_resource_groups=groups,
            media_resource_lists=lists,
            line_groups=dict(line_groups or {}),
            hunt_lists=dict(hunt_lists or {}),
        )
        if dialplan_spec is not None:
            _ = snapshot.dialplan
        return snapshot

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

    def moh_source_for(self, device: str, number: str) -> str:
        """The music on hold source a party held by ``device`` on its line ``number`` hears.

        The holder's line's source, else the holder's device's, else
        ``DEFAULT_MOH_SOURCE`` (an unknown device or number included).
        """
        dev = self.devices.get(device)
        if dev is None:
            return DEFAULT_MOH_SOURCE
        for line in dev.lines:
            if line.dn == number and line.moh_source:
                return line.moh_source
        return dev.moh_source or DEFAULT_MOH_SOURCE

    def line(self, dn: str, partition: str = "") -> LineInfo | None:
        """The line of ``dn`` in ``partition`` that carries its coverage settings.

        A shared line's appearances may differ: the first appearance (device
        order) with any forward, voicemail or pickup group wins; else the first.
        """
        first: LineInfo | None = None
        for device in self.dns[dn].devices if dn in self.dns else ():
            dev = self.devices.get(device)
            for line in dev.lines if dev is not None else ():
                if line.dn != dn or line.partition != partition:
                    continue
                if _has_coverage(line):
                    return line
                first = first or line
        return first

    def lines_of(self, device: str) -> tuple[LineInfo, ...]:
        dev = self.devices.get(device)
        return dev.lines if dev is not None else ()

    def media_servers_for(self, device: str) -> tuple[str, ...]:
        """The media servers for ``device``'s calls, in preference order.

        Its media resource list's groups in list order, each group's servers
        in group order, each server once; ``(EMBEDDED_MEDIA_SERVER,)`` for a
        device without a list (or an unknown device).
        """
        dev = self.devices.get(device)
        groups = self.media_resource_lists.get(dev.media_resource_list) if dev else None
        if not groups:
            return (EMBEDDED_MEDIA_SERVER,)
        servers: dict[str, None] = {}
        for group in groups:
            for server in self.media_resource_groups.get(group, ()):
                servers.setdefault(server)
        return tuple(servers) or (EMBEDDED_MEDIA_SERVER,)


def _has_coverage(line: LineInfo) -> bool:
    return bool(
        line.forward_all
        or line.forward_busy
        or line.forward_no_answer
        or line.forward_unregistered
        or line.forward_busy_external
        or line.forward_no_answer_external
        or line.forward_unregistered_external
        or line.voicemail
        or line.pickup_group
        or line.intercom
        or line.cfna_timer is not None
    )


def directory_numbers(devices: Iterable[DeviceInfo]) -> tuple[DirectoryNumber, ...]:
    """The dial plan's DNs from the device lines: one per (DN, partition).

    A DN on several devices (a shared line) lists them in device order; its
    display is the first non-empty one.
    """
    owners: dict[tuple[str, str], list[str]] = {}
    display: dict[tuple[str, str], str] = {}
    for dev in devices:
        for line in dev.lines:
            key = (line.dn, line.partition)
            names = owners.setdefault(key, [])
            if dev.name not in names:
                names.append(dev.name)
            if not display.get(key):
                display[key] = line.display
    return tuple(
        DirectoryNumber(dn, partition, tuple(names), display.get((dn, partition), ""))
        for (dn, partition), names in owners.items()
    )


def with_devices(plan: PlanSnapshot, extra: Iterable[DeviceInfo]) -> PlanSnapshot:
    """``plan`` with devices the database does not hold (auto-registered phones).

    Each extra device's lines join the dial plan as directory numbers in their
    partition, so that the device can be called, and the device's ``css`` is
    what it dials with. The plan wins every conflict: an extra device named
    like a plan device is ignored, and a line whose DN a plan device carries
    is dropped. A line in a partition the plan does not have stays on the
    device but is not routable. Returns ``plan`` itself when nothing is added
    (no copy, no analyzer rebuilt).

    Raises :class:`offhook.core.dialplan.router.DialPlanError` when the
    analyzer refuses the result (a DN equal to a pattern of the same partition).
    """
    added: list[DeviceInfo] = []
    for dev in extra:
        if dev.name in plan.devices:
            continue
        lines = tuple(line for line in dev.lines if line.dn not in plan.dns)
        added.append(dev if lines == dev.lines else replace(dev, lines=lines))
    if not added:
        return plan
    spec = plan.dialplan_spec
    known = {*spec.partitions, ""}
    routable = [
        replace(dev, lines=tuple(line for line in dev.lines if line.partition in known))
        for dev in added
    ]
    spec = replace(spec, directory_numbers=spec.directory_numbers + directory_numbers(routable))
    return PlanSnapshot.build(
        [*plan.devices.values(), *added],
        plan.version,
        spec,
        moh_sources=plan.moh_sources,
        media_resource_groups=plan.media_resource_groups,
        media_resource_lists=plan.media_resource_lists,
        line_groups=plan.line_groups,
        hunt_lists=plan.hunt_lists,
    )
