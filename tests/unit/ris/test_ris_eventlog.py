"""The call and refused-registration log lines, with their context fields."""

from __future__ import annotations

import json
import logging

import pytest

from offhook.common.logsetup import JsonLines
from offhook.core.bus import EventBus
from offhook.core.events import PartyInfo
from offhook.core.records import CallEnded, CallRecord, CallStarted, RegistrationRejected
from offhook.ris.eventlog import LOG_PERIOD, LOG_REJECTIONS, EventLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def json_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    fmt = JsonLines()
    return [json.loads(fmt.format(r)) for r in caplog.records if r.name == "offhook.calls"]


def record(answer: float | None, cause: int) -> CallRecord:
    return CallRecord(
        "c7", "1001", "1002", "1002", "alice", "bob", 10.0, answer, 20.0, 8, cause, ""
    )


def test_a_call_is_logged_at_its_end_with_call_id_and_device(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    EventLog(bus, Clock())
    with caplog.at_level(logging.INFO, logger="offhook.calls"):
        bus.publish(CallStarted("c7", PartyInfo("1001"), "1002", "alice", 10.0))
        bus.publish(CallEnded(record(12.0, 16)))
        bus.publish(CallEnded(record(None, 17)))
    lines = json_lines(caplog)
    assert len(lines) == 2  # the start is a DEBUG line
    first, second = lines
    assert first["call_id"] == "c7" and first["device"] == "alice"
    assert first["level"] == "info"
    assert "answered by bob, 8 s" in str(first["msg"]) and "cause 16" in str(first["msg"])
    assert "not answered" in str(second["msg"]) and "User busy" in str(second["msg"])


def test_call_start_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    EventLog(bus, Clock())
    with caplog.at_level(logging.DEBUG, logger="offhook.calls"):
        bus.publish(CallStarted("c8", PartyInfo("1001"), "1002", "alice", 10.0))
    (line,) = json_lines(caplog)
    assert line["level"] == "debug" and line["call_id"] == "c8" and line["device"] == "alice"


def test_refused_registrations_are_logged_with_a_bound(caplog: pytest.LogCaptureFixture) -> None:
    bus, clock = EventBus(), Clock()
    EventLog(bus, clock)
    with caplog.at_level(logging.WARNING, logger="offhook.calls"):
        for i in range(LOG_REJECTIONS + 30):
            bus.publish(
                RegistrationRejected(f"dev{i}" + "x" * 200, "sip", "192.0.2.1:5060", "auth")
            )
        clock.now = LOG_PERIOD
        bus.publish(RegistrationRejected("SEP001", "sccp", "192.0.2.2:2000", "unknown device"))
    lines = json_lines(caplog)
    assert len(lines) == LOG_REJECTIONS + 2
    assert lines[0]["source"] == "192.0.2.1:5060"
    assert str(lines[0]["device"]).startswith("dev0") and len(str(lines[0]["device"])) == 64
    assert "30 more registrations refused" in str(lines[-2]["msg"])
    assert lines[-1]["device"] == "SEP001" and lines[-1]["source"] == "192.0.2.2:2000"
