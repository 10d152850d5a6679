"""The node side of overload control (node_overload) and its settings (config_overload):
the policy from [overload], the sampling task feeding the control (a fake CPU clock,
an injected load), the control ops and the Prometheus collector."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from offhook.config import ConfigError, load_settings
from offhook.config_overload import OverloadSettings
from offhook.node_overload import NodeOverload, loop_demand_clock, policy_of, receive_backlog
from offhook.ris.control import ControlError


def test_defaults_and_policy() -> None:
    s = load_settings(None, env={}).overload
    assert s.enabled and not s.test_control
    policy = policy_of(s)
    assert policy.thresholds["cpu"].high == 0.9 and policy.thresholds["cpu"].low == 0.7
    assert policy.thresholds["lag"].high == 0.1
    assert policy.thresholds["queue"].high == 0.01 and policy.thresholds["queue"].low == 0.0025
    assert policy.window == 0.25
    assert policy.thresholds["pending"].high == 0  # off
    assert policy.exempt == frozenset({"112", "911"})
    assert (policy.retry_after_min, policy.retry_after_max) == (1, 8)


def test_settings_from_the_environment_and_refusals() -> None:
    s = load_settings(
        None, env={"OFFHOOK_OVERLOAD__CPU_HIGH": "0.8", "OFFHOOK_OVERLOAD__EXEMPT": '["999"]'}
    ).overload
    assert s.cpu_high == 0.8 and s.exempt == ["999"]
    with pytest.raises(ConfigError):
        load_settings(None, env={"OFFHOOK_OVERLOAD__CPU_LOW": "0.95"})
    with pytest.raises(ConfigError):
        load_settings(None, env={"OFFHOOK_OVERLOAD__RETRY_AFTER_MIN": "20"})
    with pytest.raises(ConfigError):
        load_settings(None, env={"OFFHOOK_OVERLOAD__WINDOW": "0.05"})  # below interval 0.1
    with pytest.raises(ConfigError):
        load_settings(None, env={"OFFHOOK_OVERLOAD__DECREASE": "1"})


def test_ops_and_test_load_only_when_enabled() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        plain = NodeOverload(OverloadSettings(), loop)
        assert set(plain.ops()) == {"overload"}
        node = NodeOverload(OverloadSettings(test_control=True), loop)
        ops = node.ops()
        assert set(ops) == {"overload", "overload_test_load"}
        assert ops["overload"]({})["state"] == "normal"
        assert ops["overload_test_load"]({"load": 3})["injected"] == 3.0
        assert node.injected == 3.0
        assert "injected" not in ops["overload_test_load"]({"load": None})
        for bad in ("x", True, -1, 1e9):
            with pytest.raises(ControlError):
                ops["overload_test_load"]({"load": bad})

    asyncio.run(main())


def test_sampler_feeds_the_control_until_overloaded_then_recovers() -> None:
    """The task samples lag and CPU (a fake CPU clock: 95 % of a core busy) until the
    control decides; every wait is bounded by a count of windows, never a time assertion."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy = {"on": True}
        start = loop.time()

        def cpu_time() -> float:
            return (loop.time() - start) * (0.95 if busy["on"] else 0.0)

        settings = OverloadSettings(interval=0.01, window=0.05, lag_high=0, lag_low=0)
        node = NodeOverload(settings, loop, cpu_time=cpu_time, warm_up=0)
        task = node.start()
        assert task is not None
        try:
            for _ in range(2000):
                if node.control.overloaded:
                    break
                await asyncio.sleep(0.01)
            assert node.control.overloaded
            assert node.control.signals["cpu"] >= 0.9
            busy["on"] = False
            for _ in range(5000):
                if not node.control.overloaded:
                    break
                await asyncio.sleep(0.01)
            assert not node.control.overloaded
            assert node.control.episodes >= 1
        finally:
            await node.stop()
        assert node.status()["enabled"]

    asyncio.run(main())


def test_injected_load_overloads_and_pending_is_sampled_when_enabled() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        settings = OverloadSettings(
            interval=0.01, window=0.05, cpu_high=0, cpu_low=0, lag_high=0, lag_low=0,
            pending_high=10, pending_low=5, test_control=True,
        )  # fmt: skip
        node = NodeOverload(settings, loop, pending=lambda: 3)
        node.ops()["overload_test_load"]({"load": 5})
        node.start()
        try:
            for _ in range(2000):
                if node.control.overloaded:
                    break
                await asyncio.sleep(0.01)
            assert node.control.overloaded
            assert node.control.signals["pending"] == 3.0
        finally:
            await node.stop()

    asyncio.run(main())


def test_a_late_wake_at_start_up_is_not_overload_but_a_flood_is() -> None:
    """Start-up blocks the loop (here 0.6 s, six times ``lag_high`` and past
    ``URGENT``): within the warm-up that sample is not counted, and the node stays
    calm; without a warm-up the same block overloads it at once. The injected load
    (standing for the receive queue, counted from the first sample) still
    overloads a node in its warm-up."""

    async def run(warm_up: float, injected: float | None) -> bool:
        loop = asyncio.get_running_loop()
        settings = OverloadSettings(
            interval=0.01, window=0.05, cpu_high=0, cpu_low=0, test_control=True
        )
        node = NodeOverload(settings, loop, warm_up=warm_up)
        node.ops()["overload_test_load"]({"load": injected})
        node.start()
        try:
            await asyncio.sleep(0.02)  # the first sample is due: the loop wakes it late
            time.sleep(0.6)
            for _ in range(50):  # windows enough for a decision either way
                if node.control.overloaded:
                    break
                await asyncio.sleep(0.01)
            return node.control.overloaded
        finally:
            await node.stop()

    assert not asyncio.run(run(warm_up=60.0, injected=None))
    assert asyncio.run(run(warm_up=0.0, injected=None))
    assert asyncio.run(run(warm_up=60.0, injected=5.0))


