"""The CDR writer's per-row work against the code it replaced (kept here as the
reference): ``node_cdr.cdr_row`` (positional ``CdrRow``, ``fromtimestamp``
inlined) and ``db.cdr._sqlite_utc`` (``UtcDateTime`` and SQLite's DATETIME
bind processor in one function)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from offhook.core.records import CallRecord
from offhook.db.cdr import _PROBES, CdrRow, _CdrInsert, _same, _sqlite_utc
from offhook.db.models import Cdr
from offhook.node_cdr import cdr_row
from support.cdr_reference import reference_cdr_row

SQLITE = sqlite.dialect()
GENERIC = Cdr.__table__.c.start.type._cached_bind_processor(SQLITE)


def outcome(f: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    try:
        return "value", f(value)
    except Exception as exc:
        return "raises", type(exc)


STAMPS = st.floats(min_value=-62_135_596_800.0, max_value=253_402_300_799.0)
RECORDS = st.builds(
    CallRecord,
    call_id=st.text(),
    calling=st.text(),
    called=st.text(),
    original_called=st.text(),
    calling_device=st.text(),
    called_device=st.text(),
    start=STAMPS,
    answer=st.none() | STAMPS,
    end=STAMPS,
    duration=st.integers(),
    cause=st.integers(0, 200),
    cause_text=st.text(max_size=3),
    node=st.text(),
    hunt=st.lists(st.tuples(st.text(), st.integers(0, 200)), max_size=3).map(tuple),
    extra=st.lists(st.tuples(st.text(), st.text()), max_size=3).map(tuple),
    last_redirecting=st.text(),
    redirect_reason=st.text(),
)


@given(RECORDS)
def test_cdr_row_is_the_reference(record: CallRecord) -> None:
    assert outcome(cdr_row, record) == outcome(reference_cdr_row, record)
    if outcome(cdr_row, record)[0] == "value":
        got = cdr_row(record)
        for f in ("start", "answer", "end"):
            value = getattr(got, f)
            assert value is None or value.tzinfo is UTC


@given(st.datetimes(timezones=st.none() | st.timezones()))
def test_sqlite_utc_is_the_processor_chain(value: datetime) -> None:
    assert outcome(_sqlite_utc, value) == outcome(GENERIC, value)


def test_the_fast_datetime_only_where_it_agrees() -> None:
    assert _same(_sqlite_utc, GENERIC)
    assert not _same(_sqlite_utc, lambda v: v.isoformat(" "))
    assert not _same(_sqlite_utc, lambda v: None if v.tzinfo else v.isoformat())


def test_parameters_per_dialect() -> None:
    row = CdrRow(
        "c",
        "1",
        "2",
        "3",
        "a",
        "b",
        _PROBES[0],
        None,
        _PROBES[3],
        1,
        16,
        "normal",
        "cm1",
        {},
        "",
        "",
    )
    lite = _CdrInsert(SQLITE)
    assert lite.sql.count("?") == 16
    assert lite.build(row) == (
        "c",
        "1",
        "2",
        "3",
        "a",
        "b",
        "2026-12-03 14:05:06.789012",
        None,
        "2026-03-29 11:00:00.000001",
        1,
        16,
        "normal",
        "cm1",
        "null",
        "",
        "",
    )
    pg = _CdrInsert(postgresql.psycopg.dialect())
    params = pg.build(row)
    assert isinstance(params, dict)
    assert params["start"] == _PROBES[0] and params["end"] == _PROBES[3]
    assert params["end"].tzinfo is UTC
    assert params["answer"] is None
    assert "%(end)s" in pg.sql and "RETURNING" not in pg.sql
