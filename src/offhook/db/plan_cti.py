"""The plan's CTI sections: route points and ports, devices an application controls.

Format (in the YAML plan, beside ``devices``)::

    cti_route_points:                # a call to dn waits for an application
      - {name: ivr, dn: "3000", partition: internal, css: staff,
         timeout: 5,                 # seconds it waits (0.1-60; default 5)
         default: "1002"}            # then goes here ("" or absent: busy)
    cti_ports:                       # a phone whose media the application terminates
      - {name: port1, dn: "3100", partition: internal, css: staff}

A route point or port is a device (``offhook.core.features.cti_devices``):
its name may be no other device's, route point's or port's, and its DN is
an exact number in its partition like a phone's line, never shared: no
line, meet-me number, hunt pilot, park number, pattern or other CTI device
may use it there. ``css`` is what the devices' calls are routed with (a
route point's default and redirects, a port's calls); ``default`` is a
number as dialled, analysed when the timeout passes.

Here: the sections' pydantic models (``PlanSpec`` holds them), the checks
across sections ``offhook.db.plan_check`` runs (:func:`cti_problems`), the
rows ``offhook.db.plan_apply`` writes (:func:`cti_rows`), reading them back
for the snapshot (:func:`load_cti`) and for an export (:func:`export_cti`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from offhook.core.dialplan.model import CtiPort, CtiRoutePoint
from offhook.db.models import CtiPortRow, CtiRoutePointRow
from offhook.db.plan_base import DN_RE, Name, Ref, Spec, not_a_number

if TYPE_CHECKING:
    from offhook.db.plan_spec import PlanSpec

__all__ = [
    "MAX_TIMEOUT",
    "CtiPortSpec",
    "CtiRoutePointSpec",
    "cti_problems",
    "cti_rows",
    "export_cti",
    "load_cti",
]

MAX_TIMEOUT = 60.0
"""Longest a call waits at a route point: the node's ring timeout (60 s) ends it then."""

Problems = list[tuple[str, str]]


def _dn(value: str, what: str) -> str:
    if not DN_RE.match(value):
        raise ValueError(f"{value!r} is not {what} (1-32 of 0-9 * # +)")
    return value


class _CtiDeviceSpec(Spec):
    name: Name
    dn: str
    partition: Ref = ""
    css: Ref = ""

    @field_validator("dn", mode="before")
    @classmethod
    def _dn_type(cls, value: object) -> object:
        return not_a_number(value, "DN")

    @field_validator("dn")
    @classmethod
    def _dn(cls, value: str) -> str:
        return _dn(value, "a directory number")


class CtiRoutePointSpec(_CtiDeviceSpec):
    """A CTI route point: calls to ``dn`` wait ``timeout`` s for an application, then
    go to ``default`` ("" = busy)."""

    timeout: float = Field(default=5.0, ge=0.1, le=MAX_TIMEOUT)
    default: str = ""

    @field_validator("default", mode="before")
    @classmethod
    def _default_type(cls, value: object) -> object:
        return not_a_number(value, "default destination")

    @field_validator("default")
    @classmethod
    def _default(cls, value: str) -> str:
        return value and _dn(value, "a dialable number")

    def to_model(self) -> CtiRoutePoint:
        return CtiRoutePoint(
            self.name, self.dn, self.partition, self.css, float(self.timeout), self.default
        )


class CtiPortSpec(_CtiDeviceSpec):
    """A CTI port: a phone at ``dn`` whose media an application terminates."""

    def to_model(self) -> CtiPort:
        return CtiPort(self.name, self.dn, self.partition, self.css)


