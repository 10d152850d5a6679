"""The YAML plan's schema: one pydantic model per section, checked field by field.

``PlanSpec`` is what a plan file holds once validated (``offhook.db.plan_check``
validates, ``offhook.db.plan_apply`` writes it to the database). The models are
strict (unknown keys refused, no type coercion) and frozen; they also normalise
what they store: a trunk's ``host`` and ``inbound_addresses`` are written
canonically (:func:`trunk_host`, :func:`inbound_network`) and an SCCP device's
name is upper-cased. Checks across entries (unique names, references, pattern
compilation) are ``plan_check``'s.

Format (grows with later capabilities)::

    devices:
      - name: alice            # SIP digest user name
        protocol: sip          # sip | sccp
        password: alice-Secret-1   # sip: stored as HA1 only (see below)
        description: ""        # optional
        css: ""                # optional calling search space
        max_calls: 4           # optional; concurrent calls, 0 = no limit (gateways)
        moh_source: ""         # optional; what a party this device holds hears
        media_resource_list: ""    # optional; the media servers of its calls
        dnd_option: ringer-off # optional; or reject: what do not disturb does
        privacy: false         # optional; true: no other appearance of its
                               # shared lines may barge into its calls
        lines:
          - dn: "1001"         # digits, * # + (quote it: YAML reads 0100 as 64)
            display: Alice Smith
            partition: ""      # optional; must be in `partitions`
            moh_source: ""     # optional; overrides the device's for this line
            # Call coverage, all optional: where calls go instead, each with
            # the CSS its destination is dialled with ("" = the device's).
            forward_all: {destination: "1003", css: staff}
            forward_busy: {destination: "8000"}
            forward_no_answer: {destination: "8000"}
            forward_unregistered: {destination: "8000"}
            # For callers from a trunk (else the three above):
            forward_busy_external: {destination: "8000", css: staff}
            forward_no_answer_external: {destination: "8000"}
            forward_unregistered_external: {destination: "8000"}
            cfna_timer: 20     # seconds before forward no answer (1-600;
                               # default [features] cfna_timer)
            voicemail: "8000"  # the line's voicemail pilot (*97, Messages)
            pickup_group: sales    # must be in `pickup_groups`
          - dn: "1091"
            intercom: true     # optional; the phone answers calls to it
                               # itself, never forwarded (no forward_* keys)
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
         transport: udp, css: inbound, max_calls: 0, max_cps: 100,
         username: "", password: "", register: false, options_ping: 30,
         inbound_addresses: [127.0.0.1/32]}
    # max_calls: calls in progress with the trunk, 0 = no limit; max_cps: new
    # calls a second it may send (0 = no limit; its datagrams are held to 20
    # a call of it). Over either: 503 with Retry-After (README "Trunks and
    # rate limits").
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

    # The media plane.
    moh_sources:                     # music on hold files, relative to the plan file
      - {name: default, file: moh/default.wav}   # `default`: when nothing else is named
      - {name: jazz, file: /srv/moh/jazz.flac}
    meetme:                          # meet-me conference numbers, dialed like DNs
      - {number: "5000", partition: internal, pin: "1234", max_parties: 32}
    media_resource_groups:           # media servers; `embedded` is offhook serve's own
      - {name: local, servers: [embedded]}
    media_resource_lists:
      - {name: standard, groups: [local]}

    # Call coverage.
    line_groups:                     # hunt groups: member DNs, in order
      - {name: support, distribution: circular,  # top-down, circular,
                                                 # longest-idle, broadcast
         rna_timeout: 10,            # seconds a member rings (1-600)
         on_no_answer: next-member,  # next-member | next-group | stop,
         on_busy: next-member,       # also on_unavailable
         members: ["1002", "1003"]}
    hunt_lists:                      # line groups a pilot tries, in order
      - {name: support, line_groups: [support]}
    hunt_pilots:                     # a number in a partition, like a DN
      - {pattern: "1500", partition: internal, hunt_list: support,
         final_forward: "8000", final_css: ""}   # when every member failed
    pickup_groups:                   # number: optional, for GPickUp from others
      - {name: sales, number: "8100", partition: internal}
    call_park:                       # a range (same number of digits) or one number
      - {range: "7000-7009", partition: internal, reversion: 60}   # 0: never

    # CTI devices an application controls (offhook.db.plan_cti).
    cti_route_points:                # calls wait for the application to redirect them
      - {name: ivr, dn: "3000", partition: internal, css: staff,
         timeout: 5, default: "1002"}   # then go to default ("": busy)
    cti_ports:                       # the application terminates the media
      - {name: port1, dn: "3100", partition: internal, css: staff}

A line's ``moh_source`` wins over its device's, which wins over
``default`` (the media server's built-in tones unless the plan declares a
``default`` file); a reference may name ``default`` without declaring it.
A device without ``media_resource_list`` is served by the ``embedded`` media
server. The files of ``moh_sources`` are checked when the plan is read
(``offhook.db.plan_check``) and stored as absolute paths.

A forward's destination, a voicemail number and a hunt pilot's final
forward are numbers as dialled (0-9 * # +); the dial plan resolves them when
a call is forwarded. The ``*_external`` forwards are for callers from a
trunk (CallManager's external variants); a line without one forwards
those callers like everyone else. An intercom line is never forwarded, so
it takes no forward keys. A line group's members are DNs of the plan's lines. Hunt
pilots, pickup group numbers and park numbers are exact numbers in their
partition: none may equal a DN, meet-me number, pattern or another of them
there. The coverage sections' models are ``offhook.db.plan_coverage``'s.

A transformation is ``{discard, replace, mask, prefix, presentation}`` (all
optional; see ``offhook.core.dialplan.model.Transform``).

A sip device needs a password in a plan file (``offhook load``; see
``plan_check.parse_plan``'s ``require_passwords``). A plan exported from the
database (``offhook.db.plan_export``) has no passwords, device or trunk: applied
with ``keep_passwords`` (``plan_apply.apply_plan``), a device or trunk without
one keeps its stored secret.

Trunk passwords are stored as given (offhook needs the clear secret to
answer a carrier's digest challenge): a known limitation, to be encrypted at
rest later. Device passwords, by contrast, are only ever stored as HA1.

An SCCP device name is upper-cased (``sep00aabb...`` becomes ``SEP00AABB...``,
the name the phone registers with and asks its ``SEP<MAC>.cnf.xml`` by). Its
model must be one the SCCP button templates know (``SCCP_MODELS``, the keys of
``offhook.sccp.templates.MODEL_BUTTONS``; kept here because ``db`` imports no
protocol package, and a test keeps the two equal). A model on a SIP device is
free text, for the administrator's information.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from offhook.common.addr import canonical
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    Distribution,
    MeetMe,
    Presentation,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.directory import (
    DeviceInfo,
    LineGroup,
    LineInfo,
    SpeedDial,
    directory_numbers,
)
from offhook.core.features.cti_devices import device_infos as cti_device_infos
from offhook.db.plan_base import (
    CONTROL_RE,
    DN_RE,
    NAME_RE,
    NUMBER_RE,
    Name,
    Ref,
    Spec,
    not_a_number,
)
from offhook.db.plan_coverage import (
    CallParkSpec,
    ForwardSpec,
    HuntListSpec,
    HuntPilotSpec,
    LineGroupSpec,
    PickupGroupSpec,
    forward_model,
)
from offhook.db.plan_cti import CtiPortSpec, CtiRoutePointSpec
from offhook.net.acl import parse_network

_PIN_RE = re.compile(r"[0-9]{1,16}")
MAX_PATH = 4096
"""Longest music on hold file path, as written and once made absolute."""
SEP_RE = re.compile(r"SEP[0-9A-F]{12}")
"""An SCCP device's name: SEP and the phone's MAC address (12 hex digits)."""
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


class LineSpec(Spec):
    dn: str
    display: str = Field(default="", max_length=128)
    partition: str = Field(default="", max_length=64)
    moh_source: str = Field(default="", max_length=64)
    forward_all: ForwardSpec | None = None
    forward_busy: ForwardSpec | None = None
    forward_no_answer: ForwardSpec | None = None
    forward_unregistered: ForwardSpec | None = None
    forward_busy_external: ForwardSpec | None = None
    forward_no_answer_external: ForwardSpec | None = None
    forward_unregistered_external: ForwardSpec | None = None
    cfna_timer: float | None = Field(default=None, ge=1, le=600)
    voicemail: str = ""
    pickup_group: Ref = ""
    intercom: bool = False

    @field_validator("voicemail", mode="before")
    @classmethod
    def _voicemail_type(cls, value: object) -> object:
        return not_a_number(value, "voicemail number")

    @field_validator("voicemail")
    @classmethod
    def _voicemail(cls, value: str) -> str:
        if value and not DN_RE.match(value):
            raise ValueError(f"{value!r} is not a voicemail number (1-32 of 0-9 * # +)")
        return value

    def to_model(self) -> LineInfo:
        return LineInfo(
            dn=self.dn,
            display=self.display,
            partition=self.partition,
            moh_source=self.moh_source,
            forward_all=forward_model(self.forward_all),
            forward_busy=forward_model(self.forward_busy),
            forward_no_answer=forward_model(self.forward_no_answer),
            forward_unregistered=forward_model(self.forward_unregistered),
            forward_busy_external=forward_model(self.forward_busy_external),
            forward_no_answer_external=forward_model(self.forward_no_answer_external),
            forward_unregistered_external=forward_model(self.forward_unregistered_external),
            cfna_timer=None if self.cfna_timer is None else float(self.cfna_timer),
            voicemail=self.voicemail,
            pickup_group=self.pickup_group,
            intercom=self.intercom,
        )

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
        if not DN_RE.match(value):
            raise ValueError(f"{value!r} is not a directory number (1-32 of 0-9 * # +)")
        return value


class SpeedDialSpec(Spec):
    """A speed-dial button: the number it dials and its label on the phone."""

    number: str
    label: str = Field(default="", max_length=MAX_LABEL)

    @field_validator("number", mode="before")
    @classmethod
    def _number_type(cls, value: object) -> object:
        return not_a_number(value, "number")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not DN_RE.match(value):
            raise ValueError(f"{value!r} is not a dialable number (1-32 of 0-9 * # +)")
        return value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if CONTROL_RE.search(value):
            raise ValueError("the label has a control character")
        return value


class DeviceSpec(Spec):
    name: str = Field(pattern=NAME_RE)
    protocol: Literal["sip", "sccp"]
    password: str | None = Field(default=None, min_length=1, max_length=128)
    description: str = Field(default="", max_length=255)
    css: str = Field(default="", max_length=64)
    max_calls: int = Field(default=4, ge=0, le=100_000)
    lines: list[LineSpec] = Field(default_factory=list, max_length=64)
    model: str = Field(default="", max_length=32)
    speed_dials: list[SpeedDialSpec] = Field(default_factory=list, max_length=64)
    moh_source: str = Field(default="", max_length=64)
    media_resource_list: str = Field(default="", max_length=64)
    dnd_option: Literal["ringer-off", "reject"] = "ringer-off"
    privacy: bool = False

    @model_validator(mode="before")
    @classmethod
    def _sccp_name(cls, data: object) -> object:
        # An SCCP phone registers as SEP + its MAC in upper case.
        if isinstance(data, dict) and data.get("protocol") == "sccp":
            name = data.get("name")
            if isinstance(name, str) and SEP_RE.fullmatch(name.upper()):
                data = {**data, "name": name.upper()}
        return data

    @field_validator("model", mode="before")
    @classmethod
    def _model_type(cls, value: object) -> object:
        return not_a_number(value, "model")

    @model_validator(mode="after")
    def _check(self) -> DeviceSpec:
        # A sip device without a password is plan_check's (require_passwords).
        seen: set[str] = set()
        for line in self.lines:
            if line.dn in seen:
                raise ValueError(f"DN {line.dn} appears twice on this device")
            seen.add(line.dn)
        return self


class TransformSpec(Spec):
    """A calling or called party transformation (``core.dialplan.model.Transform``)."""

    discard: str | None = Field(default=None, max_length=32)
    replace: str | None = Field(default=None, max_length=32)
    mask: str | None = Field(default=None, max_length=32)
    prefix: str = Field(default="", max_length=32)
    presentation: Literal["allowed", "restricted"] | None = None

    @field_validator("replace", "mask", "prefix", mode="before")
    @classmethod
    def _digits_type(cls, value: object) -> object:
        return not_a_number(value, "digits")

    def to_model(self) -> Transform:
        return Transform(
            discard=self.discard,
            replace=self.replace,
            mask=self.mask,
            prefix=self.prefix,
            presentation=Presentation(self.presentation) if self.presentation else None,
        )


class CallingSearchSpaceSpec(Spec):
    name: Name
    partitions: list[Ref] = Field(default_factory=list, max_length=256)


class TrunkSpec(Spec):
    """A SIP trunk. ``password`` is stored as given (see the module doc)."""

    name: Name
    protocol: Literal["sip"]
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    css: Ref = ""
    max_calls: int = Field(default=0, ge=0, le=1_000_000)
    max_cps: int = Field(default=100, ge=0, le=100_000)
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
        if self.transport == "tls":
            # Never sent in clear under a name that promises encryption.
            raise ValueError(
                "transport tls is not supported yet (offhook has no SIP over TLS): "
                "use udp or tcp, over a network you trust or a VPN"
            )
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
            max_cps=self.max_cps,
            username=self.username,
            password=self.password,
            register=self.register_,
            options_ping=float(self.options_ping),
            inbound_addresses=tuple(self.inbound_addresses),
        )


class RouteGroupMemberSpec(Spec):
    trunk: Ref
    called_transform: TransformSpec = Field(default_factory=TransformSpec)
    calling_transform: TransformSpec = Field(default_factory=TransformSpec)


class RouteGroupSpec(Spec):
    name: Name
    distribution: Literal["top-down", "circular"] = "top-down"
    members: list[RouteGroupMemberSpec] = Field(min_length=1, max_length=256)

    @field_validator("members", mode="before")
    @classmethod
    def _short_members(cls, value: object) -> object:
        # A member is a trunk name or a mapping with its transformations.
        if isinstance(value, list):
            return [{"trunk": m} if isinstance(m, str) else m for m in value]
        return value


class RouteListSpec(Spec):
    name: Name
    groups: list[Ref] = Field(min_length=1, max_length=256)


class PatternSpec(Spec):
    """What route and translation patterns share: a pattern in a partition."""

    pattern: str = Field(min_length=1, max_length=64)
    partition: Ref = ""
    urgent: bool = False
    called_transform: TransformSpec = Field(default_factory=TransformSpec)
    calling_transform: TransformSpec = Field(default_factory=TransformSpec)

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern_type(cls, value: object) -> object:
        return not_a_number(value, "pattern")


class RoutePatternSpec(PatternSpec):
    route_list: Ref | None = None
    block: bool = False
    block_cause: int = Field(default=21, ge=1, le=127)  # Q.850 cause; 21 call rejected

    @model_validator(mode="after")
    def _check(self) -> RoutePatternSpec:
        if self.block and self.route_list is not None:
            raise ValueError("a route pattern has either a route_list or block: true, not both")
        if not self.block and self.route_list is None:
            raise ValueError("a route pattern needs a route_list (or block: true)")
        return self


class TranslationPatternSpec(PatternSpec):
    css: Ref
    block: bool = False


class MohSourceSpec(Spec):
    """A music on hold source: a name and its audio file (see the module doc)."""

    name: Name
    file: str = Field(min_length=1, max_length=MAX_PATH)

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        if CONTROL_RE.search(value):
            raise ValueError("the file name has a control character")
        return value


class MeetMeSpec(Spec):
    """A meet-me conference number (``core.dialplan.model.MeetMe``)."""

    number: str = Field(max_length=32)
    partition: Ref = ""
    pin: str | None = None
    max_parties: int = Field(default=32, ge=2, le=1000)

    @field_validator("number", "pin", mode="before")
    @classmethod
    def _digits_type(cls, value: object) -> object:
        return not_a_number(value, "number or PIN")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not NUMBER_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a meet-me number (0-9 * #, after an optional +)")
        return value

    @field_validator("pin")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        if value is not None and not _PIN_RE.fullmatch(value):
            raise ValueError("a PIN is 1-16 digits (0-9)")
        return value

    def to_model(self) -> MeetMe:
        return MeetMe(self.number, self.partition, self.pin or "", self.max_parties)


class MediaResourceGroupSpec(Spec):
    """Media servers in preference order (``embedded``: the one ``offhook serve`` starts)."""

    name: Name
    servers: list[Name] = Field(min_length=1, max_length=64)


class MediaResourceListSpec(Spec):
    """Media resource groups in preference order."""

    name: Name
    groups: list[Ref] = Field(min_length=1, max_length=64)


class PlanSpec(Spec):
    devices: list[DeviceSpec] = Field(default_factory=list)
    partitions: list[Name] = Field(default_factory=list)
    calling_search_spaces: list[CallingSearchSpaceSpec] = Field(default_factory=list)
    trunks: list[TrunkSpec] = Field(default_factory=list)
    route_groups: list[RouteGroupSpec] = Field(default_factory=list)
    route_lists: list[RouteListSpec] = Field(default_factory=list)
    route_patterns: list[RoutePatternSpec] = Field(default_factory=list)
    translation_patterns: list[TranslationPatternSpec] = Field(default_factory=list)
    moh_sources: list[MohSourceSpec] = Field(default_factory=list)
    meetme: list[MeetMeSpec] = Field(default_factory=list)
    media_resource_groups: list[MediaResourceGroupSpec] = Field(default_factory=list)
    media_resource_lists: list[MediaResourceListSpec] = Field(default_factory=list)
    line_groups: list[LineGroupSpec] = Field(default_factory=list)
    hunt_lists: list[HuntListSpec] = Field(default_factory=list)
    hunt_pilots: list[HuntPilotSpec] = Field(default_factory=list)
    pickup_groups: list[PickupGroupSpec] = Field(default_factory=list)
    call_park: list[CallParkSpec] = Field(default_factory=list)
    cti_route_points: list[CtiRoutePointSpec] = Field(default_factory=list)
    cti_ports: list[CtiPortSpec] = Field(default_factory=list)

    def line_group_models(self) -> dict[str, LineGroup]:
        """The hunt line groups as the snapshot holds them, by name."""
        return {g.name: g.to_model() for g in self.line_groups}

    def hunt_list_models(self) -> dict[str, tuple[str, ...]]:
        """The hunt lists as the snapshot holds them: name -> line group names."""
        return {h.name: tuple(h.line_groups) for h in self.hunt_lists}

    def device_infos(self) -> list[DeviceInfo]:
        """The devices as the snapshot holds them (without their digest secrets),
        the CTI route points and ports last."""
        phones = [
            DeviceInfo(
                name=d.name,
                protocol=d.protocol,
                lines=tuple(ln.to_model() for ln in d.lines),
                css=d.css,
                max_calls=d.max_calls,
                model=d.model,
                speed_dials=tuple(SpeedDial(sd.number, sd.label) for sd in d.speed_dials),
                moh_source=d.moh_source,
                media_resource_list=d.media_resource_list,
                dnd_option=d.dnd_option,
                privacy=d.privacy,
            )
            for d in self.devices
        ]
        cti = cti_device_infos(
            (r.to_model() for r in self.cti_route_points), (p.to_model() for p in self.cti_ports)
        )
        return [*phones, *cti]

    def dialplan_spec(self) -> DialPlanSpec:
        """The plan as the analyzer's :class:`DialPlanSpec` (DNs derived from the lines)."""
        infos = self.device_infos()
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
            meetme=tuple(m.to_model() for m in self.meetme),
            hunt_pilots=tuple(h.to_model() for h in self.hunt_pilots),
            pickup_groups=tuple(p.to_model() for p in self.pickup_groups),
            call_park=tuple(c.to_model() for c in self.call_park),
            cti_route_points=tuple(r.to_model() for r in self.cti_route_points),
            cti_ports=tuple(p.to_model() for p in self.cti_ports),
        )
