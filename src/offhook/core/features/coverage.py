"""The hook between call control and call coverage: what a call does when nobody answers.

A feature that offers a call somewhere (a directory number's coverage in
``features.forward``, a hunt in ``features.hunt``) puts an object on
``call.coverage``. Call control asks it when every fork of the call has
failed (``failed``: True when the feature carried the call on, e.g. forward
busy or the next hunt member) and tells it who answered (``answered``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg


class Coverage(Protocol):
    # A fork declining (cause 21, SIP 6xx) normally ends the whole call at once
    # (RFC 3261 §16.7); True: it is one more failure the feature carries on from.
    passes_declines: bool

    def failed(self, engine: CallEngine, call: Call, cause: int) -> bool:
        """Every fork failed (``cause``, the best of their causes): carry the call on?"""
        ...

    def answered(self, engine: CallEngine, call: Call, leg: Leg) -> None:
        """``leg`` answered the call."""
        ...


def exhausted(engine: CallEngine, call: Call, cause: int) -> bool:
    """Every fork of ``call`` failed: True when its coverage carried it on."""
    cov = call.coverage
    return cov is not None and not call.connected and cov.failed(engine, call, cause)


def passes_declines(call: Call) -> bool:
    """A fork of ``call`` declining does not end it (its coverage carries on)."""
    cov = call.coverage
    return cov is not None and cov.passes_declines


def answered(engine: CallEngine, call: Call, leg: Leg) -> None:
    cov = call.coverage
    if cov is not None:
        cov.answered(engine, call, leg)
