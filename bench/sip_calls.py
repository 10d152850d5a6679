"""SIP call-rate benchmark: offhook against the Sippy B2BUA, in one run.

For each server (``offhook serve`` and Sippy's ``b2bua_simple``) this starts
the server and a SIPp UAS on loopback, then drives SIPp UAC -> server -> UAS
at stepped call rates.  Each step places ``rate x duration`` calls at
``rate`` calls/s (both bounded); a step passes when fewer than 0.1 % of its
calls failed and all of them completed.  The figure for a server is the
highest passing rate; stepping stops at the first failing step.  For every
step the server's CPU seconds (utime + stime from /proc, or psutil) and its
peak RSS (VmHWM) are recorded.  The result is printed as a table, with the
ratio offhook/sippy, and written as JSON to ``bench/results/``.

offhook challenges every INVITE (407) and routes by DN, so its UAC runs
``uac_auth.xml`` as device ``benchuac`` (DN 2001) calling 2002, owned by
device ``benchuas`` whose SIPp UAS registers first (``register.xml``).  Sippy
gets ``uac.xml`` (no auth) and forwards to the UAS with ``-n``.  The UAS
Contact says ``transport=udp`` in lower case (Sippy mis-forwards BYE
otherwise); the UAC tracks its INVITE transaction (late 180s are not
failures); sockets get 4 MB buffers.

Run from the repository root::

    python bench/sip_calls.py                       # both servers, default ladder
    python bench/sip_calls.py --servers sippy --rates 50,100,200,300 --duration 20

``--src DIR`` runs offhook from another source tree; ``--before DIR`` also
runs every offhook variant from another source tree (``git archive REV src |
tar -x -C /tmp/x``, then ``--before /tmp/x/src``),
alternating before and after ``--rounds`` times in the same run, so a change
is measured against its base on the same machine minutes apart;
``--profile DIR`` records the node with py-spy during each step
(``DIR/<server>-<rate>.txt``, raw format, ``--nonblocking``);
``--latency`` has every UAC trace its messages and reports INVITE -> 180 (p50,
p95, p99) per step, as the UAC saw it (the INVITE with credentials for offhook).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from support.ports import HOST, free_port  # noqa: E402

SCENARIOS = REPO / "tests" / "interop" / "scenarios"
RESULTS = HERE / "results"
DEFAULT_RATES = [50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 4000, 6000, 8000]
MAX_FAILED_FRACTION = 0.001
SIPP_BUFF = "4194304"
PASSWORDS = {"benchuac": "bench-Uac-Secret-1", "benchuas": "bench-Uas-Secret-1"}
PLAN = {
    "devices": [
        {
            "name": "benchuac",
            "protocol": "sip",
            "password": PASSWORDS["benchuac"],
            "max_calls": 0,  # a load generator, not a phone: no concurrent-call limit
            "lines": [{"dn": "2001", "display": "Bench UAC"}],
        },
        {
            "name": "benchuas",
            "protocol": "sip",
            "password": PASSWORDS["benchuas"],
            "max_calls": 0,
            "lines": [{"dn": "2002", "display": "Bench UAS"}],
        },
    ]
}


class BenchError(RuntimeError):
    """A server or load generator could not be set up."""


# -- process accounting -------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children), in seconds."""
    try:
        import psutil  # type: ignore[import-not-found]

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)
    except ImportError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is state (field 3); utime, stime, cutime, cstime are fields 14-17
    return sum(int(x) for x in fields[11:15]) / ticks


