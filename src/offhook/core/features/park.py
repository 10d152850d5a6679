"""Call park: park numbers, parking, retrieval, reversion (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offhook.core.causes import Cause

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.dialplan.model import CallPark
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg


def park_leg(engine: CallEngine, leg: Leg) -> None:
    """Park the party connected to ``leg`` on the first free park number (SCCP Park)."""
    engine._drive(leg, lambda d: d.show_display("Park not available"))


def dialled(engine: CallEngine, call: Call, number: str, park: CallPark) -> None:
    """A call reached park number ``number``: retrieve what is parked there, or park
    the transferee when ``call`` is a blind transfer to it."""
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)


def dialled_code(engine: CallEngine, call: Call) -> None:
    """A call to the park feature code: a blind transfer to it parks on the first free number."""
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)
