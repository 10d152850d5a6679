"""Call routing pages: every dial plan section, trunks with their state, the analyzer.

``/dialplan`` is the call routing menu (partitions, calling search spaces,
route patterns, translation patterns, route groups and lists, trunks, and
the call coverage and media sections) with the dialed number analyzer
inline: a device and digits give, without leaving the page (htmx), what
``offhook dna`` says (``db.analyzer``). ``/dialplan/{section}`` lists a
section (trunks with their up/down state from the node) and its objects are
edited with the plan form (``pages_plan``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.responses import Response

from offhook.db.analyzer import UnknownDevice, analysis_snapshot, analyze
from offhook.db.plan_sections import SECTIONS
from offhook.web.deps import Principal, ctx, require
from offhook.web.pages_base import (
    LIST_PAGE,
    editor,
    node_call,
    page_offset,
    page_router,
    plan_call,
    plan_keys,
    render,
)
from offhook.web.pages_forms import label_of
from offhook.web.pages_plan import delete_object, edit_url, object_page, save_object, title_of
from offhook.web.roles import Permission

__all__ = ["DIALPLAN_SECTIONS", "router"]

router = page_router()

DIALPLAN_SECTIONS: tuple[str, ...] = tuple(s for s in SECTIONS if s != "devices")
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Call routing",
        (
            "partitions",
            "calling_search_spaces",
            "route_patterns",
            "translation_patterns",
            "route_lists",
            "route_groups",
            "trunks",
        ),
    ),
    ("Call coverage", ("line_groups", "hunt_lists", "hunt_pilots", "pickup_groups", "call_park")),
    ("Media resources", ("meetme", "moh_sources", "media_resource_groups", "media_resource_lists")),
    ("CTI", ("cti_route_points", "cti_ports")),
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "partitions": ("name",),
    "calling_search_spaces": ("name", "partitions"),
    "trunks": ("name", "host", "port", "transport", "css", "register"),
    "route_groups": ("name", "distribution", "members"),
    "route_lists": ("name", "groups"),
    "route_patterns": ("pattern", "partition", "route_list", "block", "urgent"),
    "translation_patterns": ("pattern", "partition", "css", "block"),
    "moh_sources": ("name", "file"),
    "meetme": ("number", "partition", "max_parties"),
    "media_resource_groups": ("name", "servers"),
    "media_resource_lists": ("name", "groups"),
    "line_groups": ("name", "distribution", "members", "rna_timeout"),
    "hunt_lists": ("name", "line_groups"),
    "hunt_pilots": ("pattern", "partition", "hunt_list", "final_forward"),
    "pickup_groups": ("name", "number", "partition"),
    "call_park": ("range", "partition", "reversion"),
    "cti_route_points": ("name", "dn", "partition", "css", "timeout", "default"),
    "cti_ports": ("name", "dn", "partition", "css"),
}
MAX_DIGITS = 64
ANALYZER_SECTIONS = frozenset(
    {"partitions", "calling_search_spaces", "route_patterns", "translation_patterns", "route_lists"}
)
"""The lists that show the dialed number analyzer under them."""


def _section(section: str) -> str:
    if section not in DIALPLAN_SECTIONS:
        raise HTTPException(status_code=404, detail=f"no call routing section {section!r}")
    return section


def cell(value: Any) -> str:
    """A field as table text: lists joined, route group members by trunk, booleans as yes."""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, list):
        return ", ".join(str(v.get("trunk", v)) if isinstance(v, dict) else str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def _devices(request: Request) -> list[str]:
    return (await plan_keys(request))["devices"]


@router.get("/dialplan")
async def dialplan_page(
    request: Request, principal: Annotated[Principal, require(Permission.PLAN_READ)]
) -> Response:
    keys = await plan_keys(request)
    counts = {s: len(keys[s]) for s in DIALPLAN_SECTIONS}
    groups = [
        (label, [{"section": s, "title": title_of(s), "count": counts[s]} for s in sections])
        for label, sections in GROUPS
    ]
    return render(
        request,
        "dialplan.html",
        principal,
        title="Call routing",
        groups=groups,
        devices=keys["devices"],
    )


@router.get("/dialplan/analyze")
async def analyze_fragment(
    request: Request, principal: Annotated[Principal, require(Permission.PLAN_READ)]
) -> Response:
    """The dialed number analyzer's answer: the fragment the inline form (htmx) shows,
    or a whole page with the form filled in (no JavaScript, a bookmarked link)."""
    device = request.query_params.get("device", "").strip()[:64]
    digits = request.query_params.get("digits", "").strip()[:MAX_DIGITS]
    error, text, data = "", "", None
    if not device or not digits:
        error = "Choose a device and type the digits it dials."
    else:
        context = ctx(request)
        try:
            snapshot = await plan_call(analysis_snapshot, context.engine, context.settings)
            result = await plan_call(
                analyze, snapshot, device, digits, context.settings.features.codes()
            )
        except UnknownDevice as exc:
            error = str(exc)
        except Exception as exc:
            error = f"The dial plan cannot be analysed: {exc}"
        else:
            text, data = result.as_text(), result.as_json()
    fragment = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "_analysis.html" if fragment else "analyze.html",
        principal,
        title="Dialed number analyzer",
        devices=[] if fragment else (await plan_keys(request))["devices"],
        error=error,
        text=text,
        data=data,
        device=device,
        digits=digits,
    )


@router.get("/dialplan/{section}")
async def section_page(
    request: Request, section: str, principal: Annotated[Principal, require(Permission.PLAN_READ)]
) -> Response:
    sec = SECTIONS[_section(section)]
    items = await plan_call(editor(request).list, section)
    states: dict[str, dict[str, Any]] = {}
    why = ""
    if section == "trunks":
        status, why = await node_call(request, "status")
        states = {t["name"]: t for t in (status or {}).get("trunks") or [] if isinstance(t, dict)}
    columns = COLUMNS.get(section, sec.key_fields)
    q = request.query_params.get("q", "").strip()[:64]
    offset = page_offset(request)
    rows: list[dict[str, Any]] = [
        {
            "key": sec.key(item),
            "url": edit_url(section, sec.key(item)),
            "cells": [cell(item.get(c)) for c in columns],
            "state": states.get(str(item.get("name", ""))),
        }
        for item in items
    ]
    if q:
        wanted = q.lower()
        rows = [r for r in rows if any(wanted in str(c).lower() for c in [r["key"], *r["cells"]])]
    return render(
        request,
        "section.html",
        principal,
        title=title_of(section),
        section=section,
        section_title=title_of(section),
        noun=sec.noun,
        columns=[label_of(c) for c in columns],
        rows=rows[offset : offset + LIST_PAGE],
        matching=len(rows),
        total=len(items),
        q=q,
        query=urlencode({"q": q}) if q else "",
        offset=offset,
        page=LIST_PAGE,
        trunks=section == "trunks",
        node_down=section == "trunks" and not states and bool(why),
        why=why,
        sections=[{"section": s, "title": title_of(s)} for s in DIALPLAN_SECTIONS],
        saved=request.query_params.get("saved", ""),
        deleted=request.query_params.get("deleted", ""),
        can_write=principal.can(Permission.DIALPLAN_WRITE),
        analyzer=section in ANALYZER_SECTIONS,
        devices=await _devices(request) if section in ANALYZER_SECTIONS else [],
    )


@router.get("/dialplan/{section}/new")
async def object_new(
    request: Request,
    section: str,
    principal: Annotated[Principal, require(Permission.DIALPLAN_WRITE)],
) -> Response:
    return await object_page(request, principal, _section(section), None, values={})


@router.post("/dialplan/{section}/new")
async def object_create(
    request: Request,
    section: str,
    principal: Annotated[Principal, require(Permission.DIALPLAN_WRITE)],
) -> Response:
    return await save_object(request, principal, _section(section), None)


def _key(request: Request) -> str:
    key = request.query_params.get("key", "")
    if not key:
        raise HTTPException(status_code=404, detail="which object? (?key=...)")
    return key


@router.get("/dialplan/{section}/edit")
async def object_edit(
    request: Request, section: str, principal: Annotated[Principal, require(Permission.PLAN_READ)]
) -> Response:
    return await object_page(request, principal, _section(section), _key(request))


@router.post("/dialplan/{section}/edit")
async def object_save(
    request: Request,
    section: str,
    principal: Annotated[Principal, require(Permission.DIALPLAN_WRITE)],
) -> Response:
    return await save_object(request, principal, _section(section), _key(request))


@router.post("/dialplan/{section}/delete")
async def object_delete(
    request: Request,
    section: str,
    principal: Annotated[Principal, require(Permission.DIALPLAN_WRITE)],
) -> Response:
    return await delete_object(request, principal, _section(section), _key(request))
