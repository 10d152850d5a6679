"""Applying a validated plan to the database: :func:`apply_plan`.

The YAML file is the whole truth about what it describes: one
transaction makes the database match it. Devices and dial plan
entries in the file are created or updated; those in the database but absent
from the file are deleted (``prune=False`` / ``offhook load --no-prune``
keeps them). Running the same
file twice changes nothing, and ``plan_version`` (``plan_meta``) is bumped
only when something changed, so running nodes reload only then.

Devices are matched by name and updated in place (their lines and speed dials
by position); dial plan entries (and the media plane's: music on hold sources,
meet-me numbers, media resource groups and lists, and call coverage's line
groups, hunt lists and pilots, pickup groups and park ranges, and the CTI
route points and ports) are matched by
their natural key (a name, or pattern/number + partition; a park range by its
first number + partition). :class:`PlanReport` counts what changed.

Trunk passwords are stored as given (see ``offhook.db.plan_spec``). Device
passwords become HA1 = H(name:realm:password) for MD5 and SHA-256
(RFC 2617 §3.2.2.2, RFC 7616 §3.4.2, RFC 8760) for the node's realm; the clear
password is never stored. A device is "unchanged" when its HA1s for the
current realm equal the stored ones, so changing the realm updates every
SIP device on the next load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from offhook.db.models import (
    PLAN_VERSION_KEY,
    CallingSearchSpaceRow,
    CallParkRow,
    CssMember,
    Device,
    HuntListMemberRow,
    HuntListRow,
    HuntPilotRow,
    Line,
    LineGroupMemberRow,
    LineGroupRow,
    MediaResourceGroupMemberRow,
    MediaResourceGroupRow,
    MediaResourceListMemberRow,
    MediaResourceListRow,
    MeetMeRow,
    MohSourceRow,
    Partition,
    PickupGroupRow,
    PlanMeta,
    RouteGroupMemberRow,
    RouteGroupRow,
    RouteListMemberRow,
    RouteListRow,
    RoutePatternRow,
    SpeedDialRow,
    TranslationPatternRow,
    TrunkRow,
    transform_to_json,
    utcnow,
)
from offhook.db.plan_check import PlanError
from offhook.db.plan_coverage import ForwardSpec
from offhook.db.plan_cti import cti_rows
from offhook.db.plan_spec import (
    DeviceSpec,
    LineSpec,
    PatternSpec,
    PlanSpec,
    RouteGroupMemberSpec,
    SpeedDialSpec,
    TransformSpec,
)


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What a load did: ``created`` ... ``deleted`` count devices; ``dialplan``
    counts the dial plan entries (partitions, CSSs, trunks, route groups and
    lists, route and translation patterns, the media plane's music on hold
    sources, meet-me numbers, media resource groups and lists, and call
    coverage's line groups, hunt lists, hunt pilots, pickup groups and park
    ranges) as (created, updated, unchanged, deleted)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    version: int = 0
    dialplan: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def changed(self) -> bool:
        c, u, _, d = self.dialplan
        return bool(self.created or self.updated or self.deleted or c or u or d)

    def __str__(self) -> str:
        text = (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted"
        )
        if any(self.dialplan):
            c, u, n, d = self.dialplan
            text = (
                f"devices: {text}; dial plan entries: {c} created, {u} updated, "
                f"{n} unchanged, {d} deleted"
            )
        return f"{text} (plan version {self.version})"


def ha1(algorithm: str, name: str, realm: str, password: str) -> str:
    """RFC 2617 §3.2.2.2 / RFC 7616 §3.4.2 HA1 = H(username ":" realm ":" password)."""
    return hashlib.new(algorithm, f"{name}:{realm}:{password}".encode()).hexdigest()


def _desired(spec: DeviceSpec, realm: str) -> dict[str, Any]:
    if spec.password is not None:
        md5 = ha1("md5", spec.name, realm, spec.password)
        sha = ha1("sha256", spec.name, realm, spec.password)
    else:
        md5 = sha = ""
    return {
        "protocol": spec.protocol,
        "description": spec.description,
        "css": spec.css,
        "realm": realm if spec.password is not None else "",
        "ha1_md5": md5,
        "ha1_sha256": sha,
        "max_calls": spec.max_calls,
        "model": spec.model,
        "moh_source": spec.moh_source,
        "media_resource_list": spec.media_resource_list,
        "dnd_option": spec.dnd_option,
        "privacy": spec.privacy,
    }


_FORWARDS = (
    "forward_all",
    "forward_busy",
    "forward_no_answer",
    "forward_unregistered",
    "forward_busy_external",
    "forward_no_answer_external",
    "forward_unregistered_external",
)
_LINE_COLUMNS = (
    "dn",
    "display",
    "partition",
    "moh_source",
    *(c for name in _FORWARDS for c in (name, f"{name}_css")),
    "cfna_timer",
    "voicemail",
    "pickup_group",
    "intercom",
)


def _line_fields(ln: LineSpec) -> dict[str, Any]:
    """A line's columns: each forward as destination and CSS columns ("" = none)."""
    out: dict[str, Any] = {
        "dn": ln.dn,
        "display": ln.display,
        "partition": ln.partition,
        "moh_source": ln.moh_source,
        "cfna_timer": None if ln.cfna_timer is None else float(ln.cfna_timer),
        "voicemail": ln.voicemail,
        "pickup_group": ln.pickup_group,
        "intercom": ln.intercom,
    }
    for name in _FORWARDS:
        fwd: ForwardSpec | None = getattr(ln, name)
        out[name] = fwd.destination if fwd is not None else ""
        out[f"{name}_css"] = fwd.css if fwd is not None else ""
    return out


