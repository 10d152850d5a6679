"""The plan API: every plan section as a REST collection, plus import and export.

For each section of the YAML plan (``db.plan_sections.SECTIONS``: devices,
partitions, calling_search_spaces, trunks, route_groups, ... call_park) the
routes are generated in a loop, so that the OpenAPI document has each
section's own schema (from its pydantic model):

- ``GET /api/v1/{section}``: ``{"items": [...], "total": n}``; ``q`` (substring
  of the key), ``FIELD=VALUE`` (exact, on a top-level scalar field), ``sort``
  (a field, ``-field`` descending), ``offset``, ``limit`` (at most 500);
- ``POST /api/v1/{section}``: create (201, ``Location``);
- ``GET``/``PUT``/``PATCH``/``DELETE /api/v1/{section}/{key}``: the key is
  the entry's name, or ``PARTITION/NUMBER`` for the numbered sections
  (``#`` as ``%23``); ``PATCH`` is a JSON merge patch (RFC 7396) that never
  touches a field it does not name.

Responses carry the object's ``ETag``; ``If-Match`` on PUT/PATCH/DELETE
refuses (412) a change to an object someone else changed meanwhile.
Reading needs ``plan.read``; writing devices ``devices.write``, the rest
``dialplan.write``. ``POST /api/v1/plan/import`` (``plan.import``; YAML body,
``?dry_run=true`` only answers the diff) and ``GET /api/v1/plan/export``
(``plan.read``) move the whole plan in ``offhook load``'s format. Passwords
are write-only. Every change is in the audit log with before and after.
The work is ``db.plan_edit.PlanEditor``'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from offhook.common import strict_json
from offhook.db.plan_edit import (
    Conflict,
    EditError,
    Invalid,
    NotFound,
    PlanEditor,
    PreconditionFailed,
)
from offhook.db.plan_sections import SECTIONS, Section, if_match_ok
from offhook.web.api_ops import trunks_router
from offhook.web.deps import AUTH_ERRORS, Principal, audit, ctx, require
from offhook.web.roles import SECTION_WRITE, Permission

__all__ = ["MAX_LIMIT", "output_schema", "router"]

MAX_LIMIT = 500
PREFIX = "/api/v1"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
_LIST_PARAMS = frozenset({"q", "sort", "offset", "limit"})
DN_FILTER = "dn"
"""Devices only: the devices with a line of this directory number (any partition)."""
IfMatch = Annotated[
    str | None, Header(description="the ETag the change is based on; 412 if it moved on")
]

router = APIRouter(prefix=PREFIX, responses=AUTH_ERRORS)
# /api/v1/trunks/state (live) before /api/v1/trunks/{key}: matched first.
router.include_router(trunks_router)


def editor(request: Request) -> PlanEditor:
    context = ctx(request)
    return PlanEditor(context.engine, context.settings.sip.realm)


def _problems(items: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"loc": loc, "msg": msg} for loc, msg in items]


def error_response(exc: EditError) -> JSONResponse:
    """An edit error as the API answers it."""
    if isinstance(exc, NotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)
    if isinstance(exc, PreconditionFailed):
        return JSONResponse({"detail": str(exc)}, status_code=412)
    status = 409 if isinstance(exc, Conflict) else 422
    return JSONResponse({"detail": _problems(exc.problems) or str(exc)}, status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        return strict_json.loads(await request.body())
    except (ValueError, RecursionError):
        raise Invalid("invalid JSON", [("body", "not valid JSON")]) from None


def _etag_response(view: Mapping[str, Any], etag: str, status: int = 200) -> JSONResponse:
    return JSONResponse(dict(view), status_code=status, headers={"ETag": etag})


# -- OpenAPI schemas -------------------------------------------------------


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` references inlined (plan models
    are not recursive), so that it can sit anywhere in the OpenAPI document."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def _schemas(sec: Section) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The section's (input, output, patch) JSON schemas."""
    write = _inline(sec.spec.model_json_schema(by_alias=True, mode="validation"))
    read = _inline(sec.spec.model_json_schema(by_alias=True, mode="serialization"))
    for name in sec.secrets:
        read.get("properties", {}).pop(name, None)
        if name in read.get("required", []):
            read["required"].remove(name)
    for name in sec.secrets:
        prop = write.get("properties", {}).get(name)
        if isinstance(prop, dict):
            prop["writeOnly"] = True
    # Every field of the output is present (defaults included).
    read["required"] = list(read.get("properties", {}))
    patch = {k: v for k, v in write.items() if k != "required"}
    patch["title"] = f"{write.get('title', sec.name)}Patch"
    return write, read, patch


