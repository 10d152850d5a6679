"""Run-time call coverage settings in the database, so that they survive a restart.

A phone sets forward all (CFwdAll, ``*21``), do not disturb or its hunt group
login, and a voicemail system lights a line's message lamp; call control
publishes each change on the event bus (``ForwardChanged``, ``DndChanged``,
``HuntLoginChanged``, ``MwiChanged``, see ``offhook.core.features.state``).
The node subscribes a :class:`FeatureSettingsWriter` to them
(:data:`FEATURE_EVENTS`) and, as it does for call records, writes what is
pending from a worker thread now and then (:meth:`FeatureSettingsWriter.flush`),
never on the call path. At start, :func:`load_feature_events` gives the stored
settings back as the events that made them, for ``FeatureState.restore``.

Table ``feature_settings`` holds the latest setting per line or device: one
row per ``kind`` and key (``forward`` and ``mwi``: ``dn`` + ``partition``;
``dnd`` and ``hunt``: ``device``), ``value`` the rest of the event as JSON.
A setting back at its default removes the row (forward all back to the plan,
do not disturb off, logged in to hunt groups, no messages waiting), so the
table holds only what differs from the plan. Only bound parameters reach the
database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from offhook.core.directory import PlanSnapshot
from offhook.core.records import DndChanged, ForwardChanged, HuntLoginChanged, MwiChanged
from offhook.db.models import FeatureSettingRow, utcnow

log = logging.getLogger("offhook.db")

__all__ = [
    "FEATURE_EVENTS",
    "FeatureEvent",
    "FeatureSettingsWriter",
    "event_of",
    "load_feature_events",
    "save_feature_events",
    "setting_of",
]

FeatureEvent = ForwardChanged | DndChanged | HuntLoginChanged | MwiChanged
FEATURE_EVENTS: tuple[type[FeatureEvent], ...] = (
    ForwardChanged,
    DndChanged,
    HuntLoginChanged,
    MwiChanged,
)
"""The bus events whose latest value per line or device is stored."""

_Key = tuple[str, str, str, str]  # kind, device, dn, partition


def _key(event: FeatureEvent) -> _Key:
    match event:
        case ForwardChanged():
            return ("forward", "", event.dn, event.partition)
        case DndChanged():
            return ("dnd", event.device, "", "")
        case HuntLoginChanged():
            return ("hunt", event.device, "", "")
        case MwiChanged():
            return ("mwi", "", event.dn, event.partition)


def _value(event: FeatureEvent) -> dict[str, Any] | None:
    """What the row stores besides its key; None when the setting is back at its default."""
    match event:
        case ForwardChanged():
            if event.destination is None:
                return None
            return {"destination": event.destination, "device": event.device}
        case DndChanged():
            return {"on": True} if event.on else None
        case HuntLoginChanged():
            return None if event.logged_in else {"logged_in": False}
        case MwiChanged():
            if not (event.waiting or event.new or event.old):
                return None
            return {"waiting": event.waiting, "new": event.new, "old": event.old}


def _event(kind: str, device: str, dn: str, partition: str, value: Any) -> FeatureEvent:
    """A stored row as the event that made it; ValueError for a row that is not one."""
    if not isinstance(value, dict):
        raise ValueError("the value is not a JSON object")
    if kind == "forward":
        destination = value.get("destination")
        setter = value.get("device", "")
        if not isinstance(destination, str) or not isinstance(setter, str):
            raise ValueError("a forward needs a destination")
        return ForwardChanged(dn, partition, destination, setter)
    if kind == "dnd" and value.get("on") is True:
        return DndChanged(device, True)
    if kind == "hunt" and value.get("logged_in") is False:
        return HuntLoginChanged(device, False)
    if kind == "mwi":
        waiting, new, old = value.get("waiting"), _count(value.get("new")), _count(value.get("old"))
        if isinstance(waiting, bool) and new is not None and old is not None:
            return MwiChanged(dn, partition, waiting, new, old)
    raise ValueError(f"not a {kind!r} setting")


def setting_of(event: FeatureEvent) -> tuple[str, str, str, str, dict[str, Any] | None]:
    """(kind, device, dn, partition, value) of ``event``, as a row stores it (value None:
    back to the default); :func:`event_of` gives the event back."""
    return (*_key(event), _value(event))


def event_of(
    kind: str, device: str, dn: str, partition: str, value: dict[str, Any] | None
) -> FeatureEvent:
    """The event :func:`setting_of` describes; ValueError when it describes none."""
    if value is not None:
        return _event(kind, device, dn, partition, value)
    if kind == "forward":
        return ForwardChanged(dn, partition, None)
    if kind == "dnd":
        return DndChanged(device, False)
    if kind == "hunt":
        return HuntLoginChanged(device, True)
    if kind == "mwi":
        return MwiChanged(dn, partition, False)
    raise ValueError(f"kind {kind!r}")


def _count(value: Any) -> int | None:
    """A message count as stored, or None when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def save_feature_events(
    engine: Engine, events: Iterable[FeatureEvent], now: datetime | None = None
) -> int:
    """Store ``events`` (oldest first) in one transaction; returns how many."""
    now = now or utcnow()
    row = FeatureSettingRow
    count = 0
    with engine.begin() as conn:
        for event in events:
            kind, device, dn, partition = _key(event)
            conn.execute(
                delete(row).where(
                    row.kind == kind,
                    row.device == device,
                    row.dn == dn,
                    row.partition == partition,
                )
            )
            value = _value(event)
            if value is not None:
                conn.execute(
                    insert(row).values(
                        kind=kind,
                        device=device,
                        dn=dn,
                        partition=partition,
                        value=value,
                        updated_at=now,
                    )
                )
            count += 1
    return count


