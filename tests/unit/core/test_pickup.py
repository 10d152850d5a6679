"""Call pickup: which ringing call a picker gets (own group, another group, directed),
the picked-up call's forks, media and record."""

from __future__ import annotations

import pytest
from core_harness import FakeDriver, Harness, media

from offhook.core.causes import Cause
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    DirectoryNumber,
    PickupGroup,
)
from offhook.core.directory import DeviceInfo, LineInfo
from offhook.core.events import PartyInfo, Setup, TransferState
from offhook.core.features import pickup
from offhook.core.leg import LegState
from offhook.core.media import INACTIVE, RECVONLY, SENDONLY, SENDRECV
from offhook.core.records import CallAnswered

# device, DN, partition, pickup group
PHONES = (
    ("alice", "1001", "internal", ""),
    ("bob", "1002", "internal", "sales"),
    ("carol", "1003", "internal", "sales"),
    ("dave", "1004", "internal", "support"),
    ("frank", "1006", "internal", "sales"),
    ("gina", "1007", "secret", "sales"),
    ("hank", "1008", "internal", ""),
)


DNS = {name: dn for name, dn, _, _ in PHONES} | {"ivan": "1009", "carrier": "5550100"}


def plan(h: Harness, *, shared: bool = False) -> None:
    for name, dn, partition, group in PHONES:
        h.devices.append(
            DeviceInfo(name, "sip", (LineInfo(dn, name.title(), partition, pickup_group=group),))
        )
    owners = {dn: [name] for name, dn, _, _ in PHONES}
    if shared:  # bob2 shares bob's line
        h.devices.append(
            DeviceInfo("bob2", "sip", (LineInfo("1002", "Bob", "internal", pickup_group="sales"),))
        )
        owners["1002"].append("bob2")
        h.register("bob2")
    h.devices = [
        DeviceInfo(d.name, d.protocol, d.lines, css="secret" if d.name == "gina" else "staff")
        for d in h.devices
    ]
    h.spec = DialPlanSpec(
        partitions=("internal", "secret"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal",)),
            CallingSearchSpace("secret", ("secret", "internal")),
        ),
        directory_numbers=tuple(
            DirectoryNumber(dn, partition, tuple(owners[dn]), name.title())
            for name, dn, partition, _ in PHONES
        ),
        pickup_groups=(
            PickupGroup("sales", "8100", "internal"),
            PickupGroup("support", "8200", "internal"),
        ),
    )
    for name, _, _, _ in PHONES:
        h.register(name)


def address(name: str) -> str:
    """Each phone's media address: 10.0.0.<last digit of its DN>."""
    return f"10.0.0.{DNS[name][-1]}"


def dial(h: Harness, caller: str, number: str, *, offer: bool = True) -> FakeDriver:
    """``caller`` dials ``number`` from its line, offering its own media (or none: SCCP)."""
    driver = FakeDriver(caller)
    leg = h.engine.inbound_leg(driver, caller)
    driver.leg = leg
    h.engine.setup(
        leg, Setup(PartyInfo(DNS[caller]), number, media(address(caller)) if offer else None)
    )
    return driver


ring = dial


@pytest.fixture
def sales(h: Harness) -> Harness:
    plan(h)
    return h


def test_own_group_pickup_takes_the_ringing_call(sales: Harness) -> None:
    h = sales
    ad = ring(h, "alice", "1002")
    b, bd = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    cd = dial(h, "carol", "*8")
    assert bd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert cd.released_with() == []
    # carol is answered with alice's offer, alice with carol's, then re-offered it
    assert cd.last("answer")[1] == media("10.0.0.1")  # alice's offer
    assert ad.last("answer")[1] == media("10.0.0.3")  # carol's
    assert ad.last("update_media")[1].streams[0].direction == SENDRECV
    assert ad.leg is not None and cd.leg is not None
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert "update_media" not in cd.names()  # alice answered where carol already sends
    assert ad.leg.state is LegState.CONNECTED and cd.leg.state is LegState.CONNECTED
    assert [e.device for e in h.of(CallAnswered)] == ["carol"]
    pick_record = h.record()  # the *8 call
    assert pick_record.called == "*8" and pick_record.cause == Cause.NORMAL_CLEARING
    assert pick_record.answer is None
    h.engine.on_release(cd.leg)
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    record = h.records()[-1]
    assert dict(pick_record.extra)["picked_up"] == record.call_id
    assert record.calling_device == "alice" and record.called_device == "carol"
    assert (record.called, record.original_called) == ("1003", "1002")
    assert (record.last_redirecting, record.redirect_reason) == ("1002", "pickup")
    assert record.answer is not None and record.cause == Cause.NORMAL_CLEARING


