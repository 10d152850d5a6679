"""Feature codes: what a phone dials to set a feature, analysed before the dial plan.

The codes are ``[features] code_*`` (``engine.codes``: feature name -> code).
A called number that is a code (or starts with a code that takes a number)
is the feature, never a number to route, so no code can reach a trunk:

=================  ==============  =============================================
feature            default         what it does
=================  ==============  =============================================
forward_all        ``*21<dest>``   forward all of the caller's line to ``dest``
forward_all_off    ``#21``         forward all off
dnd_on / dnd_off   ``*78``/``*79`` do not disturb on the caller's device
hunt_toggle        ``*36``         log the caller's device out of its hunt groups, or back in
pickup             ``*8``          pick up a call ringing in the caller's pickup group
directed_pickup    ``**<dn>``      pick up the call ringing ``dn``
voicemail          ``*97``         call the caller's line's voicemail pilot
park               ``*68``         (as a transfer target) park on the first free number
barge              ``*33``         join the call on another appearance of the
                                   caller's shared line (features.barge)
=================  ==============  =============================================

Only phones of the plan use codes: a call from a trunk to a number that is a
code is refused (cause 1). A code that sets something is confirmed with a
short tone from the media server (the call is answered, then cleared), or
refused with the cause the setting gave (e.g. 1 when the forward
destination is outside the line's forward CSS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.features import barge, hold, park, pickup
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import LegEvent

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg

WITH_NUMBER = frozenset({"forward_all", "directed_pickup"})  # codes followed by a number
CONFIRM_SECONDS = 4.0  # the confirmation call is cleared by then even without play-done


def match(codes: dict[str, str], number: str) -> tuple[str, str] | None:
    """(feature, the number after its code) for ``number``, or None when it is no code.

    The longest matching code wins; a code taking a number needs one (else
    ("", "") is returned: an incomplete code).
    """
    best: tuple[str, str] | None = None
    for name, code in codes.items():
        if not code or not number.startswith(code):
            continue
        if best is not None and len(code) <= len(codes[best[0]]):
            continue
        rest = number[len(code) :]
        if name in WITH_NUMBER or not rest:
            best = (name, rest)
    if best is not None and best[0] in WITH_NUMBER and not best[1]:
        return ("", "")
    return best


def intercept(engine: CallEngine, call: Call, leg: Leg, setup: Setup) -> bool:
    """Carry out ``setup.called`` if it is a feature code; True when it was one."""
    number = setup.called
    if not number or number[0] not in "*#":
        return False
    found = match(engine.codes, number)
    if found is None:
        return False
    if engine.snapshot().device(leg.device) is None or leg.css is not None:
        engine.end_call(call, Cause.UNALLOCATED_NUMBER)  # a trunk's caller
        return True
    name, rest = found
    if not name:
        engine.end_call(call, Cause.INVALID_NUMBER_FORMAT)
        return True
    _HANDLERS[name](engine, call, leg, rest)
    return True


def _done(engine: CallEngine, call: Call, cause: int | None) -> None:
    """Confirm a setting (``cause`` None) or refuse it with ``cause``."""
    if cause is not None:
        engine.end_call(call, cause)
        return
    a = call.a_leg
    if engine.media is None:
        engine.end_call(call, Cause.NORMAL_CLEARING)
        return
    # A delayed offer (an SCCP caller): the endpoint's offer goes in the answer.
    port = engine.add_port(
        call, hold.family_of(call.setup.media), play="tone:confirm", loop=False, device=a.device
    )
    driver = port.driver
    assert isinstance(driver, ResourceDriver)

    def hang_up() -> None:
        if not call.ended:
            engine.end_call(call, Cause.NORMAL_CLEARING)

    driver.on_played = hang_up
    engine.fire(port, LegEvent.OFFER)
    driver.offer(call.setup)
    engine.later(CONFIRM_SECONDS, hang_up)


def _forward_all(engine: CallEngine, call: Call, leg: Leg, rest: str) -> None:
    _done(engine, call, engine.set_forward_all(leg.device, leg.line[0], rest))


def _forward_all_off(engine: CallEngine, call: Call, leg: Leg, rest: str) -> None:
    _done(engine, call, engine.set_forward_all(leg.device, leg.line[0], ""))


def _dnd(on: bool) -> Handler:
    def handler(engine: CallEngine, call: Call, leg: Leg, rest: str) -> None:
        engine.set_dnd(leg.device, on)
        _done(engine, call, None)

    return handler


def _hunt_toggle(engine: CallEngine, call: Call, leg: Leg, rest: str) -> None:
    engine.set_hunt_login(leg.device, not engine.hunt_logged_in(leg.device))
    _done(engine, call, None)


def _voicemail(engine: CallEngine, call: Call, leg: Leg, rest: str) -> None:
    pilot = engine.voicemail_pilot(leg.device, leg.line[0])
    if not pilot:
        engine.end_call(call, Cause.UNALLOCATED_NUMBER)
        return
    call.setup = replace(call.setup, called=pilot)
    engine.analyse(call, call.setup, engine.css_of(leg))


Handler = Callable[["CallEngine", "Call", "Leg", str], None]

_HANDLERS: dict[str, Handler] = {
    "forward_all": _forward_all,
    "forward_all_off": _forward_all_off,
    "dnd_on": _dnd(True),
    "dnd_off": _dnd(False),
    "hunt_toggle": _hunt_toggle,
    "pickup": lambda engine, call, leg, rest: pickup.own_group(engine, call),
    "directed_pickup": lambda engine, call, leg, rest: pickup.directed(engine, call, rest),
    "voicemail": _voicemail,
    "park": lambda engine, call, leg, rest: park.dialled_code(engine, call),
    "barge": lambda engine, call, leg, rest: barge.start(engine, call, leg, call.setup),
}
