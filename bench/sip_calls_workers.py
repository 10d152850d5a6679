"""``bench/sip_calls.py --workers 1,2``: offhook with N worker processes, same load for each N.

The load comes from several source addresses, because the kernel spreads a
node's SIP port over its workers by source address (docs/workers.md): two
SIPp UACs, from 127.0.0.2 (worker 0 of 2) and 127.0.0.3 (worker 1 of 2),
each at half the step's rate, call the SIPp UAS registered from 127.0.0.1
(worker 1 of 2). So with two workers half of the calls are handled on the
worker that also reads the UAS's answers, and the other half have their
UAS datagrams forwarded over the bus: the (N-1)/N of the design. With one
worker the same two UACs run, so only the node differs.

CPU is that of the whole process tree (``offhook serve``: the supervisor,
its workers and their media servers; with one worker, the node and its
media server), from /proc, per step; RSS is the sum of the tree's peaks.
A step passes on the same rule as ``sip_calls.run_step``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from sip_calls import (
    MAX_FAILED_FRACTION,
    BenchError,
    ServerResult,
    Step,
    cpu_seconds,
    peak_rss_kb,
    read_stat_csv,
    register_uas,
    sipp_base,
    sipp_uas,
    start_offhook,
)

from support.ports import HOST, free_port

SOURCES = ("127.0.0.2", "127.0.0.3")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(pid: int) -> dict[int, float]:
    cpu = {}
    for p in tree(pid):
        try:
            cpu[p] = cpu_seconds(p)
        except (OSError, ValueError):
            continue
    return cpu


def label(pid: int, top: int) -> str:
    """What a process of the tree is: the node (or supervisor), a worker, a media server."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return "gone"
    if b"worker" in args and b"--index" in args:
        return "w" + args[args.index(b"--index") + 1].decode()
    if b"media" in args:
        return "media"
    return "node" if pid == top else "other"


def tree_rss_kb(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            total += peak_rss_kb(p)
        except OSError:
            continue
    return total


def wait_binding(host: str, port: int, timeout: float = 30.0) -> None:
    """Until the control endpoint on ``port`` shows the UAS's registration."""
    from offhook.ris.control import request_at

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = request_at(host, port, "status", timeout=5.0)
            if any(r["device"] == "benchuas" for r in state["registrations"]):
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.2)
    raise BenchError(f"the worker on control port {port} never had the UAS's binding")


def run_step(
    server_pid: int, target_port: int, rate: int, duration: int, wd: Path, uac_args: list[str]
) -> Step:
    calls = rate * duration
    step = Step(rate=rate, calls=calls)
    shares = [rate // len(SOURCES) + (1 if i < rate % len(SOURCES) else 0) for i in range(2)]
    procs, stats, outs = [], [], []
    cpu0 = tree_cpu(server_pid)
    t0 = time.monotonic()
    for source, share in zip(SOURCES, shares, strict=True):
        name = f"uac-{rate}-{source}"
        stat = wd / f"{name}.stat.csv"
        base = sipp_base(uac_args[0], free_port(), wd, name)
        base[base.index("-i") + 1] = source
        cmd = [
            *base, *uac_args[1:],
            "-r", str(share), "-m", str(share * duration), "-l", str(max(share * 10, 100)),
            "-recv_timeout", "8000", "-timeout", f"{duration * 2 + 30}s",
            "-trace_stat", "-stf", str(stat), "-fd", "1",
            f"{HOST}:{target_port}",
        ]  # fmt: skip
        out = open(wd / f"{name}.out", "wb")  # noqa: SIM115 - closed below
        outs.append(out)
        procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out))
        stats.append(stat)
    try:
        for proc in procs:
            proc.wait(timeout=duration * 2 + 60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for out in outs:
            out.close()
    step.elapsed_s = round(time.monotonic() - t0, 2)
    cpu1 = tree_cpu(server_pid)
    step.cpu_s = round(sum(cpu1[p] - cpu0.get(p, 0.0) for p in cpu1), 2)
    split: dict[str, float] = {}
    for p in cpu1:
        name = label(p, server_pid)
        split[name] = split.get(name, 0.0) + cpu1[p] - cpu0.get(p, 0.0)
    cpu_split = "cpu " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(split.items()))
    step.peak_rss_kb = tree_rss_kb(server_pid)
    step.sipp_exit = max(p.returncode or 0 for p in procs)
    try:
        for stat in stats:
            last = read_stat_csv(stat)
            step.successful += int(last.get("SuccessfulCall(C)", "0") or 0)
            step.failed += int(last.get("FailedCall(C)", "0") or 0)
    except (OSError, BenchError, ValueError) as exc:
        step.note = f"no statistics: {exc}"
        return step
    done = step.successful + step.failed
    sustained = step.elapsed_s <= duration * 1.1 + 2
    step.passed = done >= calls and step.failed <= MAX_FAILED_FRACTION * calls and sustained
    if done < calls:
        step.note = f"only {done} of {calls} calls completed"
    elif not sustained:
        step.note = f"took {step.elapsed_s}s for {duration}s of calls (rate not sustained)"
    elif not step.passed:
        step.note = f"{step.failed} failed calls"
    step.note = f"{step.note}; {cpu_split}" if step.note else cpu_split
    return step


def bench_workers(
    workers: int, rates: list[int], duration: int, workdir: Path, src: str = "", label: str = ""
) -> ServerResult:
    result = ServerResult(label or f"offhook-w{workers}")
    wd = workdir / result.server
    wd.mkdir()
    server, why = start_offhook(wd, extra={"node": {"workers": workers}}, src=src)
    if server is None:
        result.error = why
        return result
    try:
        with sipp_uas(wd) as uas_port:
            uac = register_uas(server.sip_port, uas_port, wd)
            for index in range(workers):  # each worker up, with the UAS's binding
                wait_binding(server.admin_host, server.admin_port + index)
            for rate in rates:
                step = run_step(server.pid, server.sip_port, rate, duration, wd, uac)
                result.steps.append(step)
                result.peak_rss_kb = max(result.peak_rss_kb, step.peak_rss_kb)
                status = f"ok ({step.note})" if step.passed else f"FAIL {step.note}"
                print(
                    f"  {result.server:10} {rate:6d} calls/s: {step.successful}/{step.calls} ok, "
                    f"{step.failed} failed, {step.elapsed_s:.1f}s, cpu {step.cpu_s:.1f}s "
                    f"({1000 * step.cpu_s / max(1, step.calls):.2f} ms/call), "
                    f"rss {step.peak_rss_kb // 1024} MB  {status}",
                    flush=True,
                )
                if not step.passed:
                    break
                result.best_rate = rate
                time.sleep(3)
        if workers > 1:  # what went over the bus, for the calls of the whole ladder
            calls = sum(step.calls for step in result.steps)
            for index in range(workers):
                bus = status_of(server.admin_host, server.admin_port + index).get("worker", {})
                print(
                    f"  worker {index}: forwarded {bus.get('forwarded')} "
                    f"({bus.get('forwarded', 0) / max(1, calls):.2f} per call), received "
                    f"{bus.get('received')}, dropped {bus.get('bus_dropped')}, "
                    f"waits {bus.get('bus_waits')}",
                    flush=True,
                )
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    finally:
        server.stop(show_log=False)
    return result


def status_of(host: str, port: int) -> dict[str, Any]:
    from offhook.ris.control import request_at

    state = request_at(host, port, "status", timeout=5.0)
    return state if isinstance(state, dict) else {}
