"""The operations API: the dialed number analyzer, call records and the node's live state.

- ``GET /api/v1/analyze?device=D&digits=N`` (``plan.read``): what the dial
  plan does with N dialed from device D (``db.analyzer``, as ``offhook dna
  --json``, plus ``text``: the same as ``offhook dna`` prints);
- ``GET /api/v1/cdrs`` (``cdr.read``): call records, newest first, by time
  range (``since``, ``until``: ISO 8601, UTC when no offset), ``number``
  (calling, called or originally called), ``cause`` (Q.850), ``limit`` and
  ``offset``: ``{"items": [...], "total": n}``; ``GET /api/v1/cdrs.csv``: the
  same rows as CSV (``offhook cdr``'s columns); ``GET
  /api/v1/cdrs/per_minute?hours=N``: calls started per minute over the last
  N hours (the dashboard's chart);
- ``GET /api/v1/status``, ``/registrations``, ``/calls``, ``/trunks/state``
  (``live.read``): the running node's state over its control endpoint
  (``ris.control``, op ``status``); 503 ``{"detail": "node unavailable"}``
  when the node does not answer.

``trunks_router`` holds ``/api/v1/trunks/state``: ``web.api_plan`` includes it
ahead of its ``/api/v1/trunks/{key}`` routes, so that it is matched first
whatever order the app includes the routers in.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from offhook.core.dialplan.router import DialPlanError
from offhook.db.analyzer import UnknownDevice, analysis_snapshot, analyze
from offhook.db.cdr import CDR_FIELDS, MAX_SEARCH, CdrRow
from offhook.web.deps import AUTH_ERRORS, ctx, require
from offhook.web.roles import Permission

__all__ = ["MAX_CDR_LIMIT", "MAX_HOURS", "router", "trunks_router"]

PREFIX = "/api/v1"
MAX_CDR_LIMIT = 1000
"""Most call records one JSON page holds (the CSV takes up to ``db.cdr.MAX_SEARCH``)."""
MAX_HOURS = 168
DIGITS_RE = r"^[0-9*#+]{1,64}$"

router = APIRouter(prefix=PREFIX, responses=AUTH_ERRORS)
trunks_router = APIRouter(responses=AUTH_ERRORS)
"""Included by ``web.api_plan.router`` (prefix ``/api/v1``)."""

_DETAIL = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}


def _doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _DETAIL}}}


def _json_doc(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# -- the dialed number analyzer ---------------------------------------------------


def _analysis(request: Request, device: str, digits: str) -> dict[str, Any]:
    context = ctx(request)
    snapshot = analysis_snapshot(context.engine, context.settings)
    result = analyze(snapshot, device, digits, context.settings.features.codes())
    return {**result.as_json(), "text": result.as_text()}


@router.get(
    "/analyze",
    summary="Dialed number analyzer: what the dial plan does with digits dialed from a device",
    tags=["operations"],
    dependencies=[require(Permission.PLAN_READ)],
    response_class=JSONResponse,
    responses={
        200: _json_doc(
            {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            "The analysis (offhook dna --json's fields) and its text",
        ),
        404: _doc("no such device"),
        409: _doc("the dial plan in the database is invalid"),
    },
)
async def analyze_digits(
    request: Request,
    device: Annotated[str, Query(min_length=1, max_length=64, description="the calling device")],
    digits: Annotated[str, Query(pattern=DIGITS_RE, description="the digits dialed")],
) -> Response:
    try:
        body = await run_in_threadpool(_analysis, request, device, digits)
    except UnknownDevice as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    except DialPlanError as exc:
        return JSONResponse(
            {"detail": f"the dial plan in the database is invalid: {exc}"}, status_code=409
        )
    return JSONResponse(body)


# -- call records ---------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_value(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def cdr_json(row: CdrRow) -> dict[str, Any]:
    """A call record as the API shows it (times ISO 8601 UTC)."""
    return {k: _json_value(v) for k, v in row.as_dict().items()}


_FORMULA_START = ("=", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading ``'``
    (a caller chooses their number: ``=HYPERLINK(...)`` stays text). A number
    such as ``+15551234`` or ``-1`` is left alone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else ""
    text = str(value)
    if text.startswith(_FORMULA_START) or (
        text[:1] in ("+", "-") and not text[1:].replace("*", "").replace("#", "").isdigit()
    ):
        return "'" + text
    return text


Since = Annotated[
    datetime | None, Query(description="calls started at or after (ISO 8601; UTC if no offset)")
]
Until = Annotated[datetime | None, Query(description="calls started before (ISO 8601)")]
Number = Annotated[
    str | None,
    Query(max_length=64, description="the calling, called or originally called number"),
]
Cause = Annotated[int | None, Query(ge=0, le=127, description="the Q.850 release cause")]
Device = Annotated[str | None, Query(max_length=64, description="the calling or called device")]

_TIME = {"type": "string", "format": "date-time"}
_CDR_TYPES: dict[str, dict[str, Any]] = {
    "start": _TIME,
    "answer": {"anyOf": [_TIME, {"type": "null"}], "description": "null: never answered"},
    "end": _TIME,
    "duration": {"type": "integer", "description": "seconds from answer to end"},
    "cause": {"type": "integer", "description": "Q.850 release cause (16: normal)"},
    "redirect_reason": {"type": "string", "description": '"" unless redirected'},
    "extra": {"type": "object"},
}
_CDR_SCHEMA = {
    "type": "object",
    "properties": {name: _CDR_TYPES.get(name, {"type": "string"}) for name in CDR_FIELDS},
    "required": list(CDR_FIELDS),
}


@router.get(
    "/cdrs",
    summary="Search call records (newest first)",
    tags=["call records"],
    dependencies=[require(Permission.CDR_READ)],
    response_class=JSONResponse,
    responses={
        200: _json_doc(
            {
                "type": "object",
                "properties": {
                    "items": {"type": "array", "items": _CDR_SCHEMA},
                    "total": {"type": "integer", "minimum": 0},
                },
                "required": ["items", "total"],
            }
        )
    },
)
async def search_cdrs(
    request: Request,
    since: Since = None,
    until: Until = None,
    number: Number = None,
    cause: Cause = None,
    device: Device = None,
    limit: Annotated[int, Query(ge=1, le=MAX_CDR_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    cdrs = ctx(request).cdrs
    filters: dict[str, Any] = {
        "since": _utc(since),
        "until": _utc(until),
        "number": number,
        "cause": cause,
        "device": device,
    }
    rows = await run_in_threadpool(lambda: cdrs.search(**filters, limit=limit, offset=offset))
    total = await run_in_threadpool(lambda: cdrs.count(**filters))
    return JSONResponse({"items": [cdr_json(r) for r in rows], "total": total})


@router.get(
    "/cdrs.csv",
    summary="Call records as CSV (offhook cdr's columns, newest first)",
    tags=["call records"],
    dependencies=[require(Permission.CDR_READ)],
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def cdrs_csv(
    request: Request,
    since: Since = None,
    until: Until = None,
    number: Number = None,
    cause: Cause = None,
    device: Device = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH)] = MAX_SEARCH,
) -> Response:
    cdrs = ctx(request).cdrs
    rows = await run_in_threadpool(
        lambda: cdrs.search(
            since=_utc(since),
            until=_utc(until),
            number=number,
            cause=cause,
            device=device,
            limit=limit,
        )
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CDR_FIELDS)
    for r in rows:
        writer.writerow([csv_cell(v) for v in r.as_dict().values()])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cdrs.csv"'},
    )


@router.get(
    "/cdrs/per_minute",
    summary="Calls started per minute over the last hours (oldest first, zeros included)",
    tags=["call records"],
    dependencies=[require(Permission.CDR_READ)],
    response_class=JSONResponse,
    responses={
        200: _json_doc(
            {
                "type": "object",
                "properties": {
                    "since": {"type": "string"},
                    "until": {"type": "string"},
                    "minutes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "at": {"type": "string"},
                                "calls": {"type": "integer", "minimum": 0},
                            },
                            "required": ["at", "calls"],
                        },
                    },
                },
                "required": ["since", "until", "minutes"],
            }
        )
    },
)
async def cdrs_per_minute(
    request: Request,
    hours: Annotated[int, Query(ge=1, le=MAX_HOURS)] = 3,
) -> Response:
    until = datetime.now(UTC)
    # Whole minutes, the current one last: hours * 60 of them.
    since = (until - timedelta(hours=hours)).replace(second=0, microsecond=0)
    since += timedelta(minutes=1)
    cdrs = ctx(request).cdrs
    try:
        counts = await run_in_threadpool(cdrs.per_minute, since, until)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return JSONResponse(
        {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "minutes": [{"at": at.isoformat(), "calls": n} for at, n in counts],
        }
    )


# -- the live node ---------------------------------------------------------------

_LIVE_ERRORS: dict[int | str, dict[str, Any]] = {
    502: _doc("the node refused the request"),
    503: _doc("node unavailable"),
}


async def node_status(request: Request) -> dict[str, Any] | Response:
    """The node's ``status``, or the 503/502 response to answer instead."""
    try:
        status = await ctx(request).control.request("status")
    except (ConnectionError, OSError, TimeoutError):
        return JSONResponse({"detail": "node unavailable"}, status_code=503)
    except Exception as exc:  # the node answered an error (ris.control.ControlError)
        return JSONResponse({"detail": f"node error: {exc}"}, status_code=502)
    if not isinstance(status, dict):
        return JSONResponse({"detail": "node error: unexpected answer"}, status_code=502)
    return status


