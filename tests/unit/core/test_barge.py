"""Barge: another appearance of a shared line joins the call in progress (features.barge)."""

from __future__ import annotations

from core_harness import FakeDriver, Harness, media
from test_core_features import RecordingMedia

from offhook.core.causes import Cause
from offhook.core.directory import DeviceInfo, LineInfo
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import Leg


def shared(h: Harness, *, privacy: bool = False) -> RecordingMedia:
    ms = RecordingMedia()
    h.engine.media = ms
    h.devices[:] = [
        DeviceInfo("alice", "sip", (LineInfo("1001"),)),
        DeviceInfo("bob", "sip", (LineInfo("1002"),), privacy=privacy),
        DeviceInfo("bob2", "sip", (LineInfo("1002"),)),
    ]
    for name in ("alice", "bob", "bob2"):
        h.register(name)
    return ms


def barge_in(h: Harness, device: str = "bob2") -> tuple[Leg, FakeDriver]:
    driver = FakeDriver(device)
    leg = h.engine.inbound_leg(driver, device)
    driver.leg = leg
    leg.line = ("1002", "")
    h.engine.barge(leg, Setup(PartyInfo("1002"), "", media("10.0.0.7")))
    return leg, driver


def answered_call(h: Harness) -> FakeDriver:
    _, ad = h.call("alice", "1002", "1001")
    bob = h.factory.legs["sip:bob@10.0.0.9"]
    h.engine.on_connect(bob, media("10.0.0.2"))
    h.engine.on_release(h.factory.legs["sip:bob2@10.0.0.9"], Cause.NON_SELECTED_USER_CLEARING)
    return ad


def test_barge_puts_the_three_in_one_bridge(h: Harness) -> None:
    ms = shared(h)
    answered_call(h)
    _, bd2 = barge_in(h)
    bridges = {bridge for _, bridge in ms.devices.values()}
    assert len(bridges) == 1 and next(iter(bridges)).startswith("barge-")
    assert [ms.devices[c[1]][0] for c in ms.named("open")] == ["alice", "bob", "bob2"]
    for handle in list(ms.replies):
        ms.reply(("192.0.2.50", 20000), handle)
    assert "answer" in bd2.names()


def test_privacy_refuses_a_barge(h: Harness) -> None:
    ms = shared(h, privacy=True)
    answered_call(h)
    _, bd2 = barge_in(h)
    assert bd2.released_with() == [Cause.CALL_REJECTED]
    assert ms.calls == []


def test_nothing_to_barge_into(h: Harness) -> None:
    shared(h)
    _, bd2 = barge_in(h)
    assert bd2.released_with() == [Cause.NORMAL_CLEARING]


def test_a_sip_phone_barges_by_feature_code(h: Harness) -> None:
    ms = shared(h)
    answered_call(h)
    bd2 = FakeDriver("bob2")
    leg = h.engine.inbound_leg(bd2, "bob2")
    bd2.leg = leg
    h.engine.setup(leg, Setup(PartyInfo("1002"), "*33", media("10.0.0.7")))
    assert [ms.devices[c[1]][0] for c in ms.named("open")] == ["alice", "bob", "bob2"]
