"""SCCP phone-scale benchmark: N simulated 7960s against one ``offhook serve``.

Starts a real node on loopback (``tests/support/server.py``: SQLite, free
ports, TFTP off) with a plan of N SCCP phones (``SEP0A0000000000`` ...,
model 7960, one line each, DNs 200000 ...), ``[sccp] keepalive`` short so
that keepalive load is measurable in a bounded run, and ``max_connections``
above N. Then, from ``--processes`` load processes (``sccp_load.py``: raw
frames over asyncio/uvloop, each phone on its own source address in
127.0.0.0/8, so the default per-source cap of 64 applies as on a LAN):

1. **idle baseline**: the node's CPU and RSS with no phone for a few seconds;
2. **registration storm**: every phone registers (the whole 7960 sequence by
   default), at most ``--window`` registrations in flight per load process;
   phones registered per second = N / (last registered - first connect);
3. **all connected**: the clients' count and the node's own
   (the ``status`` op of its control endpoint: ``sccp.registered``);
4. **keepalive load**: ``--idle`` seconds with every phone sending a
   KeepAlive each interval; node CPU % and RSS, CPU µs per keepalive and
   bytes of RSS per phone (RSS now minus the baseline, over N);
5. **off-hook latency under that load**: ``--samples`` distinct phones go
   off hook at ``--offhook-rate`` per second; OffHook sent -> StartTone
   (inside dial tone) received, p50/p95/p99; each goes back on hook;
6. all still connected (clients and node), then everything is stopped.

The load processes' own CPU is reported next to the node's for each phase,
so one can see that the node, not the client, was the bottleneck. There is
no SCCP call manager to measure side by side here (Asterisk's chan_skinny is
not packaged in this Debian; the script checks ``apt-cache policy
asterisk``), so the ratio is against CallManager 3.x's documented ceiling of
2,500 IP phones per server. The result is printed and written as JSON to
``bench/results/``.

Run from the repository root::

    python bench/sccp_phones.py                           # 10,000 phones, about 90 s
    python bench/sccp_phones.py --phones 2000 --idle 20 --samples 300
    python bench/sccp_phones.py --phones 5000 --workers 2   # spread over two workers

The node's CPU and memory are its whole process tree's (with ``--workers`` N >
1: the supervisor, N workers and their media servers; with one, the node and
its media server); its SCCP counts are every worker's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

from sccp_load import device_name, worker_main  # noqa: E402
from sip_calls_workers import tree  # noqa: E402

from offhook.ris.control import ControlError, request_at  # noqa: E402
from support.ports import HOST  # noqa: E402

RESULTS = HERE / "results"
CALLMANAGER_3X_PHONES = 2500
"""IP phones per CallManager 3.x server (Cisco IP Telephony Network Design Guide,
78-11103-03, ch. 3: "Maximum of 2500 registered IP phones ... per Cisco
CallManager"; MCS-7835)."""
CALLMANAGER_KEEPALIVE = 30
"""CallManager's default keepalive interval, seconds (also offhook's default)."""
MAX_PHONES = 60000
NOFILE_SPARE = 1024
"""Descriptors kept for everything but the phones (database, log, listeners, pipes)."""
FIRST_DN = 200000


class BenchError(RuntimeError):
    """The node or the load processes could not be set up or failed."""


# -- the node process ---------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def listen_overflows() -> int:
    """The kernel's TcpExt ListenOverflows (SYNs dropped on a full accept queue), host-wide."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/net/netstat") as f:
            lines = [ln.split() for ln in f if ln.startswith("TcpExt:")]
        names, values = lines[0], lines[1]
        return int(values[names.index("ListenOverflows")])
    return -1


def fetch_status(port: int, timeout: float = 60.0) -> dict[str, Any]:
    """The node's ``status`` over its control endpoint (what ``offhook status --json`` prints).

    Retried until ``timeout``: the control endpoint starts a moment after SIP answers.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            data: dict[str, Any] = request_at(HOST, port, "status", timeout=timeout)
            return data
        except (OSError, ControlError) as exc:  # NodeUnavailable is an OSError
            if time.monotonic() > deadline:
                raise BenchError(f"no answer from the node's control endpoint: {exc}") from exc
            time.sleep(0.2)


def workers_sccp_count(admin_port: int, workers: int) -> dict[str, Any]:
    """``node_sccp_count`` of every worker (each answers on ``[admin] port + index``), summed."""
    counts = [node_sccp_count(fetch_status(admin_port + i)) for i in range(workers)]
    if workers == 1:
        return counts[0]
    total: dict[str, Any] = {
        key: sum(c.get(key) or 0 for c in counts)
        for key in ("connections", "registered", "sccp_bindings")
    }
    total["sccp_bindings"] = counts[0]["sccp_bindings"]  # each worker holds every binding
    total["by_worker"] = [c.get("registered") for c in counts]
    return total


def node_sccp_count(status: dict[str, Any]) -> dict[str, Any]:
    """SCCP connections/registered from the node's status (or counted from its bindings)."""
    sccp = status.get("sccp")
    bindings = sum(
        1 for b in status.get("registrations", []) if str(b.get("contact", "")).startswith("sccp:")
    )
    out: dict[str, Any] = {"sccp_bindings": bindings}
    if isinstance(sccp, dict):
        out["connections"] = sccp.get("connections")
        out["registered"] = sccp.get("registered")
    rejections = status.get("counters", {}).get("rejections", {})
    if isinstance(rejections, dict):
        out["rejections"] = {k: v for k, v in rejections.items() if "sccp" in str(k)} or rejections
    return out


def raise_nofile(needed: int) -> tuple[int, int, str]:
    """Raise RLIMIT_NOFILE's soft limit towards ``needed``; returns (soft, hard, warning)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    warning = ""
    if soft != resource.RLIM_INFINITY and soft < needed:
        warning = (
            f"RLIMIT_NOFILE is {soft} (hard {hard}) but this run needs about {needed} "
            "descriptors in the node: raise the hard limit (ulimit -Hn, limits.conf) or "
            "run fewer phones"
        )
    return soft, hard, warning


def sccp_peer_note() -> str:
    """Why there is no SCCP call manager measured side by side."""
    candidate = "unknown"
    if shutil.which("apt-cache"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["apt-cache", "policy", "asterisk"], capture_output=True, text=True, timeout=30
            ).stdout
            for line in out.splitlines():
                if "Candidate:" in line:
                    candidate = line.split(":", 1)[1].strip()
    if candidate in ("(none)", "unknown", ""):
        return (
            f"no SCCP call manager to measure side by side: `apt-cache policy asterisk` "
            f"gives candidate {candidate or '(none)'} (Asterisk and its chan_skinny are not "
            "packaged here); the comparison is "
            f"with CallManager 3.x's documented {CALLMANAGER_3X_PHONES} IP phones per server"
        )
    return (
        f"asterisk {candidate} is installable but not measured here (this Debian's build has no "
        "chan_skinny); the comparison is with CallManager 3.x's documented "
        f"{CALLMANAGER_3X_PHONES} IP phones per server"
    )


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        uv = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uv = ""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "uvloop": uv,
        "loadavg": os.getloadavg(),
    }


# -- load processes -------------------------------------------------------------


@dataclass
class LoadProcess:
    proc: BaseProcess
    conn: Connection
    phones: int


class Load:
    """The load processes and the pipe protocol to them."""

    def __init__(
        self, port: int, phones: int, processes: int, sources: int, full_every: int
    ) -> None:
        ctx = mp.get_context("fork")  # Linux only, as /proc is
        self.workers: list[LoadProcess] = []
        per, extra = divmod(phones, processes)
        first = 0
        for k in range(processes):
            count = per + (1 if k < extra else 0)
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                args=(child, HOST, port, first, count, sources, full_every),
                name=f"sccp-load-{k}",
                daemon=True,
            )
            proc.start()
            child.close()
            self.workers.append(LoadProcess(proc, parent, count))
            first += count
        for w in self.workers:
            self._recv(w, 60)

    def _recv(self, w: LoadProcess, timeout: float) -> dict[str, Any]:
        if not w.conn.poll(timeout):
            raise BenchError(f"load process {w.proc.name} did not answer within {timeout:.0f}s")
        try:
            reply: dict[str, Any] = w.conn.recv()
        except EOFError as exc:
            raise BenchError(f"load process {w.proc.name} died (exit {w.proc.exitcode})") from exc
        if not reply.get("ok"):
            raise BenchError(f"load process {w.proc.name}: {reply.get('error')}")
        return reply

    def all(
        self, name: str, args: list[dict[str, Any]] | dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """Send one command to every process (``args`` per process or shared); gather replies."""
        for k, w in enumerate(self.workers):
            w.conn.send((name, args[k] if isinstance(args, list) else args))
        return [self._recv(w, timeout) for w in self.workers]

    def snapshot(self) -> dict[str, Any]:
        snaps = self.all("snapshot", {}, 60)
        total: dict[str, Any] = {}
        for s in snaps:
            for key, value in s.items():
                if key in ("ok", "t"):
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return total

    def stop(self) -> dict[str, Any]:
        final: dict[str, Any] = {}
        with contextlib.suppress(BenchError, OSError):
            final = {"replies": self.all("stop", {}, 30)}
        for w in self.workers:
            w.proc.join(10)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(5)
        return final


# -- statistics -------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def pct_ms(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {f"p{q:g}_ms": round(1000 * percentile(v, q), 3) for q in (50, 95, 99, 100)} | {
        "mean_ms": round(1000 * sum(v) / len(v), 3) if v else math.nan,
        "n": len(v),
    }


def node_cpu_seconds(pid: int) -> float:
    """The node's CPU: its process tree's (the supervisor, its workers, their media servers)."""
    return sum(cpu_seconds(p) for p in _alive(tree(pid)))


def node_kb(pid: int, key: str) -> int:
    """A ``kB`` figure of /proc/PID/status summed over the node's process tree."""
    return sum(proc_status_kb(p, key) for p in _alive(tree(pid)))


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if os.path.exists(f"/proc/{p}/stat")]


