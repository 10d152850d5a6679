"""Call coverage's plan keys (no database): line forwards (internal and external),
voicemail, pickup group and intercom, the device's do not disturb option and
privacy, line groups, hunt lists and pilots, pickup groups and call
park; what they validate, what they become in the core's types, the messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from offhook.core.dialplan.model import CallPark, HuntPilot, PickupGroup
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import (
    Forward,
    HuntDistribution,
    HuntStep,
    LineGroup,
    PlanSnapshot,
)
from offhook.db.plan import DEMO_PLAN
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_spec import PlanSpec
from offhook.db.plan_yaml import parse_plan_text, read_plan

# The example of issue 10, as a whole plan.
ISSUE_EXAMPLE = """
partitions: [internal]
calling_search_spaces: [{name: staff, partitions: [internal]}]
devices:
  - name: alice
    protocol: sip
    password: alice-Secret-1
    css: staff
    lines:
      - dn: "1002"
        partition: internal
        forward_all: {destination: "1003", css: staff}
        voicemail: "8000"
        pickup_group: sales
  - name: bob
    protocol: sip
    password: bob-Secret-1
    lines: [{dn: "1003", partition: internal}]
line_groups: [{name: support, distribution: circular, rna_timeout: 10, members: ["1002", "1003"]}]
hunt_lists: [{name: support, line_groups: [support]}]
hunt_pilots: [{pattern: "1500", partition: internal, hunt_list: support, final_forward: "8000"}]
pickup_groups: [{name: sales, number: "8100", partition: internal}]
call_park: [{range: "7000-7009", partition: internal, reversion: 60}]
"""


def sip(name: str, *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "sip",
        "password": f"{name}-Secret-1",
        "lines": list(lines),
        **extra,
    }


def full() -> dict[str, Any]:
    """Every coverage key, most with a value other than its default."""
    return {
        "partitions": ["internal", "pstn"],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal", "pstn"]},
            {"name": "local", "partitions": ["internal"]},
        ],
        "devices": [
            sip(
                "alice",
                {
                    "dn": "1001",
                    "partition": "internal",
                    "forward_all": {"destination": "1003", "css": "local"},
                    "forward_busy": {"destination": "8000"},
                    "forward_no_answer": {"destination": "8000", "css": "staff"},
                    "forward_unregistered": {"destination": "+15555550100", "css": "staff"},
                    "forward_busy_external": {"destination": "1003", "css": "local"},
                    "forward_no_answer_external": {"destination": "8000"},
                    "forward_unregistered_external": {"destination": "+15555550199"},
                    "cfna_timer": 20,
                    "voicemail": "8000",
                    "pickup_group": "sales",
                },
                {"dn": "1091", "partition": "internal", "intercom": True},
                css="staff",
                dnd_option="reject",
                privacy=True,
            ),
            sip(
                "bob",
                {"dn": "1002", "partition": "internal", "pickup_group": "sales"},
                {"dn": "1092", "partition": "internal", "intercom": False},
            ),
            sip("carol", {"dn": "1003", "partition": "internal"}),
            sip("vm", {"dn": "8000", "partition": "internal"}),
        ],
        "line_groups": [
            {
                "name": "support",
                "distribution": "circular",
                "rna_timeout": 15,
                "on_no_answer": "next-group",
                "on_busy": "stop",
                "on_unavailable": "next-member",
                "members": ["1002", "1003"],
            },
            {"name": "overflow", "members": ["1001"]},
        ],
        "hunt_lists": [{"name": "support", "line_groups": ["support", "overflow"]}],
        "hunt_pilots": [
            {
                "pattern": "1500",
                "partition": "internal",
                "hunt_list": "support",
                "final_forward": "8000",
                "final_css": "staff",
            }
        ],
        "pickup_groups": [
            {"name": "sales", "number": "8100", "partition": "internal"},
            {"name": "back-office"},
        ],
        "call_park": [
            {"range": "7000-7009", "partition": "internal", "reversion": 90},
            {"range": "7100"},
        ],
    }


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, "plan.yaml")
    assert str(info.value).startswith("plan.yaml: ")
    return info.value.problems


def snapshot_of(plan: PlanSpec) -> PlanSnapshot:
    return PlanSnapshot.build(
        plan.device_infos(),
        1,
        plan.dialplan_spec(),
        line_groups=plan.line_group_models(),
        hunt_lists=plan.hunt_list_models(),
    )


def test_issue_example_loads() -> None:
    plan = parse_plan_text(ISSUE_EXAMPLE, "issue.yaml")
    snap = snapshot_of(plan)
    line = snap.line("1002", "internal")
    assert line is not None
    assert line.forward_all == Forward("1003", "staff")
    assert (line.voicemail, line.pickup_group) == ("8000", "sales")
    assert snap.line_groups["support"].distribution is HuntDistribution.CIRCULAR
    assert snap.hunt_lists == {"support": ("support",)}
    assert snap.dialplan.route("staff", "1500").outcome is Outcome.HUNT
    assert snap.dialplan.route("staff", "8100").outcome is Outcome.PICKUP
    assert snap.dialplan.route("staff", "7009").outcome is Outcome.PARK
    assert snap.dialplan.route("staff", "7010").outcome is not Outcome.PARK


def test_full_plan_in_core_types() -> None:
    plan = parse_plan(full(), "plan.yaml")
    infos = {d.name: d for d in plan.device_infos()}
    alice = infos["alice"]
    assert alice.dnd_option == "reject" and infos["bob"].dnd_option == "ringer-off"
    assert alice.privacy is True and infos["bob"].privacy is False
    line, intercom = alice.lines
    assert line.forward_all == Forward("1003", "local")
    assert line.forward_busy == Forward("8000", "")
    assert line.forward_no_answer == Forward("8000", "staff")
    assert line.forward_unregistered == Forward("+15555550100", "staff")
    assert line.forward_busy_external == Forward("1003", "local")
    assert line.forward_no_answer_external == Forward("8000", "")
    assert line.forward_unregistered_external == Forward("+15555550199", "")
    assert line.cfna_timer == 20.0 and isinstance(line.cfna_timer, float)
    assert (line.voicemail, line.pickup_group, line.intercom) == ("8000", "sales", False)
    assert intercom.dn == "1091" and intercom.intercom is True
    assert infos["bob"].lines[1].intercom is False
    carol = infos["carol"].lines[0]
    assert (carol.forward_all, carol.forward_busy, carol.cfna_timer) == (None, None, None)
    assert (
        carol.forward_busy_external,
        carol.forward_no_answer_external,
        carol.forward_unregistered_external,
    ) == (None, None, None)
    assert (carol.voicemail, carol.pickup_group, carol.intercom) == ("", "", False)
    assert infos["carol"].privacy is False

    assert plan.line_group_models() == {
        "support": LineGroup(
            "support",
            ("1002", "1003"),
            HuntDistribution.CIRCULAR,
            15.0,
            HuntStep.NEXT_GROUP,
            HuntStep.STOP,
            HuntStep.NEXT_MEMBER,
        ),
        "overflow": LineGroup("overflow", ("1001",)),
    }
    assert plan.hunt_list_models() == {"support": ("support", "overflow")}
    spec = plan.dialplan_spec()
    assert spec.hunt_pilots == (HuntPilot("1500", "internal", "support", "8000", "staff"),)
    assert spec.pickup_groups == (
        PickupGroup("sales", "8100", "internal"),
        PickupGroup("back-office", "", ""),
    )
    assert spec.call_park == (
        CallPark("7000", "7009", "internal", 90.0),
        CallPark("7100", "7100", "", 60.0),
    )

    snap = snapshot_of(plan)
    decision = snap.dialplan.route("staff", "1500")
    assert decision.outcome is Outcome.HUNT and decision.hunt == spec.hunt_pilots[0]
    decision = snap.dialplan.route("staff", "7004")
    assert decision.outcome is Outcome.PARK and decision.park == spec.call_park[0]
    assert snap.dialplan.route("", "7100").outcome is Outcome.PARK
    assert snap.dialplan.route("staff", "8100").pickup == spec.pickup_groups[0]


def test_defaults() -> None:
    plan = parse_plan(
        {
            "devices": [sip("a", {"dn": "1001"})],
            "line_groups": [{"name": "g"}],
            "hunt_lists": [{"name": "l", "line_groups": ["g"]}],
            "hunt_pilots": [{"pattern": "1500", "hunt_list": "l"}],
            "pickup_groups": [{"name": "p"}],
            "call_park": [{"range": "7000"}],
        },
        "plan.yaml",
    )
    assert plan.line_group_models()["g"] == LineGroup("g")
    assert plan.dialplan_spec().hunt_pilots == (HuntPilot("1500", "", "l"),)
    assert plan.dialplan_spec().call_park == (CallPark("7000", "7000", "", 60.0),)
    # A group without a number is picked up from by its members only.
    assert plan.dialplan_spec().pickup_groups == (PickupGroup("p"),)
    assert snapshot_of(plan).dialplan.route("", "7000").outcome is Outcome.PARK


def edit(path: str, value: Any) -> dict[str, Any]:
    """``full()`` with the value at a dotted path (list indexes as numbers) replaced."""
    data = copy.deepcopy(full())
    node: Any = data
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return data


LINE = "devices[0] (alice).lines[0]"


@pytest.mark.parametrize(
    ("path", "value", "where", "message"),
    [
        # Line forwards.
        (
            "devices.0.lines.0.forward_all",
            {"destination": "1003", "css": "nobody"},
            f"{LINE}.forward_all.css",
            "calling search space 'nobody' does not exist (defined: local, staff)",
        ),
        (
            "devices.0.lines.0.forward_busy",
            {"destination": "80a0"},
            f"{LINE}.forward_busy.destination",
            "'80a0' is not a dialable number",
        ),
        (
            "devices.0.lines.0.forward_busy",
            {"destination": 8000},
            f"{LINE}.forward_busy.destination",
            "write the destination as a quoted string",
        ),
        (
            "devices.0.lines.0.forward_busy",
            {"css": "staff"},
            f"{LINE}.forward_busy.destination",
            "required key missing",
        ),
        (
            "devices.0.lines.0.forward_busy",
            {"destination": "8000", "voicemail": True},
            f"{LINE}.forward_busy.voicemail",
            "unknown key",
        ),
        (
            "devices.0.lines.0.forward_busy",
            "8000",
            f"{LINE}.forward_busy",
            "valid dictionary",
        ),
        (
            "devices.0.lines.0.forward_no_answer",
            {"destination": "1001"},
            f"{LINE}.forward_no_answer.destination",
            "1001 forwards to itself",
        ),
        ("devices.0.lines.0.cfna_timer", 0, f"{LINE}.cfna_timer", "greater than or equal to 1"),
        ("devices.0.lines.0.cfna_timer", 601, f"{LINE}.cfna_timer", "less than or equal to 600"),
        ("devices.0.lines.0.voicemail", "vm", f"{LINE}.voicemail", "'vm' is not a voicemail"),
        ("devices.0.lines.0.voicemail", 8000, f"{LINE}.voicemail", "quoted string"),
        (
            "devices.0.lines.0.pickup_group",
            "marketing",
            f"{LINE}.pickup_group",
            "pickup group 'marketing' does not exist (defined: back-office, sales)",
        ),
        ("devices.0.dnd_option", "silent", "devices[0] (alice).dnd_option", "'ringer-off'"),
        # External forwards: the same checks as the others.
        (
            "devices.0.lines.0.forward_busy_external",
            {"destination": "8000", "css": "nobody"},
            f"{LINE}.forward_busy_external.css",
            "calling search space 'nobody' does not exist (defined: local, staff)",
        ),
        (
            "devices.0.lines.0.forward_no_answer_external",
            {"destination": "1001"},
            f"{LINE}.forward_no_answer_external.destination",
            "1001 forwards to itself",
        ),
        (
            "devices.0.lines.0.forward_unregistered_external",
            {"destination": 8000},
            f"{LINE}.forward_unregistered_external.destination",
            "write the destination as a quoted string",
        ),
        (
            "devices.0.lines.0.forward_busy_external",
            {"destination": "8000", "timer": 5},
            f"{LINE}.forward_busy_external.timer",
            "unknown key",
        ),
        # Intercom and privacy are booleans (no "yes" strings, no 1).
        ("devices.0.lines.0.intercom", "yes", f"{LINE}.intercom", "valid boolean"),
        ("devices.0.lines.0.intercom", 1, f"{LINE}.intercom", "valid boolean"),
        ("devices.0.privacy", "on", "devices[0] (alice).privacy", "valid boolean"),
        ("devices.0.privacy", None, "devices[0] (alice).privacy", "valid boolean"),
        # Line groups.
        (
            "line_groups.0.members",
            ["1002", "1999"],
            "line_groups[0] (support).members[1]",
            "DN '1999' is on no device's line",
        ),
        (
            "line_groups.0.members",
            ["1002", "1003", "1002"],
            "line_groups[0] (support).members[2]",
            "DN '1002' is listed twice in this line group",
        ),
        (
            "line_groups.0.members",
            [1002],
            "line_groups[0] (support).members",
            "write the member DN as a quoted string",
        ),
        (
            "line_groups.0.distribution",
            "random",
            "line_groups[0] (support).distribution",
            "'longest-idle' or 'broadcast'",
        ),
        (
            "line_groups.0.on_busy",
            "retry",
            "line_groups[0] (support).on_busy",
            "'next-member', 'next-group' or 'stop'",
        ),
        (
            "line_groups.0.rna_timeout",
            0,
            "line_groups[0] (support).rna_timeout",
            "greater than or equal to 1",
        ),
        (
            "line_groups.1.name",
            "support",
            "line_groups[1] (support).name",
            "duplicate line group name (first at line_groups[0])",
        ),
        # Hunt lists and pilots.
        (
            "hunt_lists.0.line_groups",
            ["support", "sales"],
            "hunt_lists[0] (support).line_groups[1]",
            "line group 'sales' does not exist (defined: overflow, support)",
        ),
        (
            "hunt_lists.0.line_groups",
            ["support", "support"],
            "hunt_lists[0] (support).line_groups[1]",
            "line group 'support' is listed twice in this hunt list",
        ),
        (
            "hunt_lists.0.line_groups",
            [],
            "hunt_lists[0] (support).line_groups",
            "at least 1 item",
        ),
        (
            "hunt_pilots.0.hunt_list",
            "nobody",
            "hunt_pilots[0] (1500).hunt_list",
            "hunt list 'nobody' does not exist (defined: support)",
        ),
        (
            "hunt_pilots.0.pattern",
            "1002",
            "hunt_pilots[0] (1002).pattern",
            "hunt pilot '1002' in partition 'internal' is already used by "
            "devices[1] (bob).lines[0]",
        ),
        (
            "hunt_pilots.0.pattern",
            "15XX",
            "hunt_pilots[0] (15XX).pattern",
            "'15XX' is not a hunt pilot number",
        ),
        (
            "hunt_pilots.0.partition",
            "exec",
            "hunt_pilots[0] (1500).partition",
            "partition 'exec' does not exist (defined: internal, pstn)",
        ),
        (
            "hunt_pilots.0.final_css",
            "nobody",
            "hunt_pilots[0] (1500).final_css",
            "calling search space 'nobody' does not exist",
        ),
        (
            "hunt_pilots.0.final_forward",
            "1500",
            "hunt_pilots[0] (1500).final_forward",
            "the final forward is the pilot itself",
        ),
        (
            "hunt_pilots.0.final_forward",
            "voicemail",
            "hunt_pilots[0] (1500).final_forward",
            "not a dialable number",
        ),
        # Pickup groups.
        (
            "pickup_groups.0.number",
            "1003",
            "pickup_groups[0] (sales).number",
            "pickup number '1003' in partition 'internal' is already used by "
            "devices[2] (carol).lines[0]",
        ),
        (
            "pickup_groups.0.number",
            "1500",
            "pickup_groups[0] (sales).number",
            "is already used by hunt_pilots[0] (1500)",
        ),
        (
            "pickup_groups.1.name",
            "sales",
            "pickup_groups[1] (sales).name",
            "duplicate pickup group name (first at pickup_groups[0])",
        ),
        (
            "pickup_groups.1.partition",
            "exec",
            "pickup_groups[1] (back-office).partition",
            "partition 'exec' does not exist",
        ),
        # Call park.
        (
            "call_park.0.range",
            "1000-1009",
            "call_park[0] (1000-1009).range",
            "park number '1001' in partition 'internal' is already used by "
            "devices[0] (alice).lines[0]",
        ),
        (
            "call_park.0.range",
            "7009-7000",
            "call_park[0] (7009-7000).range",
            "a park range runs up",
        ),
        (
            "call_park.0.range",
            "700-7009",
            "call_park[0] (700-7009).range",
            "both ends of a park range have as many digits",
        ),
        (
            "call_park.0.range",
            "7000-9000",
            "call_park[0] (7000-9000).range",
            "at most 1000 numbers",
        ),
        ("call_park.0.range", "70*0", "call_park[0] (70*0).range", "not a park number or range"),
        ("call_park.0.range", 7000, "call_park[0].range", "write the range as a quoted string"),
        (
            "call_park.0.reversion",
            -1,
            "call_park[0] (7000-7009).reversion",
            "greater than or equal to 0",
        ),
        (
            "call_park.0.partition",
            "exec",
            "call_park[0] (7000-7009).partition",
            "partition 'exec' does not exist",
        ),
    ],
)
def test_bad_coverage(path: str, value: Any, where: str, message: str) -> None:
    found = problems(edit(path, value))
    assert any(loc == where and message in msg for loc, msg in found), found


def test_intercom_line_takes_no_forwards() -> None:
    data = full()
    data["devices"][0]["lines"][1]["forward_all"] = {"destination": "1003"}
    data["devices"][0]["lines"][1]["forward_busy_external"] = {"destination": "8000"}
    assert problems(data) == [
        ("devices[0] (alice).lines[1].forward_all", "an intercom line is never forwarded"),
        (
            "devices[0] (alice).lines[1].forward_busy_external",
            "an intercom line is never forwarded",
        ),
    ]
    # Voicemail and a pickup group are fine on an intercom line.
    data = full()
    data["devices"][0]["lines"][1].update(voicemail="8000", pickup_group="sales")
    parse_plan(data, "plan.yaml")


def test_external_forwards_and_flags_survive_yaml() -> None:
    text = """
