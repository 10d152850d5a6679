"""The self-care API: an end user's own phones, lines and calls (``/api/v1/me/...``).

A user (role ``user``, or an administrator for themselves: permission
``self``) owns the devices listed on their user record
(``UserRecord.devices``) and their lines; anything else is 403.

- ``GET /api/v1/me/devices``: their devices with lines, speed dials and the
  plan's forward busy / no answer;
- ``GET /api/v1/me/coverage``: per device, do not disturb, each line's
  forward all and voicemail (MWI) state, live from the node (control op
  ``coverage``; 503 when the node is down);
- ``PUT /api/v1/me/lines/{dn}/forward_all`` ``{"destination": "1004"}``
  (``""`` off): as the phone's CFwdALL key (control op ``forward_all``; the
  line's forward CSS decides what it may reach, a refusal is 422);
- ``PUT /api/v1/me/lines/{dn}/forwarding`` ``{"forward_busy": "8000",
  "forward_no_answer": "8000", "cfna_timer": 20}``: the plan's fields of the
  line (``db.plan_edit.PlanEditor``, same validation as the API; ``""``
  removes a forward; the CSS an administrator gave a forward is kept);
- ``PUT /api/v1/me/dnd`` ``{"enabled": true}`` (control op ``dnd``);
- ``PUT /api/v1/me/devices/{device}/speed_dials`` ``{"speed_dials":
  [{"number", "label"}]}`` (plan, PlanEditor);
- ``GET /api/v1/me/calls``: their recent calls (CDRs of their numbers).

Every change is in the audit log. The self-care page (``pages_self``) calls
the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from offhook.db.plan_edit import EditError, Invalid, NotFound, PlanEditor, PreconditionFailed
from offhook.ris.control import ControlError, NodeUnavailable
from offhook.web.api_plan import output_schema
from offhook.web.deps import AUTH_ERRORS, Principal, audit, ctx, require
from offhook.web.roles import Permission

__all__ = [
    "Refused",
    "my_calls",
    "my_coverage",
    "my_devices",
    "router",
    "set_dnd",
    "set_forward_all",
    "set_forwarding",
    "set_speed_dials",
]

_ERROR = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
_ERROR_TEXT = {
    400: "the body is not JSON",
    401: "not authenticated (no or a bad token or session)",
    403: "not one of your devices or lines, no CSRF token, or the role has no self-care",
    409: "the change breaks other plan objects",
    412: "your phone was changed meanwhile: reload and try again",
    422: "refused (detail: [{loc, msg}]): not a number, or one the line may not forward to",
    503: "node unavailable",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        c: {"description": _ERROR_TEXT[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


router = APIRouter(
    prefix="/api/v1/me", tags=["self-care"], responses={**AUTH_ERRORS, **_errors(403)}
)

MAX_CALLS = 200
FORWARD_CAUSES = {
    1: "that number cannot be reached from this line (its forward calling search space)",
    25: "a line cannot forward to itself",
}


class Refused(Exception):
    """A self-care change the plan or the node refused: HTTP ``status`` with ``detail``."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def _http(exc: Refused) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.detail)


@dataclass(frozen=True, slots=True)
class Owned:
    """One of the user's devices as the plan has it (API view, no password)."""

    name: str
    view: dict[str, Any]
    etag: str

    def line(self, dn: str) -> dict[str, Any] | None:
        return next((ln for ln in self.view.get("lines") or [] if ln.get("dn") == dn), None)


def _editor(request: Request) -> PlanEditor:
    context = ctx(request)
    return PlanEditor(context.engine, context.settings.sip.realm)


async def owned_devices(request: Request, principal: Principal) -> list[Owned]:
    """The user's devices that exist in the plan, in the order of their user record."""
    ed = _editor(request)
    out = []
    for name in principal.user.devices:
        try:
            view, etag = await run_in_threadpool(ed.get, "devices", name)
        except NotFound:
            continue
        out.append(Owned(name, view, etag))
    return out


async def _owned_device(request: Request, principal: Principal, device: str) -> Owned:
    for owned in await owned_devices(request, principal):
        if owned.name == device:
            return owned
    raise Refused(403, f"device {device!r} is not yours")


