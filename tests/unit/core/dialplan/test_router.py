"""DialPlan routing: CSS visibility, route patterns, blocks, translations, route groups, overlap."""

from __future__ import annotations

import dataclasses

import pytest

from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    Distribution,
    Presentation,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.dialplan.router import (
    CAUSE_INCOMPLETE,
    CAUSE_LOOP,
    CAUSE_UNKNOWN,
    Decision,
    DialPlan,
    Outcome,
    OverlapState,
    Step,
)

NANP = "9.1[2-9]XX[2-9]XXXXXX"


def base_spec(**changes: object) -> DialPlanSpec:
    """The issue's example plan, grown a little."""
    spec = DialPlanSpec(
        partitions=("internal", "pstn", "exec"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal", "pstn")),
            CallingSearchSpace("lobby", ("internal",)),
            CallingSearchSpace("boss", ("exec", "internal", "pstn")),
        ),
        directory_numbers=(
            DirectoryNumber("1000", "internal", ("operator",)),
            DirectoryNumber("1001", "internal", ("alice",)),
            DirectoryNumber("3001", "exec", ("ceo",)),
            DirectoryNumber("4000", "", ("front-desk",)),
        ),
        trunks=(
            Trunk("carrier", "sip", "127.0.0.1", 5080),
            Trunk("backup", "sip", "127.0.0.1", 5081),
            Trunk("a", "sip", "127.0.0.1", 5090),
            Trunk("b", "sip", "127.0.0.1", 5091),
            Trunk("c", "sip", "127.0.0.1", 5092),
        ),
        route_groups=(
            RouteGroup("carriers", (RouteGroupMember("carrier"), RouteGroupMember("backup"))),
            RouteGroup(
                "ring",
                (RouteGroupMember("a"), RouteGroupMember("b"), RouteGroupMember("c")),
                Distribution.CIRCULAR,
            ),
        ),
        route_lists=(
            RouteList("pstn-out", ("carriers",)),
            RouteList("spread", ("ring", "carriers")),
        ),
        route_patterns=(
            RoutePattern(
                NANP,
                "pstn",
                route_list="pstn-out",
                called_transform=Transform(discard="pre-dot", prefix="+"),
            ),
            RoutePattern("9.1900XXXXXXX", "pstn", block=True),
            RoutePattern("8.XXXX", "pstn", route_list="spread"),
        ),
        translation_patterns=(
            TranslationPattern(
                "0", "internal", "staff", called_transform=Transform(replace="1000")
            ),
        ),
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


@pytest.fixture
def plan() -> DialPlan:
    return DialPlan(base_spec())


# -- CSS visibility ----------------------------------------------------------


def test_dn_visible_through_css(plan: DialPlan) -> None:
    d = plan.route("staff", "1001", calling="1000")
    assert d.outcome == Outcome.DN
    assert str(d.outcome) == "dn"  # a StrEnum: compares and prints as the plain string
    assert d.dn is not None and d.dn.devices == ("alice",)
    assert (d.called, d.calling, d.cause) == ("1001", "1000", 0)
    assert d.routable
    assert d.steps == (
        Step("dn", "1001", "internal", ("internal", "pstn", ""), "1001", "1001", "1000", "1000"),
    )


def test_dn_outside_css_is_unknown_not_blocked(plan: DialPlan) -> None:
    assert plan.route("boss", "3001").outcome == Outcome.DN
    for css in ("staff", "lobby", "", "no-such-css"):
        d = plan.route(css, "3001")
        assert (d.outcome, d.cause, d.dn) == (Outcome.UNKNOWN, CAUSE_UNKNOWN, None)
        assert not d.routable


def test_route_pattern_outside_css_is_unknown(plan: DialPlan) -> None:
    d = plan.route("lobby", "914155551234")
    assert (d.outcome, d.cause) == (Outcome.UNKNOWN, 1)


def test_null_partition_visible_to_everyone(plan: DialPlan) -> None:
    for css in ("staff", "lobby", "boss", "", "no-such-css"):
        d = plan.route(css, "4000")
        assert d.outcome == Outcome.DN
        assert d.steps[0].partition == ""


def test_css_partitions(plan: DialPlan) -> None:
    assert plan.css_partitions("staff") == ("internal", "pstn", "")
    assert plan.css_partitions("lobby") == ("internal", "")
    assert plan.css_partitions("") == ("",)
    assert plan.css_partitions("no-such-css") == ("",)


def test_explicit_partition_sequence(plan: DialPlan) -> None:
    assert plan.route(["exec"], "3001").outcome == Outcome.DN
    assert plan.route(("pstn",), "1001").outcome == Outcome.UNKNOWN
    assert plan.route(["pstn"], "4000").outcome == Outcome.DN  # null partition still searched


def test_css_order_breaks_ties() -> None:
    spec = base_spec(
        directory_numbers=(
            DirectoryNumber("5000", "internal", ("in",)),
            DirectoryNumber("5000", "exec", ("ex",)),
        ),
        route_patterns=(),
        translation_patterns=(),
    )
    plan = DialPlan(spec)
    d = plan.route("boss", "5000")
    assert d.dn is not None and d.dn.partition == "exec"
    d = plan.route(["internal", "exec"], "5000")
    assert d.dn is not None and d.dn.partition == "internal"


def test_wildcard_dn_and_closest_match() -> None:
    spec = base_spec(
        directory_numbers=(
            DirectoryNumber("1XXX", "internal", ("catch-all",)),
            DirectoryNumber("1001", "internal", ("alice",)),
        ),
    )
    plan = DialPlan(spec)
    d1 = plan.route("staff", "1001")
    d2 = plan.route("staff", "1002")
    assert d1.dn is not None and d1.dn.dn == "1001"
    assert d2.dn is not None and d2.dn.dn == "1XXX"
    assert d2.called == "1002"


# -- route patterns ----------------------------------------------------------


def test_route_pattern_pre_dot_and_prefix(plan: DialPlan) -> None:
    d = plan.route("staff", "914155551234", calling="1001")
    assert d.outcome == Outcome.ROUTE
    assert d.called == "+14155551234"
    assert d.calling == "1001"
    assert d.route_pattern is not None and d.route_pattern.pattern == NANP
    assert d.route_list is not None and d.route_list.name == "pstn-out"
    assert [(t.trunk.name, t.group, t.called, t.calling) for t in d.trunks] == [
        ("carrier", "carriers", "+14155551234", "1001"),
        ("backup", "carriers", "+14155551234", "1001"),
    ]
    (step,) = d.steps
    assert step.kind == "route"
    assert (step.pattern, step.partition) == (NANP, "pstn")
    assert (step.called_in, step.called_out) == ("914155551234", "+14155551234")
    assert step.called_transform == Transform(discard="pre-dot", prefix="+")
    assert step.searched == ("internal", "pstn", "")
    assert d.cause == 0


def test_blocked_pattern(plan: DialPlan) -> None:
    d = plan.route("staff", "919005551234")
    assert (d.outcome, d.cause) == (Outcome.BLOCKED, 21)
    assert d.route_pattern is not None and d.route_pattern.block
    assert d.trunks == ()
    assert d.called == "919005551234"
    (step,) = d.steps
    assert step.blocked and step.pattern == "9.1900XXXXXXX"


def test_blocked_pattern_own_cause() -> None:
    spec = base_spec(route_patterns=(RoutePattern("976XXXX", "pstn", block=True, block_cause=1),))
    d = DialPlan(spec).route("staff", "9761234")
    assert (d.outcome, d.cause) == (Outcome.BLOCKED, 1)


def test_incomplete(plan: DialPlan) -> None:
    for digits in ("9141", "9", "100"):
        d = plan.route("staff", digits)
        assert (d.outcome, d.cause) == (Outcome.INCOMPLETE, CAUSE_INCOMPLETE), digits
        assert d.steps == ()


def test_unknown(plan: DialPlan) -> None:
    for digits in ("5", "10011", "9141555512345", "90"):
        d = plan.route("staff", digits)
        assert (d.outcome, d.cause) == (Outcome.UNKNOWN, CAUSE_UNKNOWN), digits


def test_calling_transform_and_presentation() -> None:
    rp = RoutePattern(
        "9.XXXX",
        "pstn",
        route_list="pstn-out",
        called_transform=Transform(discard="pre-dot"),
        calling_transform=Transform(mask="4085553XXX", presentation=Presentation.RESTRICTED),
    )
    d = DialPlan(base_spec(route_patterns=(rp,))).route("staff", "95555", calling="35062")
    assert (d.called, d.calling, d.presentation) == ("5555", "4085553062", Presentation.RESTRICTED)
    assert all(t.calling == "4085553062" for t in d.trunks)
    assert all(t.presentation is Presentation.RESTRICTED for t in d.trunks)
    assert d.steps[0].presentation is Presentation.RESTRICTED


# -- route groups --------------------------------------------------------------


def trunk_names(d: Decision) -> list[str]:
    return [t.trunk.name for t in d.trunks]


def test_top_down_is_stable(plan: DialPlan) -> None:
    for _ in range(3):
        assert trunk_names(plan.route("staff", "914155551234")) == ["carrier", "backup"]


def test_circular_rotates_then_next_group(plan: DialPlan) -> None:
    seen = [trunk_names(plan.route("staff", "81234")) for _ in range(4)]
    assert seen == [
        ["a", "b", "c", "carrier", "backup"],
        ["b", "c", "a", "carrier", "backup"],
        ["c", "a", "b", "carrier", "backup"],
        ["a", "b", "c", "carrier", "backup"],
    ]
    d = plan.route("staff", "81234")
    assert [t.group for t in d.trunks] == ["ring"] * 3 + ["carriers"] * 2
    assert d.called == "81234"  # no discard instruction: the 8 stays


def test_circular_rotate_false_does_not_advance(plan: DialPlan) -> None:
    assert trunk_names(plan.route("staff", "81234", rotate=False))[:3] == ["a", "b", "c"]
    assert trunk_names(plan.route("staff", "81234", rotate=False))[:3] == ["a", "b", "c"]
    assert trunk_names(plan.route("staff", "81234"))[:3] == ["a", "b", "c"]
    assert trunk_names(plan.route("staff", "81234"))[:3] == ["b", "c", "a"]


def test_circular_counter_is_per_plan() -> None:
    p1, p2 = DialPlan(base_spec()), DialPlan(base_spec())
    p1.route("staff", "81234")
    assert trunk_names(p2.route("staff", "81234"))[0] == "a"


def test_member_transforms_override_route_pattern() -> None:
    groups = (
        RouteGroup(
            "carriers",
            (
                RouteGroupMember("carrier"),
                RouteGroupMember(
                    "backup",
                    called_transform=Transform(mask="XXXXXXXXXX", prefix=""),
                    calling_transform=Transform(
                        mask="4085553XXX", presentation=Presentation.RESTRICTED
                    ),
                ),
            ),
        ),
        RouteGroup("ring", (RouteGroupMember("a"),)),
    )
    d = DialPlan(base_spec(route_groups=groups)).route("staff", "914155551234", calling="1001")
    assert d.called == "+14155551234"
    carrier, backup = d.trunks
    assert (carrier.called, carrier.calling, carrier.presentation) == ("+14155551234", "1001", None)
    # The member's mask replaces nothing else: pre-dot and "+" still come from
    # the route pattern, applied to the digits the pattern matched.
    assert backup.called == "+4155551234"
    assert (backup.calling, backup.presentation) == ("4085553001", Presentation.RESTRICTED)


def test_member_prefix_overrides_route_pattern_prefix() -> None:
    groups = (
        RouteGroup(
            "carriers",
            (RouteGroupMember("carrier", called_transform=Transform(prefix="0011")),),
        ),
        RouteGroup("ring", (RouteGroupMember("a"),)),
    )
    d = DialPlan(base_spec(route_groups=groups)).route("staff", "914155551234")
    assert d.called == "+14155551234"
    assert d.trunks[0].called == "001114155551234"


# -- translation patterns ----------------------------------------------------


def test_translation_reanalysed_with_its_css(plan: DialPlan) -> None:
    d = plan.route("lobby", "0", calling="4000")
    assert d.outcome == Outcome.DN
    assert d.dn is not None and d.dn.dn == "1000"
    assert d.called == "1000"
    t, dn = d.steps
    assert (t.kind, t.pattern, t.partition, t.searched) == (
        "translation",
        "0",
        "internal",
        ("internal", ""),
    )
    assert (t.called_in, t.called_out) == ("0", "1000")
    assert t.called_transform == Transform(replace="1000")
    assert (dn.kind, dn.pattern, dn.searched) == ("dn", "1000", ("internal", "pstn", ""))


def test_translation_css_reaches_what_caller_cannot() -> None:
    # lobby cannot dial 3001 directly, but the exec translation (visible to
    # lobby, searching boss) can reach it.
    spec = base_spec(
        translation_patterns=(
            TranslationPattern("7", "internal", "boss", called_transform=Transform(replace="3001")),
        )
    )
    plan = DialPlan(spec)
    assert plan.route("lobby", "3001").outcome == Outcome.UNKNOWN
    d = plan.route("lobby", "7")
    assert d.dn is not None and d.dn.dn == "3001"


def test_translation_chain_of_two() -> None:
    spec = base_spec(
        translation_patterns=(
            TranslationPattern(
                "*.XX",
                "internal",
                "staff",
                called_transform=Transform(discard="pre-dot"),
                calling_transform=Transform(prefix="+1408"),
            ),
            TranslationPattern(
                "0X",
                "pstn",
                "staff",
                called_transform=Transform(mask="100X"),
                calling_transform=Transform(presentation=Presentation.RESTRICTED),
            ),
        )
    )
    d = DialPlan(spec).route("lobby", "*01", calling="5551234")
    assert d.outcome == Outcome.DN
    assert d.dn is not None and d.dn.dn == "1001"
    assert [(s.kind, s.called_in, s.called_out) for s in d.steps] == [
        ("translation", "*01", "01"),
        ("translation", "01", "1001"),
        ("dn", "1001", "1001"),
    ]
    assert d.calling == "+14085551234"
    assert d.presentation is Presentation.RESTRICTED


def test_translation_calling_transform_feeds_route_pattern() -> None:
    spec = base_spec(
        translation_patterns=(
            TranslationPattern(
                "0.!",
                "internal",
                "staff",
                called_transform=Transform(discard="pre-dot", prefix="9"),
                calling_transform=Transform(mask="415555XXXX"),
            ),
        )
    )
    d = DialPlan(spec).route("lobby", "014155551234", calling="1001")
    assert d.outcome == Outcome.ROUTE
    assert (d.called, d.calling) == ("+14155551234", "4155551001")
    assert [s.kind for s in d.steps] == ["translation", "route"]
    assert d.steps[1].calling_in == "4155551001"


def test_translation_loop_same_state_stops() -> None:
    spec = base_spec(
        translation_patterns=(
            TranslationPattern(
                "5555", "internal", "staff", called_transform=Transform(replace="6666")
            ),
            TranslationPattern(
                "6666", "internal", "staff", called_transform=Transform(replace="5555")
            ),
        )
    )
    d = DialPlan(spec).route("staff", "5555")
    assert (d.outcome, d.cause) == (Outcome.LOOP, CAUSE_LOOP)
    assert [s.called_out for s in d.steps] == ["6666", "5555"]


def test_translation_loop_max_translations() -> None:
    # Every pass makes a new number, so only the count stops it.
    spec = base_spec(
        translation_patterns=(
            TranslationPattern("6!", "internal", "staff", called_transform=Transform(prefix="6")),
        )
    )
    plan = DialPlan(spec)
    d = plan.route("staff", "61")
    assert (d.outcome, d.cause) == (Outcome.LOOP, 25)
    assert len(d.steps) == 10
    assert d.steps[-1].called_out == "6" * 11 + "1"
    d = plan.route("staff", "61", max_translations=3)
    assert d.outcome == Outcome.LOOP and len(d.steps) == 3


def test_max_translations_allows_exactly_that_many() -> None:
    spec = base_spec(
        translation_patterns=(
            TranslationPattern(
                "*.XXXX", "internal", "staff", called_transform=Transform(discard="pre-dot")
            ),
        )
    )
    plan = DialPlan(spec)
    assert plan.route("staff", "*1001", max_translations=1).outcome == Outcome.DN
    assert plan.route("staff", "*1001", max_translations=0).outcome == Outcome.LOOP


def test_blocked_translation() -> None:
    spec = base_spec(
        translation_patterns=(TranslationPattern("666", "internal", "staff", block=True),)
    )
    d = DialPlan(spec).route("staff", "666")
    assert (d.outcome, d.cause) == (Outcome.BLOCKED, 21)
    (step,) = d.steps
    assert step.blocked and step.kind == "translation"


def test_translation_to_nothing_is_unknown() -> None:
    spec = base_spec(
        translation_patterns=(
            TranslationPattern(
                "0", "internal", "lobby", called_transform=Transform(replace="7777")
            ),
        )
    )
    d = DialPlan(spec).route("staff", "0")
    assert d.outcome == Outcome.UNKNOWN and d.called == "7777"
    assert len(d.steps) == 1


# -- overlap -------------------------------------------------------------------


def overlap_plan() -> DialPlan:
    spec = base_spec(
        route_patterns=(
            RoutePattern("5XX", "pstn", route_list="pstn-out"),
            RoutePattern("5XXX", "pstn", route_list="pstn-out"),
            RoutePattern("911", "pstn", route_list="pstn-out", urgent=True),
            RoutePattern("9.!", "pstn", route_list="pstn-out"),
        ),
        translation_patterns=(),
    )
    return DialPlan(spec)


@pytest.mark.parametrize(
    ("digits", "state"),
    [
        ("1", OverlapState.NEED_MORE),
        ("100", OverlapState.NEED_MORE),
        ("1001", OverlapState.ROUTE_NOW),  # complete, nothing longer
        ("10010", OverlapState.NO_MATCH),
        ("7", OverlapState.NO_MATCH),
        ("5", OverlapState.NEED_MORE),
        ("55", OverlapState.NEED_MORE),
        ("555", OverlapState.ROUTE_ON_TIMEOUT),  # 5XX complete, 5XXX possible
        ("5555", OverlapState.ROUTE_NOW),
        ("911", OverlapState.ROUTE_NOW),  # urgent beats 9.! going on
        ("91", OverlapState.ROUTE_ON_TIMEOUT),  # 9.! complete, longer possible
    ],
)
def test_overlap(digits: str, state: OverlapState) -> None:
    assert overlap_plan().overlap("staff", digits) == state


def test_overlap_respects_css() -> None:
    plan = overlap_plan()
    assert plan.overlap("lobby", "5") == OverlapState.NO_MATCH
    assert plan.overlap("lobby", "100") == OverlapState.NEED_MORE


def test_overlap_nothing_dialed_yet() -> None:
    assert overlap_plan().overlap("staff", "") == OverlapState.NEED_MORE


@pytest.mark.parametrize("digits", ["", "abc", "10 01", "1" * 200])
def test_garbage_digits_are_unknown(plan: DialPlan, digits: str) -> None:
    d = plan.route("staff", digits)
    assert d.outcome in (Outcome.UNKNOWN, Outcome.INCOMPLETE)
    assert not d.routable
