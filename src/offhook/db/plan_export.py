"""Exporting the plan from the database in the YAML plan format of ``offhook load``.

:func:`export_plan` reads every section of ``PlanSpec`` back from the
database as plain data: sections and keys in ``PlanSpec``'s field order
(empty sections and keys at their default left out, so the result reads
like a hand-written plan), entries in the order they were created (lines,
speed dials and members in their stored order). A route group member
without transformations is written as its trunk name.

Passwords are never exported: a sip device comes without ``password`` and a
trunk without ``password``. ``parse_plan(export_plan(engine), ...)`` accepts
the result, and applying it back with ``apply_plan(..., keep_passwords=True)``
changes nothing (the devices and trunks keep their stored secrets). Music on
hold files are the absolute paths stored at load time.

:func:`dump_plan_yaml` writes the data as YAML text (numbers such as DNs
quoted, so that ``offhook load`` reads them as text).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from offhook.db.models import (
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
    RouteGroupMemberRow,
    RouteGroupRow,
    RouteListMemberRow,
    RouteListRow,
    RoutePatternRow,
    TranslationPatternRow,
    TrunkRow,
)
from offhook.db.plan_coverage import (
    CallParkSpec,
    HuntPilotSpec,
    LineGroupSpec,
    PickupGroupSpec,
)
from offhook.db.plan_cti import export_cti
from offhook.db.plan_spec import (
    DeviceSpec,
    LineSpec,
    MeetMeSpec,
    PlanSpec,
    RoutePatternSpec,
    SpeedDialSpec,
    TranslationPatternSpec,
    TrunkSpec,
)

_FORWARDS = (
    "forward_all",
    "forward_busy",
    "forward_no_answer",
    "forward_unregistered",
    "forward_busy_external",
    "forward_no_answer_external",
    "forward_unregistered_external",
)

YAML_HEADER = (
    "# offhook plan, exported from the database (offhook load format).\n"
    "# Passwords are not exported: load it with --keep-passwords to keep the stored ones.\n"
)


def _compact(
    spec: type[BaseModel], data: dict[str, Any], keep: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``data`` in ``spec``'s field order without the keys at their default
    (except ``keep``); a field's alias (``register``) is its key."""
    out: dict[str, Any] = {}
    for name, info in spec.model_fields.items():
        key = info.alias or name
        if key not in data:
            continue
        value = data[key]
        if key not in keep and not info.is_required():
            default = info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = default.model_dump(exclude_defaults=True)
            if value == default:
                continue
        out[key] = value
    return out


def _number(value: float) -> int | float:
    """A whole float as an int (``rna_timeout: 10``, not ``10.0``)."""
    return int(value) if float(value).is_integer() else float(value)


def _line(row: Line) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dn": row.dn,
        "display": row.display,
        "partition": row.partition,
        "moh_source": row.moh_source,
    }
    for name in _FORWARDS:
        destination = getattr(row, name)
        if destination:
            forward = {"destination": destination}
            css = getattr(row, f"{name}_css")
            if css:
                forward["css"] = css
            data[name] = forward
    data["cfna_timer"] = None if row.cfna_timer is None else _number(row.cfna_timer)
    data["voicemail"] = row.voicemail
    data["pickup_group"] = row.pickup_group
    data["intercom"] = row.intercom
    return _compact(LineSpec, data, keep=("dn",))


def _device(dev: Device) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": dev.name,
        "protocol": dev.protocol,
        "description": dev.description,
        "css": dev.css,
        "max_calls": dev.max_calls,
        "lines": [_line(ln) for ln in dev.lines],
        "model": dev.model,
        "speed_dials": [
            _compact(SpeedDialSpec, {"number": sd.number, "label": sd.label}, keep=("number",))
            for sd in dev.speed_dials
        ],
        "moh_source": dev.moh_source,
        "media_resource_list": dev.media_resource_list,
        "dnd_option": dev.dnd_option,
        "privacy": dev.privacy,
    }
    return _compact(DeviceSpec, data, keep=("name", "protocol"))


def _transforms(called: dict[str, Any] | None, calling: dict[str, Any] | None) -> dict[str, Any]:
    """The transformation keys of a pattern or route group member, those set only."""
    out: dict[str, Any] = {}
    if called:
        out["called_transform"] = dict(called)
    if calling:
        out["calling_transform"] = dict(calling)
    return out


def _members(
    session: Session, model: type[Any], fk: str, column: str | None
) -> dict[int, list[Any]]:
    """Ordered ``column`` values (None: whole rows) of each parent's member rows, by parent id."""
    table = model.__table__
    out: dict[int, list[Any]] = {}
    for row in session.execute(select(table).order_by(table.c[fk], table.c.position)).mappings():
        out.setdefault(int(row[fk]), []).append(row if column is None else row[column])
    return out


def _rows(session: Session, model: type[Any]) -> list[Any]:
    return list(session.scalars(select(model).order_by(model.id)))


