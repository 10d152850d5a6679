"""The ops a node answers on its control endpoint (``ris.control``), over the call engine.

``status``: what ``offhook status`` shows (built in ``app``). The call
coverage a user sets from the web self-care portal, as the phone's own
keys would (``core.coverage_ops``):

- ``forward_all`` ``{device, dn, destination}``: forward all of ``device``'s
  line ``dn`` to ``destination`` (``""``: off, ``null``: back to the plan's);
  answers ``{"cause": null}`` when set, else the Q.850 cause of the refusal
  (1: no such line or a destination its forward CSS cannot reach, 25: the
  line itself);
- ``dnd`` ``{device, enabled}``: do not disturb on or off; answers ``{}``;
- ``coverage`` ``{device}``: ``{"dnd": bool, "lines": [{"dn", "partition",
  "forward_all": str | null, "mwi": {"waiting", "new", "old"}}]}``.

An unknown device or an argument of the wrong type is refused with
``ValueError`` (the control endpoint answers its text as the error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offhook.core.engine import CallEngine
from offhook.ris.control import Handler


def _text(args: dict[str, Any], name: str) -> str:
    value = args[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    return value


def _device(engine: CallEngine, args: dict[str, Any]) -> str:
    device = _text(args, "device")
    if engine.snapshot().device(device) is None:
        raise ValueError(f"no device {device!r}")
    return device


def control_ops(engine: CallEngine, status: Callable[[], dict[str, Any]]) -> dict[str, Handler]:
    """The node's control ops, by name."""

    def forward_all(args: dict[str, Any]) -> dict[str, Any]:
        device = _device(engine, args)
        dn = _text(args, "dn")
        destination = None if args["destination"] is None else _text(args, "destination")
        return {"cause": engine.set_forward_all(device, dn, destination)}

    def dnd(args: dict[str, Any]) -> dict[str, Any]:
        device = _device(engine, args)
        enabled = args["enabled"]
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        engine.set_dnd(device, enabled)
        return {}

    def coverage(args: dict[str, Any]) -> dict[str, Any]:
        device = _device(engine, args)
        lines = []
        for line in engine.snapshot().lines_of(device):
            forward = engine.forward_all_of(line.dn, line.partition)
            mwi = engine.messages(line.dn, line.partition)
            lines.append(
                {
                    "dn": line.dn,
                    "partition": line.partition,
                    "forward_all": forward.destination if forward is not None else None,
                    "mwi": {"waiting": mwi.waiting, "new": mwi.new, "old": mwi.old},
                }
            )
        return {"dnd": engine.dnd(device), "lines": lines}

    return {
        "status": lambda args: status(),
        "forward_all": forward_all,
        "dnd": dnd,
        "coverage": coverage,
    }
