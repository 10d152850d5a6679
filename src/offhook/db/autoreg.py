"""Auto-registered SCCP phones in the database: the DN each phone was given.

The node hands DNs out in memory (``sccp.autoreg.AutoRegistrar``); these rows
keep the assignments so that after a restart every phone gets its own number
back, whatever order the phones come back in. One row per phone name, a DN
held by one phone at most. Only bound parameters reach the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from offhook.db.models import AutoRegistrationRow, utcnow

log = logging.getLogger("offhook.db")

__all__ = [
    "AutoRegistration",
    "AutoRegistrationWriter",
    "drop_auto_registrations",
    "load_auto_registrations",
    "save_auto_registration",
]


@dataclass(frozen=True, slots=True)
class AutoRegistration:
    """One auto-registered phone (times are aware UTC)."""

    name: str
    dn: str
    model: str
    first_seen: datetime
    last_seen: datetime


def load_auto_registrations(engine: Engine) -> list[AutoRegistration]:
    """Every stored assignment, oldest first."""
    with Session(engine) as session:
        rows = session.scalars(
            select(AutoRegistrationRow).order_by(
                AutoRegistrationRow.first_seen, AutoRegistrationRow.name
            )
        )
        return [AutoRegistration(r.name, r.dn, r.model, r.first_seen, r.last_seen) for r in rows]


def save_auto_registration(
    engine: Engine, name: str, dn: str, model: str, now: datetime | None = None
) -> None:
    """Phone ``name`` holds ``dn`` (with ``model``): insert or update its row.

    A row of another phone still naming ``dn`` (its DN was given away) is
    removed in the same transaction, so the unique DN constraint holds.
    """
    now = now or utcnow()
    with Session(engine) as session, session.begin():
        session.execute(
            delete(AutoRegistrationRow).where(
                AutoRegistrationRow.dn == dn, AutoRegistrationRow.name != name
            )
        )
        row = session.get(AutoRegistrationRow, name)
        if row is None:
            session.add(
                AutoRegistrationRow(name=name, dn=dn, model=model, first_seen=now, last_seen=now)
            )
        else:
            row.dn, row.model, row.last_seen = dn, model, now


def drop_auto_registrations(engine: Engine, names: Iterable[str] | None = None) -> int:
    """Forget the given phones (None: all of them); returns how many rows went."""
    stmt = delete(AutoRegistrationRow)
    if names is not None:
        wanted = list(names)
        if not wanted:
            return 0
        stmt = stmt.where(AutoRegistrationRow.name.in_(wanted))
    with Session(engine) as session, session.begin():
        result = session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)


class AutoRegistrationWriter:
    """Stores assignment changes off the event loop, in the order they happened.

    One worker thread, so a phone's later change never lands before its
    earlier one. A failed write is logged and the node goes on (the phone
    keeps its DN in memory; it may get another one after a restart).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offhook-autoreg")

    def save(self, name: str, dn: str, model: str) -> None:
        self._submit(self._pool.submit(save_auto_registration, self._engine, name, dn, model))

    def drop(self, names: Iterable[str]) -> None:
        self._submit(self._pool.submit(drop_auto_registrations, self._engine, list(names)))

    def _submit(self, future: Future[Any]) -> None:
        future.add_done_callback(_log_failure)

    def close(self) -> None:
        """Wait for every queued write."""
        self._pool.shutdown(wait=True)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.warning("auto-registration not stored: %s", exc)
