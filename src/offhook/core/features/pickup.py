"""Call pickup: own group, another group by number, directed (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offhook.core.causes import Cause

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine


def from_group(engine: CallEngine, call: Call, group: str) -> None:
    """The caller of ``call`` picks up the oldest call ringing in pickup group ``group``."""
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)


def own_group(engine: CallEngine, call: Call) -> None:
    """The caller picks up a call ringing in its own line's pickup group (PickUp, ``*8``)."""
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)


def directed(engine: CallEngine, call: Call, dn: str) -> None:
    """The caller picks up the call ringing directory number ``dn`` (``**dn``)."""
    engine.end_call(call, Cause.UNALLOCATED_NUMBER)