_OBJECT = {"type": "object"}


Endpoint = Callable[[Request], Awaitable[Response]]


def _live_route(path: str, summary: str, schema: dict[str, Any]) -> Callable[[Endpoint], Endpoint]:
    return router.get(
        path,
        summary=summary,
        tags=["live"],
        dependencies=[require(Permission.LIVE_READ)],
        response_class=JSONResponse,
        responses={200: _json_doc(schema), **_LIVE_ERRORS},
    )


@_live_route("/status", "The running node's status (what offhook status shows)", _OBJECT)
async def live_status(request: Request) -> Response:
    status = await node_status(request)
    return status if isinstance(status, Response) else JSONResponse(status)


_REGISTRATION = {
    "type": "object",
    "properties": {
        "device": {"type": "string"},
        "protocol": {"type": "string", "description": "sip or sccp"},
        "aor": {"type": "string"},
        "contact": {"type": "string"},
        "source": {"type": "string", "description": "address:port it registered from"},
        "transport": {"type": "string"},
        "expires_in": {
            "type": ["integer", "null"],
            "description": "seconds until it expires (null: never, a CTI route point or port)",
        },
        "user_agent": {"type": "string"},
    },
    "required": ["device", "protocol", "contact"],
}
_REGISTRATIONS = {
    "type": "object",
    "properties": {
        "node": {},
        "plan_version": {},
        "registrations": {
            "type": "array",
            "items": _REGISTRATION,
            "description": "every registered phone, SIP and SCCP (by device, contact)",
        },
        "sip": {"type": "array", "items": _REGISTRATION, "description": "the SIP ones"},
        "sccp": {"description": "the SCCP listener: open connections, phones registered"},
    },
    "required": ["registrations", "sip", "sccp"],
}