def _line_tuples(lines: Sequence[LineSpec] | Sequence[Line]) -> list[tuple[Any, ...]]:
    out = []
    for ln in lines:
        row = (
            _line_fields(ln)
            if isinstance(ln, LineSpec)
            else {c: getattr(ln, c) for c in _LINE_COLUMNS}
        )
        out.append(tuple(row[c] for c in _LINE_COLUMNS))
    return out


def _line_row(position: int, ln: LineSpec) -> Line:
    return Line(position=position, **_line_fields(ln))


def _speed_dial_tuples(
    dials: Sequence[SpeedDialSpec] | Sequence[SpeedDialRow],
) -> list[tuple[str, str]]:
    return [(sd.number, sd.label) for sd in dials]


def _lock_version(session: Session) -> PlanMeta:
    meta = session.execute(
        select(PlanMeta).where(PlanMeta.key == PLAN_VERSION_KEY).with_for_update()
    ).scalar_one_or_none()
    if meta is None:
        meta = PlanMeta(key=PLAN_VERSION_KEY, value="0")
        session.add(meta)
    return meta


def _kept_secret(
    index: int, spec: DeviceSpec, dev: Device | None, keep_passwords: bool
) -> dict[str, Any] | None:
    """The stored realm and HA1s a sip device without a password keeps (None: it
    has a password, or is not sip); PlanError when there is nothing to keep."""
    if spec.protocol != "sip" or spec.password is not None:
        return None
    if keep_passwords and dev is not None and dev.protocol == "sip" and dev.ha1_md5:
        return {"realm": dev.realm, "ha1_md5": dev.ha1_md5, "ha1_sha256": dev.ha1_sha256}
    what = "a new sip device" if keep_passwords else "a sip device"
    raise PlanError(
        "plan",
        [(f"devices[{index}] ({spec.name})", f"{what} needs a password (its digest secret)")],
    )