def peak_rss_kb(pid: int) -> int:
    """VmHWM (peak resident set size) of a process, in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    sipp_version = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10)
        sipp_version = next(
            (ln.strip() for ln in (out.stdout + out.stderr).splitlines() if "SIPp v" in ln), ""
        )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "sipp": sipp_version,
    }


# -- SIPp ---------------------------------------------------------------------


def sipp_base(scenario: str, port: int, workdir: Path, name: str) -> list[str]:
    return [
        "sipp", "-sf", str(SCENARIOS / scenario),
        "-i", HOST, "-p", str(port), "-mp", str(free_port(span=2)),
        "-t", "u1", "-nostdin", "-buff_size", SIPP_BUFF,
        "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
    ]  # fmt: skip


def udp_port_bound(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
    except OSError:
        return True
    finally:
        s.close()
    return False


def wait_bound(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before binding UDP {port}")
        if udp_port_bound(port):
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not bind UDP {port} within {timeout}s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def sipp_uas(workdir: Path, scenario: str = "uas.xml", prefix: Sequence[str] = ()) -> Iterator[int]:
    """A long-running SIPp UAS answering every call (``prefix``: e.g. taskset); yields its port."""
    port = free_port()
    cmd = [*prefix, *sipp_base(scenario, port, workdir, "uas"), "-timeout", "3600s", HOST]
    with open(workdir / "uas.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            wait_bound(port, proc, "SIPp uas")
            yield port
        finally:
            stop(proc)


def read_stat_csv(path: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat CSV file."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    if not rows:
        raise BenchError(f"empty SIPp statistics file {path}")
    return rows[-1]


@dataclass
class Step:
    rate: int
    calls: int
    successful: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_kb: int = 0
    sipp_exit: int = 0
    passed: bool = False
    note: str = ""
    ringing_ms: dict[str, float] = field(default_factory=dict)


def start_offhook(
    wd: Path,
    extra: dict[str, dict[str, Any]] | None = None,
    plan: dict[str, Any] | None = None,
    src: str = "",
) -> tuple[Any, str]:
    """A started node fed by SIPp: (the ``OffhookServer``, "") or (None, why it did not start).

    SIPp's UAC and UAS both send from 127.0.0.1: the per-source rate limit
    ([sip] rate_per_source, 200 messages/s by default), which exists precisely to
    stop one address from sending this much, is lifted. ``extra``: more sections (a
    ``sip`` section replaces those limits); ``plan``: another plan than ``PLAN``;
    ``src``: run the node from this source tree.
    """
    try:
        from support.server import OffhookServer, ServerError
    except ImportError as exc:  # pyyaml missing
        return None, f"cannot import the offhook test helper: {exc}"

    unlimited = {"rate_per_source": 1e9, "rate_burst": 1e9}
    config = {"sip": unlimited, **(extra or {})}
    env = {"PYTHONPATH": os.path.abspath(src)} if src else None
    server = OffhookServer(wd, PLAN if plan is None else plan, extra_config=config, env=env)
    try:
        server.start(timeout=30)
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        with contextlib.suppress(Exception):
            server.stop(show_log=False)
        return None, f"offhook is not ready (could not start `offhook serve`): {exc}"
    return server, ""


def register_uas(sip_port: int, uas_port: int, wd: Path) -> list[str]:
    """Register the SIPp UAS as ``benchuas`` (digest) at offhook on ``sip_port``;
    the UAC's scenario arguments for calls to it (``BenchError`` if it failed)."""
    reg = [
        *sipp_base("register.xml", free_port(), wd, "register"),
        "-m", "1", "-timeout", "20s", "-timeout_error",
        "-key", "user", "benchuas", "-key", "contact_host", HOST,
        "-key", "contact_port", str(uas_port), "-key", "expires", "3600",
        "-au", "benchuas", "-ap", PASSWORDS["benchuas"],
        f"{HOST}:{sip_port}",
    ]  # fmt: skip
    with open(wd / "register.out", "wb") as out:
        done = subprocess.run(reg, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    if done.returncode != 0:
        raise BenchError(f"UAS registration failed (sipp exit {done.returncode}); see {wd}")
    return [
        "uac_auth.xml", "-key", "caller", "benchuac", "-s", "2002",
        "-au", "benchuac", "-ap", PASSWORDS["benchuac"],
        "-auth_uri", f"2002@{HOST}:{sip_port}",
    ]  # fmt: skip


LATENCY = False
"""``--latency``: every UAC step traces its messages (``-trace_msg``) for INVITE -> 180."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted ``values`` (nearest rank)."""
    rank = max(1, min(len(values), math.ceil(q * len(values))))
    return values[rank - 1]


TRACE_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


def _trace_entries(lines: Iterable[str]) -> Iterator[tuple[float, bool, list[str]]]:
    """(time, sent, message lines) of each message in a SIPp ``-trace_msg`` log."""
    when: float | None = None
    sent = False
    body: list[str] = []
    for line in lines:
        m = TRACE_STAMP.match(line.rstrip("\n"))
        if m:
            if when is not None:
                yield when, sent, body
            stamp = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
            when, sent, body = stamp.timestamp(), False, []
        elif when is not None:
            if len(body) < 2 and not line.strip():
                continue  # the blank lines before the start line
            if not body and " message " in line:
                sent = " sent" in line
                body.append("")  # the direction line is not part of the message
                continue
            body.append(line.rstrip("\r\n"))
    if when is not None:
        yield when, sent, body


def _header(message: list[str], name: str) -> str:
    """A header's value from ``message`` (its start line at index 1), "" if absent."""
    prefix = name.lower() + ":"
    for line in message[2:]:
        if not line:
            break  # the body
        if line.lower().startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def ringing_latency(workdir: Path, name: str) -> dict[str, float]:
    """p50/p95/p99 and count of INVITE -> 180 in ms, as the UAC saw them, from the
    SIPp ``-trace_msg`` logs (``<scenario>_<pid>_messages.log``, µs time stamps) in
    ``workdir/name``: from the first sending of a call's last INVITE (the one with
    credentials, after a 407) to the first 180 for its CSeq; empty without logs."""
    sent_at: dict[str, tuple[str, float]] = {}  # Call-ID -> (CSeq, first sent)
    values: list[float] = []
    done: set[str] = set()
    for path in sorted((workdir / name).glob("*_messages.log")):
        with open(path, errors="replace") as f:
            for when, sent, message in _trace_entries(f):
                start = message[1] if len(message) > 1 else ""
                call_id = _header(message, "Call-ID")
                cseq = _header(message, "CSeq")
                if sent and start.startswith("INVITE "):
                    if sent_at.get(call_id, ("", 0.0))[0] != cseq:
                        sent_at[call_id] = (cseq, when)
                elif not sent and start.startswith("SIP/2.0 180") and call_id not in done:
                    first = sent_at.get(call_id)
                    if first is not None and first[0] == cseq:
                        values.append(1000 * (when - first[1]))
                        done.add(call_id)
    if not values:
        return {}
    values.sort()
    return {
        "p50": round(percentile(values, 0.50), 3),
        "p95": round(percentile(values, 0.95), 3),
        "p99": round(percentile(values, 0.99), 3),
        "n": len(values),
    }


def run_step(
    server_pid: int,
    target_port: int,
    rate: int,
    duration: int,
    workdir: Path,
    uac_args: list[str],
    uac_port: int = 0,
    profile: Path | None = None,
) -> Step:
    """One step; ``uac_port``: the UAC's own port (0: a free one; a trunk's is fixed);
    ``profile``: py-spy the server into this file during the step; with
    ``LATENCY`` on, the UAC traces its messages and the step gets its INVITE -> 180."""
    latency = LATENCY
    calls = rate * duration
    step = Step(rate=rate, calls=calls)
    name = f"uac-{rate}"
    stat = workdir / f"{name}.stat.csv"
    cmd = [
        *sipp_base(uac_args[0], uac_port or free_port(), workdir, name),
        *uac_args[1:],
        "-r", str(rate), "-m", str(calls), "-l", str(max(rate * 10, 100)),
        "-recv_timeout", "8000", "-timeout", f"{duration * 2 + 30}s",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        f"{HOST}:{target_port}",
    ]  # fmt: skip
    trace = workdir / f"{name}.trace"
    if latency:
        trace.mkdir(exist_ok=True)
        cmd[-1:-1] = ["-trace_msg"]
    spy = None
    if profile is not None and shutil.which("py-spy"):
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(server_pid), "-f", "raw", "--nonblocking",
             "-r", "100", "-d", str(duration), "-o", str(profile)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    cpu0 = cpu_seconds(server_pid)
    t0 = time.monotonic()
    with open(workdir / f"{name}.out", "wb") as out:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=duration * 2 + 60,
            cwd=trace if latency else None,  # SIPp writes <scenario>_<pid>_messages.log there
        )
    step.elapsed_s = round(time.monotonic() - t0, 2)
    step.cpu_s = round(cpu_seconds(server_pid) - cpu0, 2)
    if spy is not None:
        with contextlib.suppress(subprocess.SubprocessError):
            spy.wait(timeout=30)
    step.peak_rss_kb = peak_rss_kb(server_pid)
    step.sipp_exit = proc.returncode
    if latency:
        step.ringing_ms = ringing_latency(workdir, trace.name)
    try:
        last = read_stat_csv(stat)
        step.successful = int(last.get("SuccessfulCall(C)", "0") or 0)
        step.failed = int(last.get("FailedCall(C)", "0") or 0)
    except (OSError, BenchError, ValueError) as exc:
        step.note = f"no statistics: {exc}"
        return step
    done = step.successful + step.failed
    step.passed = (
        done >= calls
        and step.failed <= MAX_FAILED_FRACTION * calls
        and step.elapsed_s <= duration * 1.1 + 2  # the rate was really offered
    )
    if done < calls:
        step.note = f"only {done} of {calls} calls completed"
    elif step.elapsed_s > duration * 1.1 + 2:
        step.note = f"took {step.elapsed_s}s for {duration}s of calls (rate not sustained)"
    elif not step.passed and step.failed > MAX_FAILED_FRACTION * calls:
        step.note = f"{step.failed} failed calls"
    elif not step.passed:
        step.note = f"took {step.elapsed_s}s (rate not sustained)"
    return step


