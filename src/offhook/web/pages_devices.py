"""Phones and their lines: the device list with registration state, add/edit, provisioning.

``/devices`` lists the plan's devices (name, description, protocol, model,
lines, calling search space) with whether each is registered now (from the
node's ``status``; "node unavailable" when it does not answer), and an SCCP
phone's configuration file on the node's HTTP provisioning listener. A
device's page is the plan form (``pages_plan``) with its registrations
above it: adding a SIP phone with a line is the name, the password and one
line's directory number.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offhook.common.addr import host_port, is_wildcard
from offhook.web.deps import Principal, ctx, require
from offhook.web.pages_base import (
    LIST_PAGE,
    editor,
    node_call,
    page_offset,
    page_router,
    plan_call,
    render,
)
from offhook.web.pages_plan import delete_object, edit_url, object_page, save_object
from offhook.web.roles import Permission

__all__ = ["registration_index", "router"]

router = page_router()

STATES = ("registered", "unregistered")
"""The phone list's status filter (while the node answers)."""


def registration_index(status: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Device name -> its registrations now (SIP bindings and SCCP phones)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not status:
        return out
    for r in status.get("registrations") or []:
        if isinstance(r, dict) and r.get("device"):
            protocol = str(r.get("protocol") or "sip").upper()
            out.setdefault(str(r["device"]), []).append({**r, "protocol": protocol})
    return out


def provisioning_url(request: Request, device: dict[str, Any]) -> str:
    """Where the node's HTTP provisioning serves an SCCP phone's file ("" for none)."""
    tftp = ctx(request).settings.tftp
    if device.get("protocol") != "sccp" or not tftp.enabled or not tftp.http or not tftp.http_port:
        return ""
    host = tftp.listen[0] if tftp.listen else "127.0.0.1"
    if is_wildcard(host):
        host = request.url.hostname or "127.0.0.1"
    return f"http://{host_port(host, tftp.http_port)}/{device['name']}.cnf.xml"


@router.get("/devices")
async def devices_page(
    request: Request, principal: Annotated[Principal, require(Permission.PLAN_READ)]
) -> Response:
    devices = await plan_call(editor(request).list, "devices")
    status, why = await node_call(request, "status")
    regs = registration_index(status)
    q = request.query_params.get("q", "").strip().lower()
    state = request.query_params.get("status", "")
    state = state if state in STATES and status is not None else ""
    offset = page_offset(request)
    rows = []
    for d in devices:
        lines = [ln.get("dn", "") for ln in d.get("lines") or []]
        text = " ".join([d["name"], d.get("description", ""), *lines]).lower()
        if q and q not in text:
            continue
        if state and (state == "registered") != bool(regs.get(d["name"])):
            continue
        rows.append(
            {
                "device": d,
                "lines": lines,
                "registrations": regs.get(d["name"], []),
                "url": edit_url("devices", d["name"]),
                "provisioning": provisioning_url(request, d),
            }
        )
    return render(
        request,
        "devices.html",
        principal,
        title="Phones",
        rows=rows[offset : offset + LIST_PAGE],
        matching=len(rows),
        total=len(devices),
        q=q,
        state=state,
        states=STATES,
        query=urlencode({k: v for k, v in (("q", q), ("status", state)) if v}),
        offset=offset,
        page=LIST_PAGE,
        node_down=status is None,
        why=why,
        saved=request.query_params.get("saved", ""),
        deleted=request.query_params.get("deleted", ""),
        can_write=principal.can(Permission.DEVICES_WRITE),
    )


async def _device_extra(request: Request, name: str | None, principal: Principal) -> dict[str, Any]:
    if name is None:
        return {"registrations": [], "node_down": False, "provisioning": "", "owners": None}
    status, why = await node_call(request, "status")
    device = {"name": name}
    try:
        device, _ = await plan_call(editor(request).get, "devices", name)
    except Exception:
        device = {"name": name}
    return {
        "registrations": registration_index(status).get(name, []),
        "node_down": status is None,
        "why": why,
        "provisioning": provisioning_url(request, device),
        "owners": await _owners(request, name) if principal.can(Permission.USERS_READ) else None,
    }


async def _owners(request: Request, device: str) -> list[str]:
    """The users who manage ``device`` in self-care (its owners, as CallManager's owner user)."""
    users = await run_in_threadpool(ctx(request).users.list)
    return [u.name for u in users if device in u.devices]


@router.get("/devices/new")
async def device_new(
    request: Request, principal: Annotated[Principal, require(Permission.DEVICES_WRITE)]
) -> Response:
    values = {"protocol": "sip", "lines": [{"dn": ""}]}
    return await object_page(
        request,
        principal,
        "devices",
        None,
        values=values,
        extra=await _device_extra(request, None, principal),
        template="device_form.html",
    )


@router.post("/devices/new")
async def device_create(
    request: Request, principal: Annotated[Principal, require(Permission.DEVICES_WRITE)]
) -> Response:
    return await save_object(
        request,
        principal,
        "devices",
        None,
        extra=await _device_extra(request, None, principal),
        template="device_form.html",
    )


@router.get("/devices/{name}")
async def device_page(
    request: Request, name: str, principal: Annotated[Principal, require(Permission.PLAN_READ)]
) -> Response:
    return await object_page(
        request,
        principal,
        "devices",
        name,
        extra=await _device_extra(request, name, principal),
        template="device_form.html",
    )


@router.post("/devices/{name}")
async def device_save(
    request: Request, name: str, principal: Annotated[Principal, require(Permission.DEVICES_WRITE)]
) -> Response:
    return await save_object(
        request,
        principal,
        "devices",
        name,
        extra=await _device_extra(request, name, principal),
        template="device_form.html",
    )


@router.post("/devices/{name}/delete")
async def device_delete(
    request: Request, name: str, principal: Annotated[Principal, require(Permission.DEVICES_WRITE)]
) -> Response:
    return await delete_object(request, principal, "devices", name)
