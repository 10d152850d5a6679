"""CTI commands: REST under ``/api/v1/cti`` (permission ``cti``), each one node control op.

A command names the device it acts for; the token's user must have that
device in their CTI scope (``cti.scope``: the devices on their user record;
``cti.all``: any), else 403. Lines (forward all, MWI) must be lines of one
of their devices. The node answers each command with a command id
(``{"command": "c7", ...}``); the events of the calls it touched carry that
``command`` on the event stream. A refusal by the node (no such call,
wrong device, a state that does not allow it) is 409 with its reason; a
node that does not answer is 503.

=========================================================  ======================
route                                                      node op
=========================================================  ======================
``POST /devices/{device}/calls`` {number, line?, ...}      ``cti_make_call``
``POST /devices/{device}/calls/{call_id}/answer``          ``cti_answer``
``POST .../hangup``, ``.../hold``, ``.../resume``          ``cti_hangup`` ...
``POST .../transfer`` {target} (blind)                     ``cti_transfer``
``POST .../consult`` {number}                              ``cti_consult``
``POST .../complete_transfer`` {other_call_id}             ``cti_complete_transfer``
``POST .../conference`` {other_call_id}                    ``cti_conference``
``POST .../redirect`` {target} (a ringing call)            ``cti_redirect``
``POST .../park``                                          ``cti_park``
``POST .../dtmf`` {digits}                                 ``cti_dtmf``
``POST /devices/{device}/pickup`` {number?}                ``cti_pickup``
``PUT /devices/{device}/dnd`` {enabled}                    ``dnd``
``PUT /lines/{dn}/forward_all`` {destination, device?}     ``forward_all``
``PUT /lines/{dn}/mwi`` {waiting, new?, old?, partition?}  ``cti_mwi``
``GET /snapshot``                                          ``cti_snapshot`` (scoped)
=========================================================  ======================

Forward, DND and MWI changes are recorded in the audit log; calls are in
the call records.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from offhook.cti.scope import Scope
from offhook.ris.control import ControlError, NodeUnavailable
from offhook.web.deps import AUTH_ERRORS, Principal, audit, ctx, error_responses, require
from offhook.web.roles import Permission

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/cti",
    tags=["cti"],
    responses={**AUTH_ERRORS, **error_responses(400, 409, 503)},
)

Cti = Annotated[Principal, require(Permission.CTI)]

_NAME = Field(min_length=1, max_length=64)
_NUMBER = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z*#+@._-]+$")


class Media(BaseModel):
    """Where a CTI port's media goes (the application's RTP address)."""

    address: str = Field(min_length=1, max_length=64)
    port: int = Field(ge=1, le=65535)
    codec: Literal["PCMU", "PCMA"] = "PCMU"


class MakeCall(BaseModel):
    number: str = _NUMBER
    line: str = Field(default="", max_length=32, description="the DN to call from")
    auto_answer: bool = Field(
        default=False, description="answer the device's leg itself (where the device can)"
    )
    media: Media | None = Field(default=None, description="CTI ports only")


class Answer(BaseModel):
    media: Media | None = Field(default=None, description="CTI ports only")


class Target(BaseModel):
    target: str = _NUMBER


class Number(BaseModel):
    number: str = _NUMBER


class OtherCall(BaseModel):
    other_call_id: str = _NAME


class Digits(BaseModel):
    digits: str = Field(min_length=1, max_length=64, pattern=r"^[0-9*#A-Da-d]+$")


class Pickup(BaseModel):
    number: str = Field(default="", max_length=64, description='"" for the pickup group')
    auto_answer: bool = False


class Dnd(BaseModel):
    enabled: bool


class ForwardAll(BaseModel):
    destination: str = Field(max_length=64, description='where calls go; "" turns it off')
    device: str | None = Field(
        default=None, max_length=64, description="the device, when the line is on several"
    )


class Mwi(BaseModel):
    waiting: bool
    new: int = Field(default=0, ge=0, le=100_000)
    old: int = Field(default=0, ge=0, le=100_000)
    partition: str | None = Field(default=None, max_length=64)


class Command(BaseModel):
    """A command's answer: its id (the events it causes carry it), and what it made."""

    command: str
    call_id: str | None = None
    number: str | None = None


# --- helpers -----------------------------------------------------------------------


async def _scope(request: Request, principal: Principal) -> Scope:
    service = request.app.state.cti
    if not service.settings.enabled:
        raise HTTPException(status_code=503, detail="CTI is off ([cti] enabled = false)")
    scope: Scope = await run_in_threadpool(service.scope_of, principal.user)
    return scope


async def _device(request: Request, principal: Principal, device: str) -> Scope:
    scope = await _scope(request, principal)
    if not scope.has_device(device):
        raise HTTPException(status_code=403, detail=f"device {device!r} is not yours")
    return scope


