"""Call park: allocation of park numbers, parking (softkey, transfer, *68), retrieval,
reversion to the parker, and the parked party hanging up."""

from __future__ import annotations

import pytest
from core_harness import FakeDriver, Harness, media
from test_core_features import RecordingMedia

from offhook.core.causes import Cause
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    CallPark,
    DialPlanSpec,
    DirectoryNumber,
)
from offhook.core.directory import DeviceInfo, LineInfo
from offhook.core.events import PartyInfo, RedirectReason, Setup, TransferState
from offhook.core.features import park
from offhook.core.leg import Leg, LegState
from offhook.core.media import RECVONLY, SENDONLY, SENDRECV

PHONES = {"alice": "1001", "bob": "1002", "carol": "1003", "dave": "1004"}
MOH = ("192.0.2.50", 20000)


def address(name: str) -> str:
    return f"10.0.0.{PHONES[name][-1]}"


def plan(h: Harness, *, reversion: float = 60.0, last: str = "7002", css: str = "staff") -> None:
    for name, dn in PHONES.items():
        h.devices.append(
            DeviceInfo(name, "sip", (LineInfo(dn, name.title(), "internal"),), css=css)
        )
        h.register(name)
    h.spec = DialPlanSpec(
        partitions=("internal", "parking"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal", "parking")),
            CallingSearchSpace("noparking", ("internal",)),
        ),
        directory_numbers=tuple(
            DirectoryNumber(dn, "internal", (name,), name.title()) for name, dn in PHONES.items()
        ),
        call_park=(CallPark("7000", last, "parking", reversion),),
    )


@pytest.fixture
def ms(h: Harness) -> RecordingMedia:
    port = RecordingMedia()
    h.engine.media = port
    return port


@pytest.fixture
def lot(h: Harness, ms: RecordingMedia) -> Harness:
    plan(h)
    return h


def dial(h: Harness, caller: str, number: str, *, offer: bool = True) -> FakeDriver:
    driver = FakeDriver(caller)
    leg = h.engine.inbound_leg(driver, caller)
    driver.leg = leg
    offered = media(address(caller)) if offer else None
    h.engine.setup(leg, Setup(PartyInfo(PHONES[caller]), number, offered))
    return driver


def talking(h: Harness, caller: str = "alice", callee: str = "bob") -> tuple[FakeDriver, Leg]:
    """``caller`` calls ``callee``, who answers: the caller's driver and the callee's leg."""
    driver = dial(h, caller, PHONES[callee])
    leg, _ = h.out(f"sip:{callee}@10.0.0.9")
    h.engine.on_connect(leg, media(address(callee)))
    return driver, leg


def forks(h: Harness) -> list[str]:
    """The devices rung from now on."""
    rung: list[str] = []
    h.factory.hook = lambda driver, leg: rung.append(leg.device)
    return rung


def bob_driver(h: Harness, leg: Leg) -> FakeDriver:
    driver = leg.driver
    assert isinstance(driver, FakeDriver)
    return driver


def parked_with_music(h: Harness, ms: RecordingMedia, ad: FakeDriver) -> str:
    """The media server answers the park call; the parked party answers the music's offer."""
    handle = ms.reply(MOH)
    offer = ad.last("update_media")[1]
    assert (offer.streams[0].address, offer.streams[0].port) == MOH
    assert ad.leg is not None
    h.engine.on_media_answer(ad.leg, media(address("alice")))
    return handle