@router.get(
    "/registrations",
    summary="Registered phones (SIP bindings and SCCP phones)",
    tags=["live"],
    dependencies=[require(Permission.LIVE_READ)],
    response_class=JSONResponse,
    responses={200: _json_doc(_REGISTRATIONS), **_LIVE_ERRORS},
)
async def live_registrations(
    request: Request,
    device: Annotated[
        str | None, Query(max_length=64, description="only this device's registrations")
    ] = None,
    protocol: Annotated[
        str | None, Query(pattern="^(sip|sccp)$", description="only sip or sccp phones")
    ] = None,
) -> Response:
    status = await node_status(request)
    if isinstance(status, Response):
        return status
    regs = [
        {**r, "protocol": str(r.get("protocol") or "sip").lower()}
        for r in status.get("registrations") or []
        if isinstance(r, dict)
    ]
    regs = [
        r
        for r in regs
        if (device is None or r.get("device") == device)
        and (protocol is None or r["protocol"] == protocol)
    ]
    return JSONResponse(
        {
            "node": status.get("node"),
            "plan_version": status.get("plan_version"),
            "registrations": regs,
            "sip": [r for r in regs if r["protocol"] == "sip"],
            "sccp": status.get("sccp"),
        }
    )


_CALLS = {
    "type": "object",
    "properties": {
        "node": {},
        "active_calls": {"type": "integer"},
        "calls": {"type": "array", "items": _OBJECT},
    },
    "required": ["active_calls", "calls"],
}


@_live_route("/calls", "Active calls", _CALLS)
async def live_calls(request: Request) -> Response:
    status = await node_status(request)
    if isinstance(status, Response):
        return status
    calls = status.get("calls") or {}
    return JSONResponse(
        {
            "node": status.get("node"),
            "active_calls": int(calls.get("active_calls", 0)),
            "calls": list(calls.get("calls") or []),
        }
    )


@trunks_router.get(
    "/trunks/state",
    summary="Trunks and their up/down state",
    tags=["live"],
    dependencies=[require(Permission.LIVE_READ)],
    response_class=JSONResponse,
    responses={
        200: _json_doc(
            {
                "type": "object",
                "properties": {"trunks": {"type": "array", "items": _OBJECT}},
                "required": ["trunks"],
            }
        ),
        **_LIVE_ERRORS,
    },
)
async def live_trunks(request: Request) -> Response:
    status = await node_status(request)
    if isinstance(status, Response):
        return status
    return JSONResponse({"trunks": list(status.get("trunks") or [])})