async def _owned_line(
    request: Request, principal: Principal, dn: str, device: str | None
) -> tuple[Owned, dict[str, Any]]:
    """The user's device with line ``dn`` (``device`` picks one when several have it)."""
    for owned in await owned_devices(request, principal):
        if device is not None and owned.name != device:
            continue
        line = owned.line(dn)
        if line is not None:
            return owned, line
    raise Refused(403, f"line {dn!r} is not on a device of yours")


async def _node(request: Request, op: str, **args: Any) -> Any:
    try:
        return await ctx(request).control.request(op, **args)
    except NodeUnavailable:
        raise Refused(503, "node unavailable") from None
    except ControlError as exc:
        raise Refused(422, str(exc)) from None
    except (ConnectionError, OSError, TimeoutError):
        raise Refused(503, "node unavailable") from None


# --- what the pages and the API share -------------------------------------------


async def my_devices(request: Request, principal: Principal) -> list[dict[str, Any]]:
    return [o.view for o in await owned_devices(request, principal)]


async def my_coverage(request: Request, principal: Principal) -> list[dict[str, Any]]:
    """Per device: ``{"device", "dnd", "lines": [{"dn", "partition", "forward_all", "mwi"}]}``."""
    out = []
    for owned in await owned_devices(request, principal):
        state = await _node(request, "coverage", device=owned.name)
        out.append({"device": owned.name, **state})
    return out


async def set_forward_all(
    request: Request, principal: Principal, dn: str, destination: str, device: str | None = None
) -> dict[str, Any]:
    """Forward all of line ``dn`` to ``destination`` ("" off), as the phone's CFwdALL."""
    owned, _ = await _owned_line(request, principal, dn, device)
    answer = await _node(request, "forward_all", device=owned.name, dn=dn, destination=destination)
    cause = answer.get("cause") if isinstance(answer, dict) else None
    if cause is not None:
        why = FORWARD_CAUSES.get(int(cause), f"refused (cause {cause})")
        raise Refused(
            422, [{"loc": "destination", "msg": f"cannot forward to {destination!r}: {why}"}]
        )
    result = {"device": owned.name, "dn": dn, "forward_all": destination or None}
    await run_in_threadpool(
        audit, request, principal, "forward_all", "lines", f"{owned.name}/{dn}", None, result
    )
    return result


def _forward(current: Any, destination: str | None) -> Any:
    """A forward set by the user: a destination, keeping the CSS an administrator gave it."""
    if destination is None:
        return current
    if destination == "":
        return None
    css = current.get("css", "") if isinstance(current, dict) else ""
    return {"destination": destination, **({"css": css} if css else {})}


async def set_forwarding(
    request: Request,
    principal: Principal,
    dn: str,
    *,
    forward_busy: str | None = None,
    forward_no_answer: str | None = None,
    cfna_timer: float | None = None,
    clear_timer: bool = False,
    device: str | None = None,
) -> dict[str, Any]:
    """Forward busy / no answer of line ``dn`` in the plan (None: unchanged, "": removed)."""
    owned, line = await _owned_line(request, principal, dn, device)
    lines = []
    for ln in owned.view.get("lines") or []:
        if ln.get("dn") == dn:
            ln = dict(ln)
            for key, value in (
                ("forward_busy", forward_busy),
                ("forward_no_answer", forward_no_answer),
            ):
                new = _forward(ln.get(key), value)
                if new is None:
                    ln.pop(key, None)
                else:
                    ln[key] = new
            if clear_timer:
                ln.pop("cfna_timer", None)
            elif cfna_timer is not None:
                ln["cfna_timer"] = cfna_timer
        lines.append(ln)
    index = next(i for i, ln in enumerate(lines) if ln.get("dn") == dn)
    view = await _patch(request, owned, {"lines": lines}, f"lines[{index}].")
    after: dict[str, Any] = next(ln for ln in view.get("lines") or [] if ln.get("dn") == dn)
    await run_in_threadpool(
        audit, request, principal, "forwarding", "lines", f"{owned.name}/{dn}", line, after
    )
    return after


async def _patch(request: Request, owned: Owned, partial: dict[str, Any], strip: str) -> Any:
    """Patch the user's device in the plan; the editor's problems as field locations."""
    try:
        view, _ = await run_in_threadpool(
            _editor(request).patch, "devices", owned.name, partial, owned.etag
        )
    except PreconditionFailed:
        raise Refused(412, "your phone was changed meanwhile: reload and try again") from None
    except Invalid as exc:
        prefix = f"devices[{owned.name}]."
        problems = [
            {"loc": loc.removeprefix(prefix).removeprefix(strip), "msg": msg}
            for loc, msg in exc.problems
        ]
        raise Refused(422, problems or str(exc)) from None
    except EditError as exc:
        problems = [{"loc": loc, "msg": msg} for loc, msg in exc.problems]
        raise Refused(409, problems or str(exc)) from None
    return view


