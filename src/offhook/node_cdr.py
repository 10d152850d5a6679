"""Call records as the node writes them: a ``CallRecord`` to a ``CdrRow`` (``db.cdr``).

The node's CDR writer thread (``db.cdr.CdrWriter``) turns each ended call
into a row with ``cdr_row``: times in UTC, the cause's text, and in
``extra`` what the record adds (the trunks a route tried and why each
failed). ``utc``/``iso`` are the node's one way to write a timestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from offhook.core.causes import cause_text
from offhook.core.records import CallRecord
from offhook.db.cdr import CdrRow


def iso(ts: float | None) -> str | None:
    return None if ts is None else utc(ts).isoformat()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def cdr_row(record: CallRecord) -> CdrRow:
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


def cdr_extra(record: CallRecord) -> dict[str, Any]:
    extra: dict[str, Any] = dict(record.extra)
    if record.hunt:
        extra["trunks_failed"] = [
            {"trunk": trunk, "cause": cause, "cause_text": cause_text(cause)}
            for trunk, cause in record.hunt
        ]
    return extra
