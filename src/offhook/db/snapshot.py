"""Read the plan from the database into the immutable in-memory snapshot.

The node calls :func:`load_snapshot` at start and whenever
:func:`plan_version` (one indexed row) differs from the snapshot's version;
call processing then reads only the snapshot.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.db.models import PLAN_VERSION_KEY, Device, Line, PlanMeta


def plan_version(engine: Engine) -> int:
    """The current plan version (0: no plan ever loaded, or no schema yet)."""
    try:
        with engine.connect() as conn:
            value = conn.execute(
                select(PlanMeta.value).where(PlanMeta.key == PLAN_VERSION_KEY)
            ).scalar_one_or_none()
    except SQLAlchemyError:
        return 0
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def load_snapshot(engine: Engine) -> PlanSnapshot:
    """The whole plan as a :class:`PlanSnapshot`, stamped with its version.

    The version is read first, in the same transaction: if the plan changes
    while we read, the snapshot carries the older version and the next poll
    loads again (never the reverse, which would miss a change).
    """
    with engine.connect() as conn, conn.begin():
        raw = conn.execute(
            select(PlanMeta.value).where(PlanMeta.key == PLAN_VERSION_KEY)
        ).scalar_one_or_none()
        version = int(raw) if raw and raw.isdigit() else 0
        devices = conn.execute(
            select(
                Device.id,
                Device.name,
                Device.protocol,
                Device.realm,
                Device.ha1_md5,
                Device.ha1_sha256,
                Device.css,
                Device.max_calls,
            ).order_by(Device.name)
        ).all()
        lines: dict[int, list[LineInfo]] = {}
        for dev_id, dn, display, partition in conn.execute(
            select(Line.device_id, Line.dn, Line.display, Line.partition).order_by(
                Line.device_id, Line.position
            )
        ):
            lines.setdefault(dev_id, []).append(LineInfo(dn, display, partition))
    infos = [
        DeviceInfo(
            name=d.name,
            protocol=d.protocol,
            lines=tuple(lines.get(d.id, ())),
            realm=d.realm,
            ha1_md5=d.ha1_md5,
            ha1_sha256=d.ha1_sha256,
            css=d.css,
            max_calls=d.max_calls,
        )
        for d in devices
    ]
    return PlanSnapshot.build(infos, version)
