"""The plan loader: ``offhook load PLAN.yaml`` imports a whole telephony plan.

The YAML file is the whole truth about what it describes: one
transaction makes the database match it. Devices and dial plan
entries in the file are created or updated; those in the database but absent
from the file are deleted (``prune=False`` / ``offhook load --no-prune``
keeps them). Running the same
file twice changes nothing, and ``plan_version`` (``plan_meta``) is bumped
only when something changed, so running nodes reload only then.

Format (grows with later capabilities)::

    devices:
      - name: alice            # SIP digest user name
        protocol: sip          # sip | sccp
        password: alice-Secret-1   # required for sip; stored as HA1 only
        description: ""        # optional
        css: ""                # optional calling search space
        max_calls: 4           # optional; concurrent calls, 0 = no limit (gateways)
        lines:
          - dn: "1001"         # digits, * # + (quote it: YAML reads 0100 as 64)
            display: Alice Smith
            partition: ""      # optional; must be in `partitions`
      - name: SEP001122334455  # sccp: SEP + the phone's MAC (12 hex digits)
        protocol: sccp         # no password (SCCP phones do not authenticate)
        model: "7960"          # required for sccp: one of SCCP_MODELS
        css: staff
        lines: [{dn: "1003", partition: internal, display: Carol}]
        speed_dials:           # sccp only; in button order after the lines
          - {number: "1001", label: Alice}   # label: up to 40 characters

    # The dial plan (Cisco CallManager's model; see offhook.core.dialplan).
    partitions: [internal, pstn]
    calling_search_spaces:           # ordered partitions a caller may reach
      - {name: staff, partitions: [internal, pstn]}
    trunks:
      - {name: carrier, protocol: sip, host: 127.0.0.1, port: 5080,
         transport: udp, css: inbound, max_calls: 0, username: "", password: "",
         register: false, options_ping: 30, inbound_addresses: [127.0.0.1/32]}
    route_groups:                    # members: a trunk name, or a mapping
      - {name: carriers, distribution: top-down,     # or circular
         members: [carrier, {trunk: backup, called_transform: {prefix: "0"}}]}
    route_lists:
      - {name: pstn-out, groups: [carriers]}
    route_patterns:                  # route_list, or block: true
      - {pattern: "9.1[2-9]XX[2-9]XXXXXX", partition: pstn, route_list: pstn-out,
         urgent: false, called_transform: {discard: pre-dot, prefix: "+"}}
      - {pattern: "9.1900XXXXXXX", partition: pstn, block: true, block_cause: 21}
    translation_patterns:
      - {pattern: "0", partition: internal, css: staff,
         called_transform: {replace: "1000"}, calling_transform: {}}

A transformation is ``{discard, replace, mask, prefix, presentation}`` (all
optional; see ``offhook.core.dialplan.model.Transform``). Every reference
(partition, calling search space, trunk, route group, route list) must exist,
names are unique per kind, a pattern is unique in its partition (a DN counts
as a pattern), patterns must compile and transformations be valid; finally
the whole plan is built into a ``DialPlan`` to catch anything else.

Trunk passwords are stored as given (offhook needs the clear secret to
answer a carrier's digest challenge): a known limitation, to be encrypted at
rest later. Device passwords, by contrast, are only ever stored as HA1.

An SCCP device name is upper-cased (``sep00aabb...`` becomes ``SEP00AABB...``,
the name the phone registers with and asks its ``SEP<MAC>.cnf.xml`` by). Its
model must be one the SCCP button templates know (``SCCP_MODELS``, the keys of
``offhook.sccp.templates.MODEL_BUTTONS``; kept here because ``db`` imports no
protocol package, and a test keeps the two equal). A model on a SIP device is
free text, for the administrator's information.

A DN may appear on several devices (a shared line). Validation is strict
(unknown keys refused); every problem is reported as
``FILE: devices[1] (bob).lines[0].dn: problem`` (or
``FILE: route_patterns[2] (9.1900XXXXXXX).route_list: problem``) and nothing
is written.

Passwords become HA1 = H(name:realm:password) for MD5 and SHA-256
(RFC 2617 §3.2.2.2, RFC 7616 §3.4.2, RFC 8760) for the node's realm; the clear
password is never stored. A device is "unchanged" when its HA1s for the
current realm equal the stored ones, so changing the realm updates every
SIP device on the next load.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from offhook.common.addr import canonical
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    Distribution,
    Presentation,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.directory import DeviceInfo, LineInfo, SpeedDial, directory_numbers
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import (
    PLAN_VERSION_KEY,
    CallingSearchSpaceRow,
    CssMember,
    Device,
    Line,
    Partition,
    PlanMeta,
    RouteGroupMemberRow,
    RouteGroupRow,
    RouteListMemberRow,
    RouteListRow,
    RoutePatternRow,
    SpeedDialRow,
    TranslationPatternRow,
    TrunkRow,
    transform_to_json,
    utcnow,
)
from offhook.net.acl import parse_network

if TYPE_CHECKING:
    from offhook.config import Settings

DEMO_PLAN = Path(__file__).resolve().parents[1] / "demo" / "plan.yaml"
MAX_PLAN_BYTES = 64 << 20
MAX_PLAN_DEPTH = 64
"""Deepest YAML nesting accepted (a plan needs 6; PyYAML composes recursively)."""
MAX_PLAN_NODES = 4_000_000
"""Most YAML nodes a plan may have once its aliases are expanded (what a
``MAX_PLAN_BYTES`` file could hold anyway): anchors cannot multiply the work."""
MAX_PROBLEMS = 200
"""Problems listed in a :class:`PlanError`; the rest are counted."""

_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
_DN_RE = re.compile(r"^[0-9*#+]{1,32}$")
_SEP_RE = re.compile(r"SEP[0-9A-F]{12}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_LABEL = 40

SCCP_MODELS: frozenset[str] = frozenset({"7912", "7940", "7941", "7960", "7961", "7970", "7971"})
"""The SCCP phone models a plan may name: ``offhook.sccp.templates.MODEL_BUTTONS``."""

# RFC 3261 §25.1 hostname: labels of letters, digits and inner hyphens; the
# last label starts with a letter (so that 999.1.1.1 is no host name).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.?\Z")
_IPV4_LIKE_RE = re.compile(r"[0-9.]+\Z")


def trunk_host(value: str) -> str:
    """A trunk's ``host`` as it is stored: an IP address or a host name.

    IP literals are written the one way offhook writes them
    (``common.addr.canonical``: RFC 5952, brackets dropped, an IPv4-mapped
    address as IPv4), so that ``[2001:DB8::0001]`` and ``2001:db8::1`` are
    the same trunk, its requests go to an address a socket takes, and its
    Request-URI brackets it once (RFC 3261 §25.1, RFC 5118 §4). Zone ids and
    the any-address are refused; a name must be an RFC 3261 ``hostname``.
    """
    text = value.strip()
    if ":" in text or text.startswith("[") or _IPV4_LIKE_RE.match(text):
        if "%" in text:
            raise ValueError(
                f"{value!r}: a zone id (%...) does not belong in a trunk's host; "
                "give a global or unique-local address"
            )
        try:
            addr = canonical(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address or host name (the port goes in 'port'; "
                "IPv6 as 2001:db8::1 or [2001:db8::1])"
            ) from None
        if addr in ("0.0.0.0", "::"):
            raise ValueError(f"{value!r} is the any-address, not a trunk's address")
        return addr
    if len(text) > 253 or not _HOSTNAME_RE.match(text):
        raise ValueError(
            f"{value!r} is not a host name or IP address "
            "(such as carrier.example.com, 192.0.2.1 or 2001:db8::1)"
        )
    return text


def inbound_network(value: str) -> str:
    """One ``inbound_addresses`` entry as it is stored: a network the allow-list takes.

    The allow-list's own parser (``net.acl.parse_network``: host bits must be
    clear, an IPv4-mapped network is the IPv4 one) decides, so a plan that
    loads always builds; brackets around an IPv6 address are dropped and the
    network is written canonically (``::1`` -> ``::1/128``).
    """
    text = value.strip()
    if text.startswith("[") and "]" in text:
        close = text.index("]")
        text = text[1:close] + text[close + 1 :]
    if "%" in text:
        raise ValueError(f"{value!r}: a zone id (%...) does not belong in a network")
    try:
        return str(parse_network(text))
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address or network "
                "(such as 192.0.2.0/24, 192.0.2.7, 2001:db8::/32 or ::1)"
            ) from None
        raise ValueError(f"{value!r} has host bits set; did you mean {loose}?") from None


class PlanError(Exception):
    """An invalid plan: ``problems`` are ``(location, message)`` pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems[:MAX_PROBLEMS])
        if len(problems) > MAX_PROBLEMS:
            self.problems.append(("", f"and {len(problems) - MAX_PROBLEMS} more problems"))
        super().__init__(
            "\n".join(
                f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}" for loc, msg in problems
            )
        )


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LineSpec(_Spec):
    dn: str
    display: str = Field(default="", max_length=128)
    partition: str = Field(default="", max_length=64)

    @field_validator("dn", mode="before")
    @classmethod
    def _dn_type(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f"got the number {value}: write the DN as a quoted string "
                "(YAML reads unquoted digits as a number: 0100 becomes 64)"
            )
        return value

    @field_validator("dn")
    @classmethod
    def _dn(cls, value: str) -> str:
        if not _DN_RE.match(value):
            raise ValueError(f"{value!r} is not a directory number (1-32 of 0-9 * # +)")
        return value


