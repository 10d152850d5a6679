"""Overload benchmark: goodput and OPTIONS latency at 1x, 2x and 4x a sustainable call rate.

RFC 6357's failure mode is a server whose goodput (calls completed per
second) collapses when it is offered more than it can do. This starts
``offhook serve`` (overload control on, its defaults) and a SIPp UAS, then
offers authenticated device-to-device calls (SIPp ``uac_auth.xml``, 0 s
calls, as ``bench/sip_calls.py`` does) at ``--base`` calls/s times each of
``--factors`` (1, 2, 4), ``--duration`` seconds a step. Meanwhile a probe
sends one OPTIONS every 20 ms and measures the node's answer time. For each
step it reports the goodput (successful calls per second offered), its
share of ``--base``, the calls shed (503), the OPTIONS p50/p99 and losses,
and the node's CPU seconds; the goal (issue 13) is goodput >= 90 % of the
sustainable rate at 2x and 4x, and OPTIONS p99 < 50 ms.

``--base`` should be the sustainable rate ``bench/sip_calls.py`` measured in
the same conditions (default 300 calls/s). On a shared machine (SIPp's UAC
and UAS compete with the node for its cores) the figures are indicative.
Bounded: at most 60 s a step, 5 steps.

Where the goodput goes, per step: SIPp's retransmissions (a request left
unanswered for T1 = 500 ms, mostly queueing in the node's socket buffer),
its failed calls by cause, the datagrams the kernel dropped (``drops`` of
the node's and SIPp's UDP sockets in ``/proc/net/udp``: a full receive
buffer), and the node's CPU per admitted call and per shed INVITE (the
shed cost estimated against the first step's CPU per call). ``--node-cpu
N`` pins the node (every thread) to core N and ``--sipp-cpu LIST`` SIPp's
UAC and UAS to others (``taskset``), so that the load generator cannot take
the node's CPU; ``--src DIR`` runs the node from another source tree (the
same run's "before", e.g. ``git archive HEAD~3 src | tar -x -C DIR``);
``--profile FACTOR`` records the node with py-spy (raw, ``--nonblocking``)
during that step.

    python bench/overload.py --base 300 --factors 1,2,4 --duration 10
    python bench/overload.py --base 200 --node-cpu 0 --sipp-cpu 1 --src /tmp/before/src
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sip_calls import (
    HOST,
    PLAN,
    BenchError,
    cpu_seconds,
    free_port,
    read_stat_csv,
    register_uas,
    sipp_base,
    sipp_uas,
    write_results,
)

PROBE_INTERVAL = 0.02
PROBE_TIMEOUT = 1.0


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP sockets bound to ``port`` (a full
    receive buffer), from ``/proc/net/udp``'s last column; 0 when unknown."""
    total = 0
    with contextlib.suppress(OSError), open("/proc/net/udp") as f:
        next(f, None)
        for line in f:
            fields = line.split()
            if len(fields) > 12 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                total += int(fields[-1])
    return total


def pin(pid: int, cpus: str) -> None:
    """Every thread of ``pid`` (and of its children) on ``cpus`` (taskset)."""
    pids = [str(pid)]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=5)
        pids += out.stdout.split()
    for p in pids:
        subprocess.run(
            ["taskset", "-a", "-pc", cpus, p], capture_output=True, timeout=10, check=False
        )


def start_node(wd: Path, src: str, overload: dict[str, Any] | None = None) -> Any:
    """``offhook serve`` with overload control on (its defaults, or ``overload``'s
    settings), from ``src`` if given."""
    from support.server import OffhookServer

    config: dict[str, dict[str, Any]] = {
        "sip": {"rate_per_source": 1e9, "rate_burst": 1e9},  # SIPp sends from one address
        "overload": {"enabled": True, **(overload or {})},  # tests turn it off by default
    }
    env = {"PYTHONPATH": os.path.abspath(src)} if src else None
    server = OffhookServer(wd, PLAN, extra_config=config, env=env)
    try:
        server.start(timeout=30)
    except Exception as exc:
        with contextlib.suppress(Exception):
            server.stop(show_log=False)
        raise BenchError(f"offhook did not start: {exc}") from exc
    return server


