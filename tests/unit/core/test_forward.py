"""Call forwarding, do not disturb and feature codes: walking features.forward and codes."""

from __future__ import annotations

import pytest
from core_harness import FakeDriver, Harness, media
from test_core_features import RecordingMedia

from offhook.core.causes import Cause
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    RouteGroup,
    RouteGroupMember,
    RouteList,
    RoutePattern,
    Trunk,
)
from offhook.core.directory import DeviceInfo, Forward, LineInfo, directory_numbers
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.core.features.codes import match
from offhook.core.records import DndChanged, ForwardChanged, HuntLoginChanged


def line(dn: str, partition: str = "internal", **coverage: object) -> LineInfo:
    return LineInfo(dn, dn, partition, **coverage)  # type: ignore[arg-type]


def plan(h: Harness, devices: list[DeviceInfo], *, trunk: bool = False) -> None:
    """``devices`` with their DNs in partition internal; CSS staff reaches internal,
    CSS pstn also a route pattern 9.! to a trunk."""
    h.devices[:] = devices
    h.spec = DialPlanSpec(
        partitions=("internal", "pstn"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal",)),
            CallingSearchSpace("world", ("internal", "pstn")),
        ),
        directory_numbers=directory_numbers(devices),
        trunks=(Trunk("carrier", "sip", "127.0.0.1"),) if trunk else (),
        route_groups=(RouteGroup("g", (RouteGroupMember("carrier"),)),) if trunk else (),
        route_lists=(RouteList("out", ("g",)),) if trunk else (),
        route_patterns=(RoutePattern("9.!", "pstn", "out"),) if trunk else (),
    )
    for dev in devices:
        h.register(dev.name)


def dev(name: str, *lines: LineInfo, css: str = "staff", **kw: object) -> DeviceInfo:
    return DeviceInfo(name, "sip", lines, css=css, **kw)  # type: ignore[arg-type]


def rung(h: Harness) -> list[str]:
    """The devices offered a call, in order."""
    return [leg.device for leg in h.factory.legs.values()]


def call(h: Harness, caller: str, number: str, called: str) -> FakeDriver:
    driver = FakeDriver(caller)
    leg = h.engine.inbound_leg(driver, caller)
    driver.leg = leg
    h.engine.setup(leg, Setup(PartyInfo(number), called, media("10.0.0.1")))
    return driver


def test_forward_all_from_the_plan_rings_the_destination_and_records_the_redirect(
    h: Harness,
) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_all=Forward("1003"))),
            dev("carol", line("1003")),
        ],
    )
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]
    offered = h.factory.drivers["sip:carol@10.0.0.9"].last("offer")[1]
    assert offered.called == "1003"
    assert offered.original_called == "1002"
    assert offered.diversions == (Diversion("1002", RedirectReason.FORWARD_ALL, "1002"),)
    leg = h.factory.legs["sip:carol@10.0.0.9"]
    h.engine.on_connect(leg, media("10.0.0.3"))
    h.engine.on_release(leg)
    record = h.record()
    assert (record.called, record.original_called) == ("1003", "1002")
    assert (record.last_redirecting, record.redirect_reason) == ("1002", "forward-all")
    assert record.called_device == "carol"


def test_a_forward_outside_its_css_is_not_taken(h: Harness) -> None:
    # The forward's CSS (staff) does not reach the pstn trunk: the line rings itself.
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_all=Forward("9011441234", "staff"))),
        ],
        trunk=True,
    )
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["bob"]


def test_forward_css_defaults_to_the_line_owners_css(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001"), css="world"),
            # bob may not dial out: neither may his forward, though alice could.
            dev("bob", line("1002", forward_all=Forward("9011441234"))),
        ],
        trunk=True,
    )
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["bob"]


def test_forward_busy_when_the_line_is_at_its_limit(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_busy=Forward("1003")), max_calls=1),
            dev("carol", line("1003")),
            dev("dave", line("1004")),
        ],
    )
    call(h, "dave", "1004", "1002")  # bob is now in a call (ringing)
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["bob", "carol"]
    offered = h.factory.drivers["sip:carol@10.0.0.9"].last("offer")[1]
    assert offered.diversions[-1].reason is RedirectReason.FORWARD_BUSY


def test_forward_busy_when_the_phone_answers_busy(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_busy=Forward("1003"))),
            dev("carol", line("1003")),
        ],
    )
    call(h, "alice", "1001", "1002")
    h.engine.on_release(h.factory.legs["sip:bob@10.0.0.9"], Cause.USER_BUSY)
    assert rung(h) == ["bob", "carol"]


def test_forward_unregistered(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_unregistered=Forward("1003"))),
            dev("carol", line("1003")),
        ],
    )
    h.locations.remove("bob", "sip:bob@10.0.0.9")
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]
    offered = h.factory.drivers["sip:carol@10.0.0.9"].last("offer")[1]
    assert offered.diversions[-1].reason is RedirectReason.FORWARD_UNREGISTERED


