"""Hunt pilots through call control: distributions, no answer, steps, skips, final forward, CDR."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from core_harness import FakeDriver, Harness, media

from offhook.core.causes import Cause
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    HuntPilot,
)
from offhook.core.directory import (
    DeviceInfo,
    Forward,
    HuntDistribution,
    HuntStep,
    LineGroup,
    LineInfo,
    PlanSnapshot,
    directory_numbers,
)
from offhook.core.engine import CallEngine
from offhook.core.events import Diversion, RedirectReason, Setup
from offhook.core.features import hunt
from offhook.core.features.linestate import IN_USE, LineView
from offhook.core.leg import Leg

PILOT = "1500"
HUNT = Diversion(PILOT, RedirectReason.HUNT)


@dataclass
class HuntHarness(Harness):
    """The core harness with a dial plan of the devices' DNs plus hunt pilots and groups."""

    groups: dict[str, LineGroup] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pilots: list[HuntPilot] = field(default_factory=list)
    partitions: tuple[str, ...] = ()
    css: tuple[CallingSearchSpace, ...] = ()
    _plan: PlanSnapshot | None = None
    _key: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.engine = CallEngine(
            self.snapshot,
            self.locations,
            self.clock,
            self.bus,
            node="n1",
            ring_timeout=self.ring_timeout,
        )
        self.engine.register_factory("sip", self.factory)
        self.bus.subscribe_all(self.events.append)

    def snapshot(self) -> PlanSnapshot:
        key = (*map(id, self.devices), len(self.groups), len(self.lists), len(self.pilots))
        if self._plan is None or key != self._key:
            spec = DialPlanSpec(
                partitions=self.partitions,
                calling_search_spaces=self.css,
                directory_numbers=directory_numbers(self.devices),
                hunt_pilots=tuple(self.pilots),
            )
            self._plan = PlanSnapshot.build(
                self.devices, dialplan_spec=spec, line_groups=self.groups, hunt_lists=self.lists
            )
            self._key = key
        return self._plan

    def group(
        self,
        name: str,
        *members: str,
        distribution: HuntDistribution = HuntDistribution.TOP_DOWN,
        rna: float = 10.0,
        **steps: HuntStep,
    ) -> None:
        self.groups[name] = LineGroup(name, members, distribution, rna, **steps)

    def pilot(self, *groups: str, pattern: str = PILOT, **kw: str) -> None:
        self.lists[f"list-{pattern}"] = groups
        self.pilots.append(HuntPilot(pattern, hunt_list=f"list-{pattern}", **kw))

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.engine.handle_timer(self.clock.monotonic())

    def ringing(self) -> list[str]:
        """Devices with a live outbound leg (forks ringing), in the order they were offered."""
        return [
            leg.device
            for leg in self.factory.legs.values()
            if not leg.released and leg.call is not None and not leg.call.connected
        ]

    def leg_of(self, device: str) -> tuple[Leg, FakeDriver]:
        return self.out(f"sip:{device}@10.0.0.9")

    def answer(self, device: str) -> None:
        leg, _ = self.leg_of(device)
        self.engine.on_connect(leg, media("10.0.0.7"))


MEMBERS = {"bob": "1002", "carol": "1003", "dave": "1004", "erin": "1005"}


@pytest.fixture
def h() -> HuntHarness:
    h = HuntHarness()
    h.device("alice", "1001")
    for name, dn in MEMBERS.items():
        h.device(name, dn)
        h.register(name)
    h.register("alice")
    return h


def offered_setup(h: HuntHarness, device: str) -> Setup:
    _, driver = h.leg_of(device)
    setup = driver.last("offer")[1]
    assert isinstance(setup, Setup)
    return setup