async def _node(request: Request, op: str, **args: Any) -> Any:
    try:
        return await ctx(request).control.request(op, **args)
    except ControlError as exc:
        raise HTTPException(status_code=409, detail=str(exc) or "refused") from None
    except (NodeUnavailable, ConnectionError, OSError, TimeoutError):
        raise HTTPException(status_code=503, detail="node unavailable") from None


def _command(answer: Any) -> Command:
    if not isinstance(answer, dict) or not isinstance(answer.get("command"), str):
        raise HTTPException(status_code=503, detail="the node gave no command id")
    return Command(
        command=answer["command"],
        call_id=answer.get("call_id") if isinstance(answer.get("call_id"), str) else None,
        number=answer.get("number") if isinstance(answer.get("number"), str) else None,
    )


async def _on_call(
    request: Request, principal: Principal, op: str, device: str, call_id: str, **args: Any
) -> Command:
    await _device(request, principal, device)
    return _command(await _node(request, op, device=device, call_id=call_id, **args))


_CALL = "/devices/{device}/calls/{call_id}"

# --- calls -----------------------------------------------------------------------------


@router.post("/devices/{device}/calls", response_model_exclude_none=True)
async def make_call(request: Request, principal: Cti, device: str, body: MakeCall) -> Command:
    """Click to dial: ring ``device`` first, then call ``number`` when it answers."""
    await _device(request, principal, device)
    args: dict[str, Any] = {
        "device": device,
        "number": body.number,
        "line": body.line,
        "auto_answer": body.auto_answer,
    }
    if body.media is not None:
        args["media"] = body.media.model_dump()
    return _command(await _node(request, "cti_make_call", **args))


@router.post(f"{_CALL}/answer", response_model_exclude_none=True)
async def answer(
    request: Request, principal: Cti, device: str, call_id: str, body: Answer | None = None
) -> Command:
    """Answer a call ringing on ``device`` (SIP where the phone allows, SCCP, CTI ports)."""
    media = body.media.model_dump() if body is not None and body.media is not None else None
    extra = {"media": media} if media is not None else {}
    return await _on_call(request, principal, "cti_answer", device, call_id, **extra)


@router.post(f"{_CALL}/hangup", response_model_exclude_none=True)
async def hangup(request: Request, principal: Cti, device: str, call_id: str) -> Command:
    return await _on_call(request, principal, "cti_hangup", device, call_id)


@router.post(f"{_CALL}/hold", response_model_exclude_none=True)
async def hold(request: Request, principal: Cti, device: str, call_id: str) -> Command:
    return await _on_call(request, principal, "cti_hold", device, call_id)


@router.post(f"{_CALL}/resume", response_model_exclude_none=True)
async def resume(request: Request, principal: Cti, device: str, call_id: str) -> Command:
    return await _on_call(request, principal, "cti_resume", device, call_id)


@router.post(f"{_CALL}/transfer", response_model_exclude_none=True)
async def transfer(
    request: Request, principal: Cti, device: str, call_id: str, body: Target
) -> Command:
    """Blind transfer of the call's other party to ``target``."""
    return await _on_call(request, principal, "cti_transfer", device, call_id, target=body.target)


@router.post(f"{_CALL}/consult", response_model_exclude_none=True)
async def consult(
    request: Request, principal: Cti, device: str, call_id: str, body: Number
) -> Command:
    """Hold the call and call ``number`` (the consultation call's id is answered)."""
    return await _on_call(request, principal, "cti_consult", device, call_id, number=body.number)


@router.post(f"{_CALL}/complete_transfer", response_model_exclude_none=True)
async def complete_transfer(
    request: Request, principal: Cti, device: str, call_id: str, body: OtherCall
) -> Command:
    """Join the held call and the consultation call; ``device`` leaves."""
    return await _on_call(
        request,
        principal,
        "cti_complete_transfer",
        device,
        call_id,
        other_call_id=body.other_call_id,
    )


@router.post(f"{_CALL}/conference", response_model_exclude_none=True)
async def conference(
    request: Request, principal: Cti, device: str, call_id: str, body: OtherCall
) -> Command:
    """Join the two calls of ``device`` in a conference."""
    return await _on_call(
        request, principal, "cti_conference", device, call_id, other_call_id=body.other_call_id
    )


@router.post(f"{_CALL}/redirect", response_model_exclude_none=True)
async def redirect(
    request: Request, principal: Cti, device: str, call_id: str, body: Target
) -> Command:
    """Send a call ringing on ``device`` (a phone or a route point) to ``target``."""
    await _device(request, principal, device)
    answer = await _node(
        request, "cti_redirect", call_id=call_id, target=body.target, device=device
    )
    return _command(answer)