async def set_dnd(
    request: Request, principal: Principal, enabled: bool, device: str | None = None
) -> list[str]:
    """Do not disturb on or off on ``device`` (all the user's devices when None)."""
    if device is not None:
        names = [(await _owned_device(request, principal, device)).name]
    else:
        names = [o.name for o in await owned_devices(request, principal)]
    for name in names:
        await _node(request, "dnd", device=name, enabled=enabled)
        await run_in_threadpool(
            audit, request, principal, "dnd", "devices", name, None, {"dnd": enabled}
        )
    return names


async def set_speed_dials(
    request: Request, principal: Principal, device: str, speed_dials: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    owned = await _owned_device(request, principal, device)
    before = owned.view.get("speed_dials") or []
    view = await _patch(request, owned, {"speed_dials": speed_dials}, "")
    after: list[dict[str, Any]] = view.get("speed_dials") or []
    await run_in_threadpool(
        audit,
        request,
        principal,
        "speed_dials",
        "devices",
        owned.name,
        {"speed_dials": before},
        {"speed_dials": after},
    )
    return after


async def my_calls(request: Request, principal: Principal, limit: int = 20) -> list[dict[str, Any]]:
    """The user's recent calls: CDRs whose calling, called or original called number
    is one of their lines, newest first."""
    numbers = sorted(
        {
            ln.get("dn", "")
            for o in await owned_devices(request, principal)
            for ln in o.view.get("lines") or []
        }
        - {""}
    )
    repo = ctx(request).cdrs
    rows = []
    for number in numbers:
        rows.extend(await run_in_threadpool(partial(repo.search, number=number, limit=limit)))
    seen: set[str] = set()
    unique = []
    for row in sorted(rows, key=lambda r: r.start, reverse=True):
        ident = f"{row.call_id}/{row.start.isoformat()}/{row.called}"
        if ident not in seen:
            seen.add(ident)
            unique.append(row)
    return [
        {
            "start": r.start.isoformat(),
            "calling": r.calling,
            "called": r.called,
            "original_called": r.original_called,
            "redirect_reason": r.redirect_reason,
            "duration": r.duration,
            "cause": r.cause,
            "cause_text": r.cause_text,
            "direction": "out" if r.calling in numbers else "in",
            "answered": r.answer is not None,
        }
        for r in unique[:limit]
    ]


# --- the API ---------------------------------------------------------------------

Self = Annotated[Principal, require(Permission.SELF)]


class ForwardAll(BaseModel):
    destination: str = Field(max_length=32, description='where calls go; "" turns it off')
    device: str | None = Field(default=None, max_length=64)


class Forwarding(BaseModel):
    forward_busy: str | None = Field(
        default=None, max_length=32, description='where calls go when busy; "" removes it'
    )
    forward_no_answer: str | None = Field(
        default=None, max_length=32, description='where unanswered calls go; "" removes it'
    )
    cfna_timer: float | None = Field(
        default=None,
        ge=1,
        le=600,
        description="seconds of ringing before no answer; null puts back the default",
    )
    device: str | None = Field(
        default=None, max_length=64, description="the device, when the line is on several"
    )


class Dnd(BaseModel):
    enabled: bool
    device: str | None = Field(default=None, max_length=64)


class SpeedDial(BaseModel):
    number: str = Field(max_length=32)
    label: str = Field(default="", max_length=40)


class SpeedDials(BaseModel):
    speed_dials: list[SpeedDial] = Field(max_length=64)


class Mwi(BaseModel):
    waiting: bool
    new: int
    old: int


class CoverageLine(BaseModel):
    dn: str
    partition: str
    forward_all: str | None
    mwi: Mwi


class Coverage(BaseModel):
    device: str
    dnd: bool
    lines: list[CoverageLine]


class CoverageList(BaseModel):
    items: list[Coverage]


_DEVICE = output_schema("devices")
_DEVICE_LIST = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": _DEVICE},
        "total": {"type": "integer", "minimum": 0},
    },
    "required": ["items", "total"],
}
_LINE = _DEVICE["properties"]["lines"]["items"]


