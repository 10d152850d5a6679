"""The node's CDR writer (offhook.db.cdr.CdrWriter): rows stored in the order
the calls ended, by its own thread, every queued record written at close, a
failed batch tried again, and a bounded queue that counts what it drops."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy.engine import Engine

from offhook.db.cdr import CdrRepository, CdrRow, CdrWriter
from offhook.db.engine import create_engine_for, upgrade

T0 = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
NEVER = 3600.0  # the thread wakes only for a full batch or close


def row(i: int) -> CdrRow:
    return CdrRow(
        call_id=f"call-{i}",
        calling="1001",
        called="1002",
        original_called="1002",
        calling_device="alice",
        called_device="bob",
        start=T0 + timedelta(seconds=i),
        answer=None,
        end=T0 + timedelta(seconds=i, milliseconds=5),
        duration=0,
        cause=16,
        cause_text="normal call clearing",
        node="cm1",
        extra={"n": i} if i % 2 else {},
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


class FakeRepo:
    """A repository that fails its first ``fail`` writes and remembers the rest."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.batches: list[list[str]] = []
        self.failed = threading.Event()

    def add_many(self, rows: Iterable[CdrRow]) -> int:
        rows = list(rows)
        if self.fail:
            self.fail -= 1
            self.failed.set()
            raise OSError("database unavailable")
        self.batches.append([r.call_id for r in rows])
        return len(rows)


def test_rows_are_stored_in_order_in_batches_and_all_of_them_at_close(engine: Engine) -> None:
    repo = CdrRepository(engine)
    threads: set[str] = set()

    def convert(i: int) -> CdrRow:
        threads.add(threading.current_thread().name)
        return row(i)

    writer = CdrWriter(repo, convert, batch=100, interval=NEVER)
    for i in range(1234):
        writer.submit(i)
    writer.close()
    got = repo.query()
    assert [r.call_id for r in got] == [f"call-{i}" for i in range(1234)]
    assert got[3] == row(3) and got[4] == row(4)  # every column, extra and times kept
    assert writer.status() == {"written": 1234, "pending": 0, "dropped": 0, "failures": 0}
    # Rows are made on the writer's thread, never the caller's (the event loop).
    assert threads == {"offhook-cdr-writer"}


def test_a_full_queue_drops_new_records_and_counts_them() -> None:
    repo = FakeRepo()
    writer = CdrWriter(cast(CdrRepository, repo), row, batch=100, interval=NEVER, max_queue=5)
    for i in range(8):
        writer.submit(i)
    assert (writer.pending, writer.dropped) == (5, 3)
    writer.close()
    assert repo.batches == [[f"call-{i}" for i in range(5)]]  # the oldest kept, in order
    writer.submit(99)  # closed: counted, not queued
    assert (writer.written, writer.pending, writer.dropped) == (5, 0, 4)


def test_a_failed_batch_is_written_again_in_its_place() -> None:
    repo = FakeRepo(fail=1)
    writer = CdrWriter(cast(CdrRepository, repo), row, batch=3, interval=NEVER)
    for i in range(3):
        writer.submit(i)  # the third fills a batch: the thread wakes and fails
    assert repo.failed.wait(30)
    for i in range(3, 5):
        writer.submit(i)
    writer.close()
    assert repo.batches[0] == ["call-0", "call-1", "call-2"]  # the failed batch, whole
    assert [c for batch in repo.batches for c in batch] == [f"call-{i}" for i in range(5)]
    assert (writer.written, writer.failures, writer.dropped) == (5, 1, 0)


def test_records_a_dead_database_refuses_at_close_are_reported_not_hidden(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = FakeRepo(fail=100)
    writer = CdrWriter(cast(CdrRepository, repo), row, batch=100, interval=NEVER)
    writer.submit(1)
    writer.close()
    assert repo.batches == [] and writer.written == 0 and writer.pending == 1
    assert "1 call records were not written" in caplog.text