class SpeedDialSpec(_Spec):
    """A speed-dial button: the number it dials and its label on the phone."""

    number: str
    label: str = Field(default="", max_length=MAX_LABEL)

    @field_validator("number", mode="before")
    @classmethod
    def _number_type(cls, value: object) -> object:
        return _not_a_number(value, "number")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not _DN_RE.match(value):
            raise ValueError(f"{value!r} is not a dialable number (1-32 of 0-9 * # +)")
        return value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if _CONTROL_RE.search(value):
            raise ValueError("the label has a control character")
        return value


class DeviceSpec(_Spec):
    name: str = Field(pattern=_NAME_RE)
    protocol: Literal["sip", "sccp"]
    password: str | None = Field(default=None, min_length=1, max_length=128)
    description: str = Field(default="", max_length=255)
    css: str = Field(default="", max_length=64)
    max_calls: int = Field(default=4, ge=0, le=100_000)
    lines: list[LineSpec] = Field(default_factory=list, max_length=64)
    model: str = Field(default="", max_length=32)
    speed_dials: list[SpeedDialSpec] = Field(default_factory=list, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _sccp_name(cls, data: object) -> object:
        # An SCCP phone registers as SEP + its MAC in upper case.
        if isinstance(data, dict) and data.get("protocol") == "sccp":
            name = data.get("name")
            if isinstance(name, str) and _SEP_RE.fullmatch(name.upper()):
                data = {**data, "name": name.upper()}
        return data

    @field_validator("model", mode="before")
    @classmethod
    def _model_type(cls, value: object) -> object:
        return _not_a_number(value, "model")

    @model_validator(mode="after")
    def _check(self) -> DeviceSpec:
        if self.protocol == "sip" and self.password is None:
            raise ValueError("a sip device needs a password (its digest secret)")
        seen: set[str] = set()
        for line in self.lines:
            if line.dn in seen:
                raise ValueError(f"DN {line.dn} appears twice on this device")
            seen.add(line.dn)
        return self


def _not_a_number(value: object, what: str) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"got the number {value}: write the {what} as a quoted string "
            "(YAML reads unquoted digits as a number: 0100 becomes 64)"
        )
    return value