def test_the_picked_up_call_stops_ringing_everywhere(h: Harness) -> None:
    plan(h, shared=True)
    ring(h, "alice", "1002")
    _, bd = h.out("sip:bob@10.0.0.9")
    _, b2d = h.out("sip:bob2@10.0.0.9")
    dial(h, "carol", "*8")
    assert bd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert b2d.released_with() == [Cause.NON_SELECTED_USER_CLEARING]


def test_another_group_by_its_number(sales: Harness) -> None:
    h = sales
    ad = ring(h, "alice", "1002")
    dd = dial(h, "dave", "8100")  # dave is in support: GPickUp sales
    assert dd.last("answer")[1] == media("10.0.0.1")
    assert ad.names().count("answer") == 1
    assert h.records()[-1].called == "8100"


def test_own_group_does_not_reach_other_groups(sales: Harness) -> None:
    h = sales
    ring(h, "alice", "1002")  # sales rings
    dd = dial(h, "dave", "*8")  # dave's group is support
    assert dd.released_with() == [pickup.NOTHING_CAUSE]
    assert ("show_display", pickup.NOTHING_TEXT) in dd.calls
    _, bd = h.out("sip:bob@10.0.0.9")
    assert bd.released_with() == []  # still ringing


def test_line_without_a_group_has_nothing_to_pick_up(sales: Harness) -> None:
    h = sales
    ring(h, "alice", "1002")
    hd = dial(h, "hank", "*8")
    assert hd.released_with() == [pickup.NOTHING_CAUSE]


def test_nothing_ringing(sales: Harness) -> None:
    cd = dial(sales, "carol", "*8")
    assert cd.released_with() == [pickup.NOTHING_CAUSE]
    assert sales.record().cause == pickup.NOTHING_CAUSE


def test_a_connected_call_cannot_be_picked_up(sales: Harness) -> None:
    h = sales
    ring(h, "alice", "1002")
    b, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_connect(b, media("10.0.0.2"))
    cd = dial(h, "carol", "*8")
    assert cd.released_with() == [pickup.NOTHING_CAUSE]


def test_directed_pickup_of_a_dn(sales: Harness) -> None:
    h = sales
    ring(h, "alice", "1002")
    ad2 = ring(h, "frank", "1008")  # hank has no pickup group: directed still works
    _, hd = h.out("sip:hank@10.0.0.9")
    dd = dial(h, "dave", "**1008")
    assert hd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert dd.last("answer")[1] == media(address("frank"))
    assert ad2.names().count("answer") == 1
    _, bd = h.out("sip:bob@10.0.0.9")
    assert bd.released_with() == []


def test_directed_pickup_outside_the_css_is_refused(sales: Harness) -> None:
    h = sales
    dial(h, "alice", "1007")  # gina's line is in the secret partition: alice cannot reach it
    assert h.records()[-1].cause == Cause.UNALLOCATED_NUMBER
    h.devices.append(DeviceInfo("ivan", "sip", (LineInfo("1009"),), css="secret"))
    h.register("ivan")
    dial(h, "ivan", "1007")  # ivan can
    _, gd = h.out("sip:gina@10.0.0.9")
    cd = dial(h, "carol", "**1007")  # carol's CSS has no secret partition
    assert cd.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert gd.released_with() == []
    cd2 = dial(h, "carol", "*8")  # but gina's line is in carol's pickup group
    assert gd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert cd2.last("answer")[1] == media(address("ivan"))


