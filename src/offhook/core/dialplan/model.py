"""The dial plan's data: what operators configure, as frozen records.

These are the shared vocabulary between the plan loader (``db``), the
analyzer (``core.dialplan.router``) and tools such as the dialed number
analyzer. They mirror Cisco CallManager's model: partitions hold
directory numbers and patterns; a calling search space (CSS) is the ordered
list of partitions a caller may reach; route patterns point at route lists,
which try route groups in order, which distribute over trunks. Meet-me
conference numbers live in partitions too and are reached like directory
numbers (exact numbers), as do hunt pilots, pickup group numbers and call
park numbers. CTI route points and ports are devices an application
controls; their DNs are ordinary directory numbers carried by them alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Presentation(StrEnum):
    ALLOWED = "allowed"
    RESTRICTED = "restricted"


class Distribution(StrEnum):
    TOP_DOWN = "top-down"
    CIRCULAR = "circular"


@dataclass(frozen=True, slots=True)
class Transform:
    """A calling or called party transformation, applied in this order:

    ``discard`` (a Cisco digit discard instruction such as ``pre-dot`` or
    ``pre-dot-trailing-#``, using the matched pattern's ``.``), then
    ``replace`` (the whole number), then ``mask`` (``5551XXXX``: X keeps the
    corresponding right-aligned digit), then ``prefix``. ``presentation``
    overrides calling-party presentation when set.
    """

    discard: str | None = None
    replace: str | None = None
    mask: str | None = None
    prefix: str = ""
    presentation: Presentation | None = None

    @property
    def empty(self) -> bool:
        return not (self.discard or self.replace or self.mask or self.prefix or self.presentation)


NO_TRANSFORM = Transform()


@dataclass(frozen=True, slots=True)
class CallingSearchSpace:
    name: str
    partitions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DirectoryNumber:
    """A DN in a partition; ``devices`` are the devices it appears on."""

    dn: str
    partition: str
    devices: tuple[str, ...]
    display: str = ""


@dataclass(frozen=True, slots=True)
class MeetMe:
    """A meet-me conference number in a partition.

    Callers who reach ``number`` join one conference; ``pin`` ("" = none) is
    the digits they must enter first, ``max_parties`` how many may be in it
    at once.
    """

    number: str
    partition: str = ""
    pin: str = ""
    max_parties: int = 32


@dataclass(frozen=True, slots=True)
class HuntPilot:
    """A hunt pilot number in a partition: calls to it hunt over ``hunt_list``.

    When every member failed, the call goes to ``final_forward`` (a number
    analysed with ``final_css``; "" = the caller gets the last failure).
    """

    pattern: str
    partition: str = ""
    hunt_list: str = ""
    final_forward: str = ""
    final_css: str = ""


@dataclass(frozen=True, slots=True)
class PickupGroup:
    """A call pickup group; dialling ``number`` (GPickUp) picks up a call ringing in it."""

    name: str
    number: str = ""
    partition: str = ""


@dataclass(frozen=True, slots=True)
class CallPark:
    """Call park numbers ``first``..``last`` (same length, digits) in a partition.

    A call parked on one of them reverts to the parker after ``reversion``
    seconds (0: never).
    """

    first: str
    last: str
    partition: str = ""
    reversion: float = 60.0

    def numbers(self) -> tuple[str, ...]:
        """Every park number of the range, in order."""
        width = len(self.first)
        return tuple(str(n).zfill(width) for n in range(int(self.first), int(self.last) + 1))


@dataclass(frozen=True, slots=True)
class CtiRoutePoint:
    """A CTI route point: a virtual device at ``dn`` that an application controls.

    A call to ``dn`` waits at the route point for the application to redirect
    it; after ``timeout`` seconds it goes to ``default`` (a number analysed
    with ``css``; "" = the caller gets busy). The device is ``name``.
    """

    name: str
    dn: str
    partition: str = ""
    css: str = ""
    timeout: float = 5.0
    default: str = ""


@dataclass(frozen=True, slots=True)
class CtiPort:
    """A CTI port: a virtual phone at ``dn`` whose media an application terminates.

    Calls it places are routed with ``css``; calls to ``dn`` ring it until the
    application answers with its own RTP address (``core.features.cti_devices``).
    """

    name: str
    dn: str
    partition: str = ""
    css: str = ""


@dataclass(frozen=True, slots=True)
class RoutePattern:
    """Digits that route to a route list (or are blocked)."""

    pattern: str
    partition: str
    route_list: str | None = None
    block: bool = False
    block_cause: int = 21  # Q.850 call rejected
    urgent: bool = False
    called_transform: Transform = NO_TRANSFORM
    calling_transform: Transform = NO_TRANSFORM


@dataclass(frozen=True, slots=True)
class TranslationPattern:
    """Digits that are transformed and analysed again with the pattern's own CSS."""

    pattern: str
    partition: str
    css: str
    urgent: bool = False
    block: bool = False
    called_transform: Transform = NO_TRANSFORM
    calling_transform: Transform = NO_TRANSFORM


@dataclass(frozen=True, slots=True)
class Trunk:
    """A SIP trunk to another system."""

    name: str
    protocol: str
    host: str
    port: int = 5060
    transport: str = "udp"
    css: str = ""
    max_calls: int = 0  # 0 = no limit
    max_cps: int = 100  # new calls a second from it, 0 = no limit (net.trunk_admission)
    username: str = ""  # digest toward the far end, when it challenges
    password: str = ""
    register: bool = False
    options_ping: float = 30.0  # seconds between OPTIONS pings; 0 = off
    inbound_addresses: tuple[str, ...] = ()  # networks calls are accepted from (default: host)


@dataclass(frozen=True, slots=True)
class RouteGroupMember:
    trunk: str
    called_transform: Transform = NO_TRANSFORM
    calling_transform: Transform = NO_TRANSFORM


@dataclass(frozen=True, slots=True)
class RouteGroup:
    name: str
    members: tuple[RouteGroupMember, ...]
    distribution: Distribution = Distribution.TOP_DOWN


@dataclass(frozen=True, slots=True)
class RouteList:
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DialPlanSpec:
    """Everything the analyzer needs, as configured."""

    partitions: tuple[str, ...] = ()
    calling_search_spaces: tuple[CallingSearchSpace, ...] = ()
    directory_numbers: tuple[DirectoryNumber, ...] = ()
    route_patterns: tuple[RoutePattern, ...] = ()
    translation_patterns: tuple[TranslationPattern, ...] = ()
    trunks: tuple[Trunk, ...] = ()
    route_groups: tuple[RouteGroup, ...] = ()
    route_lists: tuple[RouteList, ...] = ()
    meetme: tuple[MeetMe, ...] = ()
    hunt_pilots: tuple[HuntPilot, ...] = ()
    pickup_groups: tuple[PickupGroup, ...] = ()
    call_park: tuple[CallPark, ...] = ()
    # CTI devices: their DNs are ``directory_numbers`` on their device alone.
    cti_route_points: tuple[CtiRoutePoint, ...] = ()
    cti_ports: tuple[CtiPort, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
