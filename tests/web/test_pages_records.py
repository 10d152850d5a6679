"""Call records and audit log pages: search, chart, CSV links; the chart's binning."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from offhook.db.cdr import CdrRow
from offhook.web.deps import WebContext
from offhook.web.pages_records import (
    MAX_BARS,
    TICK_CHAR_WIDTH,
    bar_chart,
    changed_fields,
    parse_when,
)
from web.rig import PASSWORD


def cdr(call_id: str, calling: str, called: str, start: datetime, cause: int = 16) -> CdrRow:
    return CdrRow(
        call_id=call_id,
        calling=calling,
        called=called,
        original_called=called,
        calling_device="",
        called_device="",
        start=start,
        answer=start if cause == 16 else None,
        end=start + timedelta(seconds=20),
        duration=20 if cause == 16 else 0,
        cause=cause,
        cause_text="normal clearing" if cause == 16 else "user busy",
        node="test",
    )


async def log_in(client: httpx.AsyncClient, user: str) -> None:
    answer = await client.post("/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303


async def test_cdr_search_chart_and_csv_link(
    client: httpx.AsyncClient, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [cdr(f"a{i}", "1001", "1002", now - timedelta(minutes=i)) for i in range(60)]
    rows += [cdr("b1", "1003", "1002", now - timedelta(minutes=3), cause=17)]
    web_ctx.cdrs.add_many(rows)
    await log_in(client, "read-only")
    page = await client.get("/cdrs", params={"number": "1001"})
    assert page.status_code == 200
    assert "60 records" in page.text
    table = re.search(r'<table class="list" id="cdrs">.*?</table>', page.text, re.S)
    assert table is not None
    assert table.group(0).count("<tr>") == 1 + 50  # header and one page
    assert "1003" not in table.group(0)
    assert 'offset=50">Next' in page.text
    # The chart counts every call of the range (here the last 24 hours), whatever the filter.
    counts = re.findall(r'<rect class="bar"[^>]*><title>[^<]*: (\d+)</title>', page.text)
    assert sum(int(n) for n in counts) == 61
    caption = re.search(r'<div class="muted">([^<]*)</div>', page.text)
    assert caption is not None and caption.group(1).startswith("61 calls; each bar is "), caption
    link = re.search(r'href="(/api/v1/cdrs\.csv[^"]*)"', page.text)
    assert link is not None and "number=1001" in link.group(1)
    exported = await client.get(link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200
    got = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(got) == 60 and {r["calling"] for r in got} == {"1001"}
    busy = await client.get("/cdrs", params={"cause": "17"})
    assert "1 record<" in busy.text and "user busy" in busy.text
    web_ctx.cdrs.add_many([replace(cdr("c1", "1001", "1003", now), calling_device="SEP00AA")])
    by_device = await client.get("/cdrs", params={"device": "SEP00AA"})
    assert "1 record<" in by_device.text and 'name="device" value="SEP00AA"' in by_device.text
    device_link = re.search(r'href="(/api/v1/cdrs\.csv[^"]*)"', by_device.text)
    assert device_link is not None and "device=SEP00AA" in device_link.group(1)
    bad = await client.get("/cdrs", params={"cause": "loud", "since": "yesterday"})
    assert "A Q.850 cause is a number from 1 to 127" in bad.text
    assert "Not a date and time" in bad.text


async def test_the_audit_log_page_shows_changes_and_filters(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    await log_in(client, "full-admin")
    form = await client.get("/devices/new")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = await client.post(
        "/dialplan/partitions/new", data={"csrf_token": csrf.group(1), "name": "lobby"}
    )
    assert answer.status_code == 303
    page = await client.get("/audit", params={"actor": "full-admin"})
    assert page.status_code == 200
    entries = re.search(r'<table class="list" id="audit">.*?</table>', page.text, re.S)
    assert entries is not None
    assert "partitions <b>lobby</b>" in entries.group(0)
    assert "127.0.0.1" in entries.group(0)
    assert "&#34;name&#34;: &#34;lobby&#34;" in entries.group(0)  # the after, as JSON
    none = await client.get("/audit", params={"actor": "nobody"})
    assert "No changes recorded" in none.text
    assert 'href="/api/v1/audit.csv?actor=full-admin"' in page.text


def test_bar_chart_bins_long_ranges_and_keeps_the_total() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    counts = [(start + timedelta(minutes=i), i % 3) for i in range(24 * 60)]
    chart = bar_chart(counts, "a day")
    assert len(chart.bars) <= MAX_BARS
    assert sum(b["count"] for b in chart.bars) == sum(n for _, n in counts)
    assert "each bar is 10 minutes" in chart.caption
    assert all(chart.left <= t["x"] <= chart.width for t in chart.ticks)
    empty = bar_chart([], "nothing")
    assert empty.bars == [] and empty.caption.startswith("0 calls")


def test_bar_chart_bars_are_round_and_on_the_clock() -> None:
    # A day from 08:49: ten-minute bars from 08:40 (the first partly before the range).
    start = datetime(2026, 1, 1, 8, 49, tzinfo=UTC)
    counts = [(start + timedelta(minutes=i), 1) for i in range(24 * 60 + 1)]
    chart = bar_chart(counts, "a day")
    assert chart.bars[0]["label"] == "2026-01-01 08:40" and chart.bars[0]["count"] == 1
    assert chart.bars[1]["label"] == "2026-01-01 08:50" and chart.bars[1]["count"] == 10
    assert chart.bars[-1]["label"] == "2026-01-02 08:40" and chart.bars[-1]["count"] == 10
    assert sum(b["count"] for b in chart.bars) == len(counts)
    assert chart.peak == 10
    assert all(":" in t["label"] and "-" in t["label"] for t in chart.ticks)  # dates too
    for t in chart.ticks:  # every label inside the chart, the last one too
        half = len(t["label"]) * TICK_CHAR_WIDTH / 2
        assert chart.left <= t["x"] - half and t["x"] + half <= chart.width
    # Three hours: one bar a minute, labels without the date.
    hours = [(start + timedelta(minutes=i), i % 2) for i in range(180)]
    short = bar_chart(hours, "3 hours")
    assert len(short.bars) == 180 and "each bar is one minute" in short.caption
    assert all("-" not in t["label"] for t in short.ticks)
    # A week: an hour a bar at most.
    week = [(start + timedelta(minutes=i), 0) for i in range(7 * 24 * 60)]
    weekly = bar_chart(week, "a week")
    assert len(weekly.bars) <= MAX_BARS and "each bar is one hour" in weekly.caption


def test_changed_fields_names_what_a_change_touched() -> None:
    before = {"name": "alice", "description": "a", "lines": [{"dn": "1001"}]}
    after = {"name": "alice", "description": "b", "lines": [{"dn": "1002"}], "css": "x"}
    assert changed_fields(before, after) == ["description", "lines", "css"]
    assert changed_fields(None, after) == []


def test_parse_when_reads_the_datetime_local_field_as_utc() -> None:
    assert parse_when("2026-03-04T05:06") == datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert parse_when("") is None and parse_when("soon") is None


async def test_audit_filter_suggests_the_object_types(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    await log_in(client, "read-only")
    page = await client.get("/audit")
    suggested = re.findall(r'<option value="([^"]+)">', page.text)
    assert {"devices", "route_patterns", "users", "tokens", "lines", "sessions"} <= set(suggested)