def apply_plan(
    engine: Engine,
    plan: PlanSpec,
    realm: str,
    *,
    prune: bool = True,
    keep_passwords: bool = False,
) -> PlanReport:
    """Make the database match ``plan`` in one transaction; see the module doc.

    ``keep_passwords``: a sip device whose spec has no password keeps its
    stored realm and HA1s, a trunk whose spec has password "" its stored
    password (a plan from ``offhook.db.plan_export`` or the web API, which
    never show passwords). A sip device without a password and nothing
    stored to keep raises :class:`~offhook.db.plan_check.PlanError` (nothing
    written).
    """
    created = updated = unchanged = deleted = 0
    with Session(engine) as session, session.begin():
        meta = _lock_version(session)
        existing = {
            d.name: d
            for d in session.scalars(
                select(Device).options(selectinload(Device.lines), selectinload(Device.speed_dials))
            ).all()
        }
        now = utcnow()
        for index, spec in enumerate(plan.devices):
            want = _desired(spec, realm)
            kept = _kept_secret(index, spec, existing.get(spec.name), keep_passwords)
            if kept is not None:
                want.update(kept)
            dev = existing.pop(spec.name, None)
            if dev is None:
                dev = Device(name=spec.name, created_at=now, updated_at=now, **want)
                dev.lines = [_line_row(i, ln) for i, ln in enumerate(spec.lines)]
                dev.speed_dials = [
                    SpeedDialRow(position=i, number=sd.number, label=sd.label)
                    for i, sd in enumerate(spec.speed_dials)
                ]
                session.add(dev)
                created += 1
                continue
            same_fields = all(getattr(dev, k) == v for k, v in want.items())
            same_lines = _line_tuples(dev.lines) == _line_tuples(spec.lines)
            same_dials = _speed_dial_tuples(dev.speed_dials) == _speed_dial_tuples(spec.speed_dials)
            if same_fields and same_lines and same_dials:
                unchanged += 1
                continue
            for key, value in want.items():
                setattr(dev, key, value)
            if not same_lines:
                # Update in place by position (no unique-constraint churn), then trim.
                for i, ln in enumerate(spec.lines):
                    if i < len(dev.lines):
                        row = dev.lines[i]
                        for key, value in _line_fields(ln).items():
                            setattr(row, key, value)
                    else:
                        dev.lines.append(_line_row(i, ln))
                del dev.lines[len(spec.lines) :]
            if not same_dials:
                for i, sd in enumerate(spec.speed_dials):
                    if i < len(dev.speed_dials):
                        dial = dev.speed_dials[i]
                        dial.number, dial.label = sd.number, sd.label
                    else:
                        dev.speed_dials.append(
                            SpeedDialRow(position=i, number=sd.number, label=sd.label)
                        )
                del dev.speed_dials[len(spec.speed_dials) :]
            dev.updated_at = now
            updated += 1
        if prune:
            for dev in existing.values():
                session.delete(dev)
                deleted += 1
        session.flush()
        trunk_secrets: dict[str, str] = {}
        if keep_passwords:
            trunk_secrets = {
                name: password
                for name, password in session.execute(select(TrunkRow.name, TrunkRow.password))
            }
        counts = _sync_dialplan(session, plan, prune, trunk_secrets)
        dialplan = (
            sum(c[0] for c in counts),
            sum(c[1] for c in counts),
            sum(c[2] for c in counts),
            sum(c[3] for c in counts),
        )
        report = PlanReport(created, updated, unchanged, deleted, 0, dialplan)
        version = int(meta.value or 0)
        if report.changed:
            version += 1
            meta.value = str(version)
    return replace(report, version=version)


_Row = tuple[tuple[Any, ...], dict[str, Any], list[dict[str, Any]]]


