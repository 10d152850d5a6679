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


_fromtimestamp = datetime.fromtimestamp


def cdr_row(record: CallRecord) -> CdrRow:
    # Positional, in CdrRow's field order: the 16 keywords took a third of
    # this function's time (the writer thread's, holding the GIL).
    answer = record.answer
    return CdrRow(
        record.call_id,
        record.calling,
        record.called,
        record.original_called,
        record.calling_device,
        record.called_device,
        _fromtimestamp(record.start, UTC),
        None if answer is None else _fromtimestamp(answer, UTC),
        _fromtimestamp(record.end, UTC),
        record.duration,
        record.cause,
        record.cause_text or cause_text(record.cause),
        record.node,
        cdr_extra(record) if record.extra or record.hunt else {},
        record.last_redirecting,
        record.redirect_reason,
    )


def cdr_extra(record: CallRecord) -> dict[str, Any]:
    extra: dict[str, Any] = dict(record.extra)
    if record.hunt:
        extra["trunks_failed"] = [
            {"trunk": trunk, "cause": cause, "cause_text": cause_text(cause)}
            for trunk, cause in record.hunt
        ]
    return extra
