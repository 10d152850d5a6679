"""The node side of overload control: load sampling, the control ops, the metrics.

``NodeOverload`` owns the node's ``core.overload.OverloadControl`` (built
from ``[overload]``, ``config_overload``) and feeds it, every ``interval``
seconds, from a task on the event loop:

* ``lag``: how late the sampling timer woke (actual minus expected wake
  time): a loop busy with a backlog, or starved of CPU, wakes late;
* ``cpu``: the loop thread's CPU time (``time.thread_time``) over the time
  elapsed since the last sample, a share of one core; with ``[overload]
  cpu_counts_waiting`` its demand for a core instead: the time it ran plus
  the time it waited, runnable, for a CPU (Linux
  ``/proc/thread-self/schedstat``). The database and call-record threads
  are not counted;
* ``queue``: the fullest receive buffer of the SIP UDP sockets, as a share
  of its size (Linux ``getsockopt(SO_MEMINFO)``: the bytes queued and the
  buffer's size; one system call a socket a sample);
* ``pending``: new calls in setup (the SIP endpoint's inbound calls not yet
  answered; counted only when ``pending_high`` is set);
* ``injected``: a load figure a test set with the control op
  ``overload_test_load`` (``[overload] test_control`` only).

For ``warm_up`` seconds after sampling starts (the node's start, a SIGHUP that
changed ``[overload]``) the lag and CPU samples are not counted: start-up work
(spawning the media and web processes, first imports, a busy machine's
scheduler) makes the loop wake late once, and one sample 0.4 s late would
overload a node that has no calls yet (``core.overload.URGENT``). The receive
queue still counts from the first sample: a node started into a registration
storm sheds at once.

The SIP endpoint (``endpoint.overload``) and the SCCP endpoint ask the same
control before a new call. ``ops()``: ``overload`` -> the control's status;
``overload_test_load`` ``{"load": x}`` (x >= 1 overloads, null clears).
``collector()``: ``offhook_overload_*`` Prometheus metrics (state, admitted
share, load, each signal, shed requests by kind, episodes).
Only ``app`` builds this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from offhook.config_overload import OverloadSettings
from offhook.core.overload import OverloadControl, OverloadPolicy, Threshold
from offhook.ris.control import ControlError, Handler

__all__ = ["NodeOverload", "OverloadCollector", "policy_of"]

log = logging.getLogger("offhook.overload")

SCHEDSTAT = "/proc/thread-self/schedstat"
WARM_UP = 2.0
"""Seconds after sampling starts whose loop lag and CPU share are not counted."""


def _schedstat_seconds() -> float:
    with open(SCHEDSTAT, "rb") as f:
        fields = f.read().split()
    return (int(fields[0]) + int(fields[1])) / 1e9  # ns on a CPU + ns waiting for one


def loop_demand_clock() -> Callable[[], float]:
    """A clock of the seconds the calling thread ran or waited to run (schedstat), or,
    where that cannot be read, of its CPU time."""
    try:
        _schedstat_seconds()
    except (OSError, ValueError, IndexError):
        return time.thread_time
    return _schedstat_seconds


SO_MEMINFO = 55
"""Linux 4.6+ ``SOL_SOCKET`` option: ``u32 sk_meminfo[9]`` (rmem_alloc, rcvbuf, ..., drops)."""


def receive_backlog(sock: socket.socket) -> float | None:
    """The share of ``sock``'s receive buffer in use (datagrams waiting), or None: unknown."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36)
    except (OSError, ValueError):
        return None
    if len(raw) < 8:
        return None
    rmem_alloc, rcvbuf = struct.unpack_from("2I", raw)
    return rmem_alloc / rcvbuf if rcvbuf else None


def policy_of(settings: OverloadSettings) -> OverloadPolicy:
    """The detector's policy from ``[overload]``."""
    s = settings
    return OverloadPolicy(
        thresholds={
            "cpu": Threshold(s.cpu_high, min(s.cpu_low, s.cpu_high)),
            "lag": Threshold(s.lag_high, min(s.lag_low, s.lag_high)),
            "queue": Threshold(s.queue_high, min(s.queue_low, s.queue_high)),
            "pending": Threshold(float(s.pending_high), float(min(s.pending_low, s.pending_high))),
            "injected": Threshold(1.0, 0.5),
        },
        window=s.window,
        decrease=s.decrease,
        increase=s.increase,
        min_admit=s.min_admit,
        retry_after_min=s.retry_after_min,
        retry_after_max=s.retry_after_max,
        exempt=frozenset(s.exempt),
        sustain=s.sustain,
    )


