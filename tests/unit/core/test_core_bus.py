"""The event bus: typed delivery, isolation of failing subscribers."""

from __future__ import annotations

import logging

import pytest

from offhook.core.bus import EventBus
from offhook.core.records import CallAlerting, CallAnswered


def test_typed_and_catch_all_subscribers() -> None:
    bus = EventBus()
    typed: list[CallAlerting] = []
    every: list[object] = []
    bus.subscribe(CallAlerting, typed.append)
    bus.subscribe_all(every.append)
    a, b = CallAlerting("c1", "d"), CallAnswered("c1", "d", 1.0)
    bus.publish(a)
    bus.publish(b)
    assert typed == [a]
    assert every == [a, b]


def test_failing_subscriber_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe_all(broken)
    bus.subscribe_all(got.append)
    with caplog.at_level(logging.ERROR):
        bus.publish("x")
    assert got == ["x"]
    assert "subscriber" in caplog.text


def test_unsubscribe_even_while_publishing() -> None:
    bus = EventBus()
    got: list[object] = []
    unsub_holder: list[object] = []

    def once(event: object) -> None:
        got.append(event)
        unsub()

    unsub = bus.subscribe_all(once)
    unsub_holder.append(unsub)
    bus.publish(1)
    bus.publish(2)
    assert got == [1]
    assert len(bus) == 0
    unsub()  # idempotent