def _dialplan(session: Session) -> dict[str, Any]:
    css_members = _members(session, CssMember, "css_id", "partition")
    group_members = _members(session, RouteGroupMemberRow, "group_id", None)
    list_members = _members(session, RouteListMemberRow, "list_id", "route_group")
    trunks = []
    for t in _rows(session, TrunkRow):
        data = {
            "name": t.name,
            "protocol": t.protocol,
            "host": t.host,
            "port": t.port,
            "transport": t.transport,
            "css": t.css,
            "max_calls": t.max_calls,
            "max_cps": t.max_cps,
            "username": t.username,
            "register": t.register,
            "options_ping": _number(t.options_ping),
            "inbound_addresses": list(t.inbound_addresses or ()),
        }
        trunks.append(_compact(TrunkSpec, data, keep=("name", "protocol", "host")))
    route_groups = []
    for g in _rows(session, RouteGroupRow):
        members: list[Any] = []
        for m in group_members.get(g.id, []):
            transforms = _transforms(m["called_transform"], m["calling_transform"])
            members.append({"trunk": m["trunk"], **transforms} if transforms else m["trunk"])
        entry: dict[str, Any] = {"name": g.name}
        if g.distribution != "top-down":
            entry["distribution"] = g.distribution
        entry["members"] = members
        route_groups.append(entry)
    return {
        "partitions": [
            p.name
            for p in session.scalars(select(Partition).order_by(Partition.position, Partition.id))
        ],
        "calling_search_spaces": [
            {"name": c.name, "partitions": css_members.get(c.id, [])}
            for c in _rows(session, CallingSearchSpaceRow)
        ],
        "trunks": trunks,
        "route_groups": route_groups,
        "route_lists": [
            {"name": r.name, "groups": list_members.get(r.id, [])}
            for r in _rows(session, RouteListRow)
        ],
        "route_patterns": [
            _compact(
                RoutePatternSpec,
                {
                    "pattern": r.pattern,
                    "partition": r.partition,
                    "urgent": r.urgent,
                    **_transforms(r.called_transform, r.calling_transform),
                    "route_list": r.route_list,
                    "block": r.block,
                    "block_cause": r.block_cause,
                },
                keep=("pattern",),
            )
            for r in _rows(session, RoutePatternRow)
        ],
        "translation_patterns": [
            _compact(
                TranslationPatternSpec,
                {
                    "pattern": t.pattern,
                    "partition": t.partition,
                    "urgent": t.urgent,
                    **_transforms(t.called_transform, t.calling_transform),
                    "css": t.css,
                    "block": t.block,
                },
                keep=("pattern", "css"),
            )
            for t in _rows(session, TranslationPatternRow)
        ],
    }


def _media(session: Session) -> dict[str, Any]:
    servers = _members(session, MediaResourceGroupMemberRow, "group_id", "server")
    groups = _members(session, MediaResourceListMemberRow, "list_id", "media_resource_group")
    return {
        "moh_sources": [{"name": m.name, "file": m.path} for m in _rows(session, MohSourceRow)],
        "meetme": [
            _compact(
                MeetMeSpec,
                {
                    "number": m.number,
                    "partition": m.partition,
                    "pin": m.pin or None,
                    "max_parties": m.max_parties,
                },
                keep=("number",),
            )
            for m in _rows(session, MeetMeRow)
        ],
        "media_resource_groups": [
            {"name": g.name, "servers": servers.get(g.id, [])}
            for g in _rows(session, MediaResourceGroupRow)
        ],
        "media_resource_lists": [
            {"name": r.name, "groups": groups.get(r.id, [])}
            for r in _rows(session, MediaResourceListRow)
        ],
    }


def _coverage(session: Session) -> dict[str, Any]:
    members = _members(session, LineGroupMemberRow, "group_id", "dn")
    line_groups = _members(session, HuntListMemberRow, "list_id", "line_group")
    return {
        "line_groups": [
            _compact(
                LineGroupSpec,
                {
                    "name": g.name,
                    "distribution": g.distribution,
                    "rna_timeout": _number(g.rna_timeout),
                    "on_no_answer": g.on_no_answer,
                    "on_busy": g.on_busy,
                    "on_unavailable": g.on_unavailable,
                    "members": members.get(g.id, []),
                },
                keep=("name", "members"),
            )
            for g in _rows(session, LineGroupRow)
        ],
        "hunt_lists": [
            {"name": h.name, "line_groups": line_groups.get(h.id, [])}
            for h in _rows(session, HuntListRow)
        ],
        "hunt_pilots": [
            _compact(
                HuntPilotSpec,
                {
                    "pattern": h.pattern,
                    "partition": h.partition,
                    "hunt_list": h.hunt_list,
                    "final_forward": h.final_forward,
                    "final_css": h.final_css,
                },
            )
            for h in _rows(session, HuntPilotRow)
        ],
        "pickup_groups": [
            _compact(
                PickupGroupSpec,
                {"name": p.name, "number": p.number, "partition": p.partition},
            )
            for p in _rows(session, PickupGroupRow)
        ],
        "call_park": [
            _compact(
                CallParkSpec,
                {
                    "range": c.first if c.first == c.last else f"{c.first}-{c.last}",
                    "partition": c.partition,
                    "reversion": _number(c.reversion),
                },
                keep=("range",),
            )
            for c in _rows(session, CallParkRow)
        ],
    }


def export_plan(engine: Engine) -> dict[str, Any]:
    """The whole plan in the database as YAML plan data (see the module doc)."""
    with Session(engine) as session:
        devices = session.scalars(
            select(Device)
            .options(selectinload(Device.lines), selectinload(Device.speed_dials))
            .order_by(Device.id)
        ).all()
        sections: dict[str, Any] = {"devices": [_device(d) for d in devices]}
        sections.update(_dialplan(session))
        sections.update(_media(session))
        sections.update(_coverage(session))
        sections.update(export_cti(session, _compact))
    out: dict[str, Any] = {"devices": sections["devices"]}
    for name in PlanSpec.model_fields:
        if name != "devices" and sections.get(name):
            out[name] = sections[name]
    return out


class _PlanDumper(yaml.SafeDumper):
    """Block style, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_plan_yaml(data: dict[str, Any], *, header: bool = True) -> str:
    """``data`` (from :func:`export_plan`) as YAML text, keys in their order."""
    text = yaml.dump(
        data,
        Dumper=_PlanDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return (YAML_HEADER + text) if header else text
