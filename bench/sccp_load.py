"""SCCP load client for ``sccp_phones.py``: thousands of simulated 7960s per process.

One worker process owns a slice of the phones and runs them on one asyncio
loop (uvloop when installed). A phone is an ``asyncio.Protocol`` with a few
slots, not a task: what it sends is encoded once with ``offhook.sccp.encode``
(Register per phone, the rest shared), and what arrives is split into frames
by the length field (checked against a maximum before it is used) and
dispatched on the message id. The bodies the phone needs are decoded with
``offhook.sccp.decode`` (RegisterAck, RegisterReject, StartTone, CallState);
everything else is only counted, so that the client stays much lighter than
the node it loads.

Registration, the way a 7960 does it (``tests/support/sccp_phone.py`` has the
whole simulator): Register + IpPort; CapabilitiesRes when asked. A "full"
phone then sends ButtonTemplateReq, SoftKeyTemplateReq, SoftKeySetReq and
ConfigStatReq, waits for the four answers, sends LineStatReq(1) and
ForwardStatReq(1), waits for both, sends TimeDateReq, waits for
DefineTimeDate and sends RegisterAvailableLines: then it counts as
registered. A phone that is not "full" counts as registered once it has
RegisterAck and has answered CapabilitiesReq. Every phone binds its own
source address in 127.0.0.0/8 (``source_ip``), as phones on a LAN have one
each. A phone that fails (connection refused or lost, RegisterReject, no
answer in ``register_timeout``) retries after a back-off, a bounded number of
times.

Keepalive: from registration on, a KeepAlive every interval RegisterAck
gave; a KeepAlive sent while the previous one is unanswered counts as missed.

Off-hook latency: OffHook is written and ``time.perf_counter()`` noted; when
the StartTone with inside dial tone arrives (the time taken when the chunk
carrying it is read) the difference is one sample; then OnHook, and the phone
is free again when CallState ON_HOOK arrives.

The parent talks to a worker over a ``multiprocessing`` pipe: commands are
``(name, args)`` tuples, each answered by one dict (see ``Worker.command``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import signal
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

from offhook.sccp import MessageId, decode, encode
from offhook.sccp.messages import (
    ButtonTemplateReq,
    CallState,
    CapabilitiesRes,
    Capability,
    ConfigStatReq,
    ForwardStatReq,
    IpPort,
    KeepAlive,
    LineStatReq,
    OffHook,
    OnHook,
    Register,
    RegisterAck,
    RegisterAvailableLines,
    SoftKeySetReq,
    SoftKeyTemplateReq,
    StartTone,
    TimeDateReq,
)

MAX_FRAME = 65536
"""Largest length field the client accepts (the node sends < 3 kB)."""
DEVICE_TYPE_7960 = 7
INSIDE_DIAL_TONE = 0x21
CALL_STATE_ON_HOOK = 2
# What a 7960 offers: G.711 mu-law, A-law, G.729, G.729 Annex A.
CAPABILITIES = (Capability(4, 40), Capability(2, 40), Capability(11, 60), Capability(12, 60))

_HEAD = struct.Struct("<III")
_KEEPALIVE = encode(KeepAlive())
_CAPABILITIES_RES = encode(CapabilitiesRes(CAPABILITIES))
_STATUS_REQS = b"".join(
    encode(m) for m in (ButtonTemplateReq(), SoftKeyTemplateReq(), SoftKeySetReq(), ConfigStatReq())
)
_LINE_REQS = encode(LineStatReq(1)) + encode(ForwardStatReq(1))
_TIME_DATE_REQ = encode(TimeDateReq())
_AVAILABLE_LINES = encode(RegisterAvailableLines(1))
_OFF_HOOK = encode(OffHook())
_ON_HOOK = encode(OnHook())

_ID_KEEPALIVE_ACK = int(MessageId.KEEP_ALIVE_ACK)
_ID_REGISTER_ACK = int(MessageId.REGISTER_ACK)
_ID_REGISTER_REJECT = int(MessageId.REGISTER_REJECT)
_ID_CAPABILITIES_REQ = int(MessageId.CAPABILITIES_REQ)
_ID_START_TONE = int(MessageId.START_TONE)
_ID_CALL_STATE = int(MessageId.CALL_STATE)
# Answers a full registration waits for, stage by stage.
_STAGE_STATUS = frozenset(
    int(m)
    for m in (
        MessageId.BUTTON_TEMPLATE,
        MessageId.SOFT_KEY_TEMPLATE_RES,
        MessageId.SOFT_KEY_SET_RES,
        MessageId.CONFIG_STAT,
    )
)
_STAGE_LINES = frozenset((int(MessageId.LINE_STAT), int(MessageId.FORWARD_STAT)))
_ID_DEFINE_TIME_DATE = int(MessageId.DEFINE_TIME_DATE)

# Phone stages.
IDLE, WAIT_ACK, WAIT_STATUS, WAIT_LINES, WAIT_TIME, REGISTERED = range(6)


def device_name(index: int) -> str:
    """SEP + a MAC: phone ``index`` of the bench (0A:00:00:..., a locally administered range)."""
    return f"SEP{0x0A0000000000 + index:012X}"


def source_ip(index: int) -> str:
    """Phone ``index``'s own loopback address: 127.1.0.1, 127.1.0.2, ... (.0 and .255 skipped)."""
    host, low = divmod(index, 254)
    mid, high = host % 256, 1 + host // 256
    if high > 254:
        raise ValueError(f"no loopback address left for phone {index}")
    return f"127.{high}.{mid}.{low + 1}"