def _sync(
    session: Session,
    model: type[Any],
    keys: tuple[str, ...],
    desired: list[_Row],
    prune: bool,
    child: tuple[type[Any], str] | None = None,
) -> tuple[int, int, int, int]:
    """Make ``model``'s rows match ``desired`` (key values, fields, ordered children).

    Rows are matched by their natural key (a name, or pattern + partition)
    and updated in place; ordered children of a changed row are replaced
    (deleted, then inserted, as separate statements: no unique-constraint
    churn on ``position``).
    """
    table = model.__table__
    created = updated = unchanged = deleted = 0
    current: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    for row in session.execute(select(table)).mappings():
        fields = {k: v for k, v in row.items() if k != "id" and k not in keys}
        current[tuple(row[k] for k in keys)] = (int(row["id"]), fields)
    kids: dict[int, list[dict[str, Any]]] = {}
    if child is not None:
        ctable, fk = child[0].__table__, child[1]
        for row in session.execute(
            select(ctable).order_by(ctable.c[fk], ctable.c.position)
        ).mappings():
            fields = {k: v for k, v in row.items() if k not in {"id", fk, "position"}}
            kids.setdefault(int(row[fk]), []).append(fields)
    for key, fields, children in desired:
        found = current.pop(key, None)
        if found is None:
            row_id = int(
                session.execute(
                    insert(table)
                    .values(**dict(zip(keys, key, strict=True)), **fields)
                    .returning(table.c.id)
                ).scalar_one()
            )
            created += 1
            old_children: list[dict[str, Any]] = []
        else:
            row_id, old_fields = found
            old_children = kids.get(row_id, [])
            if old_fields == fields and (child is None or old_children == children):
                unchanged += 1
                continue
            if old_fields != fields:
                session.execute(update(table).where(table.c.id == row_id).values(**fields))
            updated += 1
        if child is not None and old_children != children:
            ctable, fk = child[0].__table__, child[1]
            session.execute(delete(ctable).where(ctable.c[fk] == row_id))
            if children:
                session.execute(
                    insert(ctable),
                    [{fk: row_id, "position": i, **c} for i, c in enumerate(children)],
                )
    if prune and current:
        # Children go with their parent (ON DELETE CASCADE; SQLite: foreign_keys=ON).
        if child is not None:
            ctable, fk = child[0].__table__, child[1]
            ids = [row_id for row_id, _ in current.values()]
            session.execute(delete(ctable).where(ctable.c[fk].in_(ids)))
        session.execute(delete(table).where(table.c.id.in_([i for i, _ in current.values()])))
        deleted = len(current)
    return created, updated, unchanged, deleted


def _sync_dialplan(
    session: Session, plan: PlanSpec, prune: bool, trunk_secrets: dict[str, str]
) -> list[tuple[int, int, int, int]]:
    """The dial plan's rows; ``trunk_secrets``: the stored password of each trunk
    whose spec has none (``keep_passwords``), by name."""

    def tf(spec: TransformSpec) -> dict[str, Any]:
        return dict(transform_to_json(spec.to_model()))

    def transforms(entry: PatternSpec | RouteGroupMemberSpec) -> dict[str, Any]:
        return {
            "called_transform": tf(entry.called_transform),
            "calling_transform": tf(entry.calling_transform),
        }

    name = ("name",)
    pattern_key = ("pattern", "partition")
    return [
        _sync(
            session,
            Partition,
            name,
            [((p,), {"position": i}, []) for i, p in enumerate(plan.partitions)],
            prune,
        ),
        _sync(
            session,
            CallingSearchSpaceRow,
            name,
            [
                ((c.name,), {}, [{"partition": p} for p in c.partitions])
                for c in plan.calling_search_spaces
            ],
            prune,
            (CssMember, "css_id"),
        ),
        _sync(
            session,
            TrunkRow,
            name,
            [
                (
                    (t.name,),
                    {
                        "protocol": t.protocol,
                        "host": t.host,
                        "port": t.port,
                        "transport": t.transport,
                        "css": t.css,
                        "max_calls": t.max_calls,
                        "max_cps": t.max_cps,
                        "username": t.username,
                        "password": t.password or trunk_secrets.get(t.name, ""),
                        "register": t.register_,
                        "options_ping": float(t.options_ping),
                        "inbound_addresses": list(t.inbound_addresses),
                    },
                    [],
                )
                for t in plan.trunks
            ],
            prune,
        ),
        _sync(
            session,
            RouteGroupRow,
            name,
            [
                (
                    (g.name,),
                    {"distribution": g.distribution},
                    [{"trunk": m.trunk, **transforms(m)} for m in g.members],
                )
                for g in plan.route_groups
            ],
            prune,
            (RouteGroupMemberRow, "group_id"),
        ),
        _sync(
            session,
            RouteListRow,
            name,
            [((r.name,), {}, [{"route_group": g} for g in r.groups]) for r in plan.route_lists],
            prune,
            (RouteListMemberRow, "list_id"),
        ),
        _sync(
            session,
            RoutePatternRow,
            pattern_key,
            [
                (
                    (r.pattern, r.partition),
                    {
                        "route_list": r.route_list,
                        "block": r.block,
                        "block_cause": r.block_cause,
                        "urgent": r.urgent,
                        **transforms(r),
                    },
                    [],
                )
                for r in plan.route_patterns
            ],
            prune,
        ),
        _sync(
            session,
            TranslationPatternRow,
            pattern_key,
            [
                (
                    (t.pattern, t.partition),
                    {"css": t.css, "urgent": t.urgent, "block": t.block, **transforms(t)},
                    [],
                )
                for t in plan.translation_patterns
            ],
            prune,
        ),
        *_sync_media(session, plan, prune),
        *_sync_coverage(session, plan, prune),
        *(_sync(session, model, ("name",), rows, prune) for model, rows in cti_rows(plan)),
    ]


