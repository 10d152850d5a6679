"""The self-care portal (``/self``): an end user's phones, forwarding, DND, speed dials, calls.

One page per user: each of their devices with its lines (forward all as the
phone's CFwdALL sets it, forward busy and no answer, voicemail waiting
indicator), do not disturb, speed dials (SCCP phones) and their recent
calls. Every form posts to a ``/self/...`` route that calls the same
function as the self-care API (``web.api_self``), so the checks (only their
own devices and lines, the plan's validation, the line's forward CSS) and
the audit log are the same; a refused change shows its reason next to the
field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response

from offhook.web.api_self import (
    Refused,
    my_calls,
    my_coverage,
    my_devices,
    set_dnd,
    set_forward_all,
    set_forwarding,
    set_speed_dials,
)
from offhook.web.deps import Principal, require
from offhook.web.pages_base import form_data, page_router, redirect, render
from offhook.web.pages_forms import row_indices
from offhook.web.roles import Permission

__all__ = ["router"]

router = page_router()

Self = Annotated[Principal, require(Permission.SELF)]


def _messages(detail: Any) -> dict[str, str]:
    if isinstance(detail, list):
        out: dict[str, str] = {}
        for p in detail:
            if isinstance(p, dict):
                out.setdefault(str(p.get("loc", "")) or "_", str(p.get("msg", "")))
        return out
    return {"_": str(detail)}


async def self_page(
    request: Request,
    principal: Principal,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    typed: dict[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    """The portal; ``errors``: per form id (``fwd-DEVICE-DN`` ...), field -> message;
    ``typed``: per form id, what the user typed in the refused form (shown again)."""
    devices = await my_devices(request, principal)
    why = ""
    try:
        coverage = {c["device"]: c for c in await my_coverage(request, principal)}
    except Refused as exc:
        coverage, why = {}, str(exc.detail)
    view = []
    for d in devices:
        live = coverage.get(d["name"])
        live_lines = {ln["dn"]: ln for ln in (live or {}).get("lines") or []}
        view.append(
            {
                "device": d,
                "dnd": live.get("dnd") if live else None,
                "lines": [
                    {
                        "line": ln,
                        "live": live_lines.get(ln.get("dn")),
                        "busy": (ln.get("forward_busy") or {}).get("destination", ""),
                        "no_answer": (ln.get("forward_no_answer") or {}).get("destination", ""),
                    }
                    for ln in d.get("lines") or []
                ],
            }
        )
    return render(
        request,
        "self.html",
        principal,
        status_code=status_code,
        title="My phones",
        devices=view,
        node_down=bool(why),
        why=why,
        calls=await my_calls(request, principal),
        errors=errors or {},
        typed=typed or {},
        typed_speed_dials={
            form_id: _speed_dials(form)
            for form_id, form in (typed or {}).items()
            if form_id.startswith("sd-")
        },
        saved=request.query_params.get("saved", ""),
    )


@router.get("/self")
async def self_get(request: Request, principal: Self) -> Response:
    return await self_page(request, principal)


async def _refused(
    request: Request,
    principal: Principal,
    form_id: str,
    exc: Refused,
    form: dict[str, str] | None = None,
) -> Response:
    """The portal again with the refusal next to the field and the form as it was typed."""
    typed = {form_id: dict(form)} if form is not None else {}
    return await self_page(
        request,
        principal,
        errors={form_id: _messages(exc.detail)},
        typed=typed,
        status_code=exc.status,
    )


@router.post("/self/lines/{dn}/forward_all")
async def self_forward_all(request: Request, dn: str, principal: Self) -> Response:
    form = await form_data(request)
    device = form.get("device") or None
    destination = "" if form.get("clear") else form.get("destination", "").strip()
    try:
        await set_forward_all(request, principal, dn, destination, device)
    except Refused as exc:
        return await _refused(
            request, principal, f"cfa-{device}-{dn}", exc, {"destination": destination}
        )
    return redirect(request, "/self?saved=forward+all")


@router.post("/self/lines/{dn}/forwarding")
async def self_forwarding(request: Request, dn: str, principal: Self) -> Response:
    form = await form_data(request)
    device = form.get("device") or None
    timer_text = form.get("cfna_timer", "").strip()
    form_id = f"fwd-{device}-{dn}"
    timer = None
    if timer_text:
        try:
            timer = float(timer_text)
        except ValueError:
            exc = Refused(422, [{"loc": "cfna_timer", "msg": f"{timer_text!r} is not a number"}])
            return await _refused(request, principal, form_id, exc, form)
    try:
        await set_forwarding(
            request,
            principal,
            dn,
            forward_busy=form.get("forward_busy", "").strip(),
            forward_no_answer=form.get("forward_no_answer", "").strip(),
            cfna_timer=timer,
            clear_timer=not timer_text,
            device=device,
        )
    except Refused as exc:
        return await _refused(request, principal, form_id, _plain_locs(exc), form)
    return redirect(request, "/self?saved=forwarding")


def _plain_locs(exc: Refused) -> Refused:
    """Problems of a line's forwards named by the form's fields (``forward_busy``)."""
    if not isinstance(exc.detail, list):
        return exc
    detail = []
    for p in exc.detail:
        loc = str(p.get("loc", ""))
        for field in ("forward_busy", "forward_no_answer", "cfna_timer"):
            if loc.startswith(field):
                loc = field
        detail.append({"loc": loc, "msg": p.get("msg", "")})
    return Refused(exc.status, detail)


@router.post("/self/dnd")
async def self_dnd(request: Request, principal: Self) -> Response:
    form = await form_data(request)
    device = form.get("device") or None
    try:
        await set_dnd(request, principal, form.get("enabled") == "on", device)
    except Refused as exc:
        return await _refused(request, principal, f"dnd-{device}", exc)
    return redirect(request, "/self?saved=do+not+disturb")


def _speed_dials(form: dict[str, str]) -> list[dict[str, Any]]:
    """The speed dial rows of the form (``speed_dials[0].number`` ...); empty rows dropped."""
    rows = []
    for i in row_indices(form, "speed_dials"):
        number = form.get(f"speed_dials[{i}].number", "").strip()
        label = form.get(f"speed_dials[{i}].label", "").strip()
        if number or label:
            rows.append({"number": number, "label": label})
    return rows


@router.post("/self/devices/{device}/speed_dials")
async def self_speed_dials(request: Request, device: str, principal: Self) -> Response:
    form = await form_data(request)
    speed_dials = _speed_dials(form)
    try:
        await set_speed_dials(request, principal, device, speed_dials)
    except Refused as exc:
        return await _refused(request, principal, f"sd-{device}", exc, form)
    return redirect(request, "/self?saved=speed+dials")