def _ok(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "OK", "content": {"application/json": {"schema": schema}}}}


class ForwardAllSet(BaseModel):
    device: str
    dn: str
    forward_all: str | None


class DndSet(BaseModel):
    dnd: bool
    devices: list[str]


class SpeedDialList(BaseModel):
    speed_dials: list[SpeedDial]


class Call(BaseModel):
    start: str
    calling: str
    called: str
    original_called: str
    redirect_reason: str
    duration: int
    cause: int
    cause_text: str
    direction: str = Field(description="out: from one of your numbers; in: to one")
    answered: bool


class CallList(BaseModel):
    items: list[Call]
    total: int


@router.get(
    "/devices",
    response_model=None,
    responses=_ok(_DEVICE_LIST),
    summary="Your devices with their lines, forwards and speed dials (as the plan has them)",
)
async def get_devices(request: Request, principal: Self) -> Any:
    items = await my_devices(request, principal)
    return {"items": items, "total": len(items)}


@router.get(
    "/coverage",
    response_model=CoverageList,
    responses=_errors(503),
    summary="Do not disturb, forward all and voicemail (MWI) of your lines, live from the node",
)
async def get_coverage(request: Request, principal: Self) -> Any:
    try:
        return {"items": await my_coverage(request, principal)}
    except Refused as exc:
        raise _http(exc) from None


@router.put(
    "/lines/{dn}/forward_all",
    response_model=ForwardAllSet,
    responses=_errors(400, 422, 503),
    summary="Forward all calls of your line (as the phone's CFwdALL key)",
    description="The line's forward calling search space decides what it may reach: "
    'an unreachable number or the line itself is refused (422). "" turns it off.',
)
async def put_forward_all(request: Request, dn: str, body: ForwardAll, principal: Self) -> Any:
    try:
        return await set_forward_all(request, principal, dn, body.destination, body.device)
    except Refused as exc:
        raise _http(exc) from None


@router.put(
    "/lines/{dn}/forwarding",
    response_model=None,
    responses={**_ok(_LINE), **_errors(400, 409, 412, 422)},
    summary="Forward busy / no answer of your line and the ring time before no answer",
    description="Kept in the plan (validated like the plan API). A field left out is "
    'unchanged; "" removes a forward; a calling search space an administrator gave '
    "a forward is kept. The answer is the line as the plan now has it.",
)
async def put_forwarding(request: Request, dn: str, body: Forwarding, principal: Self) -> Any:
    try:
        return await set_forwarding(
            request,
            principal,
            dn,
            forward_busy=body.forward_busy,
            forward_no_answer=body.forward_no_answer,
            cfna_timer=body.cfna_timer,
            clear_timer="cfna_timer" in body.model_fields_set and body.cfna_timer is None,
            device=body.device,
        )
    except Refused as exc:
        raise _http(exc) from None


@router.put(
    "/dnd",
    response_model=DndSet,
    responses=_errors(400, 422, 503),
    summary="Do not disturb on or off (one device, or all of yours)",
)
async def put_dnd(request: Request, body: Dnd, principal: Self) -> Any:
    try:
        devices = await set_dnd(request, principal, body.enabled, body.device)
    except Refused as exc:
        raise _http(exc) from None
    return {"dnd": body.enabled, "devices": devices}


@router.put(
    "/devices/{device}/speed_dials",
    response_model=SpeedDialList,
    responses=_errors(400, 409, 412, 422),
    summary="Replace the speed dials of your (SCCP) phone; buttons in order",
)
async def put_speed_dials(request: Request, device: str, body: SpeedDials, principal: Self) -> Any:
    try:
        items = await set_speed_dials(
            request, principal, device, [sd.model_dump() for sd in body.speed_dials]
        )
    except Refused as exc:
        raise _http(exc) from None
    return {"speed_dials": items}


@router.get(
    "/calls",
    response_model=CallList,
    summary="Your recent calls (from and to your numbers, newest first)",
)
async def get_calls(
    request: Request,
    principal: Self,
    limit: Annotated[int, Query(ge=1, le=MAX_CALLS)] = 20,
) -> Any:
    items = await my_calls(request, principal, limit)
    return {"items": items, "total": len(items)}
