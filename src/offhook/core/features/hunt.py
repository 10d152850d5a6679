"""Hunt pilots, hunt lists and line groups (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offhook.core.causes import Cause

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.dialplan.model import HuntPilot
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup


def start(engine: CallEngine, call: Call, setup: Setup, pilot: HuntPilot) -> None:
    """Hunt ``call`` (to ``setup.called``, the pilot's number) over ``pilot``'s hunt list."""
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)