def output_schema(section: str) -> dict[str, Any]:
    """The JSON schema of a section's objects as the API answers them (no passwords)."""
    return _schemas(SECTIONS[section])[1]


def _json_body_doc(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {t: {"schema": schema} for t in (types or ("application/json",))},
        }
    }


_ERROR = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        404: "no such object",
        409: "the change breaks other plan objects, or the key is taken",
        412: "If-Match names another version",
        422: "invalid object (detail: [{loc, msg}])",
    }
    return {
        c: {"description": text[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"ETag": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": schema}},
    }


# -- the section routes -----------------------------------------------------


def _scalar_fields(read: dict[str, Any]) -> list[str]:
    out = []
    for name, prop in read.get("properties", {}).items():
        types = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
        if types & {"string", "integer", "number", "boolean"} and not types & {"array", "object"}:
            out.append(name)
    return out


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted.lower() == ("true" if value else "false")
    if isinstance(value, int | float):
        try:
            return float(wanted) == float(value)
        except ValueError:
            return False
    return value is not None and str(value) == wanted


def _listing(
    sec: Section,
    items: list[dict[str, Any]],
    params: Mapping[str, str],
    scalars: list[str],
    q: str | None,
    sort: str | None,
) -> list[dict[str, Any]]:
    filters = {k: v for k, v in params.items() if k not in _LIST_PARAMS}
    dn = filters.pop(DN_FILTER, None) if sec.name == "devices" else None
    unknown = [k for k in filters if k not in scalars]
    if unknown:
        raise Invalid(
            "unknown filter",
            [(f"query.{k}", f"not a filter (fields: {', '.join(scalars)})") for k in unknown],
        )
    out = [
        item
        for item in items
        if (not q or q.lower() in sec.key(item).lower())
        and all(_matches(item.get(k), v) for k, v in filters.items())
        and (dn is None or any(ln.get("dn") == dn for ln in item.get("lines") or []))
    ]
    if sort:
        name = sort.removeprefix("-")
        if name not in scalars:
            raise Invalid("unknown sort field", [("query.sort", f"not a field: {name!r}")])
        out.sort(
            key=lambda item: (item.get(name) is None, "" if item.get(name) is None else item[name]),
            reverse=sort.startswith("-"),
        )
    return out


def _add_section_routes(sec: Section) -> None:
    write_schema, read_schema, patch_schema = _schemas(sec)
    title = sec.noun
    scalars = _scalar_fields(read_schema)
    read_dep = [require(Permission.PLAN_READ)]
    write_perm = SECTION_WRITE[sec.name]
    tag = sec.name
    collection = f"/{sec.name}"
    item = f"/{sec.name}/{{key:path}}"
    list_schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": read_schema},
            "total": {"type": "integer", "minimum": 0},
        },
        "required": ["items", "total"],
    }
    filter_params = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"only {sec.name} whose {name} is exactly this",
            "schema": {"type": "string"},
        }
        for name in scalars
        if name not in _LIST_PARAMS
    ]
    if sec.name == "devices":
        filter_params.append(
            {
                "name": DN_FILTER,
                "in": "query",
                "required": False,
                "description": "only devices with a line of this directory number",
                "schema": {"type": "string"},
            }
        )

    async def list_entries(
        request: Request,
        q: Annotated[str | None, Query(max_length=256, description="substring of the key")] = None,
        sort: Annotated[
            str | None, Query(max_length=64, description="a field; -field: descending")
        ] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> Response:
        try:
            items = await run_in_threadpool(editor(request).list, sec.name)
            found = _listing(sec, items, request.query_params, scalars, q, sort)
        except EditError as exc:
            return error_response(exc)
        return JSONResponse({"items": found[offset : offset + limit], "total": len(found)})

    router.add_api_route(
        collection,
        list_entries,
        methods=["GET"],
        dependencies=read_dep,
        summary=f"List {sec.name.replace('_', ' ')}",
        name=f"list_{sec.name}",
        tags=[tag],
        response_class=JSONResponse,
        responses={200: _ok(list_schema), **_errors(422)},
        openapi_extra={"parameters": filter_params} if filter_params else None,
    )

    async def get_entry(request: Request, key: str) -> Response:
        try:
            view, etag = await run_in_threadpool(editor(request).get, sec.name, key)
        except EditError as exc:
            return error_response(exc)
        unchanged = request.headers.get("if-none-match")
        if unchanged is not None and if_match_ok(unchanged, etag):
            # RFC 9110 13.1.2: what the client holds is current (a poll costs no body).
            return Response(status_code=304, headers={"ETag": etag})
        return _etag_response(view, etag)

    router.add_api_route(
        item,
        get_entry,
        methods=["GET"],
        dependencies=read_dep,
        summary=f"Get a {title}",
        name=f"get_{sec.name}",
        tags=[tag],
        response_class=JSONResponse,
        responses={
            200: _ok(read_schema),
            304: {"description": "Not Modified: If-None-Match names the current ETag"},
            **_errors(404),
        },
    )

    def _changed(
        action: str, status: int = 200
    ) -> Callable[[Request, Principal, str, Any, str | None], Awaitable[Response]]:
        async def run(
            request: Request,
            principal: Principal,
            key: str,
            body: Any,
            if_match: str | None,
        ) -> Response:
            ed = editor(request)
            try:
                before = None
                if action != "create":
                    before, _ = await run_in_threadpool(ed.get, sec.name, key)
                if action == "create":
                    view, etag = await run_in_threadpool(ed.create, sec.name, body)
                elif action == "replace":
                    view, etag = await run_in_threadpool(ed.replace, sec.name, key, body, if_match)
                else:
                    view, etag = await run_in_threadpool(ed.patch, sec.name, key, body, if_match)
            except EditError as exc:
                return error_response(exc)
            new_key = sec.key(view)
            await run_in_threadpool(
                audit, request, principal, action, sec.name, new_key, before, view
            )
            response = _etag_response(view, etag, status)
            if action == "create":
                response.headers["Location"] = f"{PREFIX}/{sec.name}/{quote(new_key, safe='/')}"
            return response

        return run

    do_create, do_replace, do_patch = (
        _changed("create", 201),
        _changed("replace"),
        _changed("patch"),
    )
    writer = require(write_perm)

    async def create_entry(request: Request, principal: Principal = writer) -> Response:
        try:
            body = await _json_body(request)
        except EditError as exc:
            return error_response(exc)
        return await do_create(request, principal, "", body, None)

    async def replace_entry(
        request: Request,
        key: str,
        principal: Principal = writer,
        if_match: IfMatch = None,
    ) -> Response:
        try:
            body = await _json_body(request)
        except EditError as exc:
            return error_response(exc)
        return await do_replace(request, principal, key, body, if_match)

    async def patch_entry(
        request: Request,
        key: str,
        principal: Principal = writer,
        if_match: IfMatch = None,
    ) -> Response:
        try:
            body = await _json_body(request)
        except EditError as exc:
            return error_response(exc)
        return await do_patch(request, principal, key, body, if_match)

    async def delete_entry(
        request: Request,
        key: str,
        principal: Principal = writer,
        if_match: IfMatch = None,
    ) -> Response:
        try:
            before = await run_in_threadpool(editor(request).delete, sec.name, key, if_match)
        except EditError as exc:
            return error_response(exc)
        await run_in_threadpool(audit, request, principal, "delete", sec.name, key, before, None)
        return Response(status_code=204)

    router.add_api_route(
        collection,
        create_entry,
        methods=["POST"],
        summary=f"Create a {title}",
        name=f"create_{sec.name}",
        tags=[tag],
        status_code=201,
        response_class=JSONResponse,
        responses={201: _ok(read_schema, "Created"), **_errors(409, 422)},
        openapi_extra=_json_body_doc(write_schema),
    )
    router.add_api_route(
        item,
        replace_entry,
        methods=["PUT"],
        summary=f"Replace a {title}",
        name=f"replace_{sec.name}",
        tags=[tag],
        response_class=JSONResponse,
        responses={200: _ok(read_schema), **_errors(404, 409, 412, 422)},
        openapi_extra=_json_body_doc(write_schema),
    )
    router.add_api_route(
        item,
        patch_entry,
        methods=["PATCH"],
        summary=f"Change fields of a {title}",
        name=f"patch_{sec.name}",
        tags=[tag],
        response_class=JSONResponse,
        responses={200: _ok(read_schema), **_errors(404, 409, 412, 422)},
        openapi_extra=_json_body_doc(
            patch_schema, "application/json", "application/merge-patch+json"
        ),
    )
    router.add_api_route(
        item,
        delete_entry,
        methods=["DELETE"],
        summary=f"Delete a {title}",
        name=f"delete_{sec.name}",
        tags=[tag],
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Deleted"}, **_errors(404, 409, 412)},
    )


for _section in SECTIONS.values():
    _add_section_routes(_section)


# -- the whole plan ----------------------------------------------------------

_DIFF_SCHEMA = {
    "type": "object",
    "properties": {
        "changed": {"type": "boolean"},
        "applied": {"type": "boolean"},
        "plan_version": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "sections": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "created": {"type": "array", "items": {"type": "string"}},
                    "updated": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                    "deleted": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["created", "updated", "deleted"],
            },
        },
    },
    "required": ["changed", "applied", "plan_version", "sections"],
}


