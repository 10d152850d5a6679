"""Call park: park numbers, parking, retrieval, reversion (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg


def park_leg(engine: CallEngine, leg: Leg) -> None:
    """Park the party connected to ``leg`` on the first free park number."""
    engine._drive(leg, lambda d: d.show_display("Park not available"))
