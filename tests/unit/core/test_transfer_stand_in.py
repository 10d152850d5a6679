"""A blind transfer's stand-in leg, announced when it starts, is announced gone when it goes.

The stand-in places the new call on the transferee's behalf under the
transferrer's device name (its state changes are published: CTI shows the
transferrer's transfer call ringing, answered or failed) and is dropped when
the transferee takes its place (``transfer.retire``). Its end must be
published too: otherwise the transferrer's line stays ``in-use`` for good
(its busy lamp lit, CTI ``line.state``) and CTI shows the transferrer
connected in the new call with no ``call.cleared``. Each way a blind
transfer completes is checked: the target answers (asked by the phone or by
CTI), or the transferrer hangs up while the target rings; and a failed one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from core_harness import FakeDriver, Harness, media
from test_core_features import RecordingMedia, connect, phones

from offhook.core.leg import Leg
from offhook.core.records import LegStateChanged


def by_phone(h: Harness, call_id: str, bob: Leg) -> None:
    h.engine.transfer(bob, "1003")


def by_cti(h: Harness, call_id: str, bob: Leg) -> None:
    h.engine.cti_transfer("bob", call_id, "1003")


@pytest.mark.parametrize("ask", [by_phone, by_cti], ids=["phone", "cti"])
@pytest.mark.parametrize("early", [False, True], ids=["target-answers", "transferrer-leaves"])
def test_the_transferrers_line_is_idle_once_every_call_is_over(
    h: Harness, ask: Callable[[Harness, str, Leg], None], early: bool
) -> None:
    h.engine.media = RecordingMedia()
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert ad.leg is not None and bd.leg is not None and ad.leg.call is not None
    call_id, alice, bob = ad.leg.call.id, ad.leg, bd.leg
    ask(h, call_id, bob)
    carol, _ = h.out("sip:carol@10.0.0.9")
    assert h.engine.lines.state("1003") == "ringing"
    assert h.engine.lines.state("1002") == "in-use"  # bob still talks to alice
    if early:
        h.engine.on_release(bob)  # alice goes over at once
        assert h.engine.lines.state("1002") == "idle"
    h.engine.on_connect(carol, media("10.0.0.3"))
    assert alice.call is carol.call and bob.released
    assert h.engine.lines.state("1002") == "idle"
    assert h.engine.lines.state("1001") == "in-use"
    h.engine.on_release(carol)
    assert {dn: h.engine.lines.state(dn) for dn in ("1001", "1002", "1003")} == {
        "1001": "idle",
        "1002": "idle",
        "1003": "idle",
    }
    assert h.engine.lines.tracked_legs == 0
    changes = h.of(LegStateChanged)
    assert sorted(e.leg_id for e in changes if e.new == "released") == sorted(
        {e.leg_id for e in changes}
    )
    # Every leg whose changes were published was published released: the phones' and
    # the stand-in's (bob's device in the new call), which went first.
    changes = h.of(LegStateChanged)
    published = {e.leg_id for e in changes}
    (stand_in,) = published - {alice.id, bob.id, carol.id}
    assert {e.device for e in changes if e.leg_id == stand_in} == {"bob"}
    released = [e.leg_id for e in changes if e.new == "released"]
    assert sorted(released) == sorted(published)
    assert released.index(stand_in) < released.index(carol.id)


def test_a_failed_blind_transfer_leaves_nothing_either(h: Harness) -> None:
    h.engine.media = RecordingMedia()
    phones(h)
    ad, bd = connect(h, "alice", "1002", "bob")
    assert bd.leg is not None and ad.leg is not None
    h.engine.transfer(bd.leg, "1003")
    carol, _ = h.out("sip:carol@10.0.0.9")
    h.engine.on_release(carol, 17)  # busy: bob keeps alice
    assert h.engine.lines.state("1002") == "in-use"
    h.engine.on_release(ad.leg)
    assert isinstance(bd, FakeDriver) and bd.released_with()
    assert {dn: h.engine.lines.state(dn) for dn in ("1001", "1002", "1003")} == {
        "1001": "idle",
        "1002": "idle",
        "1003": "idle",
    }
    assert h.engine.lines.tracked_legs == 0
    changes = h.of(LegStateChanged)
    assert sorted(e.leg_id for e in changes if e.new == "released") == sorted(
        {e.leg_id for e in changes}
    )
