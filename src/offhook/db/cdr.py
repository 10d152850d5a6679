"""Call detail records: written by the node when a call attempt ends, read by
``offhook cdr`` and searched by the web admin (:meth:`CdrRepository.search`,
:meth:`CdrRepository.count`, :meth:`CdrRepository.per_minute`).

All times are aware UTC datetimes (``models.UtcDateTime`` keeps them so on
SQLite and PostgreSQL). Only bound parameters reach the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, func, insert, or_, select
from sqlalchemy.engine import Engine

from offhook.db.models import Cdr

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


class CdrRepository:
    """CDR storage over an engine (safe to call from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_many(self, rows: Iterable[CdrRow]) -> int:
        """Insert ``rows`` in one transaction; return how many."""
        # Built by hand: dataclasses.asdict deep-copies and is slow at call rates.
        names = [f.name for f in fields(CdrRow)]
        values = []
        for r in rows:
            data = {k: getattr(r, k) for k in names}
            data["extra"] = dict(r.extra) if r.extra else None
            values.append(data)
        if not values:
            return 0
        with self.engine.begin() as conn:
            conn.execute(insert(Cdr), values)
        return len(values)

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
        minutes = max(0, -(-int((end - first).total_seconds()) // 60))
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