@pytest.mark.parametrize(("timer", "wait"), [(None, 12.0), (5.0, 5.0)])
def test_forward_no_answer_after_the_cfna_timer(
    h: Harness, timer: float | None, wait: float
) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_no_answer=Forward("1003"), cfna_timer=timer)),
            dev("carol", line("1003")),
        ],
    )
    ad = call(h, "alice", "1001", "1002")
    h.engine.on_alerting(h.factory.legs["sip:bob@10.0.0.9"])
    h.clock.advance(wait - 0.5)
    h.engine.handle_timer(h.clock.monotonic())
    assert rung(h) == ["bob"]
    h.clock.advance(0.5)
    h.engine.handle_timer(h.clock.monotonic())
    assert rung(h) == ["bob", "carol"]
    assert h.factory.drivers["sip:bob@10.0.0.9"].released_with() == [Cause.NO_ANSWER]
    assert "release" not in ad.names()  # the caller keeps hearing ringback
    h.engine.on_connect(h.factory.legs["sip:carol@10.0.0.9"], media("10.0.0.3"))
    assert ad.names().count("answer") == 1


def test_no_answer_timer_is_void_once_answered(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_no_answer=Forward("1003"))),
            dev("carol", line("1003")),
        ],
    )
    call(h, "alice", "1001", "1002")
    h.engine.on_connect(h.factory.legs["sip:bob@10.0.0.9"], media("10.0.0.2"))
    h.clock.advance(30)
    h.engine.handle_timer(h.clock.monotonic())
    assert rung(h) == ["bob"]


def test_a_forward_loop_stops_at_the_last_line(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_all=Forward("1003"))),
            dev("carol", line("1003", forward_all=Forward("1002"))),
        ],
    )
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]  # 1003 -> 1002 would go round: carol rings


def test_the_forward_chain_stops_at_max_forward_hops(h: Harness) -> None:
    chain = [dev(f"p{i}", line(f"20{i}", forward_all=Forward(f"20{i + 1}"))) for i in range(6)]
    plan(h, [dev("alice", line("1001")), *chain, dev("p6", line("206"))])
    h.engine.max_forward_hops = 3
    call(h, "alice", "1001", "200")
    assert rung(h) == ["p3"]
    offered = h.factory.drivers["sip:p3@10.0.0.9"].last("offer")[1]
    assert [d.number for d in offered.diversions] == ["200", "201", "202"]


def test_dnd_reject_is_busy_and_takes_forward_busy(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002", forward_busy=Forward("1003")), dnd_option="reject"),
            dev("carol", line("1003")),
        ],
    )
    assert h.engine.set_dnd("bob", True)
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]
    offered = h.factory.drivers["sip:carol@10.0.0.9"].last("offer")[1]
    assert offered.diversions[-1].reason is RedirectReason.DND


def test_dnd_ringer_off_still_offers_the_call_silently(h: Harness) -> None:
    plan(h, [dev("alice", line("1001")), dev("bob", line("1002")), dev("bob2", line("1002"))])
    h.engine.set_dnd("bob", True)
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["bob", "bob2"]
    assert h.factory.drivers["sip:bob@10.0.0.9"].last("offer")[1].silent is True
    assert h.factory.drivers["sip:bob2@10.0.0.9"].last("offer")[1].silent is False


def test_dnd_reject_without_forward_busy_is_user_busy(h: Harness) -> None:
    plan(h, [dev("alice", line("1001")), dev("bob", line("1002"), dnd_option="reject")])
    h.engine.set_dnd("bob", True)
    ad = call(h, "alice", "1001", "1002")
    assert ad.released_with() == [Cause.USER_BUSY]


# ---------------------------------------------------------------- feature codes
def test_code_matching() -> None:
    codes = {"forward_all": "*21", "forward_all_off": "#21", "pickup": "*8", "directed": "**"}
    assert match(codes, "*211003") == ("forward_all", "1003")
    assert match(codes, "*21") == ("", "")  # the code needs a number
    assert match(codes, "#21") == ("forward_all_off", "")
    assert match(codes, "*8") == ("pickup", "")
    assert match(codes, "*81") is None  # not a code: the dial plan decides
    assert match(codes, "1002") is None


def test_star21_sets_forward_all_and_hash21_clears_it(h: Harness) -> None:
    ms = RecordingMedia()
    h.engine.media = ms
    plan(h, [dev("alice", line("1001")), dev("bob", line("1002")), dev("carol", line("1003"))])
    bd = call(h, "bob", "1002", "*211003")
    assert h.of(ForwardChanged) == [ForwardChanged("1002", "internal", "1003", "bob")]
    # Confirmed: answered by a media server endpoint playing the confirmation tone.
    ms.reply(("192.0.2.50", 20000))
    assert ("play", ms.named("play")[-1][1], "tone:confirm") in ms.calls
    assert "answer" in bd.names()
    h.clock.advance(5)
    h.engine.handle_timer(h.clock.monotonic())
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]
    call(h, "bob", "1002", "#21")
    assert h.of(ForwardChanged)[-1].destination == ""
    h.factory.legs.clear()
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["bob"]


