"""DialPlan refuses plans with dangling references or bad records, saying where."""

from __future__ import annotations

import dataclasses

import pytest
from test_router import NANP, base_spec

from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.dialplan.router import DialPlan, DialPlanError


def refused(spec: DialPlanSpec) -> DialPlanError:
    with pytest.raises(DialPlanError) as info:
        DialPlan(spec)
    return info.value


def test_base_plan_is_valid() -> None:
    DialPlan(base_spec())
    DialPlan(DialPlanSpec())


def test_error_is_value_error_with_path_and_message() -> None:
    spec = base_spec()
    rps = (*spec.route_patterns[:2], RoutePattern("9.1900XXXXXXX", "pstn", route_list="x"))
    err = refused(dataclasses.replace(spec, route_patterns=rps))
    assert isinstance(err, ValueError)
    assert err.path == "route_patterns[2] (9.1900XXXXXXX)"
    assert err.message == "route list 'x' does not exist"
    assert str(err) == "route_patterns[2] (9.1900XXXXXXX): route list 'x' does not exist"


def _css(*partitions: str) -> tuple[CallingSearchSpace, ...]:
    return (CallingSearchSpace("staff", partitions),)


CASES: list[tuple[dict[str, object], str]] = [
    ({"partitions": ("internal", "")}, "partitions[1]: empty partition name"),
    ({"partitions": ("a", "b", "a")}, "partitions: partition 'a' is listed twice"),
    (
        {"calling_search_spaces": _css("internal", "nope")},
        "calling_search_spaces[0] (staff): partition 'nope' does not exist",
    ),
    (
        {
            "calling_search_spaces": (
                CallingSearchSpace("staff", ("internal",)),
                CallingSearchSpace("staff", ("pstn",)),
            )
        },
        "calling_search_spaces[1] (staff): calling search space 'staff' is defined twice",
    ),
    (
        {"directory_numbers": (DirectoryNumber("1001", "nowhere", ("alice",)),)},
        "directory_numbers[0] (1001): partition 'nowhere' does not exist",
    ),
    (
        {"directory_numbers": (DirectoryNumber("10[1", "internal", ("alice",)),)},
        "directory_numbers[0] (10[1): invalid pattern: ",
    ),
    (
        {
            "directory_numbers": (
                DirectoryNumber("1001", "internal", ("alice",)),
                DirectoryNumber("1001", "internal", ("bob",)),
            )
        },
        "directory_numbers[1] (1001): '1001' in partition 'internal' is already used by "
        "directory_numbers[0] (1001)",
    ),
    (
        {"route_patterns": (RoutePattern("9.X!", "pstn"),)},
        "route_patterns[0] (9.X!): route pattern has no route list and is not blocked",
    ),
    (
        {"route_patterns": (RoutePattern("9.X!", "elsewhere", route_list="pstn-out"),)},
        "route_patterns[0] (9.X!): partition 'elsewhere' does not exist",
    ),
    (
        {"route_patterns": (RoutePattern("976XXXX", "pstn", block=True, route_list="gone"),)},
        "route_patterns[0] (976XXXX): route list 'gone' does not exist",
    ),
    (
        {"route_patterns": (RoutePattern("976XXXX", "pstn", block=True, block_cause=0),)},
        "route_patterns[0] (976XXXX): block_cause 0 is not a Q.850 cause",
    ),
    (
        {
            "route_patterns": (
                RoutePattern(
                    NANP,
                    "pstn",
                    route_list="pstn-out",
                    called_transform=Transform(discard="pre-at"),
                ),
            )
        },
        f"route_patterns[0] ({NANP}).called_transform: unsupported digit discard instruction "
        "'pre-at'",
    ),
    (
        {
            "route_patterns": (
                RoutePattern(
                    NANP,
                    "pstn",
                    route_list="pstn-out",
                    calling_transform=Transform(discard="pre-dot"),
                ),
            )
        },
        f"route_patterns[0] ({NANP}).calling_transform: digit discard instruction 'pre-dot' "
        "applies to the called number only",
    ),
    (
        {"route_patterns": (RoutePattern("1001", "internal", route_list="pstn-out"),)},
        "route_patterns[0] (1001): '1001' in partition 'internal' is already used by "
        "directory_numbers[1] (1001)",
    ),
    (
        {"translation_patterns": (TranslationPattern("0", "internal", "nope"),)},
        "translation_patterns[0] (0): calling search space 'nope' does not exist",
    ),
    (
        {
            "translation_patterns": (
                TranslationPattern("0", "internal", "staff", called_transform=Transform(mask="1A")),
            )
        },
        "translation_patterns[0] (0).called_transform: mask '1A' has characters not allowed",
    ),
    (
        {"route_lists": (RouteList("pstn-out", ("carriers", "ghosts")),)},
        "route_lists[0] (pstn-out): route group 'ghosts' does not exist",
    ),
    (
        {"route_lists": (RouteList("pstn-out", ()),)},
        "route_lists[0] (pstn-out): route list has no route groups",
    ),
    (
        {
            "route_groups": (
                RouteGroup("carriers", (RouteGroupMember("carrier"), RouteGroupMember("nope"))),
            )
        },
        "route_groups[0] (carriers).members[1] (nope): trunk 'nope' does not exist",
    ),
    (
        {"route_groups": (RouteGroup("carriers", ()),)},
        "route_groups[0] (carriers): route group has no members",
    ),
    (
        {
            "route_groups": (
                RouteGroup(
                    "carriers",
                    (RouteGroupMember("carrier", called_transform=Transform(prefix="9 ")),),
                ),
            )
        },
        "route_groups[0] (carriers).members[0] (carrier).called_transform: prefix '9 '",
    ),
    (
        {"trunks": (Trunk("carrier", "sip", "127.0.0.1", css="inbound"),)},
        "trunks[0] (carrier): calling search space 'inbound' does not exist",
    ),
    (
        {
            "trunks": (
                Trunk("carrier", "sip", "127.0.0.1"),
                Trunk("carrier", "sip", "127.0.0.2"),
            )
        },
        "trunks[1] (carrier): trunk 'carrier' is defined twice",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), CASES)
def test_refused(changes: dict[str, object], expected: str) -> None:
    err = refused(base_spec(**changes))
    assert str(err).startswith(expected), str(err)


def test_same_pattern_in_two_partitions_is_fine() -> None:
    DialPlan(
        base_spec(
            directory_numbers=(
                DirectoryNumber("5000", "internal", ("a",)),
                DirectoryNumber("5000", "exec", ("b",)),
            )
        )
    )


def test_trunk_without_css_is_fine() -> None:
    DialPlan(base_spec(trunks=(*base_spec().trunks, Trunk("x", "sip", "127.0.0.1", css=""))))
