"""The plan's CTI sections (no database): cti_route_points and cti_ports, what they
validate (located messages), what they become in the core's types and the snapshot."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.core.dialplan.model import CtiPort, CtiRoutePoint
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import LineInfo, PlanSnapshot
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_yaml import parse_plan_text

PLAN = """
partitions: [internal]
calling_search_spaces: [{name: staff, partitions: [internal]}]
devices:
  - {name: alice, protocol: sip, password: alice-Secret-1, css: staff,
     lines: [{dn: "1001", partition: internal}]}
meetme: [{number: "5000", partition: internal}]
cti_route_points:
  - {name: ivr, dn: "3000", partition: internal, css: staff, timeout: 2.5, default: "1001"}
  - {name: queue, dn: "3001"}
cti_ports:
  - {name: port1, dn: "3100", partition: internal, css: staff}
"""


def data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PLAN)
    return loaded


def problems(plan: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as exc:
        parse_plan(plan, "p.yaml")
    return exc.value.problems


def test_the_sections_become_core_types() -> None:
    plan = parse_plan_text(PLAN, "p.yaml")
    spec = plan.dialplan_spec()
    assert spec.cti_route_points == (
        CtiRoutePoint("ivr", "3000", "internal", "staff", 2.5, "1001"),
        CtiRoutePoint("queue", "3001", "", "", 5.0, ""),
    )
    assert spec.cti_ports == (CtiPort("port1", "3100", "internal", "staff"),)
    infos = {d.name: d for d in plan.device_infos()}
    assert list(infos) == ["alice", "ivr", "queue", "port1"]
    assert infos["port1"].protocol == "cti" and infos["port1"].max_calls == 1
    assert infos["ivr"].lines == (LineInfo("3000", "", "internal"),)
    snap = PlanSnapshot.build(plan.device_infos(), 1, spec)
    assert snap.dialplan.route("staff", "3000").dn.devices == ("ivr",)  # type: ignore[union-attr]
    assert snap.dialplan.route("staff", "3001").outcome is Outcome.DN  # the null partition
    assert snap.dialplan.route("", "3100").outcome is Outcome.UNKNOWN  # not in its CSS


@pytest.mark.parametrize(
    ("change", "location", "message"),
    [
        (
            lambda d: d["cti_ports"].append({"name": "alice", "dn": "3101"}),
            "cti_ports[1] (alice).name",
            "the name is taken (by devices[0])",
        ),
        (
            lambda d: d["cti_ports"].append({"name": "ivr", "dn": "3101"}),
            "cti_ports[1] (ivr).name",
            "taken (by cti_route_points[0])",
        ),
        (
            lambda d: d["cti_route_points"][1].update(dn="1001", partition="internal"),
            "cti_route_points[1] (queue).dn",
            "'1001' in partition 'internal' is already used by devices[0] (alice).lines[0]",
        ),
        (
            lambda d: d["cti_ports"][0].update(dn="5000"),
            "cti_ports[0] (port1).dn",
            "already used by meetme[0] (5000)",
        ),
        (
            lambda d: d["cti_ports"][0].update(dn="3000"),
            "cti_ports[0] (port1).dn",
            "already used by cti_route_points[0] (ivr)",
        ),
        (
            lambda d: d.setdefault("route_patterns", []).append(
                {"pattern": "3100", "partition": "internal", "block": True}
            ),
            "route_patterns[0] (3100).pattern",
            "already used by cti_ports[0] (port1)",
        ),
        (
            lambda d: d["cti_ports"][0].update(css="nope"),
            "cti_ports[0] (port1).css",
            "calling search space 'nope' does not exist (defined: staff)",
        ),
        (
            lambda d: d["cti_route_points"][0].update(partition="nope"),
            "cti_route_points[0] (ivr).partition",
            "partition 'nope' does not exist (defined: internal)",
        ),
        (
            lambda d: d["cti_route_points"][0].update(default="3000"),
            "cti_route_points[0] (ivr).default",
            "the default is the route point itself",
        ),
        (
            lambda d: d["cti_route_points"][0].update(timeout=61),
            "cti_route_points[0] (ivr).timeout",
            "less than or equal to 60",
        ),
        (
            lambda d: d["cti_route_points"][0].update(timeout=0),
            "cti_route_points[0] (ivr).timeout",
            "greater than or equal to 0.1",
        ),
        (
            lambda d: d["cti_route_points"][0].update(timeout="5"),
            "cti_route_points[0] (ivr).timeout",
            "valid number",
        ),
        (
            lambda d: d["cti_route_points"][0].update(default=1001),
            "cti_route_points[0] (ivr).default",
            "write the default destination as a quoted string",
        ),
        (
            lambda d: d["cti_route_points"][0].update(default="10a"),
            "cti_route_points[0] (ivr).default",
            "is not a dialable number",
        ),
        (
            lambda d: d["cti_ports"][0].update(dn=3100),
            "cti_ports[0] (port1).dn",
            "write the DN as a quoted string",
        ),
        (
            lambda d: d["cti_ports"][0].update(dn=""),
            "cti_ports[0] (port1).dn",
            "is not a directory number",
        ),
        (
            lambda d: d["cti_ports"][0].update(timeout=3),
            "cti_ports[0] (port1).timeout",
            "unknown key",
        ),
        (
            lambda d: d["cti_ports"][0].pop("dn"),
            "cti_ports[0] (port1).dn",
            "required key missing",
        ),
        (
            lambda d: d["cti_ports"][0].update(name="bad name"),
            "cti_ports[0] (bad name).name",
            "String should match pattern",
        ),
    ],
)
def test_problems_are_located(change: Any, location: str, message: str) -> None:
    plan = data()
    change(plan)
    found = problems(plan)
    assert any(loc == location and message in msg for loc, msg in found), found


def test_every_problem_is_reported_at_once() -> None:
    plan = data()
    plan["cti_ports"] += [
        {"name": "port2", "dn": "3100", "partition": "internal"},
        {"name": "port3", "dn": "3102", "css": "x"},
    ]
    assert [loc for loc, _ in problems(plan)] == [
        "cti_ports[1] (port2).dn",
        "cti_ports[2] (port3).css",
    ]


def test_ports_may_be_line_group_members() -> None:
    plan = data()
    plan["line_groups"] = [{"name": "pool", "members": ["3100", "1001"]}]
    plan["hunt_lists"] = [{"name": "pool", "line_groups": ["pool"]}]
    plan["hunt_pilots"] = [{"pattern": "1500", "partition": "internal", "hunt_list": "pool"}]
    assert parse_plan(plan, "p.yaml").line_groups[0].members == ["3100", "1001"]
    plan["line_groups"][0]["members"] = ["3000"]  # a route point is no member
    assert problems(plan) == [
        ("line_groups[0] (pool).members[0]", "DN '3000' is on no device's line")
    ]


def test_without_the_sections_nothing_changes() -> None:
    plan = data()
    del plan["cti_route_points"], plan["cti_ports"]
    spec = parse_plan(plan, "p.yaml")
    assert spec.cti_route_points == [] and spec.cti_ports == []
    assert [d.name for d in spec.device_infos()] == ["alice"]


ENTRY = st.fixed_dictionaries(
    {"name": st.sampled_from(["ivr", "alice", "p1", "bad name", ""]), "dn": st.sampled_from(
        ["3000", "1001", "5000", "", 3000])},
    optional={
        "partition": st.sampled_from(["", "internal", "x"]),
        "css": st.sampled_from(["", "staff", "x"]),
        "timeout": st.one_of(st.floats(allow_nan=True), st.integers(-1, 100), st.text(max_size=3)),
        "default": st.sampled_from(["", "1001", "3000", "x", 7]),
        "extra": st.just(1),
    },
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    route_points=st.lists(ENTRY, max_size=3),
    ports=st.lists(ENTRY, max_size=3),
)
def test_any_cti_sections_parse_or_are_refused_with_locations(
    route_points: list[dict[str, Any]], ports: list[dict[str, Any]]
) -> None:
    plan = data()
    plan["cti_route_points"] = copy.deepcopy(route_points)
    plan["cti_ports"] = [
        {k: v for k, v in p.items() if k not in ("timeout", "default")} for p in ports
    ]
    try:
        spec = parse_plan(plan, "p.yaml")
    except PlanError as exc:
        assert exc.problems and all(msg for _, msg in exc.problems)
        return
    # A plan it accepts builds, and each CTI DN is its device's alone.
    snap = PlanSnapshot.build(spec.device_infos(), 1, spec.dialplan_spec())
    dns = {(d.dn, d.partition): d.devices for d in snap.dialplan_spec.directory_numbers}
    for d in (*spec.cti_route_points, *spec.cti_ports):
        assert dns[(d.dn, d.partition)] == (d.name,)
