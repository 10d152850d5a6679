"""Conferences on the media server's bridges: meet-me numbers and ad hoc.

Every party talks to a port of a bridge: a leg ending on a media server
endpoint joined to the bridge by name (``ResourceDriver`` with ``bridge``),
which mixes N-1 for each party. A party keeps the call it was in.

- Meet-me: a call to a meet-me number is answered by a new port (a fork
  that connects at once); with a PIN, the port first plays the prompt and
  collects digits (RFC 4733 from the media server, or out of band from the
  device), then joins. The conference lives while anyone is in it.
- Ad hoc: a device (X) with a call to T and a consultation call to C joins
  them: T and X (in the first call) and C (in the second) each get a port
  of one bridge, X's consultation leg is released. X may add more parties
  the same way, up to ``adhoc_max_parties``. A call in a bridge (``Call.
  bridge``) loses only the party that leaves; when a single party is left
  in an ad hoc conference, it is cleared too (cause 16).

==============================  ===========================================
event                           action
==============================  ===========================================
party of a bridged call leaves  its port is released; the call ends when no
                                device is left in it
port released                   forgotten; ad hoc with one port left: that
                                party is cleared
PIN digit                       '#' or full length: right -> join, wrong ->
                                prompt again, third wrong -> cleared (21)
==============================  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.features import hold
from offhook.core.features.resources import ResourceDriver
from offhook.core.features.transfer import party_of
from offhook.core.leg import Direction, LegEvent
from offhook.core.records import CallConferenced

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.dialplan.model import MeetMe
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg


@dataclass(slots=True)
class Conference:
    name: str
    kind: str  # "meetme" | "adhoc"
    max_parties: int
    ports: dict[str, Leg] = field(default_factory=dict)
    controller: str = ""  # the leg id of the device that set an ad hoc conference up


def meetme(engine: CallEngine, call: Call, caller: Leg, setup: Setup, mm: MeetMe) -> None:
    """Answer a call to a meet-me number with a port of its bridge."""
    name = f"meetme-{mm.partition}-{mm.number}" if mm.partition else f"meetme-{mm.number}"
    conf = engine.conferences.get(name)
    if conf is None:
        conf = engine.conferences[name] = Conference(name, "meetme", mm.max_parties)
    if engine.media is None:
        engine.end_call(call, Cause.RESOURCE_UNAVAILABLE)
        return
    if len(conf.ports) >= conf.max_parties:
        engine.end_call(call, Cause.USER_BUSY)
        return
    port = engine.add_port(
        call, hold.family_of(setup.media), bridge=name, pin=mm.pin, device=caller.device
    )
    conf.ports[port.id] = port
    call.extra["conference"] = name
    driver = port.driver
    assert isinstance(driver, ResourceDriver)
    engine.fire(port, LegEvent.OFFER)
    driver.offer(setup)


def bridge_party(engine: CallEngine, call: Call, party: Leg, conf: Conference) -> None:
    port = engine.add_resource(
        call, hold.family_of(party.media), bridge=conf.name, device=party.device
    )
    conf.ports[port.id] = port
    call.peers[party.id] = port
    call.peers[port.id] = party
    call.bridge = conf.name
    call.extra["conference"] = conf.name
    driver = port.driver
    assert isinstance(driver, ResourceDriver)
    driver.start_offering()


def adhoc(engine: CallEngine, x1: Leg, x2: Leg, by: str = "device") -> bool:
    """Join the parties of ``x1``'s call, ``x1`` itself and ``x2``'s party in one bridge
    (published: ``CallConferenced``, ``by`` "device" or "cti")."""
    c1, c2 = x1.call, x2.call
    if c1 is None or c2 is None or c1 is c2 or c1.ended or c2.ended or engine.media is None:
        return False
    c = party_of(c2, x2)
    t = None if c1.bridge else party_of(c1, x1)
    if c is None or (t is None and not c1.bridge):
        return False
    name = c1.bridge or f"adhoc-{c1.id}"
    conf = engine.conferences.get(name)
    if conf is None:
        conf = engine.conferences[name] = Conference(
            name, "adhoc", engine.adhoc_max_parties, controller=x1.id
        )
    joining = [c] if c1.bridge else [t, x1, c]
    if len(conf.ports) + len(joining) > conf.max_parties:
        return False
    hold.end_hold(engine, c1, x1)
    hold.end_hold(engine, c2, x2)
    if t is not None:
        bridge_party(engine, c1, t, conf)
        bridge_party(engine, c1, x1, conf)
    engine.release_leg(x2, Cause.NORMAL_CLEARING)
    bridge_party(engine, c2, c, conf)
    engine.publish(CallConferenced(c1.id, x1.device, name, c2.id, by))
    return True


def party_left(engine: CallEngine, call: Call, leg: Leg, cause: int) -> None:
    """A device left a bridged call: release its port; end the call if no device is left.

    With ``adhoc_drop`` "controller-leaves", the ad hoc conference's controller
    leaving ends it for everyone (CallManager's "Drop Ad Hoc Conference").
    """
    conf = engine.conferences.get(call.bridge)
    if (
        conf is not None
        and conf.kind == "adhoc"
        and conf.controller == leg.id
        and engine.adhoc_drop == "controller-leaves"
    ):
        for other in list(conf.ports.values()):
            if other.call is not None and not other.call.ended:
                engine.end_call(other.call, Cause.NORMAL_CLEARING)
        return
    port = call.peers.pop(leg.id, None)
    if port is not None:
        call.peers.pop(port.id, None)
        engine.release_leg(port, Cause.NORMAL_CLEARING)
    if not _devices(call):
        engine.end_call(call, cause)


def _devices(call: Call) -> list[Leg]:
    return [
        lg
        for lg in (call.a_leg, *call.forks)
        if not lg.released and lg.call is call and lg not in call.resources
    ]


def port_gone(engine: CallEngine, port: Leg, bridge: str) -> None:
    """A port was released: forget it; an ad hoc conference of one is over."""
    conf = engine.conferences.get(bridge)
    if conf is None:
        return
    conf.ports.pop(port.id, None)
    if not conf.ports:
        engine.conferences.pop(bridge, None)
        return
    if conf.kind != "adhoc" or len(conf.ports) != 1:
        return
    (last,) = conf.ports.values()
    call = last.call
    if call is None or call.ended:
        return
    party = call.peers.get(last.id)
    if party is not None and not party.released:
        party_left(engine, call, party, Cause.NORMAL_CLEARING)
        engine.release_leg(party, Cause.NORMAL_CLEARING)
    if not _devices(call):
        engine.end_call(call, Cause.NORMAL_CLEARING)


def is_port(leg: Leg) -> bool:
    return leg.direction is Direction.OUTBOUND and isinstance(leg.driver, ResourceDriver)
