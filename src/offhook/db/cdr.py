"""Call detail records: written by the node when a call attempt ends, read by
``offhook cdr`` and searched by the web admin (:meth:`CdrRepository.search`,
:meth:`CdrRepository.count`, :meth:`CdrRepository.per_minute`).

All times are aware UTC datetimes (``models.UtcDateTime`` keeps them so on
SQLite and PostgreSQL). Only bound parameters reach the database.

The node writes through :class:`CdrWriter`: the event loop only appends the
ended call to a bounded queue; one writer thread turns records into rows and
inserts them in batches (the ``INSERT`` compiled once, one DBAPI executemany
a batch: :class:`_CdrInsert`), in the order the calls ended, and writes what
is left when the node stops.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, func, insert, or_, select
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.compiler import SQLCompiler

from offhook.db.models import Cdr, UtcDateTime

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SEARCH = 10_000
"""Most rows one :meth:`CdrRepository.search` returns."""
MAX_PER_MINUTE = 7 * 24 * 60
"""Most minutes one :meth:`CdrRepository.per_minute` covers (a week)."""

# The CSV/JSON column order of ``offhook cdr``: the required columns first.
CDR_FIELDS: tuple[str, ...] = (
    "call_id",
    "calling",
    "called",
    "start",
    "answer",
    "end",
    "duration",
    "cause",
    "cause_text",
    "original_called",
    "last_redirecting",
    "redirect_reason",
    "calling_device",
    "called_device",
    "node",
    "extra",
)


@dataclass(frozen=True, slots=True)
class CdrRow:
    """One call attempt. ``duration`` is whole seconds from answer to end (0 unanswered);
    ``cause`` is the Q.850 release cause (16 = normal clearing). ``last_redirecting``
    is the number that redirected the call last and ``redirect_reason`` why
    (``core.events.RedirectReason``: forward-all, hunt, pickup, park, ...; "" = never
    redirected), as CallManager's lastRedirectDn / lastRedirectRedirectReason."""

    call_id: str
    calling: str
    called: str
    original_called: str
    calling_device: str
    called_device: str
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    cause: int
    cause_text: str
    node: str
    extra: dict[str, Any] = field(default_factory=dict)
    last_redirecting: str = ""
    redirect_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The row with the columns of :data:`CDR_FIELDS`, in that order."""
        return {k: getattr(self, k) for k in CDR_FIELDS}


_COLUMNS = (
    Cdr.call_id,
    Cdr.calling,
    Cdr.called,
    Cdr.original_called,
    Cdr.calling_device,
    Cdr.called_device,
    Cdr.start,
    Cdr.answer,
    Cdr.end,
    Cdr.duration,
    Cdr.cause,
    Cdr.cause_text,
    Cdr.node,
    Cdr.extra,
    Cdr.last_redirecting,
    Cdr.redirect_reason,
)


class _CdrInsert:
    """The INSERT of call records compiled once for a dialect, and the DBAPI
    parameters of one :class:`CdrRow`: what ``conn.execute(insert(Cdr), dicts)``
    sends (same SQL, same values) without SQLAlchemy's work per row.

    Each column's bind processor is applied directly, only where its type has
    one (``UtcDateTime`` then the dialect's DATETIME; JSON); what it makes of
    None is computed once. On SQLite a ``UtcDateTime`` is formatted by
    :func:`_sqlite_utc` instead of the three-function chain, if it gives what
    the chain gives for :data:`_PROBES`. A tuple per row for a positional
    paramstyle (SQLite ``qmark``), a dict for a named one (psycopg ``pyformat``).
    """

    def __init__(self, dialect: Dialect) -> None:
        names = [f.name for f in fields(CdrRow)]
        compiled = insert(Cdr).compile(dialect=dialect, column_keys=names, for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        binds = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        keys = [compiled.binds[b].key for b in binds]
        if sorted(keys) != sorted(names):
            raise RuntimeError(f"the CDR INSERT binds {keys}, not the row's fields {names}")
        self.sql = compiled.string
        steps = []
        for i, b in enumerate(binds):
            column_type = compiled.binds[b].type
            process: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
            if process is None:
                continue
            null = process(None)
            if isinstance(column_type, UtcDateTime) and _same(_sqlite_utc, process):
                process = _sqlite_utc
            steps.append((i, process, null))
        get = attrgetter(*keys)
        extra = keys.index("extra")
        named = None
        if not compiled.positional:
            named = [compiled.escaped_bind_names.get(b, b) for b in binds]

        def build(row: CdrRow) -> tuple[Any, ...] | dict[str, Any]:
            values = list(get(row))
            x = values[extra]
            values[extra] = (x if type(x) is dict else dict(x)) if x else None
            for i, process, null in steps:
                v = values[i]
                values[i] = null if v is None else process(v)
            return tuple(values) if named is None else dict(zip(named, values, strict=True))

        self.build = build


_PROBES = (
    datetime(2026, 12, 3, 14, 5, 6, 789012, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
    datetime(2026, 3, 29, 1, 30, 0, 1, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
)


def _sqlite_utc(value: datetime) -> str:
    """``UtcDateTime`` on SQLite, then SQLite's DATETIME bind processor, in one."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 (the fastest)
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _same(fast: Callable[[Any], Any], process: Callable[[Any], Any]) -> bool:
    try:
        return all(fast(v) == process(v) for v in _PROBES)
    except (TypeError, ValueError, OverflowError):
        return False


class CdrRepository:
    """CDR storage over an engine (safe to call from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert: _CdrInsert | None = None

    def add_many(self, rows: Iterable[CdrRow]) -> int:
        """Insert ``rows`` in one transaction (one executemany); return how many."""
        rows = list(rows)
        if not rows:
            return 0
        with self.engine.begin() as conn:
            if self._insert is None:
                self._insert = _CdrInsert(conn.dialect)
            compiled, build = self._insert, self._insert.build
            conn.exec_driver_sql(compiled.sql, [build(r) for r in rows])
        return len(rows)

    def add(self, row: CdrRow) -> None:
        self.add_many((row,))

    def query(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[CdrRow]:
        """Rows with ``since <= start < until``, oldest first, at most ``limit``."""
        stmt = select(*_COLUMNS).order_by(Cdr.start, Cdr.id)
        if since is not None:
            stmt = stmt.where(Cdr.start >= since)
        if until is not None:
            stmt = stmt.where(Cdr.start < until)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            result = conn.execute(stmt).all()
        return [_row(r) for r in result]

    def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        number: str | None = None,
        cause: int | None = None,
        device: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CdrRow]:
        """Rows with ``since <= start < until``, ``number`` the calling, called or
        originally called number (exactly), ``cause`` the release cause, ``device``
        the calling or called device; newest first, at most ``limit`` (capped at
        :data:`MAX_SEARCH`) after ``offset``."""
        stmt = (
            select(*_COLUMNS)
            .where(*_search_filters(since, until, number, cause, device))
            .order_by(Cdr.start.desc(), Cdr.id.desc())
            .limit(max(0, min(int(limit), MAX_SEARCH)))
            .offset(max(0, int(offset)))
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt).all()]

    def count(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        number: str | None = None,
        cause: int | None = None,
        device: str | None = None,
    ) -> int:
        """How many rows :meth:`search` would find without ``limit``."""
        stmt = (
            select(func.count())
            .select_from(Cdr)
            .where(*_search_filters(since, until, number, cause, device))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def per_minute(self, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """Calls started in each minute from ``since``'s up to ``until``'s (the
        minute ``until`` falls in included unless ``until`` starts it): every
        minute whole, zeros included, oldest first.

        ``ValueError`` when that is more than :data:`MAX_PER_MINUTE` minutes.
        """
        first = _utc(since).replace(second=0, microsecond=0)
        end = _utc(until)
        minutes = max(0, -(-(end - first) // timedelta(minutes=1)))
        if minutes > MAX_PER_MINUTE:
            raise ValueError(f"at most {MAX_PER_MINUTE} minutes (a week) at once")
        counts = [0] * minutes
        if minutes:
            with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    bucket: Any = func.date_trunc("minute", Cdr.start)
                else:
                    bucket = func.strftime("%Y-%m-%d %H:%M:00", Cdr.start)
                stmt = (
                    select(bucket, func.count())
                    .where(Cdr.start >= first, Cdr.start < first + timedelta(minutes=minutes))
                    .group_by(bucket)
                )
                for when, n in conn.execute(stmt).all():
                    at = when if isinstance(when, datetime) else datetime.fromisoformat(when)
                    index = int((_utc(at) - first).total_seconds()) // 60
                    if 0 <= index < minutes:
                        counts[index] += int(n)
        return [(first + timedelta(minutes=i), n) for i, n in enumerate(counts)]


class CdrWriter(Generic[T]):
    """Call records written by one thread, in batches, off the event loop.

    :meth:`submit` (the event loop, once per ended call) appends the record to a
    queue and returns: no conversion, no I/O. The writer thread wakes every
    ``interval`` seconds (sooner once ``batch`` records wait), turns up to
    ``batch`` records into rows with ``convert`` and inserts them with
    :meth:`CdrRepository.add_many` (one transaction, one executemany), oldest
    first, so rows are stored in the order the calls ended.

    A batch that fails to write stays at the head of the queue and is tried
    again after ``interval`` (the database restarting loses nothing). The
    queue is bounded: past ``max_queue`` records waiting (at 1,000 calls/s
    the default is 100 s of a database that cannot take writes), a new record
    is dropped, counted in :attr:`dropped` and logged (the first and every
    1,000th); the records already queued keep their order and are written
    first. :meth:`close` writes everything still queued before it returns
    (what a failing database still refuses then is logged as lost).
    """

    def __init__(
        self,
        repo: CdrRepository,
        convert: Callable[[T], CdrRow],
        *,
        batch: int = 500,
        interval: float = 0.2,
        max_queue: int = 100_000,
    ) -> None:
        self.repo = repo
        self.convert = convert
        self.batch = max(1, batch)
        self.interval = interval
        self.max_queue = max(1, max_queue)
        self.written = 0
        self.dropped = 0
        self.failures = 0  # batches that failed to write (and were retried)
        self._queue: deque[T] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="offhook-cdr-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Records waiting to be written."""
        return len(self._queue)

    def submit(self, record: T) -> None:
        """Queue ``record`` (dropped and counted in :attr:`dropped` when the queue is
        full or the writer is closed)."""
        queue = self._queue
        if len(queue) >= self.max_queue or self._closing:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                why = "the writer is closed" if self._closing else f"{len(queue)} are waiting"
                log.error("call record dropped (%s); %d dropped so far", why, self.dropped)
            return
        queue.append(record)
        if len(queue) == self.batch:
            self._wake.set()

    def status(self) -> dict[str, int]:
        return {
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "failures": self.failures,
        }

    def close(self, timeout: float | None = 60.0) -> None:
        """Write what is queued, then stop the thread (blocks: call it from a thread)."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the call record writer did not finish; %d records not written", self.pending)

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            self._drain()
            if closing:
                if self._queue:
                    log.error("%d call records were not written (stopping)", len(self._queue))
                return

    def _drain(self) -> None:
        """Write batches until the queue is empty or a write fails."""
        queue = self._queue
        while queue:
            # Taken off the head one by one (the loop appends at the tail meanwhile:
            # a deque may not be iterated while it changes), put back on failure.
            records = [queue.popleft() for _ in range(min(self.batch, len(queue)))]
            try:
                self.repo.add_many([self.convert(r) for r in records])
            except Exception:
                queue.extendleft(reversed(records))
                self.failures += 1
                log.exception("writing %d call records failed; retrying", len(records))
                return
            self.written += len(records)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _search_filters(
    since: datetime | None,
    until: datetime | None,
    number: str | None,
    cause: int | None,
    device: str | None = None,
) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(Cdr.start >= since)
    if until is not None:
        out.append(Cdr.start < until)
    if number is not None:
        out.append(or_(Cdr.calling == number, Cdr.called == number, Cdr.original_called == number))
    if cause is not None:
        out.append(Cdr.cause == int(cause))
    if device is not None:
        out.append(or_(Cdr.calling_device == device, Cdr.called_device == device))
    return out


def _row(r: Row[Any]) -> CdrRow:
    return CdrRow(
        call_id=r.call_id,
        calling=r.calling,
        called=r.called,
        original_called=r.original_called,
        calling_device=r.calling_device,
        called_device=r.called_device,
        start=r.start,
        answer=r.answer,
        end=r.end,
        duration=r.duration,
        cause=r.cause,
        cause_text=r.cause_text,
        node=r.node,
        extra=dict(r.extra or {}),
        last_redirecting=r.last_redirecting,
        redirect_reason=r.redirect_reason,
    )
