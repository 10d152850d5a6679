"""Call records and the audit log: search pages with a chart and CSV links.

``/cdrs`` searches the CDRs (``db.cdr.CdrRepository.search``: time range,
number, release cause) and draws the call volume of the range as an inline
SVG bar chart (:func:`bar_chart`, no script); its CSV link is the API's
``/api/v1/cdrs.csv`` with the same query. ``/audit`` lists the audit log
(who, when, from where, what, before and after), newest first, with its CSV
export ``/api/v1/audit.csv``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offhook.db.plan_sections import SECTIONS
from offhook.web.deps import Principal, ctx, require
from offhook.web.pages_base import page_router, render
from offhook.web.roles import Permission

__all__ = ["Chart", "bar_chart", "changed_fields", "parse_when", "router"]

router = page_router()

PAGE = 50
AUDITED_TYPES = (*SECTIONS, "lines", "users", "tokens", "sessions", "plan")
"""What the audit log's object type filter suggests: the plan sections and the rest."""
MAX_BARS = 240
CHART_RANGE_DEFAULT = timedelta(hours=24)
CHART_RANGE_MAX = timedelta(days=7)


@dataclass
class Chart:
    title: str
    caption: str
    width: int = 900
    height: int = 180
    left: int = 36
    top: int = 8
    base: int = 160
    peak: int = 0
    bars: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)


TICK_CHAR_WIDTH = 8
"""Width of a time label's character in chart units (generous: a label is never cut off)."""
BIN_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
"""Bar widths a chart uses: the first that keeps it within :data:`MAX_BARS`."""


def _bins(counts: list[tuple[datetime, int]]) -> tuple[int, list[tuple[datetime, int]]]:
    """Minutes summed into bars of a round width aligned on the clock (a 10-minute
    bar starts at :00, :10, ...; the first and last may be partly outside the range)."""
    if not counts:
        return 1, []
    need = -(-len(counts) // MAX_BARS)
    step = next((m for m in BIN_MINUTES if m >= need), need)
    bins: list[tuple[datetime, int]] = []
    for at, n in counts:
        minute = at.hour * 60 + at.minute
        start = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
            minutes=minute - minute % step
        )
        if bins and bins[-1][0] == start:
            bins[-1] = (start, bins[-1][1] + n)
        else:
            bins.append((start, n))
    return step, bins


def _width(minutes: int) -> str:
    if minutes == 1:
        return "one minute"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "one hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"