calling_search_spaces: [{name: staff}]
devices:
  - name: a
    protocol: sip
    password: a-Secret-1
    privacy: true
    lines:
      - dn: "1001"
        forward_busy: {destination: "1002"}
        forward_busy_external: {destination: "8000", css: staff}
      - {dn: "1091", intercom: true}
"""
    plan = parse_plan_text(text, "plan.yaml")
    (dev,) = plan.device_infos()
    assert dev.privacy is True
    assert dev.lines[0].forward_busy == Forward("1002")
    assert dev.lines[0].forward_busy_external == Forward("8000", "staff")
    assert dev.lines[0].forward_no_answer_external is None
    assert (dev.lines[0].intercom, dev.lines[1].intercom) == (False, True)
    # YAML's other spellings of true are booleans too.
    assert parse_plan_text(text.replace("privacy: true", "privacy: yes"), "p").devices[0].privacy


def test_park_ranges_overlap() -> None:
    data = full()
    data["call_park"].append({"range": "7005-7015", "partition": "internal"})
    assert problems(data) == [
        (
            "call_park[2] (7005-7015).range",
            "park number '7005' in partition 'internal' is already used by "
            "call_park[0] (7000-7009)",
        )
    ]
    # The same numbers in another partition are other numbers.
    data["call_park"][2]["partition"] = "pstn"
    parse_plan(data, "plan.yaml")


def test_route_pattern_on_a_park_number() -> None:
    data = full()
    data["route_groups"] = []
    data["translation_patterns"] = [
        {"pattern": "7003", "partition": "internal", "css": "staff"},
    ]
    assert problems(data) == [
        (
            "translation_patterns[0] (7003).pattern",
            "'7003' in partition 'internal' is already used by call_park[0] (7000-7009)",
        )
    ]


def test_unknown_keys() -> None:
    data = full()
    data["hunt_pilots"][0]["members"] = ["1002"]
    data["call_park"][0]["first"] = "7000"
    assert problems(data) == [
        ("hunt_pilots[0] (1500).members", "unknown key"),
        ("call_park[0] (7000-7009).first", "unknown key"),
    ]


def test_every_problem_reported_at_once() -> None:
    data = full()
    data["devices"][0]["lines"][0]["pickup_group"] = "nobody"
    data["hunt_pilots"][0]["hunt_list"] = "nobody"
    data["line_groups"][1]["members"] = ["4242"]
    assert [loc for loc, _ in problems(data)] == [
        f"{LINE}.pickup_group",
        "line_groups[1] (overflow).members[0]",
        "hunt_pilots[0] (1500).hunt_list",
    ]


def test_demo_plan_has_coverage_to_try() -> None:
    """The first-run demo: a hunt group, a pickup group and park numbers, no voicemail."""
    plan = read_plan(DEMO_PLAN)
    snap = snapshot_of(plan)
    alice = snap.devices["alice"]
    decision = snap.dialplan.route(alice.css, "1500", "1001")
    assert decision.outcome is Outcome.HUNT and decision.hunt is not None
    groups = snap.hunt_lists[decision.hunt.hunt_list]
    assert [snap.line_groups[g].members for g in groups] == [("1002", "1003")]
    assert snap.dialplan.route(alice.css, "8100").outcome is Outcome.PICKUP
    for number in ("7000", "7009"):
        assert snap.dialplan.route(alice.css, number).outcome is Outcome.PARK
    for dn in ("1001", "1002", "1003"):
        line = snap.line(dn)
        assert line is not None and line.pickup_group == "office" and line.voicemail == ""
