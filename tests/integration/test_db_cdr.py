"""CDR storage on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from offhook.db.cdr import CDR_FIELDS, CdrRepository, CdrRow
from offhook.db.engine import create_engine_for, upgrade

T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def row(i: int, **kw: object) -> CdrRow:
    base = dict(
        call_id=f"call-{i}@host",
        calling="1001",
        called="1002",
        original_called="1002",
        calling_device="alice",
        called_device="bob",
        start=T0 + timedelta(minutes=i),
        answer=T0 + timedelta(minutes=i, seconds=2),
        end=T0 + timedelta(minutes=i, seconds=12),
        duration=10,
        cause=16,
        cause_text="normal call clearing",
        node="cm1",
    )
    base.update(kw)
    return CdrRow(**base)  # type: ignore[arg-type]


def test_add_and_query(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        repo = CdrRepository(engine)
        assert repo.query() == []
        assert repo.add_many([]) == 0
        rows = [
            row(0),
            row(1, answer=None, duration=0, cause=17, cause_text="user busy", called_device=""),
            row(2, extra={"hangup": "caller"}, calling="O'Brien; DROP TABLE cdrs;--"),
        ]
        assert repo.add_many(rows) == 3
        got = repo.query()
        assert got == rows
        assert got[0].start.tzinfo is not None and got[0].start == T0
        assert got[1].answer is None
        assert repo.query(since=T0 + timedelta(minutes=1)) == rows[1:]
        assert repo.query(until=T0 + timedelta(minutes=1)) == rows[:1]
        assert repo.query(limit=2) == rows[:2]
        # An aware time in another zone means the same instant.
        cest = timezone(timedelta(hours=2))
        assert repo.query(since=(T0 + timedelta(minutes=2)).astimezone(cest)) == rows[2:]
        # Naive datetimes are taken as UTC.
        repo.add(row(3, start=datetime(2024, 5, 1, 13, 0), end=datetime(2024, 5, 1, 13, 1)))
        last = repo.query()[-1]
        assert last.start == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    finally:
        engine.dispose()


def test_field_order() -> None:
    assert ",".join(CDR_FIELDS).startswith("call_id,calling,called,start,answer,end,duration,cause")
    assert set(CDR_FIELDS) == set(CdrRow.__dataclass_fields__)


def test_redirection_columns(db_url: str) -> None:
    """The last redirecting number and the reason (CallManager's lastRedirectDn and
    lastRedirectRedirectReason) are stored and read back; "" when never redirected."""
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        repo = CdrRepository(engine)
        rows = [
            row(0),
            row(1, called="1500", last_redirecting="1500", redirect_reason="hunt"),
            row(2, last_redirecting="1002", redirect_reason="forward-no-answer"),
        ]
        repo.add_many(rows)
        got = repo.query()
        assert got == rows
        assert [(r.last_redirecting, r.redirect_reason) for r in got] == [
            ("", ""),
            ("1500", "hunt"),
            ("1002", "forward-no-answer"),
        ]
        assert got[1].as_dict()["redirect_reason"] == "hunt"
    finally:
        engine.dispose()