@dataclass
class ServerResult:
    server: str
    best_rate: int = 0
    steps: list[Step] = field(default_factory=list)
    error: str = ""
    peak_rss_kb: int = 0

    @property
    def best_step(self) -> Step | None:
        passing = [s for s in self.steps if s.passed]
        return passing[-1] if passing else None


def ladder(
    result: ServerResult,
    server_pid: int,
    target_port: int,
    rates: list[int],
    duration: int,
    workdir: Path,
    uac_args: list[str],
    uac_port: int = 0,
    profile: Path | None = None,
) -> None:
    """Step up ``rates`` until one fails; ``profile``: py-spy each step into this directory."""
    for rate in rates:
        spy = None if profile is None else profile / f"{result.server}-{rate}.txt"
        step = run_step(server_pid, target_port, rate, duration, workdir, uac_args, uac_port, spy)
        result.steps.append(step)
        result.peak_rss_kb = max(result.peak_rss_kb, step.peak_rss_kb)
        status = "ok" if step.passed else f"FAIL {step.note}"
        ring = step.ringing_ms
        ringing = f"INVITE->180 p50 {ring['p50']} p95 {ring['p95']} ms, " if ring else ""
        print(
            f"  {result.server:8} {rate:6d} calls/s: {step.successful}/{step.calls} ok, "
            f"{step.failed} failed, {step.elapsed_s:.1f}s, cpu {step.cpu_s:.1f}s, "
            f"{ringing}rss {step.peak_rss_kb // 1024} MB  {status}",
            flush=True,
        )
        if not step.passed:
            break
        result.best_rate = rate
        time.sleep(3)  # let retransmission timers and timewaits drain