class NodeOverload:
    """The node's overload control and the task that samples its load."""

    def __init__(
        self,
        settings: OverloadSettings,
        loop: asyncio.AbstractEventLoop,
        *,
        pending: Callable[[], int] = lambda: 0,
        sockets: Callable[[], Iterable[socket.socket]] = lambda: (),
        cpu_time: Callable[[], float] | None = None,
        warm_up: float = WARM_UP,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self.pending = pending
        self.sockets = sockets
        self.cpu_time = cpu_time  # None: as [overload] says, read on the loop thread
        self.warm_up = warm_up
        self.control = OverloadControl(policy_of(settings), loop.time())
        self.injected: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def start(self) -> asyncio.Task[None] | None:
        """Start sampling (None when ``[overload]`` is off)."""
        if not self.enabled:
            return None
        self._task = asyncio.create_task(self._sample())
        return self._task

    async def _sample(self) -> None:
        loop = self.loop
        clock = self.cpu_time or (
            loop_demand_clock() if self.settings.cpu_counts_waiting else time.thread_time
        )
        interval = self.settings.interval
        last = loop.time()
        warm_until = last + self.warm_up
        last_cpu = clock()
        was = self.control.overloaded
        while True:
            expected = last + interval
            await asyncio.sleep(interval)
            now = loop.time()
            cpu_now = clock()
            elapsed = now - last
            sample: dict[str, float] = {}
            if now >= warm_until:
                sample["lag"] = max(0.0, now - expected)
                sample["cpu"] = (cpu_now - last_cpu) / elapsed if elapsed > 0 else 0.0
            if self.settings.queue_high:
                shares = [b for s in self.sockets() if (b := receive_backlog(s)) is not None]
                if shares:
                    sample["queue"] = max(shares)
            if self.settings.pending_high:  # counting costs a walk over the calls
                sample["pending"] = float(self.pending())
            if self.injected is not None:
                sample["injected"] = self.injected
            last, last_cpu = now, cpu_now
            try:
                self.control.observe(now, sample)
            except Exception:
                log.exception("overload control failed")
                continue
            if self.control.overloaded != was:
                was = self.control.overloaded
                self._log_change()

    def update(self, settings: OverloadSettings) -> None:
        """``[overload]`` read again (SIGHUP): new thresholds from the next window on
        (``ValueError``, nothing changed, for thresholds that do not fit together);
        turned off, sampling stops and nothing is shed; turned on, sampling starts.
        ``test_control`` is not taken (the control ops are set at start)."""
        policy = policy_of(settings)
        settings = settings.model_copy(update={"test_control": self.settings.test_control})
        now = self.loop.time()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.settings = settings
        self.control.set_policy(policy, now)
        if not settings.enabled:
            if self.control.overloaded:
                log.warning("overload control turned off: new calls admitted again")
            self.control.reset(now)
        self.start()

    def _log_change(self) -> None:
        c = self.control
        if c.overloaded:
            log.warning(
                "overloaded (load %.2f, %s): shedding new calls, admitting %.0f %%",
                c.load,
                ", ".join(f"{k} {v:.3g}" for k, v in sorted(c.signals.items())),
                100 * c.admit_ratio,
            )
        else:
            log.warning("overload over: new calls admitted again (shed so far: %s)", c.shed)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def status(self) -> dict[str, Any]:
        out = self.control.status(self.loop.time())
        out["enabled"] = self.enabled
        if self.injected is not None:
            out["injected"] = self.injected
        return out

    # --- control ops ----------------------------------------------------------
    def ops(self) -> dict[str, Handler]:
        """``overload`` (status); ``overload_test_load`` with ``[overload] test_control``."""
        handlers: dict[str, Handler] = {"overload": lambda args: self.status()}
        if self.settings.test_control:
            handlers["overload_test_load"] = self._test_load
        return handlers

    def _test_load(self, args: dict[str, Any]) -> dict[str, Any]:
        """TEST ONLY: take ``load`` (1.0 = at the threshold) as a load signal; null clears."""
        load = args.get("load")
        if load is not None and (
            isinstance(load, bool) or not isinstance(load, int | float) or not 0 <= load <= 1000
        ):
            raise ControlError("load must be a number from 0 to 1000, or null")
        self.injected = None if load is None else float(load)
        log.warning("overload test load %s", "cleared" if load is None else f"set to {load}")
        return self.status()

    def collector(self) -> OverloadCollector:
        return OverloadCollector(self)


class OverloadCollector(Collector):
    """``offhook_overload_*``: read from the control at scrape time."""

    def __init__(self, node: NodeOverload) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        c = self.node.control
        yield GaugeMetricFamily(
            "offhook_overload_state",
            "1 while the node sheds new calls (overloaded), else 0",
            value=1 if c.overloaded else 0,
        )
        yield GaugeMetricFamily(
            "offhook_overload_admit_ratio",
            "Share of new calls, registrations and subscriptions admitted (1: all)",
            value=c.admit_ratio,
        )
        yield GaugeMetricFamily(
            "offhook_overload_load",
            "The last window's load: the largest signal over its threshold (1: overloaded)",
            value=c.load,
        )
        signal = GaugeMetricFamily(
            "offhook_overload_signal",
            "The last window's mean of each load signal (cpu: share of a core, lag: seconds, "
            "pending: calls in setup)",
            labels=["signal"],
        )
        for name, value in sorted(c.signals.items()):
            signal.add_metric([name], value)
        yield signal
        shed = CounterMetricFamily(
            "offhook_overload_shed",
            "New requests refused by overload control (SIP 503, SCCP reorder), by kind",
            labels=["kind"],
        )
        for kind, count in sorted(c.shed.items()):
            shed.add_metric([kind], count)
        yield shed
        yield CounterMetricFamily(
            "offhook_overload_episodes",
            "Times the node became overloaded",
            value=c.episodes,
        )
