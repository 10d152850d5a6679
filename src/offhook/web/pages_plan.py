"""Plan objects as pages: the list, the add/edit form, save and delete, for any section.

The device pages and the call routing pages are this one flow over
``db.plan_edit.PlanEditor`` (the editor the plan API uses, so a form is
validated by the same rules as the API and ``offhook load``): the form
comes from the section's model (``pages_forms``), a save is a create or a
replace with the ETag the form was rendered with (two admins cannot
silently overwrite each other: the second one is told the object changed),
a refused change shows its problems next to the fields, and every change
is in the audit log (``create``/``replace``/``delete`` with before and
after, as the API records them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from offhook.db.plan_edit import Conflict, EditError, Invalid, NotFound, PreconditionFailed
from offhook.db.plan_sections import SECTIONS, Section
from offhook.web.deps import Principal, audit
from offhook.web.pages_base import (
    editor,
    form_data,
    plan_call,
    plan_keys,
    problems_of,
    redirect,
    render,
)
from offhook.web.pages_forms import (
    REFERENCES,
    field_errors,
    form_fields,
    parse_form,
    split_fields,
)
from offhook.web.roles import SECTION_WRITE

__all__ = [
    "TITLES",
    "choices",
    "delete_object",
    "edit_url",
    "object_page",
    "save_object",
    "title_of",
]

TITLES: dict[str, str] = {
    "devices": "Phones",
    "partitions": "Partitions",
    "calling_search_spaces": "Calling search spaces",
    "trunks": "SIP trunks",
    "route_groups": "Route groups",
    "route_lists": "Route lists",
    "route_patterns": "Route patterns",
    "translation_patterns": "Translation patterns",
    "moh_sources": "Music on hold sources",
    "meetme": "Meet-me numbers",
    "media_resource_groups": "Media resource groups",
    "media_resource_lists": "Media resource lists",
    "line_groups": "Line groups",
    "hunt_lists": "Hunt lists",
    "hunt_pilots": "Hunt pilots",
    "pickup_groups": "Call pickup groups",
    "call_park": "Call park",
    "cti_route_points": "CTI route points",
    "cti_ports": "CTI ports",
}


def title_of(section: str) -> str:
    return TITLES.get(section, section.replace("_", " ").capitalize())


def base_url(section: str) -> str:
    return "/devices" if section == "devices" else f"/dialplan/{section}"


def edit_url(section: str, key: str) -> str:
    if section == "devices":
        return f"/devices/{quote(key, safe='')}"
    return f"/dialplan/{section}/edit?key={quote(key, safe='')}"


def delete_url(section: str, key: str) -> str:
    if section == "devices":
        return f"/devices/{quote(key, safe='')}/delete"
    return f"/dialplan/{section}/delete?key={quote(key, safe='')}"


async def choices(request: Request) -> dict[str, list[str]]:
    """Names a reference field may take, per section (suggestions in the form)."""
    keys = await plan_keys(request)
    return {name: keys[name] for name in sorted(set(REFERENCES.values()))}


NEW_PASSWORD_HELP = "SIP digest secret (a SIP phone needs one; stored only as its hash)"
PASSWORD_HELP = {
    (False, True): NEW_PASSWORD_HELP,
    (False, False): "SIP digest secret; leave empty to keep the stored one",
    (True, True): "the digest secret the carrier gave, if it asks for one",
    (True, False): "the carrier's digest secret; leave empty to keep the stored one",
}
"""Password help by (a trunk, a new object): never shown, so "empty keeps it" only on edits."""
SCCP_PASSWORD_HELP = "SIP phones only: an SCCP phone registers by its name, without one"


def _readonly_keys(sec: Section, creating: bool) -> frozenset[str]:
    return frozenset() if creating else frozenset(sec.key_fields)


async def object_page(
    request: Request,
    principal: Principal,
    section: str,
    key: str | None,
    *,
    values: Mapping[str, Any] | None = None,
    etag: str = "",
    problems: list[dict[str, str]] | None = None,
    status_code: int = 200,
    extra: Mapping[str, Any] | None = None,
    template: str = "object_form.html",
) -> Response:
    """The add (``key`` None) or edit form of one object, with the problems of a refused save."""
    sec = SECTIONS[section]
    if values is None and key is not None:
        try:
            values, etag = await plan_call(editor(request).get, section, key)
        except NotFound as exc:
            return render(
                request,
                "error.html",
                principal,
                status_code=404,
                title="Not found",
                message=str(exc),
            )
    creating = key is None
    can_write = principal.can(SECTION_WRITE[section])
    fields_ = form_fields(
        sec.spec,
        values,
        readonly=_readonly_keys(sec, creating),
        new_rows=can_write,
    )
    sccp = section == "devices" and (values or {}).get("protocol") == "sccp"
    for f in fields_:
        if f.kind == "password":
            f.help = SCCP_PASSWORD_HELP if sccp else PASSWORD_HELP[(section == "trunks", creating)]
    shown, folded = split_fields(fields_)
    errors, summary = field_errors(problems or [], section)
    return render(
        request,
        template,
        principal,
        status_code=status_code,
        title=f"New {sec.noun}" if creating else f"{sec.noun.capitalize()} {key}",
        section=section,
        section_title=title_of(section),
        noun=sec.noun,
        key=key,
        etag=etag,
        shown=shown,
        folded=folded,
        errors=errors,
        problems=summary,
        can_write=can_write,
        action=(base_url(section) + "/new") if creating else edit_url(section, key or ""),
        delete_action=None if creating else delete_url(section, key or ""),
        list_url=base_url(section),
        choice_lists=await choices(request) if can_write else {},
        **(extra or {}),
    )


async def save_object(
    request: Request,
    principal: Principal,
    section: str,
    key: str | None,
    *,
    extra: Mapping[str, Any] | None = None,
    template: str = "object_form.html",
) -> Response:
    """Save a posted form: create (``key`` None) or replace; on success back to the list."""
    sec = SECTIONS[section]
    form = await form_data(request)
    obj, parse_problems = parse_form(sec.spec, form)
    etag = form.get("etag", "")
    if parse_problems:
        return await object_page(
            request,
            principal,
            section,
            key,
            values=obj,
            etag=etag,
            problems=[{"loc": p["loc"], "msg": p["msg"]} for p in parse_problems],
            status_code=422,
            extra=extra,
            template=template,
        )
    ed = editor(request)
    try:
        before = None
        if key is None:
            view, _ = await plan_call(ed.create, section, obj)
            action = "create"
        else:
            before, _ = await plan_call(ed.get, section, key)
            view, _ = await plan_call(ed.replace, section, key, obj, etag or None)
            action = "replace"
    except EditError as exc:
        return await _refused(request, principal, section, key, obj, etag, exc, extra, template)
    new_key = sec.key(view)
    await plan_call(audit, request, principal, action, section, new_key, before, view)
    return redirect(request, base_url(section) + "?saved=" + quote(new_key, safe=""))


async def _refused(
    request: Request,
    principal: Principal,
    section: str,
    key: str | None,
    obj: Mapping[str, Any],
    etag: str,
    exc: EditError,
    extra: Mapping[str, Any] | None,
    template: str,
) -> Response:
    if isinstance(exc, NotFound):
        return render(
            request, "error.html", principal, status_code=404, title="Not found", message=str(exc)
        )
    problems = problems_of(exc.problems) or [{"loc": "", "msg": str(exc)}]
    status = 422
    if isinstance(exc, PreconditionFailed):
        status = 412
        problems = [
            {
                "loc": "",
                "msg": f"Someone else changed this {SECTIONS[section].noun} since you opened it:"
                " reload the page to see their change, then make yours again.",
            }
        ]
    elif isinstance(exc, Conflict):
        status = 409
    elif not isinstance(exc, Invalid):
        status = 400
    return await object_page(
        request,
        principal,
        section,
        key,
        values=obj,
        etag=etag,
        problems=problems,
        status_code=status,
        extra=extra,
        template=template,
    )


async def delete_object(request: Request, principal: Principal, section: str, key: str) -> Response:
    """Delete one object; refused (it is still referred to) -> its page with the referrers."""
    form = await form_data(request)
    ed = editor(request)
    try:
        before = await plan_call(ed.delete, section, key, form.get("etag") or None)
    except EditError as exc:
        if isinstance(exc, NotFound):
            return render(
                request,
                "error.html",
                principal,
                status_code=404,
                title="Not found",
                message=str(exc),
            )
        status = 409 if isinstance(exc, Conflict) else 412
        problems = problems_of(exc.problems) or [{"loc": "", "msg": str(exc)}]
        return await object_page(
            request,
            principal,
            section,
            key,
            problems=[{"loc": "", "msg": str(exc)}, *problems],
            status_code=status,
        )
    await plan_call(audit, request, principal, "delete", section, key, before, None)
    return redirect(request, base_url(section) + "?deleted=" + quote(key, safe=""))