def source_for(index: int, sources: int) -> str:
    """Phone ``index``'s source address when ``sources`` addresses are shared by all phones."""
    return source_ip(index % sources)


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else the default one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def cpu_self() -> float:
    """CPU seconds (user + system) of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Counters:
    """What a worker's phones did (all cumulative)."""

    registered: int = 0
    register_failures: int = 0
    rejects: int = 0
    lost: int = 0
    keepalives_sent: int = 0
    keepalive_acks: int = 0
    keepalives_missed: int = 0
    frames_in: int = 0
    bad_frames: int = 0


class Phone(asyncio.Protocol):
    """One simulated 7960 on one TCP connection."""

    __slots__ = (
        "buf",
        "done",
        "full",
        "hook_done",
        "index",
        "interval",
        "ip",
        "ka_handle",
        "ka_pending",
        "name",
        "offhook_at",
        "pending",
        "stage",
        "tone_at",
        "transport",
        "worker",
    )

    def __init__(self, worker: Worker, index: int, ip: str, full: bool) -> None:
        self.worker = worker
        self.index = index
        self.name = device_name(index)
        self.ip = ip
        self.full = full
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.stage = IDLE
        self.pending = 0
        self.interval = 0
        self.done: asyncio.Future[bool] | None = None
        self.ka_handle: asyncio.TimerHandle | None = None
        self.ka_pending = False
        self.offhook_at = 0.0
        self.tone_at = 0.0
        self.hook_done: asyncio.Future[float | None] | None = None

    @property
    def connected(self) -> bool:
        return self.stage == REGISTERED and self.transport is not None

    # -- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.buf = b""
        self.stage = WAIT_ACK
        self.pending = 2  # RegisterAck and CapabilitiesReq
        port = int(transport.get_extra_info("sockname")[1])
        register = Register(self.name, 0, 1, self.ip, DEVICE_TYPE_7960, 5, 0, 5)
        self.transport.write(encode(register) + encode(IpPort(port)))

    def connection_lost(self, exc: Exception | None) -> None:
        was_registered = self.stage == REGISTERED
        self.transport = None
        self.stage = IDLE
        if self.ka_handle is not None:
            self.ka_handle.cancel()
            self.ka_handle = None
        self._finish(False)
        if self.hook_done is not None and not self.hook_done.done():
            self.hook_done.set_result(None)
        if was_registered:
            self.worker.counters.lost += 1

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.buf:
            data = self.buf + data
            self.buf = b""
        pos, end_of_data = 0, len(data)
        while end_of_data - pos >= 12:
            length, _version, msg_id = _HEAD.unpack_from(data, pos)
            if length < 4 or length > MAX_FRAME:
                self.worker.counters.bad_frames += 1
                self.close()
                return
            end = pos + 8 + length
            if end > end_of_data:
                break
            self.worker.counters.frames_in += 1
            self._frame(msg_id, data, pos, end, now)
            pos = end
        if pos < end_of_data:
            self.buf = data[pos:]

    # -- messages ------------------------------------------------------------

    def _body(self, data: bytes, pos: int, end: int) -> bytes:
        return data[pos + 12 : end]

    def _frame(self, msg_id: int, data: bytes, pos: int, end: int, now: float) -> None:
        if msg_id == _ID_KEEPALIVE_ACK:
            self.ka_pending = False
            self.worker.counters.keepalive_acks += 1
        elif self.stage == REGISTERED:
            if msg_id == _ID_START_TONE and self.offhook_at:
                tone = decode(0, msg_id, self._body(data, pos, end))
                if isinstance(tone, StartTone) and tone.tone == INSIDE_DIAL_TONE:
                    self.tone_at = now
                    self.send(_ON_HOOK)
            elif msg_id == _ID_CALL_STATE and self.tone_at:
                state = decode(0, msg_id, self._body(data, pos, end))
                if isinstance(state, CallState) and state.call_state == CALL_STATE_ON_HOOK:
                    latency = self.tone_at - self.offhook_at
                    self.offhook_at = self.tone_at = 0.0
                    if self.hook_done is not None and not self.hook_done.done():
                        self.hook_done.set_result(latency)
        elif self.stage == WAIT_ACK:
            if msg_id == _ID_REGISTER_ACK:
                ack = decode(0, msg_id, self._body(data, pos, end))
                if isinstance(ack, RegisterAck):
                    self.interval = max(1, ack.keep_alive_interval)
                self._step_ack()
            elif msg_id == _ID_CAPABILITIES_REQ:
                self.send(_CAPABILITIES_RES)
                self._step_ack()
            elif msg_id == _ID_REGISTER_REJECT:
                self.worker.counters.rejects += 1
                self.close()
        elif self.stage == WAIT_STATUS:
            if msg_id in _STAGE_STATUS:
                self.pending -= 1
                if not self.pending:
                    self.stage, self.pending = WAIT_LINES, 2
                    self.send(_LINE_REQS)
        elif self.stage == WAIT_LINES:
            if msg_id in _STAGE_LINES:
                self.pending -= 1
                if not self.pending:
                    self.stage, self.pending = WAIT_TIME, 1
                    self.send(_TIME_DATE_REQ)
        elif self.stage == WAIT_TIME and msg_id == _ID_DEFINE_TIME_DATE:
            self.send(_AVAILABLE_LINES)
            self._registered()

    def _step_ack(self) -> None:
        self.pending -= 1
        if self.pending:
            return
        if self.full:
            self.stage, self.pending = WAIT_STATUS, 4
            self.send(_STATUS_REQS)
        else:
            self._registered()

    def _registered(self) -> None:
        self.stage = REGISTERED
        self.worker.counters.registered += 1
        self._arm_keepalive()
        self._finish(True)

    def _finish(self, ok: bool) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(ok)

    def send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- keepalive and hook --------------------------------------------------

    def _arm_keepalive(self) -> None:
        loop = self.worker.loop
        self.ka_handle = loop.call_later(self.interval, self._keepalive)

    def _keepalive(self) -> None:
        self.ka_handle = None
        if self.stage != REGISTERED:
            return
        counters = self.worker.counters
        if self.ka_pending:
            counters.keepalives_missed += 1
        self.ka_pending = True
        counters.keepalives_sent += 1
        self.send(_KEEPALIVE)
        self._arm_keepalive()

    def off_hook(self) -> asyncio.Future[float | None]:
        """Lift the handset; the future gives OffHook -> StartTone seconds (None: lost)."""
        self.hook_done = self.worker.loop.create_future()
        self.tone_at = 0.0
        self.offhook_at = time.perf_counter()
        self.send(_OFF_HOOK)
        return self.hook_done