def test_transfer_to_a_park_number_parks_the_party(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    bd = bob_driver(h, b)
    h.engine.transfer(b, "7001")  # a SIP phone's REFER to the park number
    assert ("show_display", "Call park at 7001") in bd.calls
    assert [p.number for p in park.parked(h.engine)] == ["7001"]
    handle = parked_with_music(h, ms, ad)
    assert ("play", handle, "moh:default") in ms.calls
    assert ms.devices[handle] == ("alice", "")  # the parked party's media server
    assert bd.last("transfer_progress")[1] is TransferState.DONE
    assert bd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.released_with() == []
    first = h.record()  # alice - bob
    assert dict(first.extra)["transferred_to"]
    entry = park.parked(h.engine)[0]
    assert entry.party is ad.leg and entry.parker_device == "bob"


def test_retrieval_joins_the_caller_with_the_parked_party(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.transfer(b, "7001")
    handle = parked_with_music(h, ms, ad)
    cd = dial(h, "carol", "7001")
    assert ("release", handle) in ms.calls  # the music stopped
    assert ad.last("update_media")[1] == media(address("carol"))
    assert "answer" not in cd.names()
    assert ad.leg is not None and cd.leg is not None
    h.engine.on_media_answer(ad.leg, media(address("alice"), port=4010))
    assert cd.last("answer")[1] == media(address("alice"), port=4010)
    assert cd.leg.state is LegState.CONNECTED and ad.leg.call is cd.leg.call
    assert park.parked(h.engine) == []
    park_call = h.records()[-1]
    assert park_call.called == "7001" and park_call.cause == Cause.NORMAL_CLEARING
    assert dict(park_call.extra)["parked_at"] == "7001"
    assert dict(park_call.extra)["parked_by"] == "bob"
    assert dict(park_call.extra)["retrieved_by"] == "carol"
    h.engine.on_release(ad.leg)
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    record = h.records()[-1]
    assert (record.calling_device, record.called_device) == ("carol", "alice")
    assert (record.called, record.original_called) == ("1001", "7001")
    assert (record.last_redirecting, record.redirect_reason) == ("7001", RedirectReason.PARK)
    assert dict(record.extra)["park_call"] == park_call.call_id


def test_retriever_without_an_offer_gets_the_partys(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.transfer(b, "7000")
    parked_with_music(h, ms, ad)
    cd = dial(h, "carol", "7000", offer=False)  # an SCCP phone
    offer = cd.last("answer")[1]
    assert offer.streams[0].address == address("alice")
    assert offer.streams[0].direction == SENDRECV
    assert cd.leg is not None
    h.engine.on_media_answer(cd.leg, media(address("carol")))
    assert ad.last("update_media")[1] == media(address("carol"))


def test_a_free_park_number_has_nothing_to_retrieve(lot: Harness) -> None:
    cd = dial(lot, "carol", "7002")
    assert cd.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert ("show_display", "No call parked at 7002") in cd.calls


def test_softkey_parks_on_the_first_free_numbers_until_full(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    numbers = []
    for caller in ("alice", "carol", "dave"):
        _, b = talking(h, caller)
        h.engine.park(b)
        ms.reply(MOH)
        numbers.append(bob_driver(h, b).last("show_display")[1])
    assert numbers == ["Call park at 7000", "Call park at 7001", "Call park at 7002"]
    ad, b = talking(h, "alice", "carol")
    h.engine.park(b)
    bd = bob_driver(h, b)
    assert bd.last("show_display")[1] == park.NO_SLOT_TEXT
    assert bd.released_with() == [] and ad.released_with() == []
    assert "transfer_progress" not in bd.names()


def test_a_transfer_to_a_taken_number_fails(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.transfer(b, "7001")
    parked_with_music(h, ms, ad)
    cd, d = talking(h, "carol", "dave")
    h.engine.transfer(d, "7001")
    dd = bob_driver(h, d)
    assert dd.last("transfer_progress")[1:] == (TransferState.FAILED, Cause.USER_BUSY)
    assert dd.released_with() == [] and cd.released_with() == []
    assert [p.parker_device for p in park.parked(h.engine)] == ["bob"]


def test_transfer_to_the_park_code_takes_the_first_free_number(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.transfer(b, "7000")
    parked_with_music(h, ms, ad)
    cd, d = talking(h, "carol", "dave")
    h.engine.transfer(d, "*68")
    assert ("show_display", "Call park at 7001") in bob_driver(h, d).calls
    ms.reply(MOH)
    assert sorted(p.number for p in park.parked(h.engine)) == ["7000", "7001"]
    assert cd.released_with() == []


def test_park_code_dialled_directly_is_refused(lot: Harness) -> None:
    cd = dial(lot, "carol", "*68")
    assert cd.released_with() == [Cause.UNALLOCATED_NUMBER]


def test_park_needs_a_css_that_reaches_the_range(h: Harness, ms: RecordingMedia) -> None:
    plan(h, css="noparking")
    ad, b = talking(h)
    h.engine.park(b)
    assert bob_driver(h, b).last("show_display")[1] == park.NO_SLOT_TEXT
    h.engine.transfer(b, "7000")
    assert bob_driver(h, b).last("transfer_progress")[1:] == (
        TransferState.FAILED,
        Cause.UNALLOCATED_NUMBER,
    )
    assert ad.released_with() == []


def test_park_without_a_media_server_is_not_available(h: Harness) -> None:
    plan(h)
    ad, b = talking(h)
    h.engine.park(b)
    assert bob_driver(h, b).last("show_display")[1] == park.NOT_AVAILABLE_TEXT
    h.engine.transfer(b, "7000")
    assert bob_driver(h, b).last("transfer_progress")[1:] == (
        TransferState.FAILED,
        Cause.RESOURCE_UNAVAILABLE,
    )
    assert ad.released_with() == [] and park.parked(h.engine) == []


def test_music_endpoint_failing_leaves_the_call_with_the_parker(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    ms.reply(None)  # no endpoint
    bd = bob_driver(h, b)
    assert bd.last("transfer_progress")[1] is TransferState.FAILED
    assert bd.released_with() == [] and ad.released_with() == []
    assert park.parked(h.engine) == []


def test_parked_party_hanging_up_frees_the_number(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    handle = parked_with_music(h, ms, ad)
    assert ad.leg is not None
    h.engine.on_release(ad.leg)
    assert ("release", handle) in ms.calls
    assert park.parked(h.engine) == []
    assert dial(h, "carol", "7000").released_with() == [Cause.UNALLOCATED_NUMBER]
    rung = forks(h)
    h.clock.advance(60)
    h.engine.handle_timer(h.clock.monotonic())
    assert rung == []  # no reversion
    _, b2 = talking(h, "carol")
    h.engine.park(b2)
    assert bob_driver(h, b2).last("show_display")[1] == "Call park at 7000"


def test_reversion_rings_the_parker_who_gets_the_party_back(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    handle = parked_with_music(h, ms, ad)
    rung = forks(h)
    h.clock.advance(59)
    h.engine.handle_timer(h.clock.monotonic())
    assert [p.number for p in park.parked(h.engine)] == ["7000"] and rung == []
    h.clock.advance(1)
    h.engine.handle_timer(h.clock.monotonic())
    assert park.parked(h.engine) == [] and rung == ["bob"]
    ring, rd = h.out("sip:bob@10.0.0.9")
    assert ring is not b
    setup = rd.calls[0][1]
    assert setup.called == "1002" and setup.calling.number == "1001"
    assert setup.diversions[-1].number == "7000"
    assert setup.diversions[-1].reason is RedirectReason.PARK
    assert ("release", handle) not in ms.calls  # the party hears music while bob rings
    assert dial(h, "carol", "7000").released_with() == [Cause.UNALLOCATED_NUMBER]
    h.engine.on_alerting(ring)
    h.engine.on_connect(ring, media(address("bob"), port=4100))
    assert ("release", handle) in ms.calls
    assert ad.last("update_media")[1].streams[0].port == 4100
    assert ad.leg is not None
    h.engine.on_media_answer(ad.leg, media(address("alice")))
    h.engine.on_release(ring)
    assert ad.released_with() == [Cause.NORMAL_CLEARING]
    record = h.records()[-1]
    assert (record.called_device, record.original_called) == ("bob", "7000")
    assert (record.last_redirecting, record.redirect_reason) == ("7000", RedirectReason.PARK)
    assert dict(record.extra)["park_reversion"] == "7000"
    assert "transferred_by" not in dict(record.extra)


def test_reversion_that_fails_ends_the_call(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    handle = parked_with_music(h, ms, ad)
    h.clock.advance(60)
    h.engine.handle_timer(h.clock.monotonic())
    ring, _ = h.out("sip:bob@10.0.0.9")
    h.engine.on_release(ring, Cause.USER_BUSY)
    assert ad.released_with() == [Cause.USER_BUSY]
    assert ("release", handle) in ms.calls


def test_reversion_to_an_unregistered_parker_ends_the_call(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    parked_with_music(h, ms, ad)
    h.locations.remove("bob", "sip:bob@10.0.0.9")
    h.clock.advance(60)
    h.engine.handle_timer(h.clock.monotonic())
    assert ad.released_with() == [Cause.SUBSCRIBER_ABSENT]


def test_party_hanging_up_while_reverting_stops_the_ringing(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    parked_with_music(h, ms, ad)
    h.clock.advance(60)
    h.engine.handle_timer(h.clock.monotonic())
    _, rd = h.out("sip:bob@10.0.0.9")
    assert ad.leg is not None
    h.engine.on_release(ad.leg)
    assert rd.released_with() == [Cause.NORMAL_CLEARING]


def test_no_reversion_when_it_is_zero(h: Harness, ms: RecordingMedia) -> None:
    plan(h, reversion=0)
    ad, b = talking(h)
    h.engine.park(b)
    parked_with_music(h, ms, ad)
    rung = forks(h)
    h.clock.advance(3600)
    h.engine.handle_timer(h.clock.monotonic())
    assert rung == []
    assert [p.number for p in park.parked(h.engine)] == ["7000"]


def test_retrieved_call_can_be_held_and_transferred(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.park(b)
    parked_with_music(h, ms, ad)
    cd = dial(h, "carol", "7000")
    assert ad.leg is not None and cd.leg is not None
    h.engine.on_media_answer(ad.leg, media(address("alice")))
    h.engine.on_media_offer(cd.leg, media(address("carol"), direction=SENDONLY))
    ms.reply(("192.0.2.50", 20002))
    assert ad.last("update_media")[1].streams[0].port == 20002  # music on hold
    h.engine.on_media_answer(ad.leg, media(address("alice"), direction=RECVONLY))
    h.engine.transfer(cd.leg, "1004")
    d, _ = h.out("sip:dave@10.0.0.9")
    h.engine.on_connect(d, media(address("dave")))
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    assert ad.last("update_media")[1] == media(address("dave"))
