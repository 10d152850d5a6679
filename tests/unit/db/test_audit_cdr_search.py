"""The audit log (offhook.db.audit) and the CDR search of the web admin
(CdrRepository.search/count/per_minute), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine

from offhook.db.audit import MAX_LIMIT, MAX_SNAPSHOT, AuditLog
from offhook.db.cdr import MAX_PER_MINUTE, CdrRepository, CdrRow
from offhook.db.engine import create_engine_for, upgrade

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


# -- audit log --------------------------------------------------------------------


@pytest.fixture
def audit(engine: Engine) -> AuditLog:
    log = AuditLog(engine)
    log.record("alice", "127.0.0.1", "create", "devices", "dave", None, {"name": "dave"}, at=T0)
    log.record(
        "bob",
        "::1",
        "update",
        "devices",
        "dave",
        {"name": "dave", "css": ""},
        {"name": "dave", "css": "staff"},
        at=T0 + timedelta(minutes=1),
    )
    log.record("alice", "cli", "create", "users", "carol", at=T0 + timedelta(minutes=2))
    log.record(
        "alice",
        "127.0.0.1",
        "delete",
        "route_patterns",
        "pstn/9.1XXX",
        {"pattern": "9.1XXX"},
        None,
        at=T0 + timedelta(minutes=3),
    )
    return log


def test_audit_newest_first_with_before_and_after(audit: AuditLog) -> None:
    entries = audit.search()
    assert [e.action for e in entries] == ["delete", "create", "update", "create"]
    update = entries[2]
    assert (update.actor, update.source, update.object_type, update.object_key) == (
        "bob",
        "::1",
        "devices",
        "dave",
    )
    assert update.before == {"name": "dave", "css": ""}
    assert update.after == {"name": "dave", "css": "staff"}
    assert update.at == T0 + timedelta(minutes=1) and update.at.tzinfo is not None
    assert entries[0].after is None and entries[3].before is None
    assert audit.count() == 4


def test_audit_filters(audit: AuditLog) -> None:
    assert [e.object_key for e in audit.search(actor="alice")] == ["pstn/9.1XXX", "carol", "dave"]
    assert [e.action for e in audit.search(object_type="devices")] == ["update", "create"]
    window = audit.search(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [e.action for e in window] == ["create", "update"]  # until is exclusive
    assert audit.count(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == 2
    assert audit.count(actor="alice", object_type="devices") == 1
    assert audit.search(actor="nobody") == [] and audit.count(actor="nobody") == 0
    assert audit.search(actor="' OR 1=1 --") == []
    assert [e.action for e in audit.search(object_type="devices", object_key="dave")] == [
        "update",
        "create",
    ]
    assert [e.object_key for e in audit.search(action="create")] == ["carol", "dave"]
    assert audit.count(action="delete", object_key="pstn/9.1XXX") == 1


def test_audit_paging(audit: AuditLog) -> None:
    first = audit.search(limit=2)
    second = audit.search(limit=2, offset=2)
    assert [e.id for e in first + second] == [e.id for e in audit.search()]
    assert audit.search(limit=0) == []
    assert len(audit.search(limit=MAX_LIMIT * 10)) == 4
    assert audit.search(offset=-5) == audit.search()


def test_audit_prune(audit: AuditLog) -> None:
    assert audit.prune(T0 + timedelta(minutes=2)) == 2
    assert [e.action for e in audit.search()] == ["delete", "create"]
    assert audit.prune(T0) == 0 and audit.count() == 2


def test_audit_bounds_what_it_keeps(engine: Engine) -> None:
    log = AuditLog(engine)
    log.record("a" * 500, "s" * 500, "x" * 500, "t" * 500, "k" * 5000, {"big": "y" * MAX_SNAPSHOT})
    (entry,) = log.search()
    assert (len(entry.actor), len(entry.source), len(entry.action)) == (64, 64, 32)
    assert (len(entry.object_type), len(entry.object_key)) == (64, 255)
    assert entry.before == {"truncated": True, "bytes": MAX_SNAPSHOT + 11}
    # Values JSON cannot hold are kept as text, never an error.
    log.record("a", "s", "update", "users", "k", {"when": T0, "devices": ("x", "y")})
    assert log.search(limit=1)[0].before == {"when": str(T0), "devices": ["x", "y"]}


# -- CDR search ---------------------------------------------------------------------


def cdr(call_id: str, start: datetime, calling: str, called: str, **extra: object) -> CdrRow:
    values: dict[str, object] = {
        "call_id": call_id,
        "calling": calling,
        "called": called,
        "original_called": called,
        "calling_device": "",
        "called_device": "",
        "start": start,
        "answer": None,
        "end": start + timedelta(seconds=5),
        "duration": 0,
        "cause": 16,
        "cause_text": "normal call clearing",
        "node": "n1",
    }
    values.update(extra)
    return CdrRow(**values)  # type: ignore[arg-type]


@pytest.fixture
def cdrs(engine: Engine) -> CdrRepository:
    repo = CdrRepository(engine)
    repo.add_many(
        [
            cdr("c1", T0, "1001", "1002"),
            cdr("c2", T0 + timedelta(seconds=20), "1002", "1003", cause=17),
            cdr("c3", T0 + timedelta(minutes=1, seconds=5), "1003", "1010"),
            cdr("c4", T0 + timedelta(minutes=3), "1001", "1002", original_called="1500"),
            cdr("c5", T0 + timedelta(minutes=3, seconds=59), "+15555550100", "1001", cause=21),
        ]
    )
    return repo


def ids(rows: list[CdrRow]) -> list[str]:
    return [r.call_id for r in rows]


def test_cdr_search_newest_first(cdrs: CdrRepository) -> None:
    assert ids(cdrs.search()) == ["c5", "c4", "c3", "c2", "c1"]
    assert cdrs.count() == 5
    assert ids(cdrs.search(limit=2, offset=1)) == ["c4", "c3"]
    assert cdrs.search(limit=0) == []


def test_cdr_search_by_number(cdrs: CdrRepository) -> None:
    # Calling, called or originally called; exactly.
    assert ids(cdrs.search(number="1001")) == ["c5", "c4", "c1"]
    assert ids(cdrs.search(number="1500")) == ["c4"]
    assert ids(cdrs.search(number="+15555550100")) == ["c5"]
    assert cdrs.search(number="100") == [] and cdrs.count(number="100") == 0
    assert cdrs.search(number="1001' OR '1'='1") == []
    assert cdrs.count(number="1002") == 3


def test_cdr_search_by_device(engine: Engine) -> None:
    repo = CdrRepository(engine)
    repo.add_many(
        [
            cdr("d1", T0, "1001", "1002", calling_device="alice", called_device="bob"),
            cdr("d2", T0 + timedelta(seconds=9), "1002", "1003", calling_device="bob"),
            cdr("d3", T0 + timedelta(seconds=20), "1003", "1001", called_device="alice"),
        ]
    )
    # The calling or the called device, exactly.
    assert ids(repo.search(device="alice")) == ["d3", "d1"]
    assert ids(repo.search(device="bob")) == ["d2", "d1"]
    assert repo.count(device="bob", number="1003") == 1
    assert repo.search(device="ali") == [] and repo.count(device="carol") == 0


def test_cdr_search_by_cause_and_time(cdrs: CdrRepository) -> None:
    assert ids(cdrs.search(cause=17)) == ["c2"]
    assert ids(cdrs.search(cause=16, number="1001")) == ["c4", "c1"]
    window = {"since": T0 + timedelta(seconds=20), "until": T0 + timedelta(minutes=3)}
    assert ids(cdrs.search(**window)) == ["c3", "c2"]  # until exclusive
    assert cdrs.count(**window) == 2
    naive = T0.replace(tzinfo=None) + timedelta(minutes=1)  # naive: taken as UTC
    assert ids(cdrs.search(since=naive)) == ["c5", "c4", "c3"]


def test_cdr_per_minute(cdrs: CdrRepository) -> None:
    got = cdrs.per_minute(T0 + timedelta(seconds=30), T0 + timedelta(minutes=5))
    assert got == [
        (T0, 2),
        (T0 + timedelta(minutes=1), 1),
        (T0 + timedelta(minutes=2), 0),
        (T0 + timedelta(minutes=3), 2),
        (T0 + timedelta(minutes=4), 0),
    ]
    assert all(at.tzinfo is not None for at, _ in got)
    assert cdrs.per_minute(T0 + timedelta(minutes=10), T0) == []
    assert cdrs.per_minute(T0, T0 + timedelta(seconds=1)) == [(T0, 2)]
    # A call started in a minute's first second counts while that second lasts.
    assert cdrs.per_minute(T0, T0 + timedelta(microseconds=500)) == [(T0, 2)]
    before = T0 - timedelta(minutes=1)
    assert cdrs.per_minute(before, T0 + timedelta(milliseconds=999)) == [(before, 0), (T0, 2)]
    # In another zone, the same instants.
    east = T0.astimezone(timezone(timedelta(hours=5, minutes=45)))
    assert cdrs.per_minute(east, east + timedelta(minutes=2)) == got[:2]


def test_cdr_per_minute_is_bounded(cdrs: CdrRepository) -> None:
    assert len(cdrs.per_minute(T0, T0 + timedelta(minutes=MAX_PER_MINUTE))) == MAX_PER_MINUTE
    with pytest.raises(ValueError, match="at most"):
        cdrs.per_minute(T0, T0 + timedelta(minutes=MAX_PER_MINUTE + 1))