def test_star21_outside_the_forward_css_is_refused(h: Harness) -> None:
    plan(h, [dev("alice", line("1001")), dev("bob", line("1002"))], trunk=True)
    bd = call(h, "bob", "1002", "*2190114412345")
    assert bd.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert h.of(ForwardChanged) == []
    assert h.engine.forward_all_of("1002", "internal") is None


def test_forward_to_itself_is_refused(h: Harness) -> None:
    plan(h, [dev("bob", line("1002"))])
    assert h.engine.set_forward_all("bob", "1002", "1002") == 25


def test_codes_never_reach_a_trunk(h: Harness) -> None:
    # A route pattern that would send *21... out: the code is analysed first.
    plan(h, [dev("bob", line("1002"), css="world")], trunk=True)
    h.spec = h.spec and DialPlanSpec(
        partitions=h.spec.partitions,
        calling_search_spaces=h.spec.calling_search_spaces,
        directory_numbers=h.spec.directory_numbers,
        trunks=h.spec.trunks,
        route_groups=h.spec.route_groups,
        route_lists=h.spec.route_lists,
        route_patterns=(RoutePattern("*!", "pstn", "out"), RoutePattern("9.!", "pstn", "out")),
    )
    call(h, "bob", "1002", "*219011")
    assert "carrier" not in rung(h)
    # A trunk's caller dialling a code is refused: codes are for phones.
    driver = FakeDriver("carrier")
    leg = h.engine.inbound_leg(driver, "carrier", css="world")
    driver.leg = leg
    h.engine.setup(leg, Setup(PartyInfo("5551234"), "*211002", media()))
    assert driver.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert "carrier" not in rung(h)


def test_dnd_and_hunt_codes(h: Harness) -> None:
    plan(h, [dev("bob", line("1002"))])
    call(h, "bob", "1002", "*78")
    call(h, "bob", "1002", "*36")
    call(h, "bob", "1002", "*79")
    call(h, "bob", "1002", "*36")
    assert h.of(DndChanged) == [DndChanged("bob", True), DndChanged("bob", False)]
    assert h.of(HuntLoginChanged) == [
        HuntLoginChanged("bob", False),
        HuntLoginChanged("bob", True),
    ]


def test_star97_calls_the_lines_voicemail(h: Harness) -> None:
    plan(
        h,
        [
            dev("bob", line("1002", voicemail="8000")),
            dev("vm", line("8000")),
            dev("carol", line("1003")),
        ],
    )
    call(h, "bob", "1002", "*97")
    assert rung(h) == ["vm"]
    cd = call(h, "carol", "1003", "*97")  # no voicemail pilot
    assert cd.released_with() == [Cause.UNALLOCATED_NUMBER]


def test_mwi_is_set_only_on_lines_of_the_plan(h: Harness) -> None:
    plan(h, [dev("bob", line("1002"))])
    assert h.engine.set_mwi("1002", True, 2, 1)
    assert h.engine.messages("1002", "internal").new == 2
    assert not h.engine.set_mwi("9999", True)
    assert h.engine.features.mwi.keys() == {("1002", "internal")}


def test_shared_line_forward_is_the_dns(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002")),
            dev("bob2", line("1002", forward_all=Forward("1003"))),
            dev("carol", line("1003")),
        ],
    )
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]


def test_plan_dns_only(h: Harness) -> None:
    # Sanity: without partitions (the default plan) forwarding works the same.
    h.devices[:] = [
        DeviceInfo("alice", "sip", (LineInfo("1001"),)),
        DeviceInfo("bob", "sip", (LineInfo("1002", forward_all=Forward("1003")),)),
        DeviceInfo("carol", "sip", (LineInfo("1003"),)),
    ]
    for name in ("alice", "bob", "carol"):
        h.register(name)
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]
    assert DirectoryNumber  # imported for the plan helpers' types


def test_external_callers_take_the_external_forward(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev(
                "bob",
                line(
                    "1002",
                    forward_unregistered=Forward("1003"),
                    forward_unregistered_external=Forward("1004"),
                ),
            ),
            dev("carol", line("1003")),
            dev("dave", line("1004")),
        ],
        trunk=True,
    )
    h.locations.remove("bob", "sip:bob@10.0.0.9")
    call(h, "alice", "1001", "1002")
    assert rung(h) == ["carol"]
    driver = FakeDriver("carrier")
    leg = h.engine.inbound_leg(driver, "carrier", css="staff")
    driver.leg = leg
    h.engine.setup(leg, Setup(PartyInfo("5551234"), "1002", media()))
    assert rung(h) == ["carol", "dave"]


def test_intercom_lines_auto_answer_and_never_forward(h: Harness) -> None:
    plan(
        h,
        [
            dev("alice", line("1001")),
            dev("bob", line("1002"), line("9002", intercom=True, forward_all=Forward("1003"))),
            dev("carol", line("1003")),
        ],
    )
    h.engine.set_dnd("bob", True)
    call(h, "alice", "1001", "9002")
    assert rung(h) == ["bob"]
    assert h.factory.drivers["sip:bob@10.0.0.9"].last("offer")[1].auto_answer is True
