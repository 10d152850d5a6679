"""CTI route points and CTI ports: virtual devices in the plan that an application controls.

Theory of operation
-------------------
Both are devices of protocol ``cti`` (:data:`CTI_PROTOCOL`) with one line,
their DN, carried by them alone (:func:`device_infos` makes their
``DeviceInfo``; the dial plan reaches the DN like any phone's).
:func:`install_cti_devices` gives each a binding in the location store (so
call control rings them like a registered phone, and RIS sees them
registered) and registers :class:`CtiLegFactory` for ``cti``; called again
with a new plan it removes the bindings of devices that are gone and adds the
new ones, publishing ``RegistrationChanged`` for each.

A call to a route point's DN offers a leg to the route point
(``call.offered``), which alerts at once (``call.ringing``; the caller hears
ringback) and waits:

==========================================  ====================================
what happens first                          the call
==========================================  ====================================
the application redirects it                goes where it says
(``CallEngine.cti_redirect``)               (``core.cti_ops``)
``timeout`` seconds pass, ``default`` set   goes to ``default``, analysed with
                                            the route point's CSS (a forward
                                            no answer from the route point's DN)
``timeout`` passes, no ``default``          the caller gets busy (17)
``default`` cannot be routed                the caller gets the dial plan's cause
the caller hangs up                         the leg is released, nothing else
==========================================  ====================================

A CTI port is a phone whose media the application terminates. A call to its
DN rings it (``call.offered``, ``call.ringing``) until the application
answers it with :func:`port_answer` and the RTP address and codec it
receives on (:func:`media_from_json`), or hangs up; the caller's media
offer is answered with that address (or, for a caller that offered none,
the address is the offer). :func:`port_call` places a call from a port: its
DN is the calling number, its CSS routes the call, the application's
address is the offer. Mid-call offers (the far end holding, music on hold)
are answered with the same address. A port takes one call at a time.

Sans-IO: the timeout is a timer asked of call control (``CallEngine.later``),
run in its queue on its clock.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from offhook.common.location import Binding
from offhook.core.causes import Cause
from offhook.core.dialplan.model import CtiPort, CtiRoutePoint
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.core.features import forward
from offhook.core.leg import Direction
from offhook.core.media import (
    INACTIVE,
    RECVONLY,
    SENDONLY,
    SENDRECV,
    Codec,
    MediaDescription,
    MediaStream,
)
from offhook.core.ports import LegDriver
from offhook.core.records import RegistrationChanged

if TYPE_CHECKING:
    from offhook.common.location import LocationStore
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg

__all__ = [
    "CODECS",
    "CTI_PROTOCOL",
    "PORT_MAX_CALLS",
    "CtiDeviceError",
    "CtiLegFactory",
    "PortDriver",
    "RoutePointDriver",
    "answer_for",
    "device_infos",
    "install_cti_devices",
    "media_from_json",
    "media_to_json",
    "port_answer",
    "port_call",
    "port_media",
    "port_of",
    "route_point_of",
    "send_on",
]

log = logging.getLogger(__name__)

CTI_PROTOCOL = "cti"
PORT_MAX_CALLS = 1
"""A CTI port takes one call at a time (a second caller gets busy)."""
BINDING_LIFETIME = 100 * 365 * 86400.0
"""How long a CTI device's binding lasts: for ever, but a finite number (status
pages print the seconds left)."""
CODECS: Mapping[str, Codec] = {"PCMU": Codec("PCMU", 8000, 0), "PCMA": Codec("PCMA", 8000, 8)}
"""What an application may receive: G.711 either law."""
TELEPHONE_EVENT = Codec("telephone-event", 8000, 101, fmtp="0-16")
_ANSWER_DIRECTION = {SENDRECV: SENDRECV, SENDONLY: RECVONLY, RECVONLY: SENDONLY, INACTIVE: INACTIVE}
_MEDIA_KEYS = frozenset({"address", "port", "codec"})


class CtiDeviceError(ValueError):
    """An application's request about a CTI device, refused: the text says why.

    ``cause`` is the Q.850 cause that best describes it.
    """

    def __init__(self, message: str, cause: int = Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE):
        super().__init__(message)
        self.cause = int(cause)


# ---------------------------------------------------------------- the plan side


def device_infos(
    route_points: Iterable[CtiRoutePoint], ports: Iterable[CtiPort]
) -> tuple[DeviceInfo, ...]:
    """The CTI devices as the snapshot holds them: protocol ``cti``, their DN their one line.

    A route point takes any number of calls at once; a port one.
    """
    out = [
        DeviceInfo(
            rp.name, CTI_PROTOCOL, (LineInfo(rp.dn, "", rp.partition),), css=rp.css, max_calls=0
        )
        for rp in route_points
    ]
    out += [
        DeviceInfo(
            p.name,
            CTI_PROTOCOL,
            (LineInfo(p.dn, "", p.partition),),
            css=p.css,
            max_calls=PORT_MAX_CALLS,
        )
        for p in ports
    ]
    return tuple(out)


def route_point_of(snapshot: PlanSnapshot, name: str) -> CtiRoutePoint | None:
    return next((r for r in snapshot.dialplan_spec.cti_route_points if r.name == name), None)


def port_of(snapshot: PlanSnapshot, name: str) -> CtiPort | None:
    return next((p for p in snapshot.dialplan_spec.cti_ports if p.name == name), None)


def install_cti_devices(
    engine: CallEngine,
    locations: LocationStore,
    snapshot: PlanSnapshot,
    *,
    registered_at: float = 0.0,
) -> tuple[str, ...]:
    """Make the location store hold one binding per CTI device of ``snapshot``.

    Registers the ``cti`` leg factory with ``engine`` (again: harmless);
    bindings of CTI devices no longer in the plan are removed. Each device
    added or removed is published as ``RegistrationChanged``. ``registered_at``
    is the wall-clock time new bindings show. Returns the devices' names.
    """
    engine.register_factory(CTI_PROTOCOL, CtiLegFactory(engine))
    spec = snapshot.dialplan_spec
    wanted = [r.name for r in spec.cti_route_points] + [p.name for p in spec.cti_ports]
    now = engine.monotonic()
    present = {b.device for b in locations.all(now) if b.protocol == CTI_PROTOCOL}
    for name in sorted(present - set(wanted)):
        locations.remove_device(name)
        engine.publish(RegistrationChanged(name, CTI_PROTOCOL, False))
    for name in wanted:
        if name in present:
            continue
        locations.put(
            Binding(
                device=name,
                protocol=CTI_PROTOCOL,
                contact=f"cti:{name}",
                expires_at=now + BINDING_LIFETIME,
                transport=CTI_PROTOCOL,
                registered_at=registered_at,
                node=engine.node,
            )
        )
        engine.publish(RegistrationChanged(name, CTI_PROTOCOL, True))
    return tuple(wanted)


class CtiLegFactory:
    """The ``cti`` leg factory: a route point's or a port's driver, by the plan."""

    def __init__(self, engine: CallEngine) -> None:
        self._engine = engine

    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        snapshot = self._engine.snapshot()
        rp = route_point_of(snapshot, binding.device)
        if rp is not None:
            return RoutePointDriver(self._engine, leg, rp)
        if port_of(snapshot, binding.device) is not None:
            driver = PortDriver(self._engine, binding.device, None)
            driver.leg = leg
            return driver
        raise LookupError(f"{binding.device!r} is no CTI device of the plan")


# ---------------------------------------------------------------- route points


class RoutePointDriver(LegDriver):
    """A call waiting at a route point for the application (see the module doc)."""

    def __init__(self, engine: CallEngine, leg: Leg, rp: CtiRoutePoint) -> None:
        self.engine = engine
        self.leg = leg
        self.rp = rp

    def offer(self, setup: Setup) -> None:
        self.engine.on_alerting(self.leg)
        self.engine.later(self.rp.timeout, self._timeout)

    def _timeout(self) -> None:
        leg, call = self.leg, self.leg.call
        if leg.released or call is None or call.ended or call.connected:
            return  # redirected, answered elsewhere or gone
        if not self.rp.default:
            self.engine.on_release(leg, Cause.USER_BUSY)
            return
        cause = send_on(self.engine, call, self.rp, self.rp.default)
        if cause is not None:
            log.info(
                "call %s: route point %s cannot send it to %s (cause %d)",
                call.id,
                self.rp.name,
                self.rp.default,
                cause,
            )
            self.engine.on_release(leg, cause)

    # A route point never answers, so it never sees media.
    def progress(self, media: MediaDescription | None) -> None:
        return None

    def alert(self, media: MediaDescription | None) -> None:
        return None

    def answer(self, media: MediaDescription | None) -> None:
        return None

    def update_media(self, offer: MediaDescription) -> None:
        self.engine.on_media_answer(self.leg, None, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        return None

    def release(self, cause: int) -> None:
        return None


def send_on(engine: CallEngine, call: Call, rp: CtiRoutePoint, target: str) -> int | None:
    """Send ``call`` from route point ``rp`` to ``target`` (analysed with ``rp.css``).

    None when it went; else the Q.850 cause why not (the call stays): a
    number the route point's CSS cannot route, a loop back to a DN the call
    was already offered, or too many redirections.
    """
    if len(call.setup.diversions) >= engine.max_forward_hops:
        return 25  # exchange routing error: the hop limit (Q.850)
    decision = engine.snapshot().dialplan.route(rp.css, target, rp.dn)
    if not decision.routable or decision.outcome in (Outcome.PICKUP, Outcome.PARK):
        return decision.cause or int(Cause.UNALLOCATED_NUMBER)
    if decision.dn is not None and (decision.dn.dn, decision.dn.partition) in call.visited:
        return 25
    for fork in call.live_forks():
        engine.release_leg(fork, Cause.NO_ANSWER)
    call.ringback = False  # a ringback endpoint went with the forks
    forward.moved(engine, call, target, rp.css, Diversion(rp.dn, RedirectReason.FORWARD_NO_ANSWER))
    return None


# ---------------------------------------------------------------- ports


class PortDriver(LegDriver):
    """One call of a CTI port: the application's RTP address stands in for a phone.

    For a call to the port (an outbound leg) ``local`` is None until the
    application answers; for a call from it (an inbound leg) it is the
    application's offer. ``far`` is the far end's latest description.
    """

    def __init__(self, engine: CallEngine, device: str, local: MediaDescription | None) -> None:
        self.engine = engine
        self.device = device
        self.leg: Leg | None = None
        self.local = local
        self.caller_offer: MediaDescription | None = None
        self.far: MediaDescription | None = None

    def _leg(self) -> Leg:
        assert self.leg is not None
        return self.leg

    # -- a call to the port
    def offer(self, setup: Setup) -> None:
        self.caller_offer = self.far = setup.media
        self.engine.on_alerting(self._leg())

    def answer_with(self, media: MediaDescription) -> None:
        """The application answers with ``media`` (its RTP address); ValueError: it
        cannot receive what the caller offered."""
        reply = media if self.caller_offer is None else answer_for(self.caller_offer, media)
        self.local = media
        self.engine.on_connect(self._leg(), reply)

    # -- a call from the port
    def progress(self, media: MediaDescription | None) -> None:
        if media is not None:
            self.far = media

    def alert(self, media: MediaDescription | None) -> None:
        if media is not None:
            self.far = media

    def answer(self, media: MediaDescription | None) -> None:
        if media is not None:
            self.far = media

    # -- either
    def update_media(self, offer: MediaDescription) -> None:
        leg = self._leg()
        if self.local is None:
            self.engine.on_media_answer(leg, None, Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE)
            return
        try:
            answer = answer_for(offer, self.local)
        except ValueError:
            self.engine.on_media_answer(leg, None, Cause.INCOMPATIBLE_DESTINATION)
            return
        self.far = offer
        self.engine.on_media_answer(leg, answer)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        if answer is not None:
            self.far = answer

    def release(self, cause: int) -> None:
        return None


def _port_leg(engine: CallEngine, device: str, call_id: str) -> tuple[Call, Leg, PortDriver]:
    call = engine.call(call_id)
    if call is None or call.ended:
        raise CtiDeviceError(f"no call {call_id!r}", Cause.INVALID_CALL_REFERENCE)
    for leg in call.legs():
        if leg.device == device and not leg.released and isinstance(leg.driver, PortDriver):
            return call, leg, leg.driver
    raise CtiDeviceError(f"CTI port {device!r} is not in call {call_id!r}")


def port_answer(engine: CallEngine, device: str, call_id: str, media: MediaDescription) -> None:
    """CTI port ``device`` answers the call ``call_id`` ringing it, with ``media``
    (the application's RTP address and codec, :func:`media_from_json`).

    Raises :class:`CtiDeviceError` (a ValueError): no such call at that port,
    already answered, or the caller offered no codec the application takes.
    """
    if port_of(engine.snapshot(), device) is None:
        raise CtiDeviceError(f"{device!r} is no CTI port", Cause.INVALID_CALL_REFERENCE)
    call, leg, driver = _port_leg(engine, device, call_id)
    if leg.direction is not Direction.OUTBOUND or call.connected:
        raise CtiDeviceError(f"call {call_id!r} is not ringing CTI port {device!r}")
    try:
        driver.answer_with(media)
    except ValueError as exc:
        raise CtiDeviceError(str(exc), Cause.BEARER_CAPABILITY_NOT_AVAILABLE) from None


def port_call(engine: CallEngine, device: str, number: str, media: MediaDescription) -> str:
    """CTI port ``device`` calls ``number`` with ``media`` as its offer; the call id.

    The port's DN is the calling number and its CSS routes the call, as for
    a phone. Raises :class:`CtiDeviceError`: no such port, a number that is
    no number, the port busy. A number the plan cannot route still makes a
    call (it ends at once with its cause, as a phone's would).
    """
    port = port_of(engine.snapshot(), device)
    if port is None:
        raise CtiDeviceError(f"{device!r} is no CTI port", Cause.INVALID_CALL_REFERENCE)
    if not number or len(number) > 32 or any(c not in "0123456789*#+" for c in number):
        raise CtiDeviceError(
            f"{number!r} is not a number (1-32 of 0-9 * # +)", Cause.INVALID_NUMBER_FORMAT
        )
    if engine.device_calls(device) >= PORT_MAX_CALLS:
        raise CtiDeviceError(f"CTI port {device!r} is busy", Cause.USER_BUSY)
    driver = PortDriver(engine, device, media)
    leg = engine.inbound_leg(driver, device)
    driver.leg = leg
    engine.setup(leg, Setup(PartyInfo(port.dn, "", device), number, media))
    if leg.call is None:  # only when called from inside call control's queue
        raise CtiDeviceError("call control is busy; try again", Cause.TEMPORARY_FAILURE)
    return leg.call.id


def port_media(engine: CallEngine, device: str, call_id: str) -> dict[str, Any] | None:
    """Where the far end of CTI port ``device``'s call receives RTP now
    (``{"address", "port", "codec"}``, :func:`media_to_json`), or None when not known."""
    _, _, driver = _port_leg(engine, device, call_id)
    return media_to_json(driver.far)


# ---------------------------------------------------------------- media


def media_from_json(data: object) -> MediaDescription:
    """An application's ``{"address": str, "port": int, "codec": "PCMU"|"PCMA"}``
    as the description of where it receives RTP (``codec`` defaults to PCMU).

    Raises ValueError with what is wrong: not an object, an unknown key, an
    address that is not a unicast IP address, a port outside 1-65535, another codec.
    """
    if not isinstance(data, Mapping):
        raise ValueError("media is an object {address, port, codec}")
    unknown = sorted(str(k) for k in data if k not in _MEDIA_KEYS)
    if unknown:
        raise ValueError(f"media: unknown key {unknown[0]!r} (address, port, codec)")
    address = data.get("address")
    if not isinstance(address, str):
        raise ValueError("media.address: an IP address (a string) is required")
    try:
        ip = ipaddress.ip_address(address.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        raise ValueError(f"media.address: {address[:64]!r} is not an IP address") from None
    if ip.is_unspecified or ip.is_multicast:
        raise ValueError(f"media.address: {ip} is not a unicast address")
    port = data.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError("media.port: an integer 1-65535 is required")
    name = data.get("codec", "PCMU")
    codec = CODECS.get(name.upper()) if isinstance(name, str) else None
    if codec is None:
        raise ValueError(f"media.codec: one of {', '.join(CODECS)}")
    stream = MediaStream("audio", str(ip), port, (codec, TELEPHONE_EVENT), ptime=20)
    return MediaDescription((stream,))


def media_to_json(media: MediaDescription | None) -> dict[str, Any] | None:
    """The first active audio stream of ``media`` as ``{"address", "port", "codec"}``."""
    for stream in media.active_streams() if media is not None else ():
        if stream.kind == "audio":
            codec = next((c.name.upper() for c in stream.codecs if c.name.upper() in CODECS), "")
            return {"address": stream.address, "port": stream.port, "codec": codec}
    return None


def answer_for(offer: MediaDescription, app: MediaDescription) -> MediaDescription:
    """The answer to ``offer`` that has the application receive at ``app``'s address.

    The first active audio stream of ``offer`` is answered with ``app``'s
    address and codec (at the payload type the offer gave it), with
    telephone-event when both have it; every other stream is rejected.
    ValueError: no audio offered, or not the application's codec.
    """
    mine = next((s for s in app.active_streams() if s.kind == "audio"), None)
    if mine is None or not mine.codecs:
        raise ValueError("the application's media has no audio stream")
    want = mine.codecs[0].name.upper()
    index = next(
        (i for i, s in enumerate(offer.streams) if s.kind == "audio" and not s.rejected), None
    )
    if index is None:
        raise ValueError("the caller offered no audio")
    theirs = offer.streams[index]
    codec = next(
        (c for c in theirs.codecs if c.name.upper() == want and c.clock_rate == 8000), None
    )
    if codec is None:
        offered = ", ".join(c.name for c in theirs.codecs) or "nothing"
        raise ValueError(f"the caller did not offer {want} (offered: {offered})")
    codecs: tuple[Codec, ...] = (replace(codec, name=want),)
    dtmf = next((c for c in theirs.codecs if c.name.lower() == "telephone-event"), None)
    if dtmf is not None and any(c.name.lower() == "telephone-event" for c in mine.codecs):
        codecs += (dtmf,)
    streams = [
        MediaStream(
            "audio",
            mine.address,
            mine.port,
            codecs,
            direction=_ANSWER_DIRECTION.get(theirs.direction, SENDRECV),
            ptime=mine.ptime,
        )
        if i == index
        else MediaStream(s.kind, s.address, 0, s.codecs[:1] or s.codecs)
        for i, s in enumerate(offer.streams)
    ]
    return MediaDescription(tuple(streams))
