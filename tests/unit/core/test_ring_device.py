"""``CallEngine.ring_device``: the far half of a node leg rings one device, nothing else."""

from __future__ import annotations

from core_harness import FakeDriver, Harness, media

from offhook.common.location import Binding
from offhook.core.causes import Cause
from offhook.core.directory import DeviceInfo, Forward, LineInfo
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import LegState
from offhook.core.records import CallStarted


def ring(h: Harness, device: str) -> FakeDriver:
    driver = FakeDriver("node")
    leg = h.engine.inbound_leg(driver, "dave")
    driver.leg = leg
    setup = Setup(PartyInfo("1004", "Dave", device="dave"), "1003", media("10.0.0.1"))
    h.engine.ring_device(leg, setup, device)
    return driver


def carol_shares_1003_with_erin(h: Harness, *, forward: bool = False) -> None:
    coverage = {"forward_all": Forward("1005")} if forward else {}
    h.devices[:] = [
        DeviceInfo("carol", "sip", (LineInfo("1003", "Carol", **coverage),)),  # type: ignore[arg-type]
        DeviceInfo("erin", "sip", (LineInfo("1003", "Erin"), LineInfo("1005", "Erin 2"))),
        DeviceInfo("dave", "sip", (LineInfo("1004", "Dave"),)),
    ]
    for name in ("carol", "erin"):
        h.register(name)


def test_only_the_named_device_rings_on_its_line_and_no_coverage_applies() -> None:
    """A DN shared by carol and erin, forwarded all to 1005: the owner already decided,
    so here carol alone rings and nothing forwards. Her fork is no appearance of the
    line here (the owner's is: its view of the line is the one every worker shares)."""
    h = Harness()
    carol_shares_1003_with_erin(h, forward=True)
    a = ring(h, "carol")
    assert list(h.factory.legs) == ["sip:carol@10.0.0.9"]
    leg, out = h.out("sip:carol@10.0.0.9")
    assert leg.line == ("", "") and out.names() == ["offer"]
    assert h.engine.lines.state("1003") == "idle"
    offered = out.last("offer")[1]
    assert offered.calling.number == "1004" and offered.calling.name == "Dave"
    h.engine.on_alerting(leg)
    h.engine.on_connect(leg, media("10.0.0.3"))
    assert a.names() == ["alert", "answer"]
    h.engine.on_release(leg)
    record = h.record()
    assert record.internal and record.called_device == "carol" and record.answer is not None
    (started,) = h.of(CallStarted)
    assert started.internal and started.calling_device == "dave"


def test_a_device_not_held_here_is_absent_and_a_copy_is_never_rung() -> None:
    h = Harness()
    carol_shares_1003_with_erin(h)
    # worker 1's copy of a device another worker holds: not this process's to ring
    h.locations.put(Binding("frank", "sip", "sip:frank@10.0.0.7", 1e9, worker=1))
    for device in ("nobody", "frank"):
        a = ring(h, device)
        assert a.released_with() == [Cause.SUBSCRIBER_ABSENT]
    assert not h.factory.legs
    assert all(r.internal for r in h.records())


def test_a_device_at_its_call_limit_is_busy() -> None:
    h = Harness()
    h.devices[:] = [DeviceInfo("carol", "sip", (LineInfo("1003"),), max_calls=1)]
    h.register("carol")
    first = ring(h, "carol")
    leg, _ = h.out("sip:carol@10.0.0.9")
    h.engine.on_connect(leg, media("10.0.0.3"))
    assert leg.state is LegState.CONNECTED and first.names() == ["answer"]
    second = ring(h, "carol")
    assert second.released_with() == [Cause.USER_BUSY]
