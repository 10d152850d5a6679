"""Read the plan from the database into the immutable in-memory snapshot.

The node calls :func:`load_snapshot` at start and whenever
:func:`plan_version` (one indexed row) differs from the snapshot's version;
call processing then reads only the snapshot.

The snapshot carries the dial plan too (``PlanSnapshot.dialplan_spec``, its
directory numbers derived from the device lines) and its analyzer, built
here: a plan the analyzer refuses raises ``DialPlanError`` and the node keeps
its previous snapshot. Meet-me numbers are part of the dial plan
(``DialPlanSpec.meetme``); the music on hold sources and the media resource
groups and lists are the snapshot's own mappings. So are call coverage's
hunt line groups and hunt lists; its hunt pilots, pickup group numbers and park
ranges are in the dial plan, each line carries its forwards (internal and
external), voicemail pilot, pickup group and intercom flag (``LineInfo``),
and each device its do not disturb option and privacy (``DeviceInfo``).
The CTI route points and ports are devices of protocol ``cti`` with their DN
as their one line (``core.features.cti_devices``), and the dial plan's
``cti_route_points`` and ``cti_ports``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from offhook.core.dialplan.model import (
    CallingSearchSpace,
    CallPark,
    DialPlanSpec,
    Distribution,
    HuntPilot,
    MeetMe,
    PickupGroup,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    TranslationPattern,
    Trunk,
)
from offhook.core.directory import (
    DeviceInfo,
    Forward,
    HuntDistribution,
    HuntStep,
    LineGroup,
    LineInfo,
    PlanSnapshot,
    SpeedDial,
    directory_numbers,
)
from offhook.core.features.cti_devices import device_infos as cti_device_infos
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
    transform_from_json,
)
from offhook.db.plan_cti import load_cti


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
                Device.model,
                Device.moh_source,
                Device.media_resource_list,
                Device.dnd_option,
                Device.privacy,
            ).order_by(Device.name)
        ).all()
        lines: dict[int, list[LineInfo]] = {}
        for row in conn.execute(select(Line).order_by(Line.device_id, Line.position)):
            lines.setdefault(row.device_id, []).append(_line_info(row))
        dials: dict[int, list[SpeedDial]] = {}
        for dev_id, number, label in conn.execute(
            select(SpeedDialRow.device_id, SpeedDialRow.number, SpeedDialRow.label).order_by(
                SpeedDialRow.device_id, SpeedDialRow.position
            )
        ):
            dials.setdefault(dev_id, []).append(SpeedDial(number, label))
        spec = _dialplan_rows(conn)
        media = _media_rows(conn)
        coverage = _coverage_rows(conn)
        route_points, ports = load_cti(conn)
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
            model=d.model,
            speed_dials=tuple(dials.get(d.id, ())),
            moh_source=d.moh_source,
            media_resource_list=d.media_resource_list,
            dnd_option=d.dnd_option or "ringer-off",
            privacy=bool(d.privacy),
        )
        for d in devices
    ]
    infos += cti_device_infos(route_points, ports)
    spec = replace(
        spec,
        directory_numbers=directory_numbers(infos),
        meetme=media.meetme,
        hunt_pilots=coverage.hunt_pilots,
        pickup_groups=coverage.pickup_groups,
        call_park=coverage.call_park,
        cti_route_points=route_points,
        cti_ports=ports,
    )
    return PlanSnapshot.build(
        infos,
        version,
        spec,
        moh_sources=media.moh_sources,
        media_resource_groups=media.groups,
        media_resource_lists=media.lists,
        line_groups=coverage.line_groups,
        hunt_lists=coverage.hunt_lists,
    )


def _forward(destination: str, css: str) -> Forward | None:
    return Forward(destination, css) if destination else None


def _line_info(row: Any) -> LineInfo:
    """A ``lines`` row as the snapshot's :class:`LineInfo`."""
    return LineInfo(
        dn=row.dn,
        display=row.display,
        partition=row.partition,
        moh_source=row.moh_source,
        forward_all=_forward(row.forward_all, row.forward_all_css),
        forward_busy=_forward(row.forward_busy, row.forward_busy_css),
        forward_no_answer=_forward(row.forward_no_answer, row.forward_no_answer_css),
        forward_unregistered=_forward(row.forward_unregistered, row.forward_unregistered_css),
        forward_busy_external=_forward(row.forward_busy_external, row.forward_busy_external_css),
        forward_no_answer_external=_forward(
            row.forward_no_answer_external, row.forward_no_answer_external_css
        ),
        forward_unregistered_external=_forward(
            row.forward_unregistered_external, row.forward_unregistered_external_css
        ),
        cfna_timer=None if row.cfna_timer is None else float(row.cfna_timer),
        voicemail=row.voicemail,
        pickup_group=row.pickup_group,
        intercom=bool(row.intercom),
    )