@router.post(
    "/plan/import",
    summary="Import a whole plan (YAML, offhook load's format)",
    tags=["plan"],
    response_class=JSONResponse,
    responses={
        200: {
            "description": "What changes",
            "content": {"application/json": {"schema": _DIFF_SCHEMA}},
        },
        **_errors(422),
    },
    openapi_extra=_json_body_doc({"type": "string"}, *YAML_TYPES),
)
async def import_plan(
    request: Request,
    principal: Annotated[Principal, require(Permission.PLAN_IMPORT)],
    dry_run: Annotated[bool, Query(description="only answer what would change")] = False,
) -> Response:
    """Make the YAML plan in the body the whole plan (devices and trunks without
    a password keep theirs); ``dry_run`` answers the diff and writes nothing."""
    text = await request.body()
    try:
        diff = await run_in_threadpool(editor(request).import_plan, text, dry_run=dry_run)
    except EditError as exc:
        return error_response(exc)
    result = diff.as_dict()
    if diff.applied and diff.changed:
        await run_in_threadpool(audit, request, principal, "import", "plan", "", None, result)
    return JSONResponse(result)


@router.get(
    "/plan/export",
    summary="Export the whole plan (YAML, offhook load's format, no passwords)",
    tags=["plan"],
    response_class=Response,
    responses={
        200: {
            "description": "The plan (a YAML mapping of the plan's sections)",
            "content": {"application/yaml": {"schema": {"type": "object"}}},
        }
    },
    dependencies=[require(Permission.PLAN_READ)],
)
async def export_plan(request: Request) -> Response:
    text = await run_in_threadpool(editor(request).export_yaml)
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="plan.yaml"'},
    )