class Phase:
    """Node and client CPU over one phase of the run."""

    def __init__(self, pid: int, load: Load | None) -> None:
        self.pid = pid
        self.load = load
        self.t0 = time.monotonic()
        self.node0 = node_cpu_seconds(pid)
        self.client0 = load.snapshot() if load else {}

    def end(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        node = node_cpu_seconds(self.pid) - self.node0
        out: dict[str, Any] = {
            "seconds": round(elapsed, 2),
            "node_cpu_s": round(node, 3),
            "node_cpu_pct": round(100 * node / elapsed, 1) if elapsed else 0.0,
            "node_rss_kb": node_kb(self.pid, "VmRSS"),
            "node_hwm_kb": node_kb(self.pid, "VmHWM"),
        }
        if self.load is not None:
            snap = self.load.snapshot()
            client = snap["cpu_s"] - self.client0["cpu_s"]
            out["client_cpu_s"] = round(client, 3)
            out["client_cpu_pct"] = round(100 * client / elapsed, 1) if elapsed else 0.0
            out["client"] = snap
            out["client_delta"] = {
                k: snap[k] - self.client0.get(k, 0)
                for k in ("keepalives_sent", "keepalive_acks", "keepalives_missed", "frames_in")
            }
        return out


# -- the run ------------------------------------------------------------------------


def plan_for(phones: int) -> dict[str, Any]:
    return {
        "devices": [
            {
                "name": device_name(i),
                "protocol": "sccp",
                "model": "7960",
                "lines": [{"dn": str(FIRST_DN + i)}],
            }
            for i in range(phones)
        ]
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from support.server import OffhookServer, ServerError

    n = args.phones
    result: dict[str, Any] = {"phones": n, "processes": args.processes, "workers": args.workers}
    sources = args.sources or n
    per_source = math.ceil(n / sources)
    extra = {
        "sccp": {
            "keepalive": args.keepalive,
            "max_connections": max(20000, n + 1000),
            "max_connections_per_source": max(64, per_source + 8),
            "register_timeout": 30.0,
        },
        "tftp": {"enabled": False},
        "node": {"workers": args.workers},
    }
    server = OffhookServer(workdir, None, extra_config=extra, log_level=args.log_level)
    t = time.monotonic()
    print(f"loading a plan of {n} SCCP phones ...", flush=True)
    server.load(plan_for(n))
    result["plan_load_s"] = round(time.monotonic() - t, 1)
    try:
        server.start(timeout=180)
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"offhook is not ready (could not start `offhook serve`): {exc}") from exc
    load: Load | None = None
    try:
        pid = server.pid
        status = fetch_status(server.admin_port)
        if not isinstance(status.get("sccp"), dict):
            raise BenchError("the node has no SCCP listener ([sccp] not wired into offhook serve)")
        port = int(status["sccp"]["port"]) or server.sccp_port
        print(f"node pid {pid}, SCCP on {HOST}:{port}, admin {server.admin_port}", flush=True)

        time.sleep(2)
        base = Phase(pid, None)
        time.sleep(args.baseline)
        result["baseline"] = base.end()
        print(
            f"idle, no phones: cpu {result['baseline']['node_cpu_pct']}%, "
            f"rss {result['baseline']['node_rss_kb'] / 1024:.1f} MB",
            flush=True,
        )

        load = Load(port, n, args.processes, sources, args.full_every)
        # -- registration storm
        print(f"registration storm: {n} phones, window {args.window} per process ...", flush=True)
        overflows0 = listen_overflows()
        storm = Phase(pid, load)
        replies = load.all(
            "register",
            {
                "window": args.window,
                "register_timeout": args.register_timeout,
                "attempts": args.attempts,
                "deadline": args.storm_timeout,
            },
            timeout=args.storm_timeout + 60,
        )
        s = storm.end()
        t_start = min(r["t_start"] for r in replies)
        t_end = max(r["t_end"] for r in replies)
        times = [x for r in replies for x in r["register_times"]]
        registered = sum(r["registered"] for r in replies)
        span = t_end - t_start
        s.update(
            registered=registered,
            storm_seconds=round(span, 2),
            phones_per_s=round(registered / span, 1) if span else 0.0,
            node_cpu_ms_per_registration=round(1000 * s["node_cpu_s"] / registered, 3)
            if registered
            else None,
            register_time=pct_ms(times),
            failures=s["client"]["register_failures"],
            gave_up=sum(r["gave_up"] for r in replies),
            listen_overflows=listen_overflows() - overflows0,
            rejects=s["client"]["rejects"],
        )
        result["storm"] = s
        if not registered:
            raise BenchError(f"no phone registered ({s['failures']} failed attempts)")
        print(
            f"  {registered}/{n} registered in {span:.1f}s = {s['phones_per_s']} phones/s; "
            f"node cpu {s['node_cpu_pct']}%, client cpu {s['client_cpu_pct']}%, "
            f"{s['failures']} failed attempts, {s['gave_up']} gave up; "
            f"register time p50 {s['register_time']['p50_ms']} ms, "
            f"p99 {s['register_time']['p99_ms']} ms; "
            f"{s['listen_overflows']} SYNs dropped on a full accept queue (host-wide)",
            flush=True,
        )

        time.sleep(args.settle)
        result["after_storm"] = {"node": workers_sccp_count(server.admin_port, args.workers)}
        result["after_storm"]["client"] = load.snapshot()
        print(
            f"  all connected? client {result['after_storm']['client']['connected']}, "
            f"node {result['after_storm']['node']}",
            flush=True,
        )

        # -- keepalive load
        print(f"keepalive load: {args.idle}s at {args.keepalive}s keepalive ...", flush=True)
        idle = Phase(pid, load)
        time.sleep(args.idle)
        k = idle.end()
        acks = k["client_delta"]["keepalive_acks"]
        connected = k["client"]["connected"]
        rss_growth = (k["node_rss_kb"] - result["baseline"]["node_rss_kb"]) * 1024
        base_cpu = result["baseline"]["node_cpu_s"] / result["baseline"]["seconds"]
        k.update(
            connected=connected,
            keepalives_per_s=round(acks / k["seconds"], 1),
            node_cpu_us_per_keepalive=round(1e6 * k["node_cpu_s"] / acks, 1) if acks else None,
            node_cpu_us_per_keepalive_above_idle=round(
                1e6 * (k["node_cpu_s"] - base_cpu * k["seconds"]) / acks, 1
            )
            if acks
            else None,
            node_rss_bytes_per_phone=round(rss_growth / connected) if connected else None,
        )
        result["keepalive"] = k
        print(
            f"  {acks} keepalives acked ({k['keepalives_per_s']}/s), "
            f"{k['client_delta']['keepalives_missed']} missed; node cpu {k['node_cpu_pct']}% "
            f"= {k['node_cpu_us_per_keepalive']} us/keepalive; "
            f"rss {k['node_rss_kb'] / 1024:.1f} MB = {k['node_rss_bytes_per_phone']} B/phone; "
            f"client cpu {k['client_cpu_pct']}%",
            flush=True,
        )

        # -- off-hook latency under keepalive load
        print(f"off-hook latency: {args.samples} phones at {args.offhook_rate}/s ...", flush=True)
        lat = Phase(pid, load)
        p = args.processes
        replies = load.all(
            "latency",
            [
                {
                    "samples": args.samples // p + (1 if i < args.samples % p else 0),
                    "rate": args.offhook_rate / p,
                    "timeout": 5.0,
                }
                for i in range(p)
            ],
            timeout=args.samples / args.offhook_rate + 60,
        )
        lt = lat.end()
        samples = [x for r in replies for x in r["latencies"]]
        lt.update(latency=pct_ms(samples), timeouts=sum(r["timeouts"] for r in replies))
        result["offhook"] = lt
        q = lt["latency"]
        print(
            f"  OffHook -> StartTone: p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms, "
            f"p99 {q['p99_ms']} ms, max {q['p100_ms']} ms ({q['n']} samples, "
            f"{lt['timeouts']} timeouts); node cpu {lt['node_cpu_pct']}%, "
            f"client cpu {lt['client_cpu_pct']}%",
            flush=True,
        )

        time.sleep(1)
        final = {
            "node": workers_sccp_count(server.admin_port, args.workers),
            "client": load.snapshot(),
        }
        result["final"] = final
        result["node_log_errors"] = sum(
            1 for line in server.log().splitlines() if " ERROR " in line or "Traceback" in line
        )
    finally:
        if load is not None:
            load.stop()
        server.stop(show_log=False)
    return result


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    n = r["phones"]
    k = r.get("keepalive", {})
    storm = r.get("storm", {})
    final = r.get("final", {})
    connected_client = final.get("client", {}).get("connected", 0)
    connected_node = final.get("node", {}).get("registered")
    all_connected = connected_client == n and connected_node == n
    us_ka = k.get("node_cpu_us_per_keepalive")
    ceiling = round(CALLMANAGER_KEEPALIVE * 1e6 / us_ka) if us_ka else None
    return {
        "phones": n,
        "registered_per_s": storm.get("phones_per_s"),
        "storm_seconds": storm.get("storm_seconds"),
        "storm_node_cpu_pct": storm.get("node_cpu_pct"),
        "storm_client_cpu_pct": storm.get("client_cpu_pct"),
        "node_cpu_ms_per_registration": storm.get("node_cpu_ms_per_registration"),
        "all_connected_client": connected_client,
        "all_connected_node": connected_node,
        "all_connected": all_connected,
        "node_cpu_pct_idle_with_n": k.get("node_cpu_pct"),
        "node_rss_mb_idle_with_n": round(k.get("node_rss_kb", 0) / 1024, 1),
        "node_rss_bytes_per_phone": k.get("node_rss_bytes_per_phone"),
        "node_cpu_us_per_keepalive": us_ka,
        "keepalive_s": r.get("keepalive_interval"),
        "node_cpu_pct_idle_at_30s": round(100 * us_ka * 1e-6 * n / CALLMANAGER_KEEPALIVE, 2)
        if us_ka
        else None,
        "offhook_to_dialtone": r.get("offhook", {}).get("latency"),
        "ratio_held_vs_callmanager_3x": round((connected_client if all_connected else 0) / 2500, 1),
        "keepalive_cpu_ceiling_phones_per_core_at_30s": ceiling,
        "ratio_ceiling_vs_callmanager_3x": round(ceiling / CALLMANAGER_3X_PHONES, 1)
        if ceiling
        else None,
    }


def print_summary(s: dict[str, Any], note: str) -> None:
    lat = s["offhook_to_dialtone"] or {}
    rows = [
        ("phones", f"{s['phones']:,}"),
        (
            "registration storm",
            f"{s['registered_per_s']} phones/s ({s['storm_seconds']} s; node cpu "
            f"{s['storm_node_cpu_pct']} %, {s['node_cpu_ms_per_registration']} ms/registration; "
            f"load processes {s['storm_client_cpu_pct']} %)",
        ),
        (
            "all connected (client / node)",
            f"{s['all_connected_client']} / {s['all_connected_node']}"
            + ("" if s["all_connected"] else "  NOT ALL"),
        ),
        (
            f"node CPU, idle with N ({s['keepalive_s']} s keepalive)",
            f"{s['node_cpu_pct_idle_with_n']} %",
        ),
        ("node RSS, idle with N", f"{s['node_rss_mb_idle_with_n']} MB"),
        ("RSS per phone", f"{s['node_rss_bytes_per_phone']} B"),
        ("CPU per keepalive", f"{s['node_cpu_us_per_keepalive']} us"),
        (
            f"node CPU, idle with N at {CALLMANAGER_KEEPALIVE} s keepalive (computed)",
            f"{s['node_cpu_pct_idle_at_30s']} %",
        ),
        (
            "OffHook -> StartTone p50/p95/p99",
            f"{lat.get('p50_ms')} / {lat.get('p95_ms')} / {lat.get('p99_ms')} ms",
        ),
        ("held vs CallManager 3.x (2,500/server)", f"{s['ratio_held_vs_callmanager_3x']}x"),
        (
            "extrapolated: keepalive CPU alone fills 1 core at",
            f"{s['keepalive_cpu_ceiling_phones_per_core_at_30s']} phones (30 s keepalive; "
            f"{s['ratio_ceiling_vs_callmanager_3x']}x CallManager 3.x; not measured)",
        ),
    ]
    print()
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    print(f"note: {note}")


def on_sigterm(signum: int, frame: object) -> None:
    """Stop the node and the load processes on SIGTERM (once: a second one is ignored)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=10000, help=f"N phones (max {MAX_PHONES})")
    ap.add_argument("--processes", type=int, default=2, help="load processes (max 16)")
    ap.add_argument(
        "--workers", type=int, default=1, help="[node] workers: the phones spread by address"
    )
    ap.add_argument("--keepalive", type=int, default=10, help="[sccp] keepalive, s (5-60)")
    ap.add_argument(
        "--idle", type=float, default=30, help="keepalive-load window, s (>= keepalive, max 600)"
    )
    ap.add_argument("--baseline", type=float, default=5, help="no-phone baseline, s (max 60)")
    ap.add_argument("--samples", type=int, default=1000, help="off-hook samples (max N)")
    ap.add_argument("--offhook-rate", type=float, default=50, help="off-hooks per second")
    ap.add_argument("--window", type=int, default=25, help="registrations in flight/process")
    ap.add_argument(
        "--full-every",
        type=int,
        default=1,
        help="every Kth phone runs the whole 7960 status sequence (1: all, 0: none)",
    )
    ap.add_argument(
        "--sources", type=int, default=0, help="source addresses (default: one per phone)"
    )
    ap.add_argument("--register-timeout", type=float, default=20)
    ap.add_argument("--attempts", type=int, default=5, help="registration attempts per phone")
    ap.add_argument(
        "--storm-timeout", type=float, default=0, help="bound of the storm, s (default 60 + N/100)"
    )
    ap.add_argument("--settle", type=float, default=3, help="pause after the storm, s")
    ap.add_argument("--log-level", default="info", help="the node's [log] level")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    args.phones = max(1, min(args.phones, MAX_PHONES))
    args.processes = max(1, min(args.processes, 16, args.phones))
    args.keepalive = max(5, min(args.keepalive, 60))
    args.idle = max(float(args.keepalive), min(args.idle, 600.0))  # one interval at least
    args.baseline = max(1.0, min(args.baseline, 60.0))
    args.samples = max(0, min(args.samples, args.phones))
    args.offhook_rate = max(1.0, min(args.offhook_rate, 1000.0))
    args.window = max(1, min(args.window, 5000))
    args.attempts = max(1, min(args.attempts, 20))
    args.register_timeout = max(1.0, min(args.register_timeout, 120.0))
    args.settle = max(0.0, min(args.settle, 60.0))
    signal.signal(signal.SIGTERM, on_sigterm)

    soft, hard, warning = raise_nofile(args.phones + NOFILE_SPARE)
    print(f"RLIMIT_NOFILE {soft} (hard {hard})")
    if warning:
        fits = max(1, int(soft) - NOFILE_SPARE)
        print(f"WARNING: {warning}; running {fits} phones instead of {args.phones}")
        args.phones = fits
        args.samples = min(args.samples, fits)
    args.processes = max(args.processes, math.ceil(args.phones / max(1, soft - NOFILE_SPARE)))
    args.storm_timeout = args.storm_timeout or 60 + args.phones / 100
    args.storm_timeout = max(5.0, min(args.storm_timeout, 1800.0))
    note = sccp_peer_note()
    workdir = Path(tempfile.mkdtemp(prefix="offhook-sccp-bench-"))
    print(
        f"work directory {workdir}; {args.phones} phones, {args.processes} load processes, "
        f"keepalive {args.keepalive}s",
        flush=True,
    )
    result: dict[str, Any] = {}
    error = ""
    try:
        result = run(args, workdir)
        result["keepalive_interval"] = args.keepalive
    except BenchError as exc:
        error = str(exc)
        print(f"ERROR: {error}")
    except BaseException:  # SIGTERM, Ctrl-C: the node is stopped (run's finally); tidy up
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    summary = summarize(result) if result else {}
    if summary:
        print_summary(summary, note)
    else:
        print(f"note: {note}")
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"sccp_phones-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "argv": sys.argv,
                "args": vars(args),
                "machine": machine(),
                "rlimit_nofile": [soft, hard],
                "peer_note": note,
                "error": error or None,
                "summary": summary,
                "result": result,
            },
            indent=2,
            default=str,
        )
    )
    print(f"results written to {out}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if error or not summary.get("all_connected"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