def _children(rows: Iterable[Any]) -> dict[int, list[Any]]:
    """Ordered child rows ``(parent_id, position, ...)`` grouped by parent."""
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(int(row[0]), []).append(row)
    return out


def _dialplan_rows(conn: Connection) -> DialPlanSpec:
    """The dial plan tables as a :class:`DialPlanSpec` (without DNs)."""
    partitions = conn.execute(
        select(Partition.name).order_by(Partition.position, Partition.name)
    ).scalars()
    css_members = _children(
        conn.execute(
            select(CssMember.css_id, CssMember.position, CssMember.partition).order_by(
                CssMember.css_id, CssMember.position
            )
        )
    )
    css = [
        CallingSearchSpace(name, tuple(m.partition for m in css_members.get(css_id, ())))
        for css_id, name in conn.execute(
            select(CallingSearchSpaceRow.id, CallingSearchSpaceRow.name).order_by(
                CallingSearchSpaceRow.name
            )
        )
    ]
    trunks = [
        Trunk(
            name=t.name,
            protocol=t.protocol,
            host=t.host,
            port=t.port,
            transport=t.transport,
            css=t.css,
            max_calls=t.max_calls,
            max_cps=t.max_cps,
            username=t.username,
            password=t.password,
            register=bool(t.register),
            options_ping=float(t.options_ping),
            inbound_addresses=tuple(t.inbound_addresses or ()),
        )
        for t in conn.execute(select(TrunkRow).order_by(TrunkRow.name))
    ]
    group_members = _children(
        conn.execute(
            select(
                RouteGroupMemberRow.group_id,
                RouteGroupMemberRow.position,
                RouteGroupMemberRow.trunk,
                RouteGroupMemberRow.called_transform,
                RouteGroupMemberRow.calling_transform,
            ).order_by(RouteGroupMemberRow.group_id, RouteGroupMemberRow.position)
        )
    )
    groups = [
        RouteGroup(
            name=name,
            members=tuple(
                RouteGroupMember(
                    m.trunk,
                    transform_from_json(m.called_transform),
                    transform_from_json(m.calling_transform),
                )
                for m in group_members.get(group_id, ())
            ),
            distribution=Distribution(distribution),
        )
        for group_id, name, distribution in conn.execute(
            select(RouteGroupRow.id, RouteGroupRow.name, RouteGroupRow.distribution).order_by(
                RouteGroupRow.name
            )
        )
    ]
    list_members = _children(
        conn.execute(
            select(
                RouteListMemberRow.list_id,
                RouteListMemberRow.position,
                RouteListMemberRow.route_group,
            ).order_by(RouteListMemberRow.list_id, RouteListMemberRow.position)
        )
    )
    lists = [
        RouteList(name, tuple(m.route_group for m in list_members.get(list_id, ())))
        for list_id, name in conn.execute(
            select(RouteListRow.id, RouteListRow.name).order_by(RouteListRow.name)
        )
    ]
    route_patterns = [
        RoutePattern(
            pattern=r.pattern,
            partition=r.partition,
            route_list=r.route_list,
            block=bool(r.block),
            block_cause=r.block_cause,
            urgent=bool(r.urgent),
            called_transform=transform_from_json(r.called_transform),
            calling_transform=transform_from_json(r.calling_transform),
        )
        for r in conn.execute(select(RoutePatternRow).order_by(RoutePatternRow.id))
    ]
    translations = [
        TranslationPattern(
            pattern=t.pattern,
            partition=t.partition,
            css=t.css,
            urgent=bool(t.urgent),
            block=bool(t.block),
            called_transform=transform_from_json(t.called_transform),
            calling_transform=transform_from_json(t.calling_transform),
        )
        for t in conn.execute(select(TranslationPatternRow).order_by(TranslationPatternRow.id))
    ]
    return DialPlanSpec(
        partitions=tuple(partitions),
        calling_search_spaces=tuple(css),
        directory_numbers=(),
        route_patterns=tuple(route_patterns),
        translation_patterns=tuple(translations),
        trunks=tuple(trunks),
        route_groups=tuple(groups),
        route_lists=tuple(lists),
    )