# -- servers ------------------------------------------------------------------


def bench_sippy(rates: list[int], duration: int, workdir: Path) -> ServerResult:
    result = ServerResult("sippy")
    exe = shutil.which("b2bua_simple")
    if exe is None:
        result.error = "b2bua_simple not found (pip install sippy)"
        return result
    wd = workdir / "sippy"
    wd.mkdir()
    with sipp_uas(wd) as uas_port:
        port = free_port()
        env = {**os.environ, "SIPLOG_BEND": "none"}
        cmd = [exe, "-f", "-l", HOST, "-p", str(port), "-n", f"{HOST}:{uas_port}"]
        with open(wd / "sippy.log", "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                wait_bound(port, proc, "b2bua_simple")
                time.sleep(0.5)
                uac = ["uac.xml", "-key", "caller", "benchuac", "-s", "2002"]
                ladder(result, proc.pid, port, rates, duration, wd, uac)
            except (BenchError, subprocess.SubprocessError, OSError) as exc:
                result.error = str(exc)
            finally:
                stop(proc)
    return result


def bench_offhook(
    rates: list[int],
    duration: int,
    workdir: Path,
    name: str = "offhook",
    src: str = "",
    profile: Path | None = None,
) -> ServerResult:
    result = ServerResult(name)
    wd = workdir / name
    wd.mkdir()
    server, why = start_offhook(wd, src=src)
    if server is None:
        result.error = why
        return result
    try:
        with sipp_uas(wd) as uas_port:
            uac = register_uas(server.sip_port, uas_port, wd)
            ladder(result, server.pid, server.sip_port, rates, duration, wd, uac, 0, profile)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    finally:
        server.stop(show_log=False)
    return result


def trunk_plan(carrier_port: int, far_port: int, max_cps: int | None) -> dict[str, Any]:
    """The CI trunk load test's plan (a carrier's calls to 2XXX go out to a far trunk),
    with the carrier's ``max_cps`` when given (None: the default)."""
    from interop.test_trunk_load import plan

    out = plan(carrier_port, far_port)
    if max_cps is not None:
        out["trunks"][0]["max_cps"] = max_cps
    return out


def bench_offhook_trunk(
    name: str,
    max_cps: int | None,
    rates: list[int],
    duration: int,
    workdir: Path,
    src: str = "",
    profile: Path | None = None,
) -> ServerResult:
    """Trunk to trunk, no digest: SIPp as a carrier (from its trunk's address) calling
    through offhook out to another trunk (a SIPp UAS). No ``[sip]`` limit is lifted: a
    trunk is held to its own limits, here the plan's defaults unless ``max_cps``."""
    result = ServerResult(name)
    wd = workdir / name
    wd.mkdir()
    carrier_port = free_port()
    try:
        with sipp_uas(wd, "uas_trunk.xml") as far_port:
            plan = trunk_plan(carrier_port, far_port, max_cps)
            server, why = start_offhook(wd, extra={"sip": {}}, plan=plan, src=src)
            if server is None:
                result.error = why
                return result
            try:
                uac = ["uac.xml", "-key", "caller", "+12125550100", "-s", "2002"]
                ladder(
                    result, server.pid, server.sip_port, rates, duration, wd, uac, carrier_port,
                    profile,
                )  # fmt: skip
            finally:
                server.stop(show_log=False)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    return result


# -- report -------------------------------------------------------------------


def write_results(kind: str, payload: dict[str, Any]) -> Path:
    """``payload`` with ``when`` and ``machine`` as ``bench/results/KIND-STAMP.json``."""
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"{kind}-{stamp}.json"
    out.write_text(json.dumps({"when": stamp, "machine": machine(), **payload}, indent=2))
    print(f"results written to {out}")
    return out


def summarize(results: list[ServerResult]) -> dict[str, Any]:
    by = {r.server: r for r in results}
    summary: dict[str, Any] = {}
    for r in results:
        best = r.best_step
        summary[r.server] = {
            "best_calls_per_s": r.best_rate,
            "cpu_s_at_best": best.cpu_s if best else None,
            "cpu_ms_per_call_at_best": round(1000 * best.cpu_s / best.calls, 3)
            if best and best.calls
            else None,
            "peak_rss_mb_at_best": round(best.peak_rss_kb / 1024, 1) if best else None,
            "peak_rss_mb": round(r.peak_rss_kb / 1024, 1),
            "error": r.error or None,
        }
    if "sippy" in by and by["sippy"].best_rate:
        for name in by:
            if name.startswith("offhook"):
                key = f"ratio_{name.replace('-', '_')}_over_sippy"
                summary[key] = round(by[name].best_rate / by["sippy"].best_rate, 2)
    return summary


def print_table(summary: dict[str, Any], duration: int) -> None:
    print()
    print(f"Highest rate sustained {duration}s with < {MAX_FAILED_FRACTION:.1%} failed calls")
    print(f"{'server':22} {'calls/s':>8} {'cpu s':>8} {'cpu ms/call':>12} {'RSS MB':>12}")
    for name, s in summary.items():
        if not isinstance(s, dict):
            continue
        cpu = "-" if s["cpu_s_at_best"] is None else f"{s['cpu_s_at_best']:.1f}"
        per = "-" if s["cpu_ms_per_call_at_best"] is None else f"{s['cpu_ms_per_call_at_best']:.3f}"
        rss = s["peak_rss_mb_at_best"] or "-"
        print(f"{name:22} {s['best_calls_per_s']:>8} {cpu:>8} {per:>12} {rss:>12}")
        if s["error"]:
            print(f"{'':22} error: {s['error']}")
    for key, value in summary.items():
        if key.startswith("ratio_"):
            print(f"{key.removeprefix('ratio_').replace('_over_', ' / ')}: {value}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--servers",
        default="offhook,sippy",
        help="comma list: offhook (device to device, digest), offhook-trunk (trunk to trunk, "
        "default limits), offhook-trunk-nolimit (trunk to trunk, max_cps 0), sippy",
    )
    ap.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    ap.add_argument("--duration", type=int, default=20, help="seconds per step (max 120)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--src", default="", help="run offhook from this source tree (default: ours)")
    ap.add_argument("--before", default="", help="also run offhook from this source tree")
    ap.add_argument("--rounds", type=int, default=1, help="before/after rounds (with --before)")
    ap.add_argument("--profile", default="", help="py-spy the node per step into this directory")
    ap.add_argument(
        "--latency",
        action="store_true",
        help="INVITE -> 180 p50/p95/p99 per step, from the UAC's message trace (costs SIPp CPU)",
    )
    ap.add_argument(
        "--workers", default="", help="also offhook with these [node] workers (sip_calls_workers)"
    )
    args = ap.parse_args(argv)
    global LATENCY
    LATENCY = args.latency
    if shutil.which("sipp") is None:
        print("sipp not found: install Debian sip-tester (scripts/install-deps.sh)")
        return 2
    rates = sorted({int(x) for x in args.rates.split(",") if x.strip()})[:30]
    duration = max(1, min(args.duration, 120))
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="offhook-bench-"))
    print(f"work directory {workdir}; rates {rates}; {duration}s per step", flush=True)
    profile = Path(args.profile).resolve() if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    trees = [("", args.src)]
    if args.before:  # the before tree first, then this one, alternating
        trees = [("-before", args.before), ("", args.src)] * max(1, min(args.rounds, 10))
    results: list[ServerResult] = []
    for name in servers:
        if name not in ("sippy", "offhook", "offhook-trunk", "offhook-trunk-nolimit"):
            print(f"unknown server {name!r}")
            return 2
        if name == "sippy":
            results.append(bench_sippy(rates, duration, workdir))
            continue
        for j, (suffix, src) in enumerate(trees):
            label = f"{name}{suffix}" + (f"-{j // 2 + 1}" if len(trees) > 2 else "")
            if name == "offhook":
                results.append(bench_offhook(rates, duration, workdir, label, src, profile))
            elif name == "offhook-trunk":  # the plan's default trunk limits (max_cps 100)
                results.append(
                    bench_offhook_trunk(label, None, rates, duration, workdir, src, profile)
                )
            else:  # max_cps 0: what the node itself carries
                results.append(
                    bench_offhook_trunk(label, 0, rates, duration, workdir, src, profile)
                )
    counts = sorted({int(x) for x in args.workers.split(",") if x.strip()})[:4]
    for j in range(max(1, min(args.rounds, 10)) if counts else 0):  # alternating, --rounds times
        from sip_calls_workers import bench_workers  # two sources: the workers' own ladder

        for n in counts:
            label = f"offhook-w{n}" + (f"-{j + 1}" if args.rounds > 1 else "")
            results.append(bench_workers(n, rates, duration, workdir, args.src, label))
    summary = summarize(results)
    print_table(summary, duration)
    write_results(
        "sip_calls",
        {
            "duration_s": duration,
            "max_failed_fraction": MAX_FAILED_FRACTION,
            "summary": summary,
            "servers": [{**asdict(r), "steps": [asdict(s) for s in r.steps]} for r in results],
        },
    )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
