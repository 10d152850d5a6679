"""``[overload]`` for node tests that drive overload by the injected load only."""

from __future__ import annotations

from typing import Any


def injected_only(**settings: Any) -> dict[str, Any]:
    """Overload control on (``OffhookServer`` turns it off), every measured signal off, so
    that a busy CI machine never makes the node shed: only ``overload_test_load`` counts.
    ``settings``: more ``[overload]`` keys."""
    off = {f"{signal}_{edge}": 0 for signal in ("cpu", "lag", "queue") for edge in ("high", "low")}
    return {"overload": {"enabled": True, "test_control": True, **off, **settings}}
