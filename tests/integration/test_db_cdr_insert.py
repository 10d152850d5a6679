"""``CdrRepository.add_many`` (the INSERT compiled once, bind processors applied
directly, one DBAPI executemany) stores exactly what the path it replaced
stored: SQLAlchemy's ``conn.execute(insert(Cdr), dicts)``, kept here as the
reference. Same rows written both ways on SQLite and PostgreSQL; every column
compared as the database holds it (value and Python type of the raw DBAPI
read, ``extra`` as text) and as ``CdrRepository.query`` reads it back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from offhook.db.cdr import CdrRepository, CdrRow
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import Cdr
from support.cdr_reference import reference_add_many

NAMES = [f.name for f in fields(CdrRow)]
T0 = datetime(2026, 12, 3, 14, 0, 0, 123456, tzinfo=UTC)
INT32 = st.integers(-(2**31), 2**31 - 1)
ZONES = [
    None,
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(-timedelta(hours=9, minutes=30, seconds=15)),
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/St_Johns"),
]


def stored(engine: Engine) -> list[tuple[tuple[str, Any], ...]]:
    """Every column but ``id`` as the DBAPI reads it, with its Python type;
    ``extra`` as the database's text (SQL NULL and JSON null differ)."""
    columns = ", ".join('"end"' if n == "end" else n for n in NAMES if n != "extra")
    sql = f"SELECT {columns}, CAST(extra AS TEXT), extra IS NULL FROM cdrs ORDER BY id"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).all()
    return [tuple((type(v).__name__, v) for v in row) for row in rows]


def both_ways(engine: Engine, rows: Sequence[CdrRow]) -> None:
    repo = CdrRepository(engine)
    got = []
    for write in (lambda: reference_add_many(engine, rows), lambda: repo.add_many(rows)):
        with engine.begin() as conn:
            conn.execute(delete(Cdr))
        write()
        got.append((stored(engine), repo.query()))
    (raw_old, read_old), (raw_new, read_new) = got
    assert len(raw_new) == len(rows)
    assert raw_new == raw_old
    assert read_new == read_old


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


def row(i: int, **kw: Any) -> CdrRow:
    base: dict[str, Any] = dict(
        call_id=f"{i}-4242@127.0.0.1",
        calling="1001",
        called="1002",
        original_called="1002",
        calling_device="alice",
        called_device="bob",
        start=T0 + timedelta(seconds=i),
        answer=T0 + timedelta(seconds=i, microseconds=21_300),
        end=T0 + timedelta(seconds=i + 1),
        duration=1,
        cause=16,
        cause_text="normal call clearing",
        node="cm1",
    )
    base.update(kw)
    return CdrRow(**base)


def test_the_rows_the_node_writes(engine: Engine) -> None:
    rows = [
        row(0),
        row(1, answer=None, duration=0, cause=17, cause_text="user busy", called_device=""),
        row(2, extra={"trunks_failed": [{"trunk": "pstn-a", "cause": 34, "cause_text": "x"}]}),
        row(3, extra={"é": {"ünï": ["☎", None, True, 1.5, -(2**70)], "": {}}, "empty": []}),
        row(4, extra={}, last_redirecting="1500", redirect_reason="hunt"),
        row(5, start=datetime(2026, 12, 3, 14, 0), end=datetime(2026, 12, 3, 14, 0, 1)),
        row(6, start=T0.astimezone(ZoneInfo("Europe/Paris")).replace(microsecond=0)),
        row(7, cause=2**31 - 1, duration=-(2**31), calling="O'Brien; DROP TABLE cdrs;--"),
    ]
    both_ways(engine, rows)
    both_ways(engine, rows[3:4])  # one row: an execute, not an executemany


def test_no_rows_no_transaction(engine: Engine) -> None:
    assert CdrRepository(engine).add_many([]) == 0
    assert CdrRepository(engine).add_many(iter([row(0)])) == 1


def text_for(engine: Engine, size: int) -> st.SearchStrategy[str]:
    # PostgreSQL text holds no NUL (either path fails on one); no lone surrogates
    # (no UTF-8 for them, anywhere).
    no_nul = engine.dialect.name == "postgresql"
    chars = st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\x00" if no_nul else ""
    )
    return st.text(chars, max_size=size)


def json_for(engine: Engine) -> st.SearchStrategy[dict[str, Any]]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | text_for(engine, 20)
    )
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(text_for(engine, 8), inner, max_size=4)
        ),
        max_leaves=12,
    )
    return st.dictionaries(text_for(engine, 10), values, max_size=5)


def times() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(ZONES),
    )


def rows_for(engine: Engine) -> st.SearchStrategy[list[CdrRow]]:
    def text(n: int) -> st.SearchStrategy[str]:
        return text_for(engine, n)

    one = st.builds(
        CdrRow,
        call_id=text(255),
        calling=text(64),
        called=text(64),
        original_called=text(64),
        calling_device=text(64),
        called_device=text(64),
        start=times(),
        answer=st.none() | times(),
        end=times(),
        duration=INT32,
        cause=INT32,
        cause_text=text(128),
        node=text(64),
        extra=json_for(engine),
        last_redirecting=text(64),
        redirect_reason=text(32),
    )
    return st.lists(one, min_size=1, max_size=6)


def test_any_rows_are_stored_as_the_reference_stores_them(engine: Engine) -> None:
    @settings(max_examples=80)
    @given(rows_for(engine))
    def check(rows: list[CdrRow]) -> None:
        both_ways(engine, rows)

    check()
