"""The real-time information API: which devices are registered where, which calls are up.

In the spirit of Cisco RisPort's ``selectCmDevice``; the node answers (its
control ops ``ris_devices`` and ``ris_calls``, ``node_ris`` over
``ris.query``), this router only checks the query and passes it on:

- ``GET /api/v1/ris/devices`` (``live.read``): ``name`` (a glob: ``*`` any
  run of characters, ``?`` one; case ignored), ``protocol`` (sip, sccp,
  cti), ``status`` (registered, unregistered, rejected, any), ``address``
  (an IP address, a network ``10.0.0.0/24`` or a leading part ``10.0.``),
  ``limit`` (1-5000, default 1000): ``{"node", "total", "truncated",
  "devices": [{name, protocol, status, model, firmware, lines, address,
  port, transport, registered_at, unregistered_at, last_rejection,
  rejections, node, configured}]}``;
- ``GET /api/v1/ris/calls`` (``live.read``): ``device`` (a glob, optional):
  ``{"node", "calls": [{call_id, calling, called, state, start, answer,
  legs: [{leg_id, device, line, state, direction, media: [{kind, address,
  port, codec, direction}]}]}]}``.

503 ``{"detail": "node unavailable"}`` when the node does not answer; 422
when the node refuses the query (a bad address, say); 502 for any other
error of the node.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from offhook.ris.control import ControlError
from offhook.web.deps import AUTH_ERRORS, ctx, require
from offhook.web.roles import Permission

__all__ = ["MAX_LIMIT", "router"]

MAX_LIMIT = 5000
MAX_PATTERN = 128

router = APIRouter(prefix="/api/v1/ris", responses=AUTH_ERRORS, tags=["live"])

_DETAIL = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/json": {"schema": _DETAIL}}}
    for code, text in (
        (422, "the query is not one the node takes"),
        (502, "the node answered with an error"),
        (503, "node unavailable"),
    )
}
_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_DEVICE = {
    "type": "object",
    "properties": {
        "name": _STR,
        "protocol": {"type": "string", "description": "sip, sccp or cti"},
        "status": {"type": "string", "enum": ["registered", "unregistered", "rejected"]},
        "model": {"type": "string", "description": "SIP User-Agent; SCCP device type"},
        "firmware": {"type": "string", "description": "the load it runs, when it said"},
        "lines": {"type": "array", "items": _STR, "description": "directory numbers"},
        "address": {"type": "string", "description": "where it registered (or was refused) from"},
        "port": _INT,
        "transport": _STR,
        "registered_at": _TIME,
        "unregistered_at": _TIME,
        "last_rejection": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"time": _TIME, "reason": _STR, "source": _STR},
                    "required": ["time", "reason", "source"],
                },
                {"type": "null"},
            ]
        },
        "rejections": _INT,
        "node": _STR,
        "configured": {"type": "boolean", "description": "a device of the plan"},
        "blocked": {
            "type": "boolean",
            "description": "not registered, and its address is blocked now for failed logins "
            "(its registrations are dropped unanswered)",
        },
    },
    "required": ["name", "protocol", "status", "model", "lines", "address", "node"],
}
_MEDIA = {
    "type": "object",
    "properties": {
        "kind": _STR,
        "address": _STR,
        "port": _INT,
        "codec": _STR,
        "direction": _STR,
    },
    "required": ["address", "port", "codec"],
}
_LEG = {
    "type": "object",
    "properties": {
        "leg_id": _STR,
        "device": _STR,
        "line": _STR,
        "state": _STR,
        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
        "media": {"type": "array", "items": _MEDIA},
    },
    "required": ["leg_id", "device", "line", "state", "direction", "media"],
}
_CALL = {
    "type": "object",
    "properties": {
        "call_id": _STR,
        "calling": _STR,
        "called": _STR,
        "state": _STR,
        "start": _TIME,
        "answer": _TIME,
        "legs": {"type": "array", "items": _LEG},
    },
    "required": ["call_id", "calling", "called", "state", "legs"],
}


def _ok(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "OK", "content": {"application/json": {"schema": schema}}},
        **_ERRORS,
    }


async def _ask(request: Request, op: str, args: dict[str, Any]) -> Response:
    try:
        result = await ctx(request).control.request(op, **args)
    except (ConnectionError, OSError, TimeoutError):
        return JSONResponse({"detail": "node unavailable"}, status_code=503)
    except ControlError as exc:
        text = str(exc)
        if text.startswith("unknown op"):
            return JSONResponse({"detail": f"node error: {text}"}, status_code=502)
        return JSONResponse({"detail": text}, status_code=422)
    except Exception as exc:  # another NodeControl's error: the node's answer
        return JSONResponse({"detail": f"node error: {exc}"}, status_code=502)
    if not isinstance(result, dict):
        return JSONResponse({"detail": "node error: unexpected answer"}, status_code=502)
    return JSONResponse(result)


@router.get(
    "/devices",
    summary="Devices by name pattern, protocol, status and address (RisPort selectCmDevice)",
    dependencies=[require(Permission.LIVE_READ)],
    response_class=JSONResponse,
    responses=_ok(
        {
            "type": "object",
            "properties": {
                "node": _STR,
                "total": {"type": "integer", "description": "devices matched in all"},
                "truncated": {"type": "boolean", "description": "more matched than limit"},
                "devices": {"type": "array", "items": _DEVICE},
            },
            "required": ["total", "truncated", "devices"],
        }
    ),
)
async def ris_devices(
    request: Request,
    name: Annotated[
        str | None,
        Query(max_length=MAX_PATTERN, description="name glob (* any, ? one character)"),
    ] = None,
    protocol: Annotated[Literal["sip", "sccp", "cti", "any"] | None, Query()] = None,
    status: Annotated[
        Literal["registered", "unregistered", "rejected", "any"] | None, Query()
    ] = None,
    address: Annotated[
        str | None,
        Query(
            max_length=MAX_PATTERN,
            description="an IP address, a network (10.0.0.0/24) or its leading part (10.0.)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
) -> Response:
    args: dict[str, Any] = {"limit": limit}
    for key, value in (
        ("name", name),
        ("protocol", protocol),
        ("status", status),
        ("address", address),
    ):
        if value is not None:
            args[key] = value
    return await _ask(request, "ris_devices", args)


@router.get(
    "/calls",
    summary="Active calls with their legs and each leg's media address",
    dependencies=[require(Permission.LIVE_READ)],
    response_class=JSONResponse,
    responses=_ok(
        {
            "type": "object",
            "properties": {"node": _STR, "calls": {"type": "array", "items": _CALL}},
            "required": ["calls"],
        }
    ),
)
async def ris_calls(
    request: Request,
    device: Annotated[
        str | None,
        Query(max_length=MAX_PATTERN, description="only calls with a leg of these devices"),
    ] = None,
) -> Response:
    return await _ask(request, "ris_calls", {} if device is None else {"device": device})