@router.post(f"{_CALL}/park", response_model_exclude_none=True)
async def park(request: Request, principal: Cti, device: str, call_id: str) -> Command:
    """Park the call's other party (the park number is answered)."""
    return await _on_call(request, principal, "cti_park", device, call_id)


@router.post(f"{_CALL}/dtmf", response_model_exclude_none=True)
async def dtmf(
    request: Request, principal: Cti, device: str, call_id: str, body: Digits
) -> Command:
    return await _on_call(request, principal, "cti_dtmf", device, call_id, digits=body.digits)


@router.post("/devices/{device}/pickup", response_model_exclude_none=True)
async def pickup(request: Request, principal: Cti, device: str, body: Pickup) -> Command:
    """Pick up a call ringing in ``device``'s pickup group, or at ``number``."""
    await _device(request, principal, device)
    answer = await _node(
        request, "cti_pickup", device=device, number=body.number, auto_answer=body.auto_answer
    )
    return _command(answer)


# --- coverage ---------------------------------------------------------------------------


class DndSet(BaseModel):
    device: str
    dnd: bool


@router.put("/devices/{device}/dnd")
async def set_dnd(request: Request, principal: Cti, device: str, body: Dnd) -> DndSet:
    await _device(request, principal, device)
    await _node(request, "dnd", device=device, enabled=body.enabled)
    await run_in_threadpool(
        audit, request, principal, "dnd", "devices", device, None, {"dnd": body.enabled}
    )
    return DndSet(device=device, dnd=body.enabled)


class ForwardAllSet(BaseModel):
    device: str
    dn: str
    forward_all: str | None


def _line_device(scope: Scope, dn: str, device: str | None, owned: tuple[str, ...]) -> str:
    """The device to set line ``dn``'s forward on (403 when it is not the user's)."""
    if not scope.has_line(dn):
        raise HTTPException(status_code=403, detail=f"line {dn!r} is not yours")
    if device is not None:
        if not scope.has_device(device):
            raise HTTPException(status_code=403, detail=f"device {device!r} is not yours")
        return device
    if not owned:
        problem = {"loc": ["body", "device"], "msg": "name the device", "type": "missing"}
        raise HTTPException(status_code=422, detail=[problem])
    return owned[0]


@router.put("/lines/{dn}/forward_all")
async def set_forward_all(
    request: Request, principal: Cti, dn: str, body: ForwardAll
) -> ForwardAllSet:
    """Forward all calls of line ``dn`` (as the phone's CFwdALL key; ``""`` off)."""
    scope = await _scope(request, principal)
    service = request.app.state.cti
    owned: tuple[str, ...] = ()
    if body.device is None and not scope.everything:
        owned = await run_in_threadpool(service.lines.devices_with, dn, principal.user.devices)
    device = _line_device(scope, dn, body.device, owned)
    answer = await _node(
        request, "forward_all", device=device, dn=dn, destination=body.destination or None
    )
    cause = answer.get("cause") if isinstance(answer, dict) else None
    if cause is not None:
        raise HTTPException(
            status_code=409, detail=f"cannot forward to {body.destination!r} (cause {cause})"
        )
    result = ForwardAllSet(device=device, dn=dn, forward_all=body.destination or None)
    await run_in_threadpool(
        audit,
        request,
        principal,
        "forward_all",
        "lines",
        f"{device}/{dn}",
        None,
        result.model_dump(),
    )
    return result


@router.put("/lines/{dn}/mwi", response_model_exclude_none=True)
async def set_mwi(request: Request, principal: Cti, dn: str, body: Mwi) -> Command:
    """Light or clear the message waiting indicator of line ``dn`` (a voicemail system)."""
    scope = await _scope(request, principal)
    if not scope.has_line(dn, body.partition):
        raise HTTPException(status_code=403, detail=f"line {dn!r} is not yours")
    args: dict[str, Any] = {"dn": dn, "waiting": body.waiting, "new": body.new, "old": body.old}
    if body.partition is not None:
        args["partition"] = body.partition
    result = _command(await _node(request, "cti_mwi", **args))
    after = {"waiting": body.waiting, "new": body.new, "old": body.old}
    await run_in_threadpool(audit, request, principal, "mwi", "lines", dn, None, after)
    return result


@router.get("/snapshot")
async def snapshot(request: Request, principal: Cti) -> dict[str, Any]:
    """Devices, lines and calls now, as far as the token may see them."""
    scope = await _scope(request, principal)
    answer = await _node(request, "cti_snapshot")
    if not isinstance(answer, dict):
        raise HTTPException(status_code=503, detail="bad snapshot from the node")
    return scope.snapshot(answer)