_Name = Annotated[str, Field(pattern=_NAME_RE)]
_Ref = Annotated[str, Field(max_length=64)]


class TransformSpec(_Spec):
    """A calling or called party transformation (``core.dialplan.model.Transform``)."""

    discard: str | None = Field(default=None, max_length=32)
    replace: str | None = Field(default=None, max_length=32)
    mask: str | None = Field(default=None, max_length=32)
    prefix: str = Field(default="", max_length=32)
    presentation: Literal["allowed", "restricted"] | None = None

    @field_validator("replace", "mask", "prefix", mode="before")
    @classmethod
    def _digits_type(cls, value: object) -> object:
        return _not_a_number(value, "digits")

    def to_model(self) -> Transform:
        return Transform(
            discard=self.discard,
            replace=self.replace,
            mask=self.mask,
            prefix=self.prefix,
            presentation=Presentation(self.presentation) if self.presentation else None,
        )


class CallingSearchSpaceSpec(_Spec):
    name: _Name
    partitions: list[_Ref] = Field(default_factory=list, max_length=256)


class TrunkSpec(_Spec):
    """A SIP trunk. ``password`` is stored as given (see the module doc)."""

    name: _Name
    protocol: Literal["sip"]
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    css: _Ref = ""
    max_calls: int = Field(default=0, ge=0, le=1_000_000)
    username: str = Field(default="", max_length=128)
    password: str = Field(default="", max_length=128)
    # "register" would shadow BaseModel.register (ABCMeta): alias it.
    register_: bool = Field(default=False, alias="register")
    options_ping: float = Field(default=30.0, ge=0, le=86_400)
    inbound_addresses: list[str] = Field(default_factory=list, max_length=256)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return trunk_host(value)

    @field_validator("inbound_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [inbound_network(item) for item in value]

    @model_validator(mode="after")
    def _check(self) -> TrunkSpec:
        if self.register_ and not self.username:
            raise ValueError("a trunk that registers needs a username")
        return self

    def to_model(self) -> Trunk:
        return Trunk(
            name=self.name,
            protocol=self.protocol,
            host=self.host,
            port=self.port,
            transport=self.transport,
            css=self.css,
            max_calls=self.max_calls,
            username=self.username,
            password=self.password,
            register=self.register_,
            options_ping=float(self.options_ping),
            inbound_addresses=tuple(self.inbound_addresses),
        )


class RouteGroupMemberSpec(_Spec):
    trunk: _Ref
    called_transform: TransformSpec = Field(default_factory=TransformSpec)
    calling_transform: TransformSpec = Field(default_factory=TransformSpec)


class RouteGroupSpec(_Spec):
    name: _Name
    distribution: Literal["top-down", "circular"] = "top-down"
    members: list[RouteGroupMemberSpec] = Field(min_length=1, max_length=256)

    @field_validator("members", mode="before")
    @classmethod
    def _short_members(cls, value: object) -> object:
        # A member is a trunk name or a mapping with its transformations.
        if isinstance(value, list):
            return [{"trunk": m} if isinstance(m, str) else m for m in value]
        return value


class RouteListSpec(_Spec):
    name: _Name
    groups: list[_Ref] = Field(min_length=1, max_length=256)


class _PatternSpec(_Spec):
    pattern: str = Field(min_length=1, max_length=64)
    partition: _Ref = ""
    urgent: bool = False
    called_transform: TransformSpec = Field(default_factory=TransformSpec)
    calling_transform: TransformSpec = Field(default_factory=TransformSpec)

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern_type(cls, value: object) -> object:
        return _not_a_number(value, "pattern")


class RoutePatternSpec(_PatternSpec):
    route_list: _Ref | None = None
    block: bool = False
    block_cause: int = Field(default=21, ge=1, le=127)  # Q.850 cause; 21 call rejected

    @model_validator(mode="after")
    def _check(self) -> RoutePatternSpec:
        if self.block and self.route_list is not None:
            raise ValueError("a route pattern has either a route_list or block: true, not both")
        if not self.block and self.route_list is None:
            raise ValueError("a route pattern needs a route_list (or block: true)")
        return self


class TranslationPatternSpec(_PatternSpec):
    css: _Ref
    block: bool = False


class PlanSpec(_Spec):
    devices: list[DeviceSpec] = Field(default_factory=list)
    partitions: list[_Name] = Field(default_factory=list)
    calling_search_spaces: list[CallingSearchSpaceSpec] = Field(default_factory=list)
    trunks: list[TrunkSpec] = Field(default_factory=list)
    route_groups: list[RouteGroupSpec] = Field(default_factory=list)
    route_lists: list[RouteListSpec] = Field(default_factory=list)
    route_patterns: list[RoutePatternSpec] = Field(default_factory=list)
    translation_patterns: list[TranslationPatternSpec] = Field(default_factory=list)

    def dialplan_spec(self) -> DialPlanSpec:
        """The plan as the analyzer's :class:`DialPlanSpec` (DNs derived from the lines)."""
        infos = [
            DeviceInfo(
                name=d.name,
                protocol=d.protocol,
                lines=tuple(LineInfo(ln.dn, ln.display, ln.partition) for ln in d.lines),
                model=d.model,
                speed_dials=tuple(SpeedDial(sd.number, sd.label) for sd in d.speed_dials),
            )
            for d in self.devices
        ]
        return DialPlanSpec(
            partitions=tuple(self.partitions),
            calling_search_spaces=tuple(
                CallingSearchSpace(c.name, tuple(c.partitions)) for c in self.calling_search_spaces
            ),
            directory_numbers=directory_numbers(infos),
            route_patterns=tuple(
                RoutePattern(
                    pattern=r.pattern,
                    partition=r.partition,
                    route_list=r.route_list,
                    block=r.block,
                    block_cause=r.block_cause,
                    urgent=r.urgent,
                    called_transform=r.called_transform.to_model(),
                    calling_transform=r.calling_transform.to_model(),
                )
                for r in self.route_patterns
            ),
            translation_patterns=tuple(
                TranslationPattern(
                    pattern=t.pattern,
                    partition=t.partition,
                    css=t.css,
                    urgent=t.urgent,
                    block=t.block,
                    called_transform=t.called_transform.to_model(),
                    calling_transform=t.calling_transform.to_model(),
                )
                for t in self.translation_patterns
            ),
            trunks=tuple(t.to_model() for t in self.trunks),
            route_groups=tuple(
                RouteGroup(
                    name=g.name,
                    members=tuple(
                        RouteGroupMember(
                            m.trunk,
                            m.called_transform.to_model(),
                            m.calling_transform.to_model(),
                        )
                        for m in g.members
                    ),
                    distribution=Distribution(g.distribution),
                )
                for g in self.route_groups
            ),
            route_lists=tuple(RouteList(r.name, tuple(r.groups)) for r in self.route_lists),
        )


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What a load did: ``created`` ... ``deleted`` count devices; ``dialplan``
    counts the dial plan entries (partitions, CSSs, trunks, route groups and
    lists, route and translation patterns) as (created, updated, unchanged,
    deleted)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    version: int = 0
    dialplan: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def changed(self) -> bool:
        c, u, _, d = self.dialplan
        return bool(self.created or self.updated or self.deleted or c or u or d)

    def __str__(self) -> str:
        text = (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted"
        )
        if any(self.dialplan):
            c, u, n, d = self.dialplan
            text = (
                f"devices: {text}; dial plan entries: {c} created, {u} updated, "
                f"{n} unchanged, {d} deleted"
            )
        return f"{text} (plan version {self.version})"


def ha1(algorithm: str, name: str, realm: str, password: str) -> str:
    """RFC 2617 §3.2.2.2 / RFC 7616 §3.4.2 HA1 = H(username ":" realm ":" password)."""
    return hashlib.new(algorithm, f"{name}:{realm}:{password}".encode()).hexdigest()


# -- parsing and validation ---------------------------------------------------


def _label(node: Any) -> str:
    """What names a list entry in messages: its name, pattern or trunk (or itself)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        for key in ("name", "pattern", "trunk"):
            if isinstance(node.get(key), str):
                return str(node[key])
    return ""


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
            except (IndexError, KeyError, TypeError):
                node = None
            label = _label(node)
            if label:
                out += f" ({label})"
        else:
            out += f".{part}" if out else part
            node = node.get(part) if isinstance(node, dict) else None
    return out


def parse_plan(data: Any, source: str) -> PlanSpec:
    """Validate already-parsed YAML data; raise :class:`PlanError` on any problem."""
    if data is None:
        raise PlanError(source, [("", "the plan is empty (write `devices: []` to remove all)")])
    if not isinstance(data, dict):
        raise PlanError(source, [("", "the plan must be a mapping with a `devices` list")])
    try:
        plan = PlanSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # Drop pydantic's union/function tags such as "function-after[...]".
            loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required key missing"
            problems.append((_location(loc, data), msg))
        raise PlanError(source, problems) from None
    problems = _references(plan)
    if not problems:
        problems = _compile(plan)
    if problems:
        raise PlanError(source, problems)
    return plan


def _unique(
    kind: str, names: Sequence[str], where: str, suffix: str = ".name"
) -> list[tuple[str, str]]:
    """Duplicate names in one section, reported at the later entry."""
    first: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        if name in first:
            out.append(
                (
                    f"{where}[{i}] ({name}){suffix}",
                    f"duplicate {kind} (first at {where}[{first[name]}])",
                )
            )
        else:
            first[name] = i
    return out


def _references(plan: PlanSpec) -> list[tuple[str, str]]:
    """Unique names and existing references; every problem, in plan order."""
    problems: list[tuple[str, str]] = []
    problems += _unique("device name", [d.name for d in plan.devices], "devices")
    problems += _unique("partition", plan.partitions, "partitions", suffix="")
    problems += _unique(
        "calling search space name",
        [c.name for c in plan.calling_search_spaces],
        "calling_search_spaces",
    )
    problems += _unique("trunk name", [t.name for t in plan.trunks], "trunks")
    problems += _unique("route group name", [g.name for g in plan.route_groups], "route_groups")
    problems += _unique("route list name", [r.name for r in plan.route_lists], "route_lists")

    partitions = set(plan.partitions)
    css_names = {c.name for c in plan.calling_search_spaces}
    trunks = {t.name for t in plan.trunks}
    groups = {g.name for g in plan.route_groups}
    lists = {r.name for r in plan.route_lists}

    def missing(kind: str, name: str, known: set[str]) -> str:
        defined = ", ".join(sorted(known)) if known else "none"
        return f"{kind} {name!r} does not exist (defined: {defined})"

    def partition(loc: str, name: str) -> None:
        if name and name not in partitions:
            problems.append((loc, missing("partition", name, partitions)))

    def css(loc: str, name: str) -> None:
        if name and name not in css_names:
            problems.append((loc, missing("calling search space", name, css_names)))

    for i, c in enumerate(plan.calling_search_spaces):
        for j, p in enumerate(c.partitions):
            loc = f"calling_search_spaces[{i}] ({c.name}).partitions[{j}]"
            partition(loc, p)
            if p in c.partitions[:j]:
                problems.append((loc, f"partition {p!r} is listed twice"))
    for i, d in enumerate(plan.devices):
        problems += _device_kind(f"devices[{i}] ({d.name})", d)
        css(f"devices[{i}] ({d.name}).css", d.css)
        for j, ln in enumerate(d.lines):
            partition(f"devices[{i}] ({d.name}).lines[{j}].partition", ln.partition)
    for i, t in enumerate(plan.trunks):
        css(f"trunks[{i}] ({t.name}).css", t.css)
    for i, g in enumerate(plan.route_groups):
        for j, m in enumerate(g.members):
            loc = f"route_groups[{i}] ({g.name}).members[{j}] ({m.trunk})"
            if m.trunk not in trunks:
                problems.append((loc, missing("trunk", m.trunk, trunks)))
            elif m.trunk in [x.trunk for x in g.members[:j]]:
                problems.append((loc, f"trunk {m.trunk!r} is listed twice in this group"))
    for i, r in enumerate(plan.route_lists):
        for j, name in enumerate(r.groups):
            loc = f"route_lists[{i}] ({r.name}).groups[{j}]"
            if name not in groups:
                problems.append((loc, missing("route group", name, groups)))
            elif name in r.groups[:j]:
                problems.append((loc, f"route group {name!r} is listed twice in this list"))

    # A pattern is unique in its partition; a DN is a pattern too (shared
    # lines are one DN on several devices, so the same DN twice is fine).
    used: dict[tuple[str, str], str] = {}
    for i, d in enumerate(plan.devices):
        for j, ln in enumerate(d.lines):
            used.setdefault((ln.dn, ln.partition), f"devices[{i}] ({d.name}).lines[{j}]")
    sections: list[tuple[str, Sequence[_PatternSpec]]] = [
        ("route_patterns", plan.route_patterns),
        ("translation_patterns", plan.translation_patterns),
    ]
    for section, entries in sections:
        for i, e in enumerate(entries):
            base = f"{section}[{i}] ({e.pattern})"
            partition(f"{base}.partition", e.partition)
            key = (e.pattern, e.partition)
            if key in used:
                problems.append(
                    (
                        f"{base}.pattern",
                        f"{e.pattern!r} in partition {e.partition!r} is already used by "
                        f"{used[key]}",
                    )
                )
            else:
                used[key] = base
            if isinstance(e, RoutePatternSpec):
                if e.route_list is not None and e.route_list not in lists:
                    problems.append(
                        (f"{base}.route_list", missing("route list", e.route_list, lists))
                    )
            elif isinstance(e, TranslationPatternSpec):
                css(f"{base}.css", e.css)
    return problems


def _device_kind(base: str, d: DeviceSpec) -> list[tuple[str, str]]:
    """What an SCCP device needs (SEP name, known model, no password); speed dials are SCCP's."""
    if d.protocol != "sccp":
        if d.speed_dials:
            return [(f"{base}.speed_dials", "speed dials are for sccp devices only")]
        return []
    out: list[tuple[str, str]] = []
    if not _SEP_RE.fullmatch(d.name):
        out.append(
            (
                f"{base}.name",
                "an sccp device is named SEP and the phone's MAC address "
                "(12 hex digits), such as SEP001122334455",
            )
        )
    known = ", ".join(sorted(SCCP_MODELS))
    if not d.model:
        out.append((f"{base}.model", f"an sccp device needs a model (one of {known})"))
    elif d.model not in SCCP_MODELS:
        out.append((f"{base}.model", f"{d.model!r} is not a known SCCP phone model ({known})"))
    if d.password is not None:
        out.append(
            (f"{base}.password", "an sccp device has no password (SCCP phones do not authenticate)")
        )
    return out


def _compile(plan: PlanSpec) -> list[tuple[str, str]]:
    """Patterns compile, transformations are valid, and the analyzer accepts the plan."""
    from offhook.core.dialplan.pattern import PatternError, compile_pattern
    from offhook.core.dialplan.router import DialPlan, DialPlanError
    from offhook.core.dialplan.transform import validate_transform

    problems: list[tuple[str, str]] = []

    def transforms(base: str, entry: _PatternSpec | RouteGroupMemberSpec) -> None:
        for name, calling in (("called_transform", False), ("calling_transform", True)):
            spec: TransformSpec = getattr(entry, name)
            try:
                validate_transform(spec.to_model(), calling=calling)
            except ValueError as exc:
                problems.append((f"{base}.{name}", str(exc)))

    for i, g in enumerate(plan.route_groups):
        for j, m in enumerate(g.members):
            transforms(f"route_groups[{i}] ({g.name}).members[{j}] ({m.trunk})", m)
    sections: list[tuple[str, Sequence[_PatternSpec]]] = [
        ("route_patterns", plan.route_patterns),
        ("translation_patterns", plan.translation_patterns),
    ]
    for section, entries in sections:
        for i, e in enumerate(entries):
            base = f"{section}[{i}] ({e.pattern})"
            try:
                compile_pattern(e.pattern)
            except PatternError as exc:
                problems.append((f"{base}.pattern", f"invalid pattern: {exc}"))
            transforms(base, e)
    if problems:
        return problems
    try:
        DialPlan(plan.dialplan_spec())
    except DialPlanError as exc:
        return [(_plan_path(plan, exc.path), exc.message)]
    return []


def _plan_path(plan: PlanSpec, path: str) -> str:
    """The analyzer names DNs ``directory_numbers[i] (dn)``: say which line that is."""
    m = re.match(r"directory_numbers\[\d+\] \((.*)\)$", path)
    if m is None:
        return path
    for i, d in enumerate(plan.devices):
        for j, ln in enumerate(d.lines):
            if ln.dn == m.group(1):
                return f"devices[{i}] ({d.name}).lines[{j}].dn"
    return path


class _PlanLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a bound on nesting (its composer recurses per level)."""

    def __init__(self, stream: bytes | str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_PLAN_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_PLAN_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of ``root`` with every alias expanded (a shared node counts each time).

    Raises ``ValueError`` for a node that contains itself (``&a [*a]``).
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ValueError("an alias refers to a node that contains it")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_PLAN_NODES + 1)
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _load_yaml(text: bytes | str, source: str) -> Any:
    """YAML text as Python data, bounded in depth and expanded size; PlanError otherwise."""
    loader: _PlanLoader | None = None
    try:
        loader = _PlanLoader(text)  # the reader decodes (and may refuse) the text here
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_PLAN_NODES:
            raise PlanError(
                source, [("", f"more than {MAX_PLAN_NODES} YAML nodes once aliases are expanded")]
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanError(source, [(where, f"invalid YAML: {problem}")]) from None
    except ValueError as exc:
        # PyYAML's constructors let a few ValueErrors out: a date that does not
        # exist (2020-02-30), an integer of more than 4300 digits (CVE-2020-10735
        # limit), a time zone offset of a day or more; and _expanded_size.
        raise PlanError(source, [("", f"invalid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_plan_text(text: bytes | str, source: str) -> PlanSpec:
    """Validate a plan given as YAML text; raise :class:`PlanError` on any problem."""
    if len(text) > MAX_PLAN_BYTES:
        raise PlanError(source, [("", f"larger than {MAX_PLAN_BYTES} bytes")])
    return parse_plan(_load_yaml(text, source), source)


def read_plan(path: Path) -> PlanSpec:
    """Read and validate a YAML plan file."""
    source = str(path)
    try:
        with Path(path).open("rb") as fh:
            text = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(source, [("", f"cannot read ({exc.strerror})")]) from None
    return parse_plan_text(text, source)


# -- applying -------------------------------------------------------------------


def _desired(spec: DeviceSpec, realm: str) -> dict[str, Any]:
    if spec.password is not None:
        md5 = ha1("md5", spec.name, realm, spec.password)
        sha = ha1("sha256", spec.name, realm, spec.password)
    else:
        md5 = sha = ""
    return {
        "protocol": spec.protocol,
        "description": spec.description,
        "css": spec.css,
        "realm": realm if spec.password is not None else "",
        "ha1_md5": md5,
        "ha1_sha256": sha,
        "max_calls": spec.max_calls,
        "model": spec.model,
    }


def _line_tuples(lines: Sequence[LineSpec] | Sequence[Line]) -> list[tuple[str, str, str]]:
    return [(ln.dn, ln.display, ln.partition) for ln in lines]


def _speed_dial_tuples(
    dials: Sequence[SpeedDialSpec] | Sequence[SpeedDialRow],
) -> list[tuple[str, str]]:
    return [(sd.number, sd.label) for sd in dials]


def _lock_version(session: Session) -> PlanMeta:
    meta = session.execute(
        select(PlanMeta).where(PlanMeta.key == PLAN_VERSION_KEY).with_for_update()
    ).scalar_one_or_none()
    if meta is None:
        meta = PlanMeta(key=PLAN_VERSION_KEY, value="0")
        session.add(meta)
    return meta


def apply_plan(engine: Engine, plan: PlanSpec, realm: str, *, prune: bool = True) -> PlanReport:
    """Make the database match ``plan`` in one transaction; see the module doc."""
    created = updated = unchanged = deleted = 0
    with Session(engine) as session, session.begin():
        meta = _lock_version(session)
        existing = {
            d.name: d
            for d in session.scalars(
                select(Device).options(selectinload(Device.lines), selectinload(Device.speed_dials))
            ).all()
        }
        now = utcnow()
        for spec in plan.devices:
            want = _desired(spec, realm)
            dev = existing.pop(spec.name, None)
            if dev is None:
                dev = Device(name=spec.name, created_at=now, updated_at=now, **want)
                dev.lines = [
                    Line(position=i, dn=ln.dn, display=ln.display, partition=ln.partition)
                    for i, ln in enumerate(spec.lines)
                ]
                dev.speed_dials = [
                    SpeedDialRow(position=i, number=sd.number, label=sd.label)
                    for i, sd in enumerate(spec.speed_dials)
                ]
                session.add(dev)
                created += 1
                continue
            same_fields = all(getattr(dev, k) == v for k, v in want.items())
            same_lines = _line_tuples(dev.lines) == _line_tuples(spec.lines)
            same_dials = _speed_dial_tuples(dev.speed_dials) == _speed_dial_tuples(spec.speed_dials)
            if same_fields and same_lines and same_dials:
                unchanged += 1
                continue
            for key, value in want.items():
                setattr(dev, key, value)
            if not same_lines:
                # Update in place by position (no unique-constraint churn), then trim.
                for i, ln in enumerate(spec.lines):
                    if i < len(dev.lines):
                        row = dev.lines[i]
                        row.dn, row.display, row.partition = ln.dn, ln.display, ln.partition
                    else:
                        dev.lines.append(
                            Line(position=i, dn=ln.dn, display=ln.display, partition=ln.partition)
                        )
                del dev.lines[len(spec.lines) :]
            if not same_dials:
                for i, sd in enumerate(spec.speed_dials):
                    if i < len(dev.speed_dials):
                        dial = dev.speed_dials[i]
                        dial.number, dial.label = sd.number, sd.label
                    else:
                        dev.speed_dials.append(
                            SpeedDialRow(position=i, number=sd.number, label=sd.label)
                        )
                del dev.speed_dials[len(spec.speed_dials) :]
            dev.updated_at = now
            updated += 1
        if prune:
            for dev in existing.values():
                session.delete(dev)
                deleted += 1
        session.flush()
        counts = _sync_dialplan(session, plan, prune)
        dialplan = (
            sum(c[0] for c in counts),
            sum(c[1] for c in counts),
            sum(c[2] for c in counts),
            sum(c[3] for c in counts),
        )
        report = PlanReport(created, updated, unchanged, deleted, 0, dialplan)
        version = int(meta.value or 0)
        if report.changed:
            version += 1
            meta.value = str(version)
    return replace(report, version=version)


_Row = tuple[tuple[Any, ...], dict[str, Any], list[dict[str, Any]]]


def _sync(
    session: Session,
    model: type[Any],
    keys: tuple[str, ...],
    desired: list[_Row],
    prune: bool,
    child: tuple[type[Any], str] | None = None,
) -> tuple[int, int, int, int]:
    """Make ``model``'s rows match ``desired`` (key values, fields, ordered children).

    Rows are matched by their natural key (a name, or pattern + partition)
    and updated in place; ordered children of a changed row are replaced
    (deleted, then inserted, as separate statements: no unique-constraint
    churn on ``position``).
    """
    table = model.__table__
    created = updated = unchanged = deleted = 0
    current: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    for row in session.execute(select(table)).mappings():
        fields = {k: v for k, v in row.items() if k != "id" and k not in keys}
        current[tuple(row[k] for k in keys)] = (int(row["id"]), fields)
    kids: dict[int, list[dict[str, Any]]] = {}
    if child is not None:
        ctable, fk = child[0].__table__, child[1]
        for row in session.execute(
            select(ctable).order_by(ctable.c[fk], ctable.c.position)
        ).mappings():
            fields = {k: v for k, v in row.items() if k not in {"id", fk, "position"}}
            kids.setdefault(int(row[fk]), []).append(fields)
    for key, fields, children in desired:
        found = current.pop(key, None)
        if found is None:
            row_id = int(
                session.execute(
                    insert(table)
                    .values(**dict(zip(keys, key, strict=True)), **fields)
                    .returning(table.c.id)
                ).scalar_one()
            )
            created += 1
            old_children: list[dict[str, Any]] = []
        else:
            row_id, old_fields = found
            old_children = kids.get(row_id, [])
            if old_fields == fields and (child is None or old_children == children):
                unchanged += 1
                continue
            if old_fields != fields:
                session.execute(update(table).where(table.c.id == row_id).values(**fields))
            updated += 1
        if child is not None and old_children != children:
            ctable, fk = child[0].__table__, child[1]
            session.execute(delete(ctable).where(ctable.c[fk] == row_id))
            if children:
                session.execute(
                    insert(ctable),
                    [{fk: row_id, "position": i, **c} for i, c in enumerate(children)],
                )
    if prune and current:
        # Children go with their parent (ON DELETE CASCADE; SQLite: foreign_keys=ON).
        if child is not None:
            ctable, fk = child[0].__table__, child[1]
            ids = [row_id for row_id, _ in current.values()]
            session.execute(delete(ctable).where(ctable.c[fk].in_(ids)))
        session.execute(delete(table).where(table.c.id.in_([i for i, _ in current.values()])))
        deleted = len(current)
    return created, updated, unchanged, deleted


def _sync_dialplan(
    session: Session, plan: PlanSpec, prune: bool
) -> list[tuple[int, int, int, int]]:
    def tf(spec: TransformSpec) -> dict[str, Any]:
        return dict(transform_to_json(spec.to_model()))

    def transforms(entry: _PatternSpec | RouteGroupMemberSpec) -> dict[str, Any]:
        return {
            "called_transform": tf(entry.called_transform),
            "calling_transform": tf(entry.calling_transform),
        }

    name = ("name",)
    pattern_key = ("pattern", "partition")
    return [
        _sync(
            session,
            Partition,
            name,
            [((p,), {"position": i}, []) for i, p in enumerate(plan.partitions)],
            prune,
        ),
        _sync(
            session,
            CallingSearchSpaceRow,
            name,
            [
                ((c.name,), {}, [{"partition": p} for p in c.partitions])
                for c in plan.calling_search_spaces
            ],
            prune,
            (CssMember, "css_id"),
        ),
        _sync(
            session,
            TrunkRow,
            name,
            [
                (
                    (t.name,),
                    {
                        "protocol": t.protocol,
                        "host": t.host,
                        "port": t.port,
                        "transport": t.transport,
                        "css": t.css,
                        "max_calls": t.max_calls,
                        "username": t.username,
                        "password": t.password,
                        "register": t.register_,
                        "options_ping": float(t.options_ping),
                        "inbound_addresses": list(t.inbound_addresses),
                    },
                    [],
                )
                for t in plan.trunks
            ],
            prune,
        ),
        _sync(
            session,
            RouteGroupRow,
            name,
            [
                (
                    (g.name,),
                    {"distribution": g.distribution},
                    [{"trunk": m.trunk, **transforms(m)} for m in g.members],
                )
                for g in plan.route_groups
            ],
            prune,
            (RouteGroupMemberRow, "group_id"),
        ),
        _sync(
            session,
            RouteListRow,
            name,
            [((r.name,), {}, [{"route_group": g} for g in r.groups]) for r in plan.route_lists],
            prune,
            (RouteListMemberRow, "list_id"),
        ),
        _sync(
            session,
            RoutePatternRow,
            pattern_key,
            [
                (
                    (r.pattern, r.partition),
                    {
                        "route_list": r.route_list,
                        "block": r.block,
                        "block_cause": r.block_cause,
                        "urgent": r.urgent,
                        **transforms(r),
                    },
                    [],
                )
                for r in plan.route_patterns
            ],
            prune,
        ),
        _sync(
            session,
            TranslationPatternRow,
            pattern_key,
            [
                (
                    (t.pattern, t.partition),
                    {"css": t.css, "urgent": t.urgent, "block": t.block, **transforms(t)},
                    [],
                )
                for t in plan.translation_patterns
            ],
            prune,
        ),
    ]


def load_plan(path: Path | str, url: str | Engine, realm: str, *, prune: bool = True) -> PlanReport:
    """Validate ``path`` and import it into the database at ``url`` (schema upgraded first).

    Raises :class:`PlanError` (nothing written) for an invalid plan.
    """
    plan = read_plan(Path(path))
    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        upgrade(engine)
        return apply_plan(engine, plan, realm, prune=prune)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def device_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Device)).scalar_one())


def ensure_demo_plan(settings: Settings, path: Path = DEMO_PLAN) -> bool:
    """Load the packaged demo plan into a database that never had a plan.

    "Never had a plan" means no devices and ``plan_version`` 0: a database
    emptied on purpose by loading an empty plan is left alone. The schema is
    upgraded first. Returns True when the demo plan was loaded.
    """
    from offhook.db.snapshot import plan_version

    engine = create_engine_for(settings.database.url)
    try:
        upgrade(engine)
        if device_count(engine) or plan_version(engine):
            return False
        apply_plan(engine, read_plan(path), settings.sip.realm)
        return True
    finally:
        engine.dispose()