def _sync_media(session: Session, plan: PlanSpec, prune: bool) -> list[tuple[int, int, int, int]]:
    """The media plane's rows: music on hold sources, meet-me numbers, media resources."""
    name = ("name",)
    return [
        _sync(
            session,
            MohSourceRow,
            name,
            [((m.name,), {"path": m.file}, []) for m in plan.moh_sources],
            prune,
        ),
        _sync(
            session,
            MeetMeRow,
            ("number", "partition"),
            [
                (
                    (m.number, m.partition),
                    {"pin": m.pin or "", "max_parties": m.max_parties},
                    [],
                )
                for m in plan.meetme
            ],
            prune,
        ),
        _sync(
            session,
            MediaResourceGroupRow,
            name,
            [
                ((g.name,), {}, [{"server": s} for s in g.servers])
                for g in plan.media_resource_groups
            ],
            prune,
            (MediaResourceGroupMemberRow, "group_id"),
        ),
        _sync(
            session,
            MediaResourceListRow,
            name,
            [
                ((r.name,), {}, [{"media_resource_group": g} for g in r.groups])
                for r in plan.media_resource_lists
            ],
            prune,
            (MediaResourceListMemberRow, "list_id"),
        ),
    ]


def _sync_coverage(
    session: Session, plan: PlanSpec, prune: bool
) -> list[tuple[int, int, int, int]]:
    """Call coverage's rows: line groups, hunt lists and pilots, pickup groups, park ranges."""
    name = ("name",)
    return [
        _sync(
            session,
            LineGroupRow,
            name,
            [
                (
                    (g.name,),
                    {
                        "distribution": g.distribution,
                        "rna_timeout": float(g.rna_timeout),
                        "on_no_answer": g.on_no_answer,
                        "on_busy": g.on_busy,
                        "on_unavailable": g.on_unavailable,
                    },
                    [{"dn": dn} for dn in g.members],
                )
                for g in plan.line_groups
            ],
            prune,
            (LineGroupMemberRow, "group_id"),
        ),
        _sync(
            session,
            HuntListRow,
            name,
            [((h.name,), {}, [{"line_group": g} for g in h.line_groups]) for h in plan.hunt_lists],
            prune,
            (HuntListMemberRow, "list_id"),
        ),
        _sync(
            session,
            HuntPilotRow,
            ("pattern", "partition"),
            [
                (
                    (h.pattern, h.partition),
                    {
                        "hunt_list": h.hunt_list,
                        "final_forward": h.final_forward,
                        "final_css": h.final_css,
                    },
                    [],
                )
                for h in plan.hunt_pilots
            ],
            prune,
        ),
        _sync(
            session,
            PickupGroupRow,
            name,
            [
                ((p.name,), {"number": p.number, "partition": p.partition}, [])
                for p in plan.pickup_groups
            ],
            prune,
        ),
        _sync(
            session,
            CallParkRow,
            ("first", "partition"),
            [
                ((c.first, c.partition), {"last": c.last, "reversion": float(c.reversion)}, [])
                for c in plan.call_park
            ],
            prune,
        ),
    ]