def test_disabled_does_not_sample() -> None:
    async def main() -> None:
        node = NodeOverload(OverloadSettings(enabled=False), asyncio.get_running_loop())
        assert node.start() is None
        await node.stop()

    asyncio.run(main())


def test_update_turns_it_off_and_on_and_takes_new_thresholds() -> None:
    """A reload: off sheds nothing at once and stops sampling; on starts again with the
    new thresholds; thresholds that do not fit change nothing."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        settings = OverloadSettings(
            interval=0.01, window=0.05, cpu_high=0, cpu_low=0, lag_high=0, lag_low=0,
            test_control=True,
        )  # fmt: skip
        node = NodeOverload(settings, loop)
        node.ops()["overload_test_load"]({"load": 5})
        node.start()
        try:
            for _ in range(2000):
                if node.control.overloaded:
                    break
                await asyncio.sleep(0.01)
            assert node.control.overloaded
            node.update(settings.model_copy(update={"enabled": False, "test_control": False}))
            assert not node.control.overloaded and node.control.admit("invite")
            assert node._task is None and not node.status()["enabled"]
            assert node.settings.test_control  # taken at start only
            episodes = node.control.episodes
            node.update(settings.model_copy(update={"window": 0.2, "retry_after_max": 30}))
            assert node._task is not None and node.control.policy.window == 0.2
            assert node.control.policy.retry_after_max == 30
            for _ in range(2000):
                if node.control.overloaded:
                    break
                await asyncio.sleep(0.01)
            assert node.control.overloaded and node.control.episodes == episodes + 1
            bad = settings.model_copy(update={"retry_after_min": 50})  # above the max
            with pytest.raises(ValueError):
                node.update(bad)
            assert node.control.policy.retry_after_max == 30 and node._task is not None
        finally:
            await node.stop()

    asyncio.run(main())


def test_collector_exports_state_and_shed_counts() -> None:
    async def main() -> str:
        node = NodeOverload(OverloadSettings(), asyncio.get_running_loop())
        control = node.control
        for i in range(10):
            control.observe(control._window_start + 0.5 * (i + 1), {"injected": 10.0})
        control.admit("invite")
        control.admit("sccp")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(node.collector())
        return generate_latest(registry).decode()

    text = asyncio.run(main())
    assert "offhook_overload_state 1.0" in text
    assert "offhook_overload_admit_ratio 0.0" in text
    assert 'offhook_overload_shed_total{kind="invite"} 1.0' in text
    assert 'offhook_overload_shed_total{kind="sccp"} 1.0' in text
    assert 'offhook_overload_signal{signal="injected"} 10.0' in text
    assert "offhook_overload_episodes_total 1.0" in text
    assert "offhook_overload_load 10.0" in text


@pytest.mark.skipif(sys.platform != "linux", reason="SO_MEMINFO is Linux's")
def test_receive_backlog_is_the_share_of_the_buffer_waiting() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        assert receive_backlog(rx) == 0.0
        for _ in range(50):
            tx.sendto(b"x" * 800, rx.getsockname())
        share = receive_backlog(rx)
        assert share is not None and 0 < share < 1
        while True:  # read them all: nothing waits any more
            rx.setblocking(False)
            try:
                rx.recv(2048)
            except BlockingIOError:
                break
        assert receive_backlog(rx) == 0.0
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.close()
    assert receive_backlog(closed) is None


def test_a_backlog_in_the_socket_buffer_overloads() -> None:
    """Datagrams nobody reads fill a socket's buffer past queue_high: overloaded."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        ):
            rx.bind(("127.0.0.1", 0))
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            for _ in range(200):
                try:
                    tx.sendto(b"x" * 800, rx.getsockname())
                except OSError:
                    break
            backlog = receive_backlog(rx)
            if backlog is None:
                pytest.skip("SO_MEMINFO unavailable")
            assert backlog > 0.1
            settings = OverloadSettings(
                interval=0.01, window=0.05, cpu_high=0, cpu_low=0, lag_high=0, lag_low=0,
                queue_high=0.05, queue_low=0.01,
            )  # fmt: skip
            node = NodeOverload(settings, loop, sockets=lambda: [rx])
            node.start()
            try:
                for _ in range(2000):
                    if node.control.overloaded:
                        break
                    await asyncio.sleep(0.01)
                assert node.control.overloaded
                assert node.control.signals["queue"] == pytest.approx(backlog)
            finally:
                await node.stop()

    asyncio.run(main())


def test_loop_demand_clock_counts_running_and_waiting() -> None:
    """schedstat (Linux): at least the thread's CPU time; elsewhere the CPU time itself."""
    import time

    clock = loop_demand_clock()
    before, cpu_before = clock(), time.thread_time()
    while time.thread_time() - cpu_before < 0.05:  # spend some CPU (a count, not a timing)
        pass
    assert clock() - before >= 0.04
