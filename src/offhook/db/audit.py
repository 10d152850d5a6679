"""The audit log of administrative changes (table ``audit_log``, migration 0007).

Every change made through the web admin, the REST API or the ``offhook
user``/``offhook token`` commands is recorded by :meth:`AuditLog.record`:
when (UTC), who (``actor``, a user name or ``cli``), from where
(``source``: a client address, or ``cli``), what (``action`` such as
``create``/``update``/``delete``/``login``, ``object_type`` such as
``devices`` or ``users``, ``object_key``), and the object before and after
as JSON (None for a creation's before and a deletion's after; never a
password). Text longer than its column is cut, so recording never fails on
length. :meth:`AuditLog.search` reads it back, newest first;
:meth:`AuditLog.prune` deletes entries older than a date (retention is the
operator's choice: nothing is deleted on its own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.engine import Engine

from offhook.db.models import AuditLogRow, utcnow

MAX_LIMIT = 1000
"""Most entries one :meth:`AuditLog.search` returns."""
MAX_SNAPSHOT = 256 * 1024
"""Largest ``before``/``after`` kept (bytes of JSON); a larger one is replaced by a note."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change."""

    id: int
    at: datetime
    actor: str
    source: str
    action: str
    object_type: str
    object_key: str
    before: Any
    after: Any


def _cut(value: str, limit: int) -> str:
    return str(value)[:limit]


def _snapshot(value: Any) -> Any:
    """``value`` as the JSON column will hold it (made JSON-safe, bounded in size)."""
    if value is None:
        return None
    text = json.dumps(value, default=str, sort_keys=True)
    if len(text) > MAX_SNAPSHOT:
        return {"truncated": True, "bytes": len(text)}
    return json.loads(text)


def _filters(
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    object_type: str | None,
    object_key: str | None = None,
    action: str | None = None,
) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if object_key is not None:
        out.append(AuditLogRow.object_key == object_key)
    if action is not None:
        out.append(AuditLogRow.action == action)
    if since is not None:
        out.append(AuditLogRow.at >= since)
    if until is not None:
        out.append(AuditLogRow.at < until)
    if actor is not None:
        out.append(AuditLogRow.actor == actor)
    if object_type is not None:
        out.append(AuditLogRow.object_type == object_type)
    return out


class AuditLog:
    """The audit log over an engine (safe to call from worker threads)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        source: str,
        action: str,
        object_type: str,
        object_key: str,
        before: Any = None,
        after: Any = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Append one entry (``at``: now unless given)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(AuditLogRow).values(
                    at=utcnow() if at is None else at,
                    actor=_cut(actor, 64),
                    source=_cut(source, 64),
                    action=_cut(action, 32),
                    object_type=_cut(object_type, 64),
                    object_key=_cut(object_key, 255),
                    before=_snapshot(before),
                    after=_snapshot(after),
                )
            )

    def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        object_type: str | None = None,
        object_key: str | None = None,
        action: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Entries with ``since <= at < until`` (and the actor, object type,
        object key and action given, each matched exactly), newest first; at
        most ``limit`` (capped at :data:`MAX_LIMIT`) after ``offset``."""
        limit = max(0, min(int(limit), MAX_LIMIT))
        stmt = (
            select(AuditLogRow)
            .where(*_filters(since, until, actor, object_type, object_key, action))
            .order_by(AuditLogRow.at.desc(), AuditLogRow.id.desc())
            .limit(limit)
            .offset(max(0, int(offset)))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                actor=r["actor"],
                source=r["source"],
                action=r["action"],
                object_type=r["object_type"],
                object_key=r["object_key"],
                before=r["before"],
                after=r["after"],
            )
            for r in rows
        ]

    def count(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        object_type: str | None = None,
        object_key: str | None = None,
        action: str | None = None,
    ) -> int:
        """How many entries :meth:`search` would find without ``limit``."""
        stmt = (
            select(func.count())
            .select_from(AuditLogRow)
            .where(*_filters(since, until, actor, object_type, object_key, action))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def prune(self, before: datetime) -> int:
        """Delete the entries recorded before ``before``; return how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(AuditLogRow).where(AuditLogRow.at < before)).rowcount)