class Worker:
    """One load process: its phones, its loop, its counters."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        indices: range,
        sources: int,
        full_every: int,
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.counters = Counters()
        self.phones = [
            Phone(self, i, source_for(i, sources), full_every > 0 and i % full_every == 0)
            for i in indices
        ]

    # -- registration storm -----------------------------------------------------

    async def register_all(
        self, window: int, register_timeout: float, attempts: int, deadline: float
    ) -> dict[str, Any]:
        """Register every phone, at most ``window`` at a time, for at most ``deadline`` s."""
        gate = asyncio.Semaphore(window)
        times: list[float] = []
        t0 = time.monotonic()

        async def one(phone: Phone) -> None:
            async with gate:
                for attempt in range(attempts):
                    if attempt:
                        await asyncio.sleep(min(5.0, 0.5 * 2**attempt) * random.uniform(0.5, 1))
                    started = time.monotonic()
                    phone.done = self.loop.create_future()
                    try:
                        await self.loop.create_connection(
                            lambda: phone, self.host, self.port, local_addr=(phone.ip, 0)
                        )
                        ok = await asyncio.wait_for(phone.done, register_timeout)
                    except (OSError, TimeoutError):
                        ok = False
                    if ok:
                        times.append(time.monotonic() - started)
                        return
                    self.counters.register_failures += 1
                    phone.close()

        tasks = [asyncio.ensure_future(one(p)) for p in self.phones]
        _, late = await asyncio.wait(tasks, timeout=deadline)
        for task in late:  # bounded: phones still trying at the deadline give up
            task.cancel()
        if late:
            await asyncio.wait(late)
        t1 = time.monotonic()
        times.sort()
        return {
            "t_start": t0,
            "t_end": t1,
            "registered": sum(1 for p in self.phones if p.connected),
            "gave_up": len(late),
            "phones": len(self.phones),
            "register_times": times,
        }

    # -- off-hook latency -------------------------------------------------------

    async def latency(self, samples: int, rate: float, timeout: float) -> dict[str, Any]:
        """Off-hook ``samples`` distinct phones, ``rate`` per second; OffHook -> dial tone."""
        ready = [p for p in self.phones if p.connected]
        chosen = random.sample(ready, min(samples, len(ready)))
        results: list[float] = []
        timeouts = 0

        async def one(phone: Phone, at: float) -> None:
            nonlocal timeouts
            await asyncio.sleep(max(0.0, at - self.loop.time()))
            try:
                got = await asyncio.wait_for(phone.off_hook(), timeout)
            except TimeoutError:
                got = None
            if got is None:
                timeouts += 1
                if phone.connected and phone.offhook_at:
                    phone.send(_ON_HOOK)  # leave the phone idle for the rest of the run
                phone.offhook_at = phone.tone_at = 0.0
            else:
                results.append(got)

        start = self.loop.time() + 0.1
        step = 1.0 / rate if rate > 0 else 0.0
        await asyncio.gather(*(one(p, start + k * step) for k, p in enumerate(chosen)))
        return {"latencies": results, "timeouts": timeouts}

    # -- pipe ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        c = self.counters
        return {
            **c.__dict__,
            "connected": sum(1 for p in self.phones if p.connected),
            "phones": len(self.phones),
            "cpu_s": cpu_self(),
            "t": time.monotonic(),
        }

    async def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "register":
            return await self.register_all(
                int(args["window"]),
                float(args["register_timeout"]),
                int(args["attempts"]),
                float(args["deadline"]),
            )
        if name == "latency":
            return await self.latency(
                int(args["samples"]), float(args["rate"]), float(args["timeout"])
            )
        if name == "snapshot":
            return self.snapshot()
        if name == "stop":
            for p in self.phones:
                if p.ka_handle is not None:
                    p.ka_handle.cancel()
                p.close()
            await asyncio.sleep(0.2)
            return self.snapshot()
        raise ValueError(f"unknown command {name!r}")


def worker_main(
    conn: Connection, host: str, port: int, first: int, count: int, sources: int, full_every: int
) -> None:
    """Entry point of a load process: run commands from ``conn`` until ``stop``."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
    loop = new_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(loop, host, port, range(first, first + count), sources, full_every)
    finished = loop.create_future()
    busy: set[asyncio.Task[None]] = set()

    async def run(name: str, args: dict[str, Any]) -> None:
        try:
            reply: dict[str, Any] = {"ok": True, **await worker.command(name, args)}
        except Exception as exc:  # reported to the parent, which fails the run
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        conn.send(reply)
        if name == "stop" and not finished.done():
            finished.set_result(None)

    def readable() -> None:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            if not finished.done():
                finished.set_result(None)
            return
        task = loop.create_task(run(name, args))
        busy.add(task)
        task.add_done_callback(busy.discard)

    loop.add_reader(conn.fileno(), readable)
    conn.send({"ok": True, "ready": True, "cpu_s": cpu_self()})
    try:
        loop.run_until_complete(finished)
    finally:
        loop.remove_reader(conn.fileno())
        for p in worker.phones:
            p.close()
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
