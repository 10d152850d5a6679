"""The node's metrics from bus events and live state, as a scraper parses them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.causes import cause_text
from offhook.core.events import PartyInfo
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallEnded,
    CallRecord,
    CallStarted,
    LegStateChanged,
    RegistrationRejected,
)
from offhook.net.counters import RejectionCounters
from offhook.ris import metrics as metrics_module
from offhook.ris.metrics import SETUP_BUCKETS, NodeMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Wall:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def by_cause(text: str, name: str) -> dict[str, float]:
    """``{cause: value}`` of a counter labelled by cause (its text checked on the way)."""
    out = {}
    for (sample, labels), got in samples(text).items():
        if sample == name:
            tags = dict(labels)
            assert tags["cause_text"] == (
                "other" if tags["cause"] == "other" else cause_text(int(tags["cause"]))
            )
            out[tags["cause"]] = got
    return out


def node(**watch: Any) -> tuple[EventBus, Wall, NodeMetrics]:
    bus, wall = EventBus(), Wall()
    metrics = NodeMetrics(bus, wall, node="node-a")
    metrics.watch(clock=lambda: 0.0, **watch)
    return bus, wall, metrics


def scrape(metrics: NodeMetrics) -> str:
    return asyncio.run(metrics.exposition())


def started(call_id: str, start: float) -> CallStarted:
    return CallStarted(call_id, PartyInfo("1001"), "1002", "alice", start)


def ended(call_id: str, cause: int, answer: float | None = None) -> CallEnded:
    record = CallRecord(
        call_id, "1001", "1002", "1002", "alice", "bob", 0.0, answer, 5.0, 0, cause, ""
    )
    return CallEnded(record)


def test_a_fresh_node_exports_zeros_and_the_process() -> None:
    _, _, metrics = node()
    text = scrape(metrics)
    assert value(text, "offhook_call_attempts_total") == 0
    assert value(text, "offhook_calls_active") == 0
    assert value(text, "offhook_call_setup_seconds_count") == 0
    assert value(text, "offhook_registered_devices", protocol="sip") == 0
    assert value(text, "offhook_node_info", node="node-a") == 1
    assert value(text, "offhook_process_resident_memory_bytes") > 0
    assert value(text, "offhook_process_open_fds") > 0
    names = [f.name for f in text_string_to_metric_families(text)]
    assert all(n.startswith("offhook_") for n in names), names
    assert len(names) == len(set(names))
    assert not any(n.startswith("offhook_media_process") for n in names)  # no media child


def test_calls_from_bus_events() -> None:
    bus, wall, metrics = node()
    bus.publish(started("c1", 1000.0))
    bus.publish(started("c2", 1000.0))
    bus.publish(started("c3", 1000.0))
    text = scrape(metrics)
    assert value(text, "offhook_call_attempts_total") == 3
    assert value(text, "offhook_calls_active") == 3
    wall.now = 1000.08
    bus.publish(CallAlerting("c1", "bob"))
    bus.publish(CallAlerting("c1", "bob-desk"))  # a second fork ringing: not a second setup
    wall.now = 1003.0
    bus.publish(CallAnswered("c1", "bob", 1003.0))
    bus.publish(CallAnswered("c2", "carol", 1003.0))  # answered without ringing first
    bus.publish(CallAnswered("c2", "carol", 1009.0))  # parked and retrieved: not a new answer
    bus.publish(LegStateChanged("c1", "l1", "bob", "outbound", "ringing", "connected"))
    bus.publish(ended("c1", 16, answer=1003.0))
    bus.publish(ended("c3", 17))
    bus.publish(ended("c9", 1))  # a call this node never saw start
    text = scrape(metrics)
    assert value(text, "offhook_calls_active") == 1
    assert value(text, "offhook_calls_answered_total") == 2
    assert by_cause(text, "offhook_calls_ended_total") == {"1": 1, "16": 1, "17": 1}
    assert by_cause(text, "offhook_call_failures_total") == {"1": 1, "17": 1}  # unanswered
    assert value(text, "offhook_call_setup_seconds_count") == 2
    assert value(text, "offhook_call_setup_seconds_sum") == pytest.approx(3.08)
    assert value(text, "offhook_call_setup_seconds_bucket", le="0.1") == 1
    assert value(text, "offhook_call_setup_seconds_bucket", le="2.5") == 1
    assert value(text, "offhook_call_setup_seconds_bucket", le="5.0") == 2
    assert value(text, "offhook_call_setup_seconds_bucket", le="+Inf") == 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=100.0), max_size=40))
def test_setup_histogram_is_cumulative(delays: list[float]) -> None:
    bus, wall, metrics = node()
    for i, delay in enumerate(delays):
        wall.now = 1000.0 + delay
        bus.publish(started(f"c{i}", 1000.0))
        bus.publish(CallAlerting(f"c{i}", "bob"))
    text = generate(metrics)
    count = value(text, "offhook_call_setup_seconds_count")
    assert count == len(delays)
    previous = 0.0
    for bound in (*SETUP_BUCKETS, float("inf")):
        le = "+Inf" if bound == float("inf") else repr(bound)
        got = value(text, "offhook_call_setup_seconds_bucket", le=le)
        # the delay as the metrics see it: wall time now minus the call's start
        expected = sum(1 for d in delays if (1000.0 + d) - 1000.0 <= bound)
        assert got == expected and got >= previous
        previous = got


def generate(metrics: NodeMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_labels_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_LABELS", 4)
    bus, _, metrics = node()
    for cause in range(10):
        bus.publish(ended(f"c{cause}", cause))
    for i in range(10):
        bus.publish(RegistrationRejected(f"dev{i}", "sip", "192.0.2.1", f"reason-{i}"))
    text = generate(metrics)
    failures = [k for k in samples(text) if k[0] == "offhook_call_failures_total"]
    assert len(failures) == 5  # 4 causes and "other" (-1)
    assert (
        value(text, "offhook_registration_rejections_total", protocol="other", reason="other") == 6
    )


def test_registrations_rejections_and_auth() -> None:
    store = MemoryLocationStore()
    for device, protocol, contact in (
        ("alice", "sip", "sip:alice@192.0.2.1"),
        ("alice", "sip", "sip:alice@192.0.2.2"),  # two contacts, one device
        ("bob", "sip", "sip:bob@192.0.2.3"),
        ("SEP0001", "sccp", "sccp:SEP0001"),
    ):
        store.put(Binding(device, protocol, contact, expires_at=100.0))
    counters = RejectionCounters()
    counters.increment("sip", "acl", 3)
    counters.increment("sccp", "rate-limit")

    @dataclass
    class Auth:
        def status(self) -> dict[str, Any]:
            return {
                "failures": 7,
                "blocks": 1,
                "throttled": 2,
                "dropped_blocked": 3,
                "dropped_throttled": 0,
                "blocked_now": 1,
                "throttled_now": 0,
                "tracked_sources": 2,
            }

    bus, _, metrics = node(bindings=store, rejections=counters, auth=Auth())
    bus.publish(RegistrationRejected("mallory", "sip", "192.0.2.9", "auth_failed"))
    text = scrape(metrics)
    assert value(text, "offhook_registered_devices", protocol="sip") == 2
    assert value(text, "offhook_registered_devices", protocol="sccp") == 1
    assert value(text, "offhook_rejections_total", listener="sip", reason="acl") == 3
    assert value(text, "offhook_rejections_total", listener="sccp", reason="rate-limit") == 1
    assert (
        value(text, "offhook_registration_rejections_total", protocol="sip", reason="auth_failed")
        == 1
    )
    assert value(text, "offhook_auth_failures_total") == 7
    assert value(text, "offhook_auth_blocked_now") == 1


@dataclass
class FakeServer:
    serving: bool = True

    def is_serving(self) -> bool:
        return self.serving


@dataclass
class FakeSip:
    servers: list[FakeServer] = field(default_factory=lambda: [FakeServer()])
    udp_endpoints: list[tuple[object, object]] = field(default_factory=list)

    def status(self) -> dict[str, int]:
        return {"connections": 2, "rate_sources": 1}


@dataclass
class FakeMediaClient:
    connected: bool = True
    answer: dict[str, Any] | None = None
    handles: frozenset[str] = frozenset({"h1", "h2"})
    asked: int = 0

    def stats(self, reply: Any) -> None:
        self.asked += 1
        if self.answer is not None:
            asyncio.get_running_loop().call_soon(reply, self.answer)
        # else: no answer ever comes (a hung media server)


@dataclass
class FakeSupervisor:
    pid: int | None = None
    starts: int = 1


@dataclass
class FakePlane:
    clients: dict[str, FakeMediaClient]
    supervisor: FakeSupervisor | None = None


def test_listeners_and_readiness() -> None:
    sip = FakeSip()
    plane = FakePlane({"embedded": FakeMediaClient(answer={"streams": 0, "counters": {}})})
    _, _, metrics = node(sip=sip, media=lambda: plane, media_expected=True)
    assert metrics.readiness() == {"ready": True, "checks": {"sip": True, "media": True}}
    text = scrape(metrics)
    assert value(text, "offhook_listener_connections", listener="sip") == 2
    plane.clients["embedded"].connected = False
    assert metrics.readiness() == {"ready": False, "checks": {"sip": True, "media": False}}
    sip.servers[0].serving = False
    assert metrics.readiness()["checks"]["sip"] is False
    _, _, bare = node(media_expected=True)  # media asked for, not started (yet)
    assert bare.readiness() == {"ready": False, "checks": {"media": False}}


def test_media_server_stats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MEDIA_STATS_TIMEOUT", 0.2)
    answer = {
        "streams": 5,
        "bridges": 1,
        "counters": {"late_ticks": 3, "jitter_late": 11, "rx_packets": 500, "tx_packets": 480},
    }
    plane = FakePlane(
        {
            "embedded": FakeMediaClient(answer=answer),
            "hung": FakeMediaClient(answer=None),
            "down": FakeMediaClient(connected=False),
        },
        FakeSupervisor(pid=None, starts=2),
    )
    _, _, metrics = node(media=lambda: plane)
    text = scrape(metrics)
    assert value(text, "offhook_media_server_up", server="embedded") == 1
    assert value(text, "offhook_media_server_up", server="down") == 0
    assert value(text, "offhook_media_streams", server="embedded") == 5
    assert value(text, "offhook_media_streams", server="hung") == 2  # the node's own count
    assert value(text, "offhook_media_late_ticks_total", server="embedded") == 3
    assert value(text, "offhook_media_late_packets_total", server="embedded") == 11
    assert value(text, "offhook_media_server_starts_total") == 2
    assert plane.clients["down"].asked == 0
    # The last answer is kept when the next one does not come.
    plane.clients["embedded"].answer = None
    assert value(scrape(metrics), "offhook_media_late_ticks_total", server="embedded") == 3


def test_media_child_process_metrics() -> None:
    import os

    plane = FakePlane({}, FakeSupervisor(pid=os.getpid()))
    _, _, metrics = node(media=lambda: plane)
    text = generate(metrics)
    assert value(text, "offhook_media_process_open_fds") > 0


def test_control_ops() -> None:
    bus, _, metrics = node()
    bus.publish(started("c1", 1000.0))
    ops = metrics.ops()
    text = asyncio.run(ops["metrics"]({}))["text"]
    assert value(text, "offhook_call_attempts_total") == 1
    assert ops["ready"]({}) == {"ready": True, "checks": {}}


def test_one_bus_subscriber_and_other_events_ignored() -> None:
    bus, _, metrics = node()
    assert len(bus) == 1  # one handler, dispatching on the event's type
    bus.publish(LegStateChanged("c1", "l1", "bob", "outbound", "idle", "ringing"))
    bus.publish(CallAlerting("c1", "bob"))  # a call it never saw start
    bus.publish(CallAnswered("c1", "bob", 1.0))
    text = generate(metrics)
    assert value(text, "offhook_call_attempts_total") == 0
    assert value(text, "offhook_call_setup_seconds_count") == 0
    assert metrics.calls.active == 0


def test_cti_journal_figures() -> None:
    from offhook.cti.journal import Journal

    journal = Journal(1_000_000, capacity=2)
    _, _, metrics = node(cti=lambda: journal)
    for n in range(3):
        journal.record({"id": 0, "type": "dnd.changed", "device": "bob", "on": n % 2 == 0})
    sub, _ = journal.subscribe()
    text = scrape(metrics)
    assert value(text, "offhook_cti_node_events_total") == 3
    assert value(text, "offhook_cti_node_events_held") == 2  # the ring's capacity
    assert value(text, "offhook_cti_node_streams") == 1
    assert value(text, "offhook_cti_node_stream_overflows_total") == 0
    sub.close()
    journal.dropped(sub)
    assert value(scrape(metrics), "offhook_cti_node_streams") == 0


def test_a_node_legs_far_half_is_not_counted() -> None:
    """The worker that owns a call counts it; the far half of its node leg on the
    worker that holds the phone must not count it again (the node's figures are
    the sum over the workers)."""
    bus, _, metrics = node()
    far = CallStarted("w0", PartyInfo("1004"), "1003", "dave", 1000.0, internal=True)
    bus.publish(far)
    bus.publish(CallAnswered("w0", "SEP1", 1001.0))
    record = ended("w0", 16, answer=1001.0).record
    bus.publish(CallEnded(replace(record, internal=True)))
    text = scrape(metrics)
    assert value(text, "offhook_call_attempts_total") == 0
    assert value(text, "offhook_calls_answered_total") == 0
    assert value(text, "offhook_calls_active") == 0
    assert by_cause(text, "offhook_calls_ended_total") == {}
    # a picker's call, handed to the worker that owns the call it picks up: it
    # started here as any call, and ends leaving its record to that worker
    bus.publish(started("p1", 1000.0))
    bus.publish(CallEnded(replace(ended("p1", 16).record, internal=True)))
    text = scrape(metrics)
    assert value(text, "offhook_call_attempts_total") == 1
    assert value(text, "offhook_calls_active") == 0
