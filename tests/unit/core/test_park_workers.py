"""Call park across the workers of a node.

Each worker parks its own calls and says which numbers it takes and frees
(``ParkChanged``); the others keep that (``CallEngine.adopt_park``), so they
never choose or park on a number another worker holds, and dialling one
retrieves the party through that worker: the retriever's call goes there as
a ``node`` leg asking for the retrieval (``WorkerAsk``), which that worker
makes and records (``CallEngine.act_for``).
"""

from __future__ import annotations

from core_harness import FakeDriver, FakeFactory, Harness, media
from test_core_features import RecordingMedia
from test_park import address, dial, lot, ms, parked_with_music, talking

from offhook.core.call import RETRIEVE, WorkerAsk
from offhook.core.causes import Cause
from offhook.core.events import PartyInfo, RedirectReason, Setup
from offhook.core.features import park
from offhook.core.leg import LegState
from offhook.core.records import ParkChanged
from offhook.core.routing import NODE_PROTOCOL

__all__ = ["lot", "ms"]  # the fixtures of test_park, used here


def changes(h: Harness) -> list[tuple[str, bool]]:
    return [(e.number, e.taken) for e in h.of(ParkChanged)]


def test_a_number_taken_and_freed_here_is_told(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.transfer(b, "7000")
    parked_with_music(h, ms, ad)
    assert changes(h) == [("7000", True)]
    assert h.engine.parked_here() == [ParkChanged("7000", "parking", True)]
    dial(h, "carol", "7000")  # retrieved here: free
    assert changes(h) == [("7000", True), ("7000", False)]
    ad2, b2 = talking(h, "dave", "bob")
    h.engine.transfer(b2, "7000")
    parked_with_music(h, ms, ad2)
    assert ad2.leg is not None
    h.engine.on_release(ad2.leg)  # the parked party hangs up: free
    assert changes(h)[-2:] == [("7000", True), ("7000", False)]
    assert h.engine.parked_here() == []


def test_numbers_another_worker_holds_are_never_taken_here(
    lot: Harness, ms: RecordingMedia
) -> None:
    h = lot
    h.engine.adopt_park(0, ParkChanged("7000", "parking", True))
    h.engine.adopt_park(1, ParkChanged("7002", "parking", True))
    _, b = talking(h)
    h.engine.transfer(b, "7002")  # a REFER to a number worker 1 holds: busy
    assert ("show_display", "No park slot available") in b.driver.calls  # type: ignore[union-attr]
    assert park.parked(h.engine) == []
    lot_range = h.engine.snapshot().dialplan_spec.call_park[0]
    assert park.first_free(h.engine, "staff") == ("7001", lot_range)
    h.engine.adopt_park(1, ParkChanged("7002", "parking", False))
    h.engine.forget_worker(0)  # worker 0 started again: what it held is gone
    assert park.elsewhere(h.engine) == {}


def test_dialling_a_number_another_worker_holds_retrieves_through_it(lot: Harness) -> None:
    h = lot
    node = FakeFactory()
    h.engine.register_factory(NODE_PROTOCOL, node)
    h.engine.adopt_park(0, ParkChanged("7001", "parking", True))
    cd = dial(h, "carol", "7001")
    ((contact, leg),) = node.legs.items()
    assert contact == "node:w0" and leg.call is not None
    assert leg.call.worker_ask == WorkerAsk(RETRIEVE, line=("7001", "parking"))
    h.engine.on_connect(leg, media("10.0.0.1"))  # worker 0 joined carol with the party
    assert cd.last("answer")[1] == media("10.0.0.1")
    h.engine.on_release(leg)
    (record,) = h.records()
    assert record.internal  # worker 0 records the retrieval


def test_the_holder_makes_the_retrieval_and_records_it(lot: Harness, ms: RecordingMedia) -> None:
    h = lot
    ad, b = talking(h)
    h.engine.transfer(b, "7001")
    parked_with_music(h, ms, ad)
    node = FakeDriver("node")
    leg = h.engine.inbound_leg(node, "erin")  # erin's worker's node leg
    node.leg = leg
    setup = Setup(PartyInfo("1005", device="erin"), "7001", media("10.0.0.5"))
    h.engine.act_for(leg, setup, WorkerAsk(RETRIEVE, line=("7001", "parking")))
    assert ad.last("update_media")[1] == media("10.0.0.5")
    assert ad.leg is not None
    h.engine.on_media_answer(ad.leg, media(address("alice")))
    assert node.last("answer")[1] == media(address("alice"))
    assert leg.state is LegState.CONNECTED and park.parked(h.engine) == []
    h.engine.on_release(leg)
    record = h.records()[-1]
    assert not record.internal
    assert (record.calling_device, record.called_device) == ("erin", "alice")
    assert (record.last_redirecting, record.redirect_reason) == ("7001", RedirectReason.PARK)


def test_nothing_parked_at_the_holder_is_refused(lot: Harness) -> None:
    h = lot
    h.engine.adopt_park(1, ParkChanged("7001", "parking", True))  # a stale report
    node = FakeDriver("node")
    leg = h.engine.inbound_leg(node, "erin")
    node.leg = leg
    setup = Setup(PartyInfo("1005", device="erin"), "7001", media("10.0.0.5"))
    h.engine.act_for(leg, setup, WorkerAsk(RETRIEVE, line=("7001", "parking")))
    assert node.released_with() == [Cause.UNALLOCATED_NUMBER]  # never sent back to worker 1