class OptionsProbe(threading.Thread):
    """One OPTIONS at a time, every ``PROBE_INTERVAL`` s: the node's answer times."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.rtts: list[float] = []
        self.lost = 0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        me = sock.getsockname()[1]
        n = 0
        try:
            while not self._halt.is_set():
                n += 1
                call_id = f"probe-{n}@{HOST}"
                msg = (
                    f"OPTIONS sip:{HOST}:{self.port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bKprobe{n}\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:probe@{HOST}>;tag=probe\r\n"
                    f"To: <sip:{HOST}:{self.port}>\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                t0 = time.perf_counter()
                sock.sendto(msg, (HOST, self.port))
                if self._answered(sock, call_id.encode(), t0):
                    self.rtts.append(time.perf_counter() - t0)
                else:
                    self.lost += 1
                rest = PROBE_INTERVAL - (time.perf_counter() - t0)
                if rest > 0:
                    self._halt.wait(rest)
        finally:
            sock.close()

    @staticmethod
    def _answered(sock: socket.socket, call_id: bytes, t0: float) -> bool:
        while (left := PROBE_TIMEOUT - (time.perf_counter() - t0)) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except TimeoutError:
                return False
            if call_id in data:
                return True
        return False

    def percentile(self, q: float) -> float | None:
        if not self.rtts:
            return None
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Step:
    factor: float
    rate: int
    calls: int
    duration: int
    successful: int = 0
    failed: int = 0
    failed_by: dict[str, int] = field(default_factory=dict)  # SIPp's Failed* counters
    retransmissions: int = 0  # SIPp's, UAC and UAS (T1: no answer within 500 ms)
    elapsed_s: float = 0.0
    goodput: float = 0.0  # successful calls per second of offered load
    goodput_share: float = 0.0  # of --base
    shed_invites: int = 0
    shed_unparsed: int = 0  # sheds and resends decided before the full parse (sip.shed_peek)
    node_drops: int = 0  # datagrams the kernel dropped at the node's socket
    sipp_drops: int = 0  # ... at SIPp's UAC and UAS sockets
    cpu_s: float = 0.0
    cpu_ms_per_call: float | None = None  # node CPU / successful calls
    cpu_ms_per_shed: float | None = None  # (CPU - calls x the first step's cost) / shed
    options_sent: int = 0
    options_lost: int = 0
    options_p50_ms: float | None = None
    options_p99_ms: float | None = None
    overload_episodes: int = 0
    overload_status: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Result:
    base: int
    src: str = ""
    node_cpu: str = ""
    sipp_cpu: str = ""
    steps: list[Step] = field(default_factory=list)
    error: str = ""


@dataclass
class Rig:
    """The running node and load generator of one benchmark."""

    server: Any
    uac: list[str]
    uas_port: int
    prefix: list[str]  # taskset for SIPp
    wd: Path


def sipp_retransmissions(row: dict[str, str]) -> int:
    return int(row.get("Retransmissions(C)", "0") or 0)


def run_step(rig: Rig, base: int, factor: float, duration: int, profile: bool) -> Step:
    server, wd = rig.server, rig.wd
    rate = max(1, round(base * factor))
    step = Step(factor=factor, rate=rate, calls=rate * duration, duration=duration)
    name = f"uac-x{factor:g}"
    stat = wd / f"{name}.stat.csv"
    uac_port = free_port()
    cmd = [
        *rig.prefix,
        *sipp_base(rig.uac[0], uac_port, wd, name),
        *rig.uac[1:],
        "-r", str(rate), "-m", str(step.calls), "-l", str(max(rate * 10, 100)),
        "-recv_timeout", "8000", "-timeout", f"{duration * 2 + 30}s",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        f"{HOST}:{server.sip_port}",
    ]  # fmt: skip
    before = server.control("overload")
    drops0 = udp_drops(server.sip_port), udp_drops(rig.uas_port)
    probe = OptionsProbe(server.sip_port)
    spy: subprocess.Popen[bytes] | None = None
    if profile and shutil.which("py-spy"):
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(server.pid), "-f", "raw", "--nonblocking",
             "-r", "200", "-d", str(duration), "-o", str(wd / f"profile-x{factor:g}.txt")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    cpu0 = cpu_seconds(server.pid)
    t0 = time.monotonic()
    probe.start()
    try:
        with open(wd / f"{name}.out", "wb") as out:
            subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=duration * 2 + 60
            )
    finally:
        probe.stop()
    step.elapsed_s = round(time.monotonic() - t0, 2)
    step.cpu_s = round(cpu_seconds(server.pid) - cpu0, 2)
    if spy is not None:
        with contextlib.suppress(subprocess.SubprocessError):
            spy.wait(timeout=30)
    after = server.control("overload")
    step.overload_status = after
    step.shed_invites = after["shed"]["invite"] - before["shed"]["invite"]
    step.shed_unparsed = after.get("shed_unparsed", 0) - before.get("shed_unparsed", 0)
    step.overload_episodes = after["episodes"] - before["episodes"]
    step.node_drops = udp_drops(server.sip_port) - drops0[0]
    step.sipp_drops = udp_drops(rig.uas_port) - drops0[1] + udp_drops(uac_port)
    step.options_sent = len(probe.rtts) + probe.lost
    step.options_lost = probe.lost
    for attr, q in (("options_p50_ms", 0.5), ("options_p99_ms", 0.99)):
        value = probe.percentile(q)
        setattr(step, attr, None if value is None else round(value * 1000, 2))
    try:
        last = read_stat_csv(stat)
        step.successful = int(last.get("SuccessfulCall(C)", "0") or 0)
        step.failed = int(last.get("FailedCall(C)", "0") or 0)
        step.retransmissions = sipp_retransmissions(last)
        step.failed_by = {
            k[6:-3]: int(v)
            for k, v in last.items()
            if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)"
            and (v or "0").isdigit() and int(v)
        }  # fmt: skip
    except (OSError, BenchError, ValueError) as exc:
        step.note = f"no statistics: {exc}"
    step.goodput = round(step.successful / duration, 1)  # calls were offered over duration s
    step.goodput_share = round(step.goodput / base, 3)
    if step.successful:
        step.cpu_ms_per_call = round(1000 * step.cpu_s / step.successful, 3)
    return step


def bench(
    base: int,
    factors: list[float],
    duration: int,
    workdir: Path,
    *,
    src: str = "",
    node_cpu: str = "",
    sipp_cpu: str = "",
    profile: float | None = None,
    overload: dict[str, Any] | None = None,
) -> Result:
    result = Result(base, src=src, node_cpu=node_cpu, sipp_cpu=sipp_cpu)
    prefix = ["taskset", "-c", sipp_cpu] if sipp_cpu else []
    try:
        server = start_node(workdir, src, overload)
    except BenchError as exc:
        result.error = str(exc)
        return result
    try:
        if node_cpu:
            pin(server.pid, node_cpu)
        with sipp_uas(workdir, prefix=prefix) as uas_port:
            rig = Rig(server, register_uas(server.sip_port, uas_port, workdir), uas_port, prefix,
                      workdir)  # fmt: skip
            per_call: float | None = None
            for factor in factors:
                step = run_step(rig, base, factor, duration, profile == factor)
                if per_call is None:
                    per_call = step.cpu_ms_per_call
                elif step.shed_invites:
                    spent = 1000 * step.cpu_s - per_call * step.successful
                    step.cpu_ms_per_shed = round(spent / step.shed_invites, 3)
                result.steps.append(step)
                p99 = step.options_p99_ms
                print(
                    f"  x{factor:<4g} {step.rate:6d} calls/s offered: "
                    f"goodput {step.goodput:7.1f}/s "
                    f"({100 * step.goodput_share:5.1f} % of {base}), {step.successful} ok, "
                    f"{step.failed} failed {step.failed_by} ({step.shed_invites} shed 503, "
                    f"{step.shed_unparsed} unparsed), "
                    f"retrans {step.retransmissions}, drops node {step.node_drops} "
                    f"sipp {step.sipp_drops}, cpu {step.cpu_s:.1f}s "
                    f"({step.cpu_ms_per_call} ms/call, {step.cpu_ms_per_shed} ms/shed), "
                    f"OPTIONS p50 {step.options_p50_ms} ms p99 {p99} ms "
                    f"lost {step.options_lost}/{step.options_sent} {step.note}",
                    flush=True,
                )
                time.sleep(6)  # let the node recover and timers drain
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    finally:
        server.stop(show_log=False)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=int, default=300, help="the sustainable rate, calls/s")
    ap.add_argument("--factors", default="1,2,4", help="multiples of --base to offer")
    ap.add_argument("--duration", type=int, default=10, help="seconds per step (max 60)")
    ap.add_argument("--node-cpu", default="", help="pin the node to these cores (taskset)")
    ap.add_argument("--sipp-cpu", default="", help="pin SIPp to these cores (taskset)")
    ap.add_argument("--src", default="", help="run the node from this source tree")
    ap.add_argument("--profile", type=float, default=None, help="py-spy during this factor")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="an [overload] setting for this run (repeatable), e.g. queue_high=0.02",
    )  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    overload: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overload[key.strip()] = json.loads(value)
    if shutil.which("sipp") is None:
        print("sipp not found: install Debian sip-tester (scripts/install-deps.sh)")
        return 2
    factors = [float(x) for x in args.factors.split(",") if x.strip()][:5]
    duration = max(1, min(args.duration, 60))
    base = max(1, min(args.base, 20_000))
    workdir = Path(tempfile.mkdtemp(prefix="offhook-overload-"))
    print(
        f"work directory {workdir}; base {base} calls/s x {factors}; {duration}s per step; "
        f"node {args.src or 'this tree'} on cpu {args.node_cpu or 'any'}, "
        f"SIPp on cpu {args.sipp_cpu or 'any'}; [overload] {overload or 'defaults'}"
    )
    result = bench(
        base,
        factors,
        duration,
        workdir,
        src=args.src,
        node_cpu=args.node_cpu,
        sipp_cpu=args.sipp_cpu,
        profile=args.profile,
        overload=overload,
    )
    if result.error:
        print(f"error: {result.error}")
    write_results(
        "overload",
        {
            "base": base,
            "duration_s": duration,
            "src": args.src or "this tree",
            "node_cpu": args.node_cpu,
            "sipp_cpu": args.sipp_cpu,
            "overload": overload,
            "steps": [asdict(s) for s in result.steps],
            "error": result.error,
            "note": "a shared machine: SIPp competes with the node; figures are indicative",
        },
    )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())