def cti_problems(
    plan: PlanSpec,
    used: dict[tuple[str, str], str],
    partitions: set[str],
    css_names: set[str],
) -> Problems:
    """Names and references of the CTI sections; their DNs join ``used``.

    ``used`` maps (number, partition) to where it is used already (lines,
    meet-me and coverage numbers); a CTI device's DN must be free there.
    """
    problems: Problems = []
    names: dict[str, str] = {d.name: f"devices[{i}]" for i, d in enumerate(plan.devices)}
    sections: list[tuple[str, Sequence[_CtiDeviceSpec]]] = [
        ("cti_route_points", plan.cti_route_points),
        ("cti_ports", plan.cti_ports),
    ]

    def known(loc: str, kind: str, name: str, defined: set[str]) -> None:
        if name and name not in defined:
            listed = ", ".join(sorted(defined)) if defined else "none"
            problems.append((loc, f"{kind} {name!r} does not exist (defined: {listed})"))

    for section, entries in sections:
        for i, d in enumerate(entries):
            base = f"{section}[{i}] ({d.name})"
            if d.name in names:
                problems.append((f"{base}.name", f"the name is taken (by {names[d.name]})"))
            else:
                names[d.name] = f"{section}[{i}]"
            known(f"{base}.partition", "partition", d.partition, partitions)
            known(f"{base}.css", "calling search space", d.css, css_names)
            key = (d.dn, d.partition)
            if key in used:
                problems.append(
                    (
                        f"{base}.dn",
                        f"{d.dn!r} in partition {d.partition!r} is already used by {used[key]}",
                    )
                )
            else:
                used[key] = base
            if isinstance(d, CtiRoutePointSpec) and d.default == d.dn:
                problems.append((f"{base}.default", "the default is the route point itself"))
    return problems


_Row = tuple[tuple[Any, ...], dict[str, Any], list[dict[str, Any]]]


def cti_rows(plan: PlanSpec) -> list[tuple[type[Any], list[_Row]]]:
    """The CTI tables' desired rows, as ``plan_apply``'s sync takes them (key: name)."""
    return [
        (
            CtiRoutePointRow,
            [
                (
                    (r.name,),
                    {
                        "dn": r.dn,
                        "partition": r.partition,
                        "css": r.css,
                        "timeout": float(r.timeout),
                        "default_destination": r.default,
                    },
                    [],
                )
                for r in plan.cti_route_points
            ],
        ),
        (
            CtiPortRow,
            [
                ((p.name,), {"dn": p.dn, "partition": p.partition, "css": p.css}, [])
                for p in plan.cti_ports
            ],
        ),
    ]


def load_cti(conn: Connection) -> tuple[tuple[CtiRoutePoint, ...], tuple[CtiPort, ...]]:
    """The CTI devices in the database, in the order they were made."""
    route_points = tuple(
        CtiRoutePoint(r.name, r.dn, r.partition, r.css, float(r.timeout), r.default_destination)
        for r in conn.execute(select(CtiRoutePointRow).order_by(CtiRoutePointRow.id))
    )
    ports = tuple(
        CtiPort(p.name, p.dn, p.partition, p.css)
        for p in conn.execute(select(CtiPortRow).order_by(CtiPortRow.id))
    )
    return route_points, ports


def export_cti(
    session: Session, compact: Callable[[type[Spec], dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """The CTI sections as plan data; ``compact`` drops the keys at their default."""
    route_points = session.scalars(select(CtiRoutePointRow).order_by(CtiRoutePointRow.id))
    ports = session.scalars(select(CtiPortRow).order_by(CtiPortRow.id))
    return {
        "cti_route_points": [
            compact(
                CtiRoutePointSpec,
                {
                    "name": r.name,
                    "dn": r.dn,
                    "partition": r.partition,
                    "css": r.css,
                    "timeout": int(r.timeout) if float(r.timeout).is_integer() else r.timeout,
                    "default": r.default_destination,
                },
            )
            for r in route_points
        ],
        "cti_ports": [
            compact(
                CtiPortSpec, {"name": p.name, "dn": p.dn, "partition": p.partition, "css": p.css}
            )
            for p in ports
        ],
    }
