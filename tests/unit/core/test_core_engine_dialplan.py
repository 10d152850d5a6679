"""Call control routed by the dial plan: CSS, translations, blocks, route lists, trunk hunting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_harness import FakeDriver, Harness, media

from offhook.core.causes import Cause
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    Presentation,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Transform,
    TranslationPattern,
    Trunk,
)
from offhook.core.events import PartyInfo, Setup


def spec(*, max_calls: int = 0) -> DialPlanSpec:
    return DialPlanSpec(
        partitions=("internal", "pstn", "exec"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal", "pstn")),
            CallingSearchSpace("inbound", ("internal",)),
        ),
        directory_numbers=(
            DirectoryNumber("1001", "internal", ("alice",), "Alice"),
            DirectoryNumber("1000", "internal", ("bob",), "Reception"),
            DirectoryNumber("1002", "internal", ("bob",)),
            DirectoryNumber("1003", "exec", ("carol",)),
        ),
        translation_patterns=(
            TranslationPattern(
                "0", "internal", "staff", called_transform=Transform(replace="1000")
            ),
        ),
        route_patterns=(
            RoutePattern(
                "9.1[2-9]XX[2-9]XXXXXX",
                "pstn",
                route_list="pstn-out",
                called_transform=Transform(discard="pre-dot", prefix="+"),
                calling_transform=Transform(mask="5551XXXX"),
            ),
            RoutePattern("9.1900XXXXXXX", "pstn", block=True),
        ),
        trunks=(
            Trunk("carrier", "sip", "192.0.2.10", 5080, max_calls=max_calls, css="inbound"),
            Trunk("backup", "sip", "192.0.2.20", 5060, transport="tcp"),
        ),
        route_groups=(
            RouteGroup("carriers", (RouteGroupMember("carrier"), RouteGroupMember("backup"))),
        ),
        route_lists=(RouteList("pstn-out", ("carriers",)),),
    )


@pytest.fixture
def h() -> Harness:
    h = Harness(spec=spec())
    h.device("alice", "1001", css="staff", display="Alice")
    h.device("bob", "1000", "1002")
    h.device("carol", "1003")
    h.register("bob")
    h.register("carol")
    return h


def test_dn_reached_through_the_css(h: Harness) -> None:
    h.call("alice", "1002", "1001")
    assert list(h.factory.drivers) == ["sip:bob@10.0.0.9"]


def test_dn_outside_the_css_does_not_exist(h: Harness) -> None:
    _, ad = h.call("alice", "1003", "1001")
    assert ad.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert h.factory.drivers == {}
    assert h.record().cause == 1


def test_translation_rings_the_translated_number(h: Harness) -> None:
    h.call("alice", "0", "1001")
    _, bd = h.out("sip:bob@10.0.0.9")
    setup = bd.calls[0][1]
    assert setup.called == "1000" and setup.original_called == "0"


def test_blocked_and_incomplete_numbers(h: Harness) -> None:
    _, ad = h.call("alice", "919005551234", "1001")
    assert ad.released_with() == [21]
    _, ad2 = h.call("alice", "91415", "1001")
    assert ad2.released_with() == [28]  # SIP 484 address incomplete
    assert [r.cause for r in h.records()] == [21, 28]


def test_route_pattern_offers_the_first_trunk_with_transforms(h: Harness) -> None:
    a, _ad = h.call("alice", "914155551234", "1001")
    assert list(h.factory.drivers) == ["carrier"]
    leg, driver = h.out("carrier")
    assert leg.binding is not None
    assert leg.binding.source == ("192.0.2.10", 5080) and leg.binding.contact == ""
    setup = driver.calls[0][1]
    assert setup.called == "+14155551234"
    assert setup.calling.number == "55511001"  # mask 5551XXXX on 1001
    assert setup.original_called == "914155551234"
    h.engine.on_connect(leg, media("192.0.2.10"))
    h.engine.on_release(a, 16)
    rec = h.record()
    assert rec.called_device == "carrier" and rec.cause == 16


@pytest.mark.parametrize("cause", [41, 102, 34, 38])
def test_trunk_failure_fails_over_to_the_next(h: Harness, cause: int) -> None:
    _a, ad = h.call("alice", "914155551234", "1001")
    h.engine.on_release(h.out("carrier")[0], cause)
    assert list(h.factory.drivers) == ["carrier", "backup"]
    backup, _bd = h.out("backup")
    assert backup.binding is not None and backup.binding.transport == "tcp"
    assert ad.released_with() == []
    h.engine.on_connect(backup, media("192.0.2.20"))
    h.engine.on_release(backup, 16)
    rec = h.record()
    assert rec.called_device == "backup" and rec.cause == 16


@pytest.mark.parametrize("cause", [17, 1, 21])
def test_user_level_answer_ends_the_hunt(h: Harness, cause: int) -> None:
    _, ad = h.call("alice", "914155551234", "1001")
    h.engine.on_release(h.out("carrier")[0], cause)
    assert list(h.factory.drivers) == ["carrier"]
    assert ad.released_with() == [cause]


def test_every_trunk_failing_releases_the_caller(h: Harness) -> None:
    _, ad = h.call("alice", "914155551234", "1001")
    h.engine.on_release(h.out("carrier")[0], 41)
    h.engine.on_release(h.out("backup")[0], 102)
    assert len(ad.released_with()) == 1
    assert h.record().answer is None


def test_trunk_at_its_call_limit_is_skipped() -> None:
    h = Harness(spec=spec(max_calls=1))
    h.device("alice", "1001", css="staff")
    h.call("alice", "914155551234", "1001")
    assert list(h.factory.drivers) == ["carrier"]
    h.factory.drivers.clear()
    h.factory.legs.clear()
    h.call("alice", "914155551235", "1001")
    assert list(h.factory.drivers) == ["backup"]


def test_inbound_trunk_call_uses_the_trunk_css(h: Harness) -> None:
    driver = FakeDriver("carrier")
    leg = h.engine.inbound_leg(driver, "carrier", css="inbound")
    driver.leg = leg
    h.engine.setup(leg, Setup(PartyInfo("+14085550000"), "1002", media("192.0.2.10")))
    assert list(h.factory.drivers) == ["sip:bob@10.0.0.9"]
    # the inbound CSS reaches internal only: a PSTN route is not there
    driver2 = FakeDriver("carrier")
    leg2 = h.engine.inbound_leg(driver2, "carrier", css="inbound")
    driver2.leg = leg2
    h.engine.setup(leg2, Setup(PartyInfo("+14085550000"), "914155551234", None))
    assert driver2.released_with() == [Cause.UNALLOCATED_NUMBER]


def test_restricted_presentation_reaches_the_called_leg() -> None:
    s = spec()
    rp = replace(
        s.route_patterns[0], calling_transform=Transform(presentation=Presentation.RESTRICTED)
    )
    h = Harness(spec=replace(s, route_patterns=(rp,)))
    h.device("alice", "1001", css="staff")
    h.call("alice", "914155551234", "1001")
    setup = h.out("carrier")[1].calls[0][1]
    assert setup.calling.presentation_allowed is False
