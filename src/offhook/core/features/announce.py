"""Announcements: a caller that needs in-band progress hears why its call failed.

With ``inband_progress`` (``[features]``, off by default: a SIP carrier
usually wants the final response at once), a call that arrives over a trunk
(from a gateway or carrier, whose callers hear only what comes in band) and
fails before it is answered is not
released at once: a media server endpoint answers the caller's offer as
early media (SIP 183 with SDP), plays the announcement or tone of the
failure's cause, and the call is released with that cause when it ends
(``play-done`` from the media server, or ``MAX_SECONDS``; a busy or reorder
tone repeats its cadence for ``TONE_SECONDS``). A caller already hearing
ringback from the media server keeps that endpoint (its dialog's one SDP
answer) for the announcement. Phones get the failure at once, as before:
they show and play it themselves.

With ``inband_ringback``, such a caller also hears ringback from the media
server while the called phone rings without early media of its own; when
it answers, the ringback endpoint goes and the caller is re-offered the
called phone's media (its dialog's answer was the ringback's).

=====================  ===============================
Q.850 cause            what the caller hears
=====================  ===============================
1, 3, 22, 28           "number not in service" (SIT + speech)
17                     busy tone
34, 38, 41, 42, 47     reorder tone
others                 nothing: released at once
=====================  ===============================
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from offhook.core.call import EARLY_MEDIA_DEVICE
from offhook.core.features import hold
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import Direction, LegEvent

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg

ANNOUNCEMENTS: Mapping[int, str] = MappingProxyType(
    {
        1: "announce:not-in-service",
        3: "announce:not-in-service",
        22: "announce:not-in-service",
        28: "announce:not-in-service",
        17: "tone:busy",
        34: "tone:reorder",
        38: "tone:reorder",
        41: "tone:reorder",
        42: "tone:reorder",
        47: "tone:reorder",
    }
)
MAX_SECONDS = 12.0  # an announcement longer than this is cut
TONE_SECONDS = 8.0  # how long a busy or reorder tone plays before the call is released


def wants_inband(engine: CallEngine, call: Call) -> bool:
    """The caller came over a trunk: its far end hears only in-band progress."""
    a = call.a_leg
    trunks = engine.snapshot().dialplan_spec.trunks
    return a.direction is Direction.INBOUND and any(t.name == a.device for t in trunks)


def intercept(engine: CallEngine, call: Call, cause: int) -> bool:
    """Start the announcement of ``cause`` instead of ending ``call`` now (True if started)."""
    source = ANNOUNCEMENTS.get(cause)
    a = call.a_leg
    if (
        source is None
        or not engine.inband_progress
        or call.connected
        or call.announcing
        or engine.media is None
        or a.released
        or call.setup.media is None
        or not wants_inband(engine, call)
    ):
        return False
    call.announcing = cause
    call.ring_deadline = None
    call.trunk_queue.clear()
    once = source.startswith("announce:")  # a prompt plays once; a tone repeats its cadence
    playing = early_port(call)
    for fork in call.live_forks():
        if fork is not playing:
            engine.release_leg(fork, cause)
    if playing is not None:
        # The caller's answer is this endpoint's (ringback): the same one plays on.
        driver = playing.driver
        assert isinstance(driver, ResourceDriver)
        driver.replay(source, loop=not once)
    else:
        port = engine.add_port(
            call, hold.family_of(call.setup.media), play=source, early=True, device=a.device
        )
        driver = port.driver
        assert isinstance(driver, ResourceDriver)
        driver.loop = not once
        engine.fire(port, LegEvent.OFFER)
        driver.offer(call.setup)
    engine.later(MAX_SECONDS if once else TONE_SECONDS, lambda: finish(engine, call))
    return True


def early_port(call: Call) -> Leg | None:
    """The live media server endpoint giving this call's caller early media, if any."""
    for fork in call.live_forks():
        if fork.device == EARLY_MEDIA_DEVICE and isinstance(fork.driver, ResourceDriver):
            return fork
    return None


def finish(engine: CallEngine, call: Call) -> None:
    """The announcement is over: the call ends with the cause it was played for."""
    if not call.ended and call.announcing:
        engine.end_call(call, call.announcing)


def ringback(engine: CallEngine, call: Call) -> None:
    """The called phone rings without early media: with ``inband_ringback``, a caller over
    a trunk hears ringback from the media server (183 with SDP) until it answers."""
    a = call.a_leg
    if (
        not engine.inband_ringback
        or call.ringback
        or engine.media is None
        or call.setup.media is None
        or not wants_inband(engine, call)
    ):
        return
    call.ringback = True
    port = engine.add_port(
        call, hold.family_of(call.setup.media), play="tone:ringback", early=True, device=a.device
    )
    driver = port.driver
    assert isinstance(driver, ResourceDriver)
    engine.fire(port, LegEvent.OFFER)
    driver.offer(call.setup)