# ------------------------------------------------------------ distributions
def test_top_down_rings_members_in_order_each_for_the_rna_timeout(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", rna=10)
    h.pilot("sales")
    leg, caller = h.call("alice", PILOT, "1001")
    assert h.ringing() == ["bob"]
    h.tick(9.9)
    assert h.ringing() == ["bob"]
    h.tick(0.1)
    assert h.leg_of("bob")[1].released_with() == [Cause.NO_ANSWER]
    assert h.ringing() == ["carol"]
    h.answer("carol")
    assert caller.names()[-1] == "answer"
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    # The next call starts at the top again.
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["bob"]


def test_member_offer_carries_the_pilot(h: HuntHarness) -> None:
    h.group("sales", "1002")
    h.pilot("sales")
    h.call("alice", PILOT, "1001")
    setup = offered_setup(h, "bob")
    assert setup.called == "1002"
    assert setup.original_called == PILOT
    assert setup.diversions == (HUNT,)
    assert setup.calling.number == "1001"


def test_answered_call_shows_the_pilot_in_the_cdr(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    caller_leg, _ = h.call("alice", PILOT, "1001")
    h.tick(10)
    h.answer("carol")
    h.engine.on_release(caller_leg, Cause.NORMAL_CLEARING)
    rec = h.record()
    assert rec.cause == Cause.NORMAL_CLEARING
    assert rec.answer is not None
    assert rec.called == "1003"
    assert rec.called_device == "carol"
    assert rec.original_called == PILOT
    assert rec.last_redirecting == PILOT
    assert rec.redirect_reason == "hunt"
    assert dict(rec.extra) == {"hunt_pilot": PILOT, "hunt_group": "sales"}


def test_circular_starts_after_the_member_last_offered(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", distribution=HuntDistribution.CIRCULAR)
    h.pilot("sales")
    first: list[str] = []
    for _ in range(4):
        leg, _ = h.call("alice", PILOT, "1001")
        first.append(h.ringing()[0])
        h.answer(first[-1])
        h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    assert first == ["bob", "carol", "dave", "bob"]


def test_circular_position_moves_with_ring_no_answer(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", distribution=HuntDistribution.CIRCULAR)
    h.pilot("sales")
    leg, _ = h.call("alice", PILOT, "1001")
    h.tick(10)  # bob does not answer; carol is offered it
    assert h.ringing() == ["carol"]
    h.answer("carol")
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["dave"]


def test_circular_wraps_around_within_one_call(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", distribution=HuntDistribution.CIRCULAR)
    h.pilot("sales")
    leg, _ = h.call("alice", PILOT, "1001")
    h.tick(10)
    h.answer("carol")
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    h.call("alice", PILOT, "1001")  # dave, then bob, then carol
    offered = [h.ringing()[0]]
    for _ in range(2):
        h.tick(10)
        offered.append(h.ringing()[0])
    assert offered == ["dave", "bob", "carol"]


def test_circular_position_is_per_group(h: HuntHarness) -> None:
    h.group("a", "1002", "1003", distribution=HuntDistribution.CIRCULAR)
    h.group("b", "1004", "1005", distribution=HuntDistribution.CIRCULAR)
    h.pilot("a")
    h.pilot("b", pattern="1501")
    for number, device in ((PILOT, "bob"), ("1501", "dave"), (PILOT, "carol"), ("1501", "erin")):
        leg, _ = h.call("alice", number, "1001")
        assert h.ringing() == [device]
        h.answer(device)
        h.engine.on_release(leg, Cause.NORMAL_CLEARING)


def direct_call(h: HuntHarness, device: str, at: float) -> None:
    """``device`` answers a direct call from alice, which ends ``at`` seconds later."""
    leg, _ = h.call("alice", MEMBERS[device], "1001")
    h.answer(device)
    h.tick(at)
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)


def test_longest_idle_offers_the_member_idle_longest_first(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", distribution=HuntDistribution.LONGEST_IDLE)
    h.pilot("sales")
    hunt.memory(h.engine)  # the node's hunt memory follows the bus from now on
    direct_call(h, "dave", 1)
    direct_call(h, "bob", 1)
    direct_call(h, "carol", 1)
    leg, _ = h.call("alice", PILOT, "1001")
    assert h.ringing() == ["dave"]  # idle since the earliest
    h.tick(10)
    assert h.ringing() == ["bob"]
    h.answer("bob")
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["carol"]  # dave was offered the last call after carol finished


def test_longest_idle_offers_members_on_a_call_last(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", distribution=HuntDistribution.LONGEST_IDLE)
    h.pilot("sales")
    h.call("carol", "1004", "1003")  # carol is on a call (placing it)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["dave", "bob"]  # dave: carol's call; bob: the hunt


def test_broadcast_rings_every_member_and_the_first_answer_wins(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", distribution=HuntDistribution.BROADCAST)
    h.pilot("sales")
    leg, _ = h.call("alice", PILOT, "1001")
    assert sorted(h.ringing()) == ["bob", "carol", "dave"]
    h.answer("carol")
    assert h.leg_of("bob")[1].released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert h.leg_of("dave")[1].released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    assert h.record().called == "1003"


def test_broadcast_rna_applies_to_the_whole_group_then_next_group(h: HuntHarness) -> None:
    h.group("first", "1002", "1003", distribution=HuntDistribution.BROADCAST, rna=15)
    h.group("second", "1004")
    h.pilot("first", "second")
    h.call("alice", PILOT, "1001")
    h.tick(14)
    assert sorted(h.ringing()) == ["bob", "carol"]
    h.tick(1)
    assert h.leg_of("bob")[1].released_with() == [Cause.NO_ANSWER]
    assert h.leg_of("carol")[1].released_with() == [Cause.NO_ANSWER]
    assert h.ringing() == ["dave"]


def test_broadcast_waits_for_every_member_to_fail(h: HuntHarness) -> None:
    h.group("first", "1002", "1003", distribution=HuntDistribution.BROADCAST)
    h.group("second", "1004")
    h.pilot("first", "second")
    h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    assert h.ringing() == ["carol"]
    h.engine.on_release(h.leg_of("carol")[0], Cause.USER_BUSY)
    assert h.ringing() == ["dave"]


# ------------------------------------------------------------ failures and steps
def test_busy_member_after_ringing_goes_to_the_next_member(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    assert h.ringing() == ["carol"]


def test_a_member_declining_passes_the_call_on(h: HuntHarness) -> None:
    # A 603 Decline (cause 21) ends a call's forks, but not a hunt.
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.CALL_REJECTED)
    assert h.ringing() == ["carol"]


def test_an_earlier_members_timer_does_not_cut_the_next_member_short(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", "1004", rna=10)
    h.pilot("sales")
    h.call("alice", PILOT, "1001")
    h.tick(6)
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)  # carol rings from t=6
    h.tick(4)  # bob's timer (t=10) is stale
    assert h.ringing() == ["carol"]
    h.tick(6)  # carol's (t=16)
    assert h.ringing() == ["dave"]


def test_member_at_its_call_limit_is_busy_at_once(h: HuntHarness) -> None:
    h.devices[1] = DeviceInfo("bob", "sip", (LineInfo("1002"),), max_calls=1)
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.call("bob", "1005", "1002")  # bob is busy
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["erin", "carol"]


def test_busy_with_stop_goes_to_the_final_step_at_once(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003", on_busy=HuntStep.STOP)
    h.pilot("sales")
    _, caller = h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    assert h.ringing() == []
    assert caller.released_with() == [Cause.USER_BUSY]
    assert h.record().cause == Cause.USER_BUSY


def test_unavailable_member_is_passed_over(h: HuntHarness) -> None:
    h.locations.remove("bob", "sip:bob@10.0.0.9")
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["carol"]


def test_unavailable_with_next_group_skips_the_rest_of_the_group(h: HuntHarness) -> None:
    h.locations.remove("bob", "sip:bob@10.0.0.9")
    h.group("first", "1002", "1003", on_unavailable=HuntStep.NEXT_GROUP)
    h.group("second", "1004")
    h.pilot("first", "second")
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["dave"]


def test_busy_with_next_group(h: HuntHarness) -> None:
    h.group("first", "1002", "1003", on_busy=HuntStep.NEXT_GROUP)
    h.group("second", "1004")
    h.pilot("first", "second")
    h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    assert h.ringing() == ["dave"]


def test_member_failing_while_ringing_is_unavailable(h: HuntHarness) -> None:
    h.group("first", "1002", "1003", on_unavailable=HuntStep.STOP, on_busy=HuntStep.STOP)
    h.pilot("first")
    _, caller = h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.DESTINATION_OUT_OF_ORDER)
    assert h.ringing() == []
    assert caller.released_with() == [Cause.DESTINATION_OUT_OF_ORDER]


def test_no_answer_with_next_group(h: HuntHarness) -> None:
    h.group("first", "1002", "1003", on_no_answer=HuntStep.NEXT_GROUP, rna=5)
    h.group("second", "1004", "1005")
    h.pilot("first", "second")
    h.call("alice", PILOT, "1001")
    h.tick(5)
    assert h.ringing() == ["dave"]


def test_no_answer_with_stop_ends_the_hunt(h: HuntHarness) -> None:
    h.group("first", "1002", "1003", on_no_answer=HuntStep.STOP, rna=5)
    h.pilot("first")
    _, caller = h.call("alice", PILOT, "1001")
    h.tick(5)
    assert h.ringing() == []
    assert caller.released_with() == [Cause.NO_ANSWER]


def test_every_member_busy_ends_with_17(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    _, caller = h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    h.engine.on_release(h.leg_of("carol")[0], Cause.USER_BUSY)
    assert caller.released_with() == [Cause.USER_BUSY]
    rec = h.record()
    assert rec.cause == Cause.USER_BUSY
    assert rec.answer is None
    assert dict(rec.extra) == {"hunt_pilot": PILOT}


def test_nobody_answering_ends_with_19(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    _, caller = h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    h.tick(10)
    assert caller.released_with() == [Cause.NO_ANSWER]


def test_nobody_registered_ends_with_20(h: HuntHarness) -> None:
    for name in ("bob", "carol"):
        h.locations.remove(name, f"sip:{name}@10.0.0.9")
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    _, caller = h.call("alice", PILOT, "1001")
    assert caller.released_with() == [Cause.SUBSCRIBER_ABSENT]


def test_the_hunt_owns_the_ringing_time(h: HuntHarness) -> None:
    """Members ring their rna_timeout each, even beyond the engine's ring timeout."""
    h.engine.ring_timeout = 15
    h.group("sales", "1002", "1003", rna=20)
    h.pilot("sales")
    _, caller = h.call("alice", PILOT, "1001")
    h.tick(15)
    assert h.ringing() == ["bob"]
    h.tick(5)
    assert h.ringing() == ["carol"]
    assert caller.released_with() == []


def test_caller_hanging_up_stops_the_hunt(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    leg, _ = h.call("alice", PILOT, "1001")
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    assert h.leg_of("bob")[1].released_with() == [Cause.NORMAL_CLEARING]
    h.tick(10)
    assert h.ringing() == []
    assert "sip:carol@10.0.0.9" not in h.factory.drivers
    assert h.record().cause == Cause.NORMAL_CLEARING


# ------------------------------------------------------------ skipped members
def test_logged_out_member_is_skipped(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    assert h.engine.set_hunt_login("bob", False)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["carol"]


def test_shared_member_rings_the_devices_still_logged_in(h: HuntHarness) -> None:
    h.device("bob-desk", "1002")
    h.register("bob-desk")
    h.group("sales", "1002")
    h.pilot("sales")
    h.engine.set_hunt_login("bob", False)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["bob-desk"]


def test_member_logged_out_everywhere_and_nobody_else_ends_busy(h: HuntHarness) -> None:
    h.group("sales", "1002")
    h.pilot("sales")
    h.engine.set_hunt_login("bob", False)
    _, caller = h.call("alice", PILOT, "1001")
    assert caller.released_with() == [Cause.USER_BUSY]


def test_member_logged_back_in_rings_again(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.engine.set_hunt_login("bob", False)
    h.engine.set_hunt_login("bob", True)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["bob"]


def test_member_with_do_not_disturb_is_skipped(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.engine.set_dnd("bob", True)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["carol"]


def test_callers_own_dn_is_skipped(h: HuntHarness) -> None:
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.call("bob", PILOT, "1002")
    assert h.ringing() == ["carol"]


def test_members_own_forwards_are_ignored(h: HuntHarness) -> None:
    fwd = Forward("1005")
    h.devices[1] = DeviceInfo(
        "bob", "sip", (LineInfo("1002", forward_all=fwd, forward_no_answer=fwd),)
    )
    h.engine.set_forward_all("bob", "1002", "1005")
    h.group("sales", "1002", "1003")
    h.pilot("sales")
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["bob"]
    h.tick(10)
    assert h.ringing() == ["carol"]


def test_unknown_member_and_missing_groups_are_passed_over(h: HuntHarness) -> None:
    h.group("sales", "1999", "1003")
    h.lists["list"] = ("nowhere", "sales")
    h.pilots.append(HuntPilot(PILOT, hunt_list="list"))
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["carol"]


# ------------------------------------------------------------ final forward
def voicemail(h: HuntHarness) -> None:
    h.device("vm", "8000")
    h.register("vm")


def test_final_forward_when_everyone_failed(h: HuntHarness) -> None:
    voicemail(h)
    h.group("sales", "1002", "1003", rna=5)
    h.pilot("sales", final_forward="8000")
    leg, _ = h.call("alice", PILOT, "1001")
    h.tick(5)
    h.tick(5)
    assert h.ringing() == ["vm"]
    setup = offered_setup(h, "vm")
    assert setup.called == "8000"
    assert setup.original_called == PILOT
    assert setup.diversions == (HUNT,)
    h.answer("vm")
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    rec = h.record()
    assert (rec.called, rec.original_called) == ("8000", PILOT)
    assert (rec.last_redirecting, rec.redirect_reason) == (PILOT, "hunt")


def test_final_forward_when_nobody_could_be_offered_the_call(h: HuntHarness) -> None:
    voicemail(h)
    h.group("sales", "1002")
    h.pilot("sales", final_forward="8000")
    h.engine.set_hunt_login("bob", False)
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["vm"]


def test_final_forward_uses_the_final_css(h: HuntHarness) -> None:
    h.partitions = ("vm",)
    h.css = (CallingSearchSpace("to-vm", ("vm",)),)
    h.devices.append(DeviceInfo("vm", "sip", (LineInfo("8000", partition="vm"),)))
    h.register("vm")
    h.group("sales", "1002", on_busy=HuntStep.STOP)
    h.pilot("sales", final_forward="8000", final_css="to-vm")
    h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    assert h.ringing() == ["vm"]


def test_final_forward_outside_the_css_is_not_taken(h: HuntHarness) -> None:
    h.partitions = ("vm",)
    h.devices.append(DeviceInfo("vm", "sip", (LineInfo("8000", partition="vm"),)))
    h.register("vm")
    h.group("sales", "1002", on_busy=HuntStep.STOP)
    h.pilot("sales", final_forward="8000")  # the caller's CSS: the null partition only
    _, caller = h.call("alice", PILOT, "1001")
    h.engine.on_release(h.leg_of("bob")[0], Cause.USER_BUSY)
    assert h.ringing() == []
    assert caller.released_with() == [Cause.USER_BUSY]


def test_final_forwards_between_pilots_stop_at_the_hop_limit(h: HuntHarness) -> None:
    h.engine.max_forward_hops = 4
    h.group("a", "1002", rna=1)
    h.group("b", "1003", rna=1)
    h.pilot("a", final_forward="1501")
    h.pilot("b", pattern="1501", final_forward=PILOT)
    _, caller = h.call("alice", PILOT, "1001")
    offers = 0
    for _ in range(20):
        if caller.released_with():
            break
        offers += len(h.ringing())
        h.tick(1)
    assert caller.released_with() == [Cause.NO_ANSWER]
    assert offers == 5  # the first hunt, then one per redirection (4)


def test_final_forward_to_a_busy_dn_takes_its_forward_busy(h: HuntHarness) -> None:
    h.devices.append(
        DeviceInfo("vm", "sip", (LineInfo("8000", forward_busy=Forward("1005")),), max_calls=1)
    )
    h.register("vm")
    h.call("vm", "1004", "8000")  # vm busy
    h.group("sales", "1002", rna=5)
    h.pilot("sales", final_forward="8000")
    h.call("alice", PILOT, "1001")
    h.tick(5)
    assert h.ringing() == ["dave", "erin"]
    setup = offered_setup(h, "erin")
    assert setup.diversions == (HUNT, Diversion("8000", RedirectReason.FORWARD_BUSY))


def test_a_forward_to_the_pilot_hunts(h: HuntHarness) -> None:
    h.devices[0] = DeviceInfo("alice", "sip", (LineInfo("1001", forward_all=Forward(PILOT)),))
    h.group("sales", "1002")
    h.pilot("sales")
    leg, _ = h.call("erin", "1001", "1005")
    assert h.ringing() == ["bob"]
    setup = offered_setup(h, "bob")
    assert setup.original_called == "1001"
    assert setup.diversions == (Diversion("1001", RedirectReason.FORWARD_ALL), HUNT)
    h.answer("bob")
    h.engine.on_release(leg, Cause.NORMAL_CLEARING)
    rec = h.record()
    assert (rec.called, rec.original_called, rec.last_redirecting) == ("1002", "1001", PILOT)


def test_longest_idle_offers_members_on_another_workers_call_last(h: HuntHarness) -> None:
    """A member whose line another worker of the node shows in use is busy here too."""
    h.group("sales", "1002", "1003", distribution=HuntDistribution.LONGEST_IDLE)
    h.pilot("sales")
    h.engine.lines.remote("1", "1002", "", LineView(IN_USE, ("bob",), "recipient"))
    h.call("alice", PILOT, "1001")
    assert h.ringing() == ["carol"]