@dataclass(frozen=True, slots=True)
class _Media:
    moh_sources: dict[str, str]
    meetme: tuple[MeetMe, ...]
    groups: dict[str, tuple[str, ...]]
    lists: dict[str, tuple[str, ...]]


def _media_rows(conn: Connection) -> _Media:
    """The media plane's tables: music on hold sources, meet-me numbers, media resources."""
    sources = {
        name: path
        for name, path in conn.execute(
            select(MohSourceRow.name, MohSourceRow.path).order_by(MohSourceRow.name)
        )
    }
    meetme = tuple(
        MeetMe(m.number, m.partition, m.pin, m.max_parties)
        for m in conn.execute(
            select(
                MeetMeRow.number, MeetMeRow.partition, MeetMeRow.pin, MeetMeRow.max_parties
            ).order_by(MeetMeRow.id)
        )
    )
    servers = _children(
        conn.execute(
            select(
                MediaResourceGroupMemberRow.group_id,
                MediaResourceGroupMemberRow.position,
                MediaResourceGroupMemberRow.server,
            ).order_by(MediaResourceGroupMemberRow.group_id, MediaResourceGroupMemberRow.position)
        )
    )
    groups = {
        name: tuple(m.server for m in servers.get(group_id, ()))
        for group_id, name in conn.execute(
            select(MediaResourceGroupRow.id, MediaResourceGroupRow.name).order_by(
                MediaResourceGroupRow.name
            )
        )
    }
    members = _children(
        conn.execute(
            select(
                MediaResourceListMemberRow.list_id,
                MediaResourceListMemberRow.position,
                MediaResourceListMemberRow.media_resource_group,
            ).order_by(MediaResourceListMemberRow.list_id, MediaResourceListMemberRow.position)
        )
    )
    lists = {
        name: tuple(m.media_resource_group for m in members.get(list_id, ()))
        for list_id, name in conn.execute(
            select(MediaResourceListRow.id, MediaResourceListRow.name).order_by(
                MediaResourceListRow.name
            )
        )
    }
    return _Media(sources, meetme, groups, lists)


@dataclass(frozen=True, slots=True)
class _Coverage:
    line_groups: dict[str, LineGroup]
    hunt_lists: dict[str, tuple[str, ...]]
    hunt_pilots: tuple[HuntPilot, ...]
    pickup_groups: tuple[PickupGroup, ...]
    call_park: tuple[CallPark, ...]


def _coverage_rows(conn: Connection) -> _Coverage:
    """Call coverage's tables: line groups, hunt lists and pilots, pickup groups, park."""
    members = _children(
        conn.execute(
            select(
                LineGroupMemberRow.group_id, LineGroupMemberRow.position, LineGroupMemberRow.dn
            ).order_by(LineGroupMemberRow.group_id, LineGroupMemberRow.position)
        )
    )
    line_groups = {
        g.name: LineGroup(
            name=g.name,
            members=tuple(m.dn for m in members.get(g.id, ())),
            distribution=HuntDistribution(g.distribution),
            rna_timeout=float(g.rna_timeout),
            on_no_answer=HuntStep(g.on_no_answer),
            on_busy=HuntStep(g.on_busy),
            on_unavailable=HuntStep(g.on_unavailable),
        )
        for g in conn.execute(select(LineGroupRow).order_by(LineGroupRow.name))
    }
    groups = _children(
        conn.execute(
            select(
                HuntListMemberRow.list_id, HuntListMemberRow.position, HuntListMemberRow.line_group
            ).order_by(HuntListMemberRow.list_id, HuntListMemberRow.position)
        )
    )
    hunt_lists = {
        name: tuple(m.line_group for m in groups.get(list_id, ()))
        for list_id, name in conn.execute(
            select(HuntListRow.id, HuntListRow.name).order_by(HuntListRow.name)
        )
    }
    pilots = tuple(
        HuntPilot(h.pattern, h.partition, h.hunt_list, h.final_forward, h.final_css)
        for h in conn.execute(select(HuntPilotRow).order_by(HuntPilotRow.id))
    )
    pickups = tuple(
        PickupGroup(p.name, p.number, p.partition)
        for p in conn.execute(select(PickupGroupRow).order_by(PickupGroupRow.id))
    )
    park = tuple(
        CallPark(c.first, c.last, c.partition, float(c.reversion))
        for c in conn.execute(select(CallParkRow).order_by(CallParkRow.id))
    )
    return _Coverage(line_groups, hunt_lists, pilots, pickups, park)
