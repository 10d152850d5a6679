"""Pickup across the workers of a node: a phone picks up a call another worker owns.

The picker's worker finds nothing ringing among its own calls, but a line of
the group rings in another worker's shared view (``LineStates.remote``): it
offers the picker's call to that worker (a ``node`` leg, ``ring_worker``)
with what to pick up (``Call.worker_ask``). That worker runs the pickup for
the node leg (``CallEngine.act_for``): the picked-up call names the
picker, and neither node-leg half leaves a record of its own.
"""

from __future__ import annotations

import pytest
from core_harness import FakeDriver, FakeFactory, Harness, media
from test_pickup import dial, plan, ring

from offhook.core.call import PICKUP_GROUP, PICKUP_LINE, WorkerAsk
from offhook.core.causes import Cause
from offhook.core.events import PartyInfo, Setup
from offhook.core.features.linestate import IDLE_VIEW, RINGING, LineView
from offhook.core.leg import LegState
from offhook.core.routing import NODE_PROTOCOL


@pytest.fixture
def worker1(h: Harness) -> tuple[Harness, FakeFactory]:
    plan(h)
    node = FakeFactory()
    h.engine.register_factory(NODE_PROTOCOL, node)
    return h, node


def test_a_call_ringing_on_another_worker_is_asked_of_it(
    worker1: tuple[Harness, FakeFactory],
) -> None:
    h, node = worker1
    # worker 0 owns a call ringing bob (1002, group sales): its lamp view says so
    h.engine.lines.remote("0", "1002", "internal", LineView(RINGING, ("bob",), "recipient"))
    cd = dial(h, "carol", "*8")
    ((contact, leg),) = node.legs.items()
    assert contact == "node:w0" and leg.binding is not None and leg.binding.worker == 0
    call = leg.call
    assert call is not None and call.worker_ask == WorkerAsk(PICKUP_GROUP, group="sales")
    offered = node.drivers[contact].last("offer")[1]
    assert offered.media == media("10.0.0.3")  # carol's own offer goes with her
    h.engine.on_connect(leg, media("10.0.0.2"))  # worker 0 connected carol to the caller
    assert cd.last("answer")[1] == media("10.0.0.2")
    h.engine.on_release(leg)
    assert cd.released_with() == [Cause.NORMAL_CLEARING]
    assert all(r.internal for r in h.records())  # worker 0's record names carol


def test_a_directed_pickup_names_the_line(worker1: tuple[Harness, FakeFactory]) -> None:
    h, node = worker1
    h.engine.lines.remote("1", "1004", "internal", LineView(RINGING, ("dave",), "recipient"))
    dial(h, "carol", "**1004")
    (leg,) = node.legs.values()
    ask = WorkerAsk(PICKUP_LINE, line=("1004", "internal"))
    assert leg.call is not None and leg.call.worker_ask == ask
    assert leg.binding is not None and leg.binding.worker == 1


def test_nothing_ringing_anywhere_is_refused_here(worker1: tuple[Harness, FakeFactory]) -> None:
    h, node = worker1
    h.engine.lines.remote("0", "1004", "internal", LineView(RINGING, ("dave",), "recipient"))
    h.engine.lines.remote("0", "1002", "internal", IDLE_VIEW)
    cd = dial(h, "carol", "*8")  # sales: dave's 1004 is in support
    assert not node.legs and cd.released_with() == [Cause.NORMAL_CLEARING]
    (record,) = h.records()
    assert not record.internal and record.called == "*8"


def test_a_local_call_is_picked_up_here_first(worker1: tuple[Harness, FakeFactory]) -> None:
    h, node = worker1
    h.engine.lines.remote("0", "1006", "internal", LineView(RINGING, ("frank",), "recipient"))
    ring(h, "alice", "1002")
    cd = dial(h, "carol", "*8")
    assert not node.legs and cd.last("answer")[1] == media("10.0.0.1")


def test_the_owner_makes_the_pickup_for_the_node_leg(h: Harness) -> None:
    plan(h)
    ad = ring(h, "alice", "1002")
    b, bd = h.out("sip:bob@10.0.0.9")
    h.engine.on_alerting(b)
    node = FakeDriver("node")
    leg = h.engine.inbound_leg(node, "carol")  # carol's worker's node leg
    node.leg = leg
    setup = Setup(PartyInfo("1003", device="carol"), "*8", media("10.0.0.3"))
    h.engine.act_for(leg, setup, WorkerAsk(PICKUP_GROUP, group="sales"))
    assert bd.released_with() == [Cause.NON_SELECTED_USER_CLEARING]
    assert node.last("answer")[1] == media("10.0.0.1")  # alice's offer, to carol's worker
    assert ad.last("answer")[1] == media("10.0.0.3")
    assert leg.state is LegState.CONNECTED
    h.engine.on_release(leg)
    picker_call, picked = h.records()
    assert picker_call.internal and not picked.internal
    assert picked.called_device == "carol" and picked.called == "1003"
    assert (picked.last_redirecting, picked.redirect_reason) == ("1002", "pickup")


def test_the_owner_finds_nothing_and_refuses(h: Harness) -> None:
    plan(h)
    node = FakeDriver("node")
    leg = h.engine.inbound_leg(node, "carol")
    node.leg = leg
    ask = WorkerAsk(PICKUP_LINE, line=("1004", "internal"))
    h.engine.act_for(leg, Setup(PartyInfo("1003"), "*8", None), ask)
    assert node.released_with() == [Cause.NORMAL_CLEARING]
    (record,) = h.records()
    assert record.internal