def test_oldest_ringing_call_wins(sales: Harness) -> None:
    h = sales
    first = ring(h, "alice", "1002")
    h.clock.advance(5)
    second = ring(h, "hank", "1006")
    cd = dial(h, "carol", "*8")
    assert first.names().count("answer") == 1 and "answer" not in second.names()
    dd = dial(h, "dave", "8100")
    assert second.names().count("answer") == 1
    assert dd.last("answer") is not None
    assert cd.leg is not None and cd.leg.call is not None
    assert cd.leg.call.a_leg is first.leg


def test_newer_fork_of_an_older_call_counts_from_when_it_rang(sales: Harness) -> None:
    """A call forwarded into the group later has rung the group for less time."""
    h = sales
    first = ring(h, "alice", "1008")  # hank, no group
    h.clock.advance(5)
    second = ring(h, "hank", "1006")  # frank, sales
    cd = dial(h, "carol", "*8")
    assert "answer" not in first.names()
    assert second.names().count("answer") == 1
    assert cd.last("answer") is not None


def test_own_call_is_not_picked_up(sales: Harness) -> None:
    h = sales
    ring(h, "carol", "1002")
    cd = dial(h, "carol", "*8")
    assert cd.released_with() == [pickup.NOTHING_CAUSE]


def test_picker_without_an_offer_answers_the_callers(sales: Harness) -> None:
    """An SCCP picker: its answer carries an offer (the caller's); its answer answers the caller."""
    h = sales
    ad = ring(h, "alice", "1002")
    cd = dial(h, "carol", "*8", offer=False)
    assert cd.last("answer")[1] == media("10.0.0.1")
    assert "answer" not in ad.names()
    assert cd.leg is not None
    h.engine.on_media_answer(cd.leg, media("10.0.0.3"))
    assert ad.last("answer")[1] == media("10.0.0.3")
    assert "update_media" not in ad.names()


def test_caller_without_an_offer_answers_the_pickers(sales: Harness) -> None:
    h = sales
    ad = ring(h, "alice", "1002", offer=False)
    cd = dial(h, "carol", "*8")
    assert ad.last("answer")[1] == media("10.0.0.3")
    assert "answer" not in cd.names()
    assert ad.leg is not None
    h.engine.on_media_answer(ad.leg, media("10.0.0.8"))
    assert cd.last("answer")[1] == media("10.0.0.8")


def test_neither_offered_starts_from_a_placeholder(sales: Harness) -> None:
    h = sales
    ad = ring(h, "alice", "1002", offer=False)
    cd = dial(h, "carol", "*8", offer=False)
    assert cd.last("answer")[1] == pickup.PLACEHOLDER
    assert cd.leg is not None and ad.leg is not None
    h.engine.on_media_answer(cd.leg, media("10.0.0.3", direction=RECVONLY))
    offer = ad.last("answer")[1]
    assert offer.streams[0].address == "10.0.0.3" and offer.streams[0].direction == SENDRECV
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert cd.last("update_media")[1] == media("10.0.0.1")
    h.engine.on_media_answer(cd.leg, media("10.0.0.3"))
    assert ad.leg.state is LegState.CONNECTED


def test_picker_failing_to_answer_ends_the_call(sales: Harness) -> None:
    h = sales
    ad = ring(h, "alice", "1002")
    cd = dial(h, "carol", "*8", offer=False)
    assert cd.leg is not None
    h.engine.on_media_answer(cd.leg, None, Cause.INCOMPATIBLE_DESTINATION)
    assert ad.released_with() == [Cause.INCOMPATIBLE_DESTINATION]