def _in_plan(event: FeatureEvent, plan: PlanSnapshot) -> bool:
    match event:
        case ForwardChanged() | MwiChanged():
            return plan.line(event.dn, event.partition) is not None
        case DndChanged() | HuntLoginChanged():
            return event.device in plan.devices


def load_feature_events(engine: Engine, plan: PlanSnapshot | None = None) -> list[FeatureEvent]:
    """The stored settings as the events that made them, oldest first.

    With ``plan``, settings of lines and devices it does not have are left
    out (they stay stored, for a plan that brings the line back). A row that
    is not a setting (edited by hand) is logged and skipped.
    """
    out: list[FeatureEvent] = []
    r = FeatureSettingRow
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.kind, r.device, r.dn, r.partition, r.value).order_by(r.updated_at, r.id)
        ).all()
    for row in rows:
        try:
            event = _event(row.kind, row.device, row.dn, row.partition, row.value)
        except ValueError as exc:
            log.warning("feature setting %s %r skipped: %s", row.kind, row.device or row.dn, exc)
            continue
        if plan is None or _in_plan(event, plan):
            out.append(event)
    return out


class FeatureSettingsWriter:
    """Keeps the latest unsaved setting per line or device, and stores them off the loop.

    :meth:`record` (a bus subscriber, on the event loop) only remembers;
    :meth:`flush` (in a worker thread) writes what is pending in one
    transaction. A failed write is logged and its settings stay pending
    (unless a newer one came meanwhile) for the next flush. Pending settings
    are bounded by the plan: one per line or device.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._pending: dict[_Key, FeatureEvent] = {}
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, event: FeatureEvent) -> None:
        key = _key(event)
        with self._lock:
            self._pending.pop(key, None)  # re-inserted last: writes keep the order of changes
            self._pending[key] = event

    def flush(self) -> int:
        """Write what is pending; returns how many settings were stored (0 on failure)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            save_feature_events(self._engine, batch.values())
        except Exception:
            log.exception("storing %d feature settings failed; retrying", len(batch))
            with self._lock:
                self._pending = {**batch, **self._pending}
            return 0
        self.written += len(batch)
        return len(batch)
