"""The call-record code from before session 14, kept as the reference its
replacement is checked against (``tests/unit/db/test_cdr_rows.py``,
``tests/integration/test_db_cdr_insert.py``) and measured against
(``bench/cdr_write.py``): ``cdr_row`` with keywords, ``add_many`` with a dict
per row through ``conn.execute(insert(Cdr), dicts)``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from offhook.core.causes import cause_text
from offhook.core.records import CallRecord
from offhook.db.cdr import CdrRow
from offhook.db.models import Cdr
from offhook.node_cdr import cdr_extra, utc


def reference_cdr_row(record: CallRecord) -> CdrRow:
    """``node_cdr.cdr_row`` before session 14."""
    return CdrRow(
        call_id=record.call_id,
        calling=record.calling,
        called=record.called,
        original_called=record.original_called,
        calling_device=record.calling_device,
        called_device=record.called_device,
        start=utc(record.start),
        answer=utc(record.answer) if record.answer is not None else None,
        end=utc(record.end),
        duration=record.duration,
        cause=record.cause,
        cause_text=record.cause_text or cause_text(record.cause),
        node=record.node,
        extra=cdr_extra(record),
        last_redirecting=record.last_redirecting,
        redirect_reason=record.redirect_reason,
    )


def reference_add_many(engine: Engine, rows: Sequence[CdrRow]) -> int:
    """``CdrRepository.add_many`` before session 14."""
    names = [f.name for f in fields(CdrRow)]
    values = []
    for r in rows:
        data = {k: getattr(r, k) for k in names}
        data["extra"] = dict(r.extra) if r.extra else None
        values.append(data)
    with engine.begin() as conn:
        conn.execute(insert(Cdr), values)
    return len(values)
