"""Dial plan validation (no database): every reference, pattern and transform checked.

Each refusal names the file, the entry path and the problem.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from offhook.core.dialplan.model import Distribution, Presentation, Transform
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_yaml import read_plan

FULL = Path(__file__).with_name("full_plan.yaml")


def full() -> dict[str, Any]:
    data = yaml.safe_load(FULL.read_text())
    assert isinstance(data, dict)
    return data


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, "plan.yaml")
    assert str(info.value).startswith("plan.yaml: ")
    return info.value.problems


def test_full_plan_parses() -> None:
    plan = read_plan(FULL)
    spec = plan.dialplan_spec()
    assert spec.partitions == ("internal", "pstn")
    assert [c.name for c in spec.calling_search_spaces] == ["staff", "lobby", "inbound"]
    assert spec.calling_search_spaces[0].partitions == ("internal", "pstn")
    group = spec.route_groups[0]
    assert group.distribution is Distribution.TOP_DOWN
    assert [m.trunk for m in group.members] == ["carrier", "backup"]  # "carrier" shorthand
    assert group.members[1].called_transform == Transform(discard="pre-dot", prefix="00")
    rp = spec.route_patterns[0]
    assert rp.called_transform == Transform(discard="pre-dot", prefix="+")
    assert spec.route_patterns[1].block and spec.route_patterns[1].route_list is None
    carrier = spec.trunks[0]
    assert carrier.register and carrier.password == "carrier-Secret"
    assert carrier.inbound_addresses == ("127.0.0.1/32",)
    assert spec.trunks[1].transport == "tcp" and spec.trunks[1].options_ping == 0.0
    shared = [d for d in spec.directory_numbers if d.dn == "1010"]
    assert len(shared) == 1 and shared[0].devices == ("alice", "bob")
    assert shared[0].partition == "internal" and shared[0].display == "Support"
    assert spec.translation_patterns[0].called_transform.replace == "1000"


def test_presentation_transform() -> None:
    data = full()
    data["route_patterns"][0]["calling_transform"] = {"presentation": "restricted"}
    spec = parse_plan(data, "p").dialplan_spec()
    assert spec.route_patterns[0].calling_transform.presentation is Presentation.RESTRICTED


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "where", "what"),
    [
        (
            ("calling_search_spaces", 0, "partitions", 1),
            "nowhere",
            "calling_search_spaces[0] (staff).partitions[1]",
            "partition 'nowhere' does not exist (defined: internal, pstn)",
        ),
        (
            ("devices", 0, "css"),
            "vip",
            "devices[0] (alice).css",
            "calling search space 'vip' does not exist",
        ),
        (
            ("devices", 1, "lines", 0, "partition"),
            "sales",
            "devices[1] (bob).lines[0].partition",
            "partition 'sales' does not exist",
        ),
        (
            ("trunks", 1, "css"),
            "nope",
            "trunks[1] (backup).css",
            "calling search space 'nope' does not exist",
        ),
        (
            ("route_groups", 0, "members", 1),
            "ghost",
            "route_groups[0] (carriers).members[1] (ghost)",
            "trunk 'ghost' does not exist (defined: backup, carrier)",
        ),
        (
            ("route_lists", 0, "groups", 0),
            "nogroup",
            "route_lists[0] (pstn-out).groups[0]",
            "route group 'nogroup' does not exist",
        ),
        (
            ("route_patterns", 0, "route_list"),
            "pstn-outx",
            "route_patterns[0] (9.1[2-9]XX[2-9]XXXXXX).route_list",
            "route list 'pstn-outx' does not exist (defined: pstn-out)",
        ),
        (
            ("route_patterns", 1, "partition"),
            "pstnx",
            "route_patterns[1] (9.1900XXXXXXX).partition",
            "partition 'pstnx' does not exist",
        ),
        (
            ("translation_patterns", 0, "css"),
            "x",
            "translation_patterns[0] (0).css",
            "calling search space 'x' does not exist",
        ),
        (
            ("translation_patterns", 0, "partition"),
            "y",
            "translation_patterns[0] (0).partition",
            "partition 'y' does not exist",
        ),
    ],
)
def test_missing_references(path: tuple[Any, ...], value: Any, where: str, what: str) -> None:
    data = full()
    _set(data, path, value)
    found = problems(data)
    assert any(loc == where and what in msg for loc, msg in found), found


def test_every_problem_is_reported() -> None:
    data = full()
    data["devices"][0]["css"] = "vip"
    data["route_patterns"][0]["route_list"] = "nolist"
    assert [loc for loc, _ in problems(data)] == [
        "devices[0] (alice).css",
        "route_patterns[0] (9.1[2-9]XX[2-9]XXXXXX).route_list",
    ]


def test_issue_location_example() -> None:
    data = full()
    data["route_patterns"].append({"pattern": "9.1900XXXXXXX", "partition": "internal"})
    data["route_patterns"].append({"pattern": "9.1800XXXXXXX", "partition": "pstn"})
    found = problems(data)
    assert (
        "route_patterns[2] (9.1900XXXXXXX)",
        "a route pattern needs a route_list (or block: true)",
    ) in found
    assert any(loc == "route_patterns[3] (9.1800XXXXXXX)" for loc, _ in found)


@pytest.mark.parametrize(
    ("section", "entry", "where"),
    [
        ("partitions", "pstn", "partitions[2] (pstn)"),
        ("calling_search_spaces", {"name": "lobby"}, "calling_search_spaces[3] (lobby).name"),
        ("trunks", {"name": "carrier", "protocol": "sip", "host": "h"}, "trunks[2] (carrier).name"),
        (
            "route_groups",
            {"name": "carriers", "members": ["backup"]},
            "route_groups[1] (carriers).name",
        ),
        (
            "route_lists",
            {"name": "pstn-out", "groups": ["carriers"]},
            "route_lists[1] (pstn-out).name",
        ),
    ],
)
def test_duplicate_names(section: str, entry: Any, where: str) -> None:
    data = full()
    data[section].append(entry)
    found = problems(data)
    assert any(loc == where and "duplicate" in msg and "first at" in msg for loc, msg in found), (
        found
    )


def test_duplicate_pattern_in_partition() -> None:
    data = full()
    data["translation_patterns"].append(
        {"pattern": "9.1900XXXXXXX", "partition": "pstn", "css": "staff"}
    )
    assert problems(data) == [
        (
            "translation_patterns[1] (9.1900XXXXXXX).pattern",
            "'9.1900XXXXXXX' in partition 'pstn' is already used by "
            "route_patterns[1] (9.1900XXXXXXX)",
        )
    ]


def test_pattern_equal_to_a_dn() -> None:
    data = full()
    data["translation_patterns"][0]["pattern"] = "1002"
    found = problems(data)
    assert found == [
        (
            "translation_patterns[0] (1002).pattern",
            "'1002' in partition 'internal' is already used by devices[1] (bob).lines[0]",
        )
    ]


def test_same_pattern_in_other_partition_is_fine() -> None:
    data = full()
    data["route_patterns"].append(
        {"pattern": "9.1900XXXXXXX", "partition": "internal", "block": True}
    )
    parse_plan(data, "p")


def test_malformed_pattern() -> None:
    data = full()
    data["route_patterns"][0]["pattern"] = "9.1[2-9XX"
    found = problems(data)
    assert len(found) == 1
    loc, msg = found[0]
    assert loc == "route_patterns[0] (9.1[2-9XX).pattern"
    assert msg.startswith("invalid pattern: ") and "'9.1[2-9XX'" in msg


def test_unquoted_pattern() -> None:
    data = full()
    data["translation_patterns"][0]["pattern"] = 0
    found = problems(data)
    assert any(
        loc == "translation_patterns[0].pattern" and "quoted string" in msg for loc, msg in found
    ), found


@pytest.mark.parametrize(
    ("transform", "what"),
    [
        ({"discard": "everything"}, "unsupported digit discard instruction 'everything'"),
        ({"prefix": "9a"}, "prefix"),
        ({"mask": "55Y1"}, "mask"),
    ],
)
def test_invalid_transform(transform: dict[str, Any], what: str) -> None:
    data = full()
    data["route_patterns"][0]["called_transform"] = transform
    found = problems(data)
    assert len(found) == 1, found
    loc, msg = found[0]
    assert loc == "route_patterns[0] (9.1[2-9]XX[2-9]XXXXXX).called_transform"
    assert what in msg


def test_calling_transform_refuses_pre_dot() -> None:
    data = full()
    data["route_groups"][0]["members"][1]["calling_transform"] = {"discard": "pre-dot"}
    found = problems(data)
    assert found[0][0] == "route_groups[0] (carriers).members[1] (backup).calling_transform"
    assert "called number only" in found[0][1]


@pytest.mark.parametrize(
    ("path", "value", "where", "what"),
    [
        (("trunks", 0, "protocol"), "h323", "trunks[0] (carrier).protocol", "'sip'"),
        (("trunks", 0, "port"), 0, "trunks[0] (carrier).port", "greater than or equal to 1"),
        (("trunks", 0, "transport"), "sctp", "trunks[0] (carrier).transport", "'udp'"),
        (("trunks", 0, "colour"), "red", "trunks[0] (carrier).colour", "unknown key"),
        (
            ("trunks", 0, "inbound_addresses"),
            ["10.0.0.300"],
            "trunks[0] (carrier).inbound_addresses",
            "not an IP address or network",
        ),
        (("trunks", 0, "username"), "", "trunks[0] (carrier)", "registers needs a username"),
        (("trunks", 0, "transport"), "tls", "trunks[0] (carrier)", "tls is not supported yet"),
        (
            ("route_groups", 0, "distribution"),
            "random",
            "route_groups[0] (carriers).distribution",
            "'top-down' or 'circular'",
        ),
        (("route_groups", 0, "members"), [], "route_groups[0] (carriers).members", "at least 1"),
        (
            ("route_patterns", 1, "route_list"),
            "pstn-out",
            "route_patterns[1] (9.1900XXXXXXX)",
            "not both",
        ),
        (
            ("route_patterns", 1, "block_cause"),
            200,
            "route_patterns[1] (9.1900XXXXXXX).block_cause",
            "less than or equal to 127",
        ),
        (
            ("route_patterns", 0, "called_transform", "prefix"),
            1,
            "route_patterns[0] (9.1[2-9]XX[2-9]XXXXXX).called_transform.prefix",
            "quoted string",
        ),
        (
            ("route_patterns", 0, "called_transform", "presentation"),
            "hidden",
            "route_patterns[0] (9.1[2-9]XX[2-9]XXXXXX).called_transform.presentation",
            "'allowed' or 'restricted'",
        ),
        (
            ("translation_patterns", 0, "css"),
            None,
            "translation_patterns[0] (0).css",
            "valid string",
        ),
        (("partitions", 0), "bad name", "partitions[0] (bad name)", "pattern"),
    ],
)
def test_invalid_fields(path: tuple[Any, ...], value: Any, where: str, what: str) -> None:
    data = copy.deepcopy(full())
    _set(data, path, value)
    found = problems(data)
    assert any(loc == where and what in msg for loc, msg in found), found


def test_devices_only_plan_still_valid() -> None:
    plan = parse_plan(
        {"devices": [{"name": "a", "protocol": "sip", "password": "p", "lines": [{"dn": "1"}]}]},
        "p",
    )
    spec = plan.dialplan_spec()
    assert spec.partitions == () and spec.directory_numbers[0].partition == ""