def test_pickup_of_a_blind_transfer_to_a_ringing_phone(sales: Harness) -> None:
    h = sales
    ad = ring(h, "alice", "1004")
    d, dd = h.out("sip:dave@10.0.0.9")
    h.engine.on_connect(d, media("10.0.0.4"))
    h.engine.transfer(d, "1002")  # dave sends alice to bob, who rings
    _, bd = h.out("sip:bob@10.0.0.9")
    cd = dial(h, "carol", "*8")
    assert bd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert dd.last("transfer_progress")[1] is TransferState.DONE
    assert dd.released_with() == [Cause.NORMAL_CLEARING]
    assert cd.last("answer")[1].streams[0].address == "10.0.0.1"  # where alice is
    assert ad.last("update_media")[1] == media("10.0.0.3")  # carol's offer
    assert ad.leg is not None and cd.leg is not None
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    assert ad.leg.call is cd.leg.call
    h.engine.on_release(ad.leg)
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    record = h.records()[-1]
    assert record.called_device == "carol" and record.redirect_reason == "pickup"
    assert dict(record.extra)["transferred_by"] == "dave"


def test_a_transfer_to_the_pickup_code_is_refused(sales: Harness) -> None:
    h = sales
    ring(h, "alice", "1002")
    _, bd = h.out("sip:bob@10.0.0.9")
    ad = ring(h, "hank", "1004")
    d, dd = h.out("sip:dave@10.0.0.9")
    h.engine.on_connect(d, media("10.0.0.4"))
    h.engine.transfer(d, "*8")
    assert dd.last("transfer_progress")[1] is TransferState.FAILED
    assert bd.released_with() == [] and ad.released_with() == []


def test_a_picked_up_call_can_be_held(sales: Harness) -> None:
    from test_core_features import RecordingMedia

    h = sales
    ms = RecordingMedia()
    h.engine.media = ms
    ad = ring(h, "alice", "1002")
    cd = dial(h, "carol", "*8")
    assert ad.leg is not None and cd.leg is not None
    h.engine.on_media_answer(ad.leg, media("10.0.0.1"))
    h.engine.on_media_offer(cd.leg, media("10.0.0.3", direction=SENDONLY))
    assert cd.last("media_answer")[1].streams[0].direction == INACTIVE
    ms.reply(("192.0.2.50", 20000))
    assert ad.last("update_media")[1].streams[0].address == "192.0.2.50"
    assert ms.devices[ms.named("open")[0][1]] == ("alice", "")


def test_caller_answering_elsewhere_is_passed_on_to_the_picker(sales: Harness) -> None:
    h = sales
    ad = dial(h, "alice", "1002")
    cd = dial(h, "carol", "*8")
    assert ad.leg is not None and cd.leg is not None
    h.engine.on_media_answer(ad.leg, media(address("alice"), port=4010))  # another port
    assert cd.last("update_media")[1].streams[0].port == 4010
    h.engine.on_media_answer(cd.leg, media(address("carol")))
    assert ad.names().count("update_media") == 1


def test_a_trunk_caller_hearing_ringback_is_picked_up(h: Harness) -> None:
    """The ringback endpoint stops, and the caller (whose dialog took the ringback's
    address as its answer) is re-offered the picker's media."""
    from dataclasses import replace

    from test_core_features import RecordingMedia

    from offhook.core.dialplan.model import Trunk

    plan(h)
    h.devices.append(DeviceInfo("carrier", "sip", css="staff"))
    assert h.spec is not None
    h.spec = replace(h.spec, trunks=(Trunk("carrier", "sip", "192.0.2.10"),))
    ms = RecordingMedia()
    h.engine.media = ms
    h.engine.inband_ringback = True
    td = dial(h, "carrier", "1002")
    b, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    handle = ms.reply(("192.0.2.50", 22000))
    assert td.last("progress")[1].streams[0].address == "192.0.2.50"
    cd = dial(h, "carol", "*8", offer=False)  # an SCCP picker
    assert ("release", handle) in ms.calls
    assert cd.last("answer")[1] == media(address("carrier"))
    assert cd.leg is not None and td.leg is not None
    h.engine.on_media_answer(cd.leg, media(address("carol")))
    assert td.last("answer")[1] == media(address("carol"))
    assert td.last("update_media")[1] == media(address("carol"))  # its dialog had the ringback's
    h.engine.on_media_answer(td.leg, media(address("carrier")))
    assert "update_media" not in cd.names()
