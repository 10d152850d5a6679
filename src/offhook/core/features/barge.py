"""Barge: another appearance of a shared line joins the call in progress on it.

A shared line (a DN on several devices) shows "remote in use" on the other
appearances while one of them is in a call. With the Barge or cBarge
softkey, such an appearance joins that call: the call's two parties and the
barging phone talk in a conference bridge on the media server (offhook has
no bridge in the phone, so Barge and cBarge both use one). A device with
``privacy`` on cannot be barged into. When the barging phone hangs up, the
two others stay in the bridge and go on talking.

========================================  =====================================
situation                                 the barging call
========================================  =====================================
no connected call on that line elsewhere  cleared, cause 16 (nothing to join)
that call's device has privacy on         cleared, cause 21 (call rejected)
no media server                           cleared, cause 47 (resource unavailable)
the bridge is full (adhoc_max_parties)    cleared, cause 17
otherwise                                 answered by a port of the call's bridge
========================================  =====================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.features import conference, hold
from offhook.core.features.resources import ResourceDriver
from offhook.core.features.transfer import party_of
from offhook.core.leg import LegEvent, LegState

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg


def target(engine: CallEngine, barger: Leg) -> Leg | None:
    """The connected appearance of ``barger``'s line on another device, if any."""
    if barger.line == ("", ""):
        return None
    for call in engine.active_calls():
        for leg in (call.a_leg, *call.forks):
            if (
                leg.line == barger.line
                and leg.device != barger.device
                and leg.state is LegState.CONNECTED
                and leg.call is call
            ):
                return leg
    return None


def start(engine: CallEngine, call: Call, barger: Leg, setup: Setup) -> None:
    """``barger`` (an appearance of a shared line, its call ``call``) joins the line's call."""
    x = target(engine, barger)
    if x is None or x.call is None:
        engine.end_call(call, Cause.NORMAL_CLEARING)
        return
    info = engine.snapshot().device(x.device)
    if info is not None and info.privacy:
        engine.end_call(call, Cause.CALL_REJECTED)
        return
    if engine.media is None:
        engine.end_call(call, Cause.RESOURCE_UNAVAILABLE)
        return
    c1 = x.call
    name = c1.bridge or f"barge-{c1.id}"
    conf = engine.conferences.get(name)
    if conf is None:
        t = party_of(c1, x)
        if t is None:
            engine.end_call(call, Cause.NORMAL_CLEARING)
            return
        conf = engine.conferences[name] = conference.Conference(
            name, "adhoc", engine.adhoc_max_parties, controller=x.id
        )
        hold.end_hold(engine, c1, x)
        conference.bridge_party(engine, c1, t, conf)
        conference.bridge_party(engine, c1, x, conf)
    if len(conf.ports) >= conf.max_parties:
        engine.end_call(call, Cause.USER_BUSY)
        return
    call.extra["barge"] = c1.id
    port = engine.add_port(call, hold.family_of(setup.media), bridge=name, device=barger.device)
    conf.ports[port.id] = port
    driver = port.driver
    assert isinstance(driver, ResourceDriver)
    engine.fire(port, LegEvent.OFFER)
    driver.offer(setup)