def bar_chart(counts: list[tuple[datetime, int]], title: str) -> Chart:
    """Minutes and their call counts as bars (at most :data:`MAX_BARS`: minutes
    summed into round, clock-aligned bars), with a few time labels (dates too
    when the range is longer than a day)."""
    step, bins = _bins(counts)
    total = sum(n for _, n in counts)
    chart = Chart(
        title=title,
        caption=f"{total} call{'' if total == 1 else 's'}; each bar is {_width(step)} (UTC)",
    )
    chart.peak = max(1, max((n for _, n in bins), default=0))
    if not bins:
        return chart
    span = chart.width - chart.left - 2
    slot = span / len(bins)
    height = chart.base - chart.top
    for i, (at, n) in enumerate(bins):
        h = height * n / chart.peak
        chart.bars.append(
            {
                "x": round(chart.left + 1 + i * slot, 2),
                "y": round(chart.base - h, 2),
                "w": round(max(slot * 0.8, 0.5), 2),
                "h": round(h, 2),
                "count": n,
                "label": at.strftime("%Y-%m-%d %H:%M"),
            }
        )
    days = counts[-1][0] - counts[0][0] >= timedelta(days=1)
    every = max(1, len(bins) // 6)
    for i in range(0, len(bins), every):
        label = bins[i][0].strftime("%m-%d %H:%M" if days else "%H:%M")
        half = len(label) * TICK_CHAR_WIDTH / 2 + 2  # the label stays inside the chart
        x = min(max(chart.left + 1 + (i + 0.5) * slot, chart.left + half), chart.width - half)
        chart.ticks.append({"x": round(x, 1), "label": label})
    return chart


def parse_when(text: str) -> datetime | None:
    """A ``datetime-local`` field (or ISO 8601 text) as an aware UTC time; None if empty or bad."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _local(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M") if value is not None else ""


def _offset(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        return 0


@router.get("/cdrs")
async def cdrs_page(
    request: Request, principal: Annotated[Principal, require(Permission.CDR_READ)]
) -> Response:
    q = request.query_params
    since, until = parse_when(q.get("since", "")), parse_when(q.get("until", ""))
    number = q.get("number", "").strip()[:32] or None
    device = q.get("device", "").strip()[:64] or None
    cause_text = q.get("cause", "").strip()
    errors: dict[str, str] = {}
    cause = None
    if cause_text:
        if cause_text.isdigit() and 0 < int(cause_text) < 128:
            cause = int(cause_text)
        else:
            errors["cause"] = "A Q.850 cause is a number from 1 to 127"
    for key, value in (("since", since), ("until", until)):
        if q.get(key, "").strip() and value is None:
            errors[key] = "Not a date and time"
    offset = _offset(request)
    repo = ctx(request).cdrs
    filters: dict[str, Any] = {
        "since": since,
        "until": until,
        "number": number,
        "cause": cause,
        "device": device,
    }
    rows = await run_in_threadpool(lambda: repo.search(**filters, limit=PAGE, offset=offset))
    total = await run_in_threadpool(lambda: repo.count(**filters))
    chart_until = until or datetime.now(UTC)
    chart_since = since or chart_until - CHART_RANGE_DEFAULT
    chart_since = max(chart_since, chart_until - CHART_RANGE_MAX)
    counts = await run_in_threadpool(repo.per_minute, chart_since, chart_until)
    query = {
        k: v
        for k, v in (
            ("since", q.get("since", "")),
            ("until", q.get("until", "")),
            ("number", number or ""),
            ("cause", cause_text),
            ("device", device or ""),
        )
        if v
    }
    return render(
        request,
        "cdrs.html",
        principal,
        title="Call records",
        rows=rows,
        total=total,
        offset=offset,
        page=PAGE,
        form={
            "since": _local(since),
            "until": _local(until),
            "number": number or "",
            "cause": cause_text,
            "device": device or "",
        },
        errors=errors,
        chart=bar_chart(counts, "Call volume (all calls, whatever the filter)"),
        csv_link="/api/v1/cdrs.csv" + ("?" + urlencode(query) if query else ""),
        chart_range=(
            f"all calls from {chart_since:%Y-%m-%d %H:%M} to {chart_until:%Y-%m-%d %H:%M} UTC"
        ),
        query=urlencode(query),
    )


@router.get("/audit")
async def audit_page(
    request: Request, principal: Annotated[Principal, require(Permission.AUDIT_READ)]
) -> Response:
    q = request.query_params
    actor = q.get("actor", "").strip()[:128] or None
    object_type = q.get("object_type", "").strip()[:64] or None
    since, until = parse_when(q.get("since", "")), parse_when(q.get("until", ""))
    offset = _offset(request)
    log = ctx(request).audit
    filters: dict[str, Any] = {
        "since": since,
        "until": until,
        "actor": actor,
        "object_type": object_type,
    }
    entries = await run_in_threadpool(lambda: log.search(**filters, limit=PAGE, offset=offset))
    total = await run_in_threadpool(lambda: log.count(**filters))
    query = {
        k: v
        for k, v in (
            ("actor", actor),
            ("object_type", object_type),
            ("since", q.get("since", "")),
            ("until", q.get("until", "")),
        )
        if v
    }
    return render(
        request,
        "audit.html",
        principal,
        title="Audit log",
        entries=[
            {
                "entry": e,
                "before": _pretty(e.before),
                "after": _pretty(e.after),
                "changed": changed_fields(e.before, e.after),
            }
            for e in entries
        ],
        total=total,
        offset=offset,
        page=PAGE,
        form={
            "actor": actor or "",
            "object_type": object_type or "",
            "since": _local(since),
            "until": _local(until),
        },
        csv_link="/api/v1/audit.csv" + ("?" + urlencode(query) if query else ""),
        query=urlencode(query),
        object_types=AUDITED_TYPES,
    )


def changed_fields(before: Any, after: Any) -> list[str]:
    """The top-level fields an audited change touched (both sides objects), in order."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    keys = [*before, *(k for k in after if k not in before)]
    return [k for k in keys if before.get(k) != after.get(k)]


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
