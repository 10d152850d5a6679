"""REGISTER benchmark with digest: offhook against Kamailio, in one run (issue 13 item 5).

``users`` SIP devices are provisioned in the node's plan (``reg00001`` ...,
each with one DN and a password derived from its name) and spread over
``sources`` SIPp instances, each bound to its own loopback address
(127.0.0.2, 127.0.0.3 ...: ``-i``) and given its slice of the users through
an injection file (``-inf``: the user, its ``[authentication]``). Every SIPp call is one
registration with digest (``bench/scenarios/register_digest.xml``:
REGISTER -> 401 -> REGISTER with Authorization -> 200, a new Call-ID each
time), so a registration costs the node two requests, one challenge and
one digest check.

First every user registers once (``--warm-rate``, 500/s: not a step), so
that the steps measure phones re-registering, as 20,000 phones refreshing
every 600 s do (``--warm-rate 0``: the steps register new phones, each new
binding logged at INFO and published). Steps at fixed rates: each places
``rate x duration`` registrations at ``rate``/s over all instances (both
bounded; SIPp's ``-l`` caps the calls in flight); it passes when every
registration completed, fewer than 0.1 % failed and the step took at most
10 % (+2 s) longer than offered. Stepping
stops at the first failing step. For each step: registrations/s offered and
sustained, failed %, the server's CPU (utime + stime of its whole process
tree, from /proc) per registration, and SIPp's own CPU (the bench's reaped
children). From the per-registration CPU at the best rate follows what
re-registration costs: 20,000 phones at a 600 s expiry re-register 33.3
times a second, each with its challenge, which takes ``33.3 x ms`` of CPU
every second (a share of one core).

The node's defences are configured explicitly, not lifted blindly:
``[sip] rate_per_source`` is the per-source flood bucket; the bench sets it to
what one source offers at the top step (two datagrams per registration,
x 1.5) so that it never decides a figure (``--default-limits`` keeps the
node's defaults and shows what they allow: at 200 datagrams/s a source, 100
registrations/s per source). The failed-login guard (``[auth]``) keeps its
defaults: a benchmark registration never fails its digest, so the guard
counts nothing (a run where it did would show failed registrations).
Overload control is off (the test helper's default) so that each step does
the same work.

Kamailio (``kamailio``, Debian) is the reference: a registrar with digest
(``auth`` module, ``pv_www_authenticate`` against the same derived
passwords, qop=auth, usrloc in memory) on the same steps. Its ``children``
UDP workers may use both cores, so its CPU per registration is the sum of
every process.

Run from the repository root (indicative figures on a shared machine)::

    python bench/register.py                        # both servers, default ladder
    python bench/register.py --servers offhook --rates 500,1000 --duration 10 --users 2000
    python bench/register.py --servers offhook --before /tmp/x/src --rounds 2   # same run A/B
    python bench/register.py --servers offhook --workers 1,2 --rounds 2          # 1 vs 2 workers

``--workers 1,2`` runs the node once per ``[node] workers`` count, alternating
``--rounds`` times; the kernel gives each worker the sources whose address it
owns (docs/workers.md: 127.0.0.2, .4, ... to worker 0 of 2), and each binding
a worker makes is copied to the others over the bus. CPU is the whole tree's
(supervisor, workers, media servers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sip_calls import (
    HOST,
    SIPP_BUFF,
    BenchError,
    free_port,
    peak_rss_kb,
    read_stat_csv,
    start_offhook,
    stop,
    wait_bound,
    write_results,
)

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "register_digest.xml"
DEFAULT_RATES = [250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000]
MAX_FAILED_FRACTION = 0.001
PHONES = 20_000
PHONE_EXPIRES = 600
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
PASSWORD_PREFIX = "pw-"  # a user's password is PASSWORD_PREFIX + its name (Kamailio derives it)
FIRST_DN = 300_000


# -- users, plan and injection files ------------------------------------------


@dataclass(frozen=True)
class User:
    name: str
    password: str
    dn: str


def make_users(count: int) -> list[User]:
    """``count`` distinct users: reg00001 ... with DN 300001 ... and a derived password."""
    width = max(5, len(str(count)))
    users = []
    for i in range(1, count + 1):
        name = f"reg{i:0{width}d}"
        users.append(User(name, PASSWORD_PREFIX + name, str(FIRST_DN + i)))
    return users


def plan_for(users: list[User]) -> dict[str, Any]:
    """The node's plan: one SIP device with one line per user."""
    return {
        "devices": [
            {
                "name": u.name,
                "protocol": "sip",
                "password": u.password,
                "lines": [{"dn": u.dn, "display": u.name}],
            }
            for u in users
        ]
    }


def slices(users: list[User], parts: int) -> list[list[User]]:
    """``users`` dealt round-robin into ``parts`` non-empty slices (one per source)."""
    parts = max(1, min(parts, len(users)))
    return [users[i::parts] for i in range(parts)]


def split_rate(rate: int, parts: int) -> list[int]:
    """``rate`` as ``parts`` integer rates that sum to it (SIPp's -r is per second)."""
    base, extra = divmod(rate, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def injection_csv(users: list[User]) -> str:
    """A SIPp injection file: ``SEQUENTIAL``, then per user its name and its credentials
    as SIPp's ``[authentication]`` keyword wants them (field 1: SIPp 3.6 does not expand
    fields nested in that keyword)."""
    return "SEQUENTIAL\n" + "".join(
        f"{u.name};[authentication username={u.name} password={u.password}]\n" for u in users
    )


def source_addresses(count: int) -> list[str]:
    """127.0.0.2 ... : one loopback address per SIPp instance (Linux routes all of 127/8)."""
    if not 1 <= count <= 250:
        raise ValueError("between 1 and 250 sources")
    return [f"127.0.0.{i + 2}" for i in range(count)]


def per_source_limits(top_rate: int, sources: int) -> dict[str, float]:
    """``[sip] rate_per_source``/``rate_burst`` that one source's share of the top step fits:
    two datagrams in per registration, x 1.5 headroom, never below the node's defaults."""
    per_source = 2 * top_rate / max(1, sources) * 1.5
    return {"rate_per_source": max(200.0, per_source), "rate_burst": max(400.0, per_source)}


def rereg_load(cpu_ms_per_registration: float, phones: int = PHONES) -> dict[str, float]:
    """What ``phones`` re-registering every ``PHONE_EXPIRES`` s cost, from the measured
    CPU per registration (challenge included): registrations/s and a share of one core."""
    rate = phones / PHONE_EXPIRES
    return {
        "phones": phones,
        "expires_s": PHONE_EXPIRES,
        "registrations_per_s": round(rate, 1),
        "requests_per_s": round(2 * rate, 1),  # each with its challenge round trip
        "cpu_ms_per_s": round(rate * cpu_ms_per_registration, 2),
        "core_share_pct": round(rate * cpu_ms_per_registration / 10, 2),
    }


# -- process accounting -------------------------------------------------------


def tree_cpu_seconds(root: int) -> float:
    """utime + stime (and reaped children's) of ``root`` and every live descendant."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            pid = int(entry)
            parent[pid] = int(fields[1])
            times[pid] = sum(int(x) for x in fields[11:15])
    total = 0
    for pid, t in times.items():
        p = pid
        while p > 1 and p != root:
            p = parent.get(p, 0)
        if p == root:
            total += t
    return total / ticks


def children_cpu_seconds() -> float:
    """CPU of this process's reaped children (the SIPp instances of a step)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# -- a step ------------------------------------------------------------------


@dataclass
class Step:
    rate: int
    registrations: int
    successful: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    sustained_per_s: float = 0.0
    failed_pct: float = 0.0
    cpu_s: float = 0.0
    cpu_ms_per_registration: float = 0.0
    sipp_cpu_s: float = 0.0
    peak_rss_kb: int = 0
    sipp_exits: list[int] = field(default_factory=list)
    passed: bool = False
    note: str = ""


def run_step(
    server_pid: int,
    target: tuple[str, int],
    rate: int,
    duration: int,
    files: list[tuple[str, Path]],
    workdir: Path,
    profile: Path | None = None,
) -> Step:
    """One step: every source's SIPp at its share of ``rate`` for ``duration`` s.

    ``profile``: a py-spy raw profile of the server during the step goes there
    (SIPp's CPU then includes py-spy's)."""
    rates = split_rate(rate, len(files))
    step = Step(rate=rate, registrations=sum(r * duration for r in rates))
    procs: list[tuple[subprocess.Popen[bytes], Path, Any]] = []
    cpu0, sipp0 = tree_cpu_seconds(server_pid), children_cpu_seconds()
    t0 = time.monotonic()
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(server_pid), "--duration", str(max(1, duration - 1)),
             "--rate", "200", "--nonblocking", "-f", "raw", "-o", str(profile)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        for (addr, csv_path), r in zip(files, rates, strict=True):
            if r == 0:
                continue
            name = f"reg-{rate}-{addr}"
            stat = workdir / f"{name}.stat.csv"
            cmd = [
                "sipp", "-sf", str(SCENARIO), "-inf", str(csv_path),
                "-i", addr, "-p", str(free_port()), "-mp", str(free_port(span=2)),
                "-t", "u1", "-nostdin", "-buff_size", SIPP_BUFF,
                "-key", "expires", str(PHONE_EXPIRES),
                "-r", str(r), "-m", str(r * duration), "-l", str(max(r * 4, 50)),
                "-recv_timeout", "8000", "-timeout", f"{duration * 2 + 30}s",
                "-trace_stat", "-stf", str(stat), "-fd", "1",
                "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
                f"{target[0]}:{target[1]}",
            ]  # fmt: skip
            out = open(workdir / f"{name}.out", "wb")  # noqa: SIM115 - closed below
            procs.append(
                (subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out), stat, out)
            )
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=duration * 2 + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for proc, _, out in procs:
            stop(proc)
            out.close()
        if spy is not None:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop(spy)
    step.elapsed_s = round(time.monotonic() - t0, 2)
    step.cpu_s = round(tree_cpu_seconds(server_pid) - cpu0, 2)
    step.sipp_cpu_s = round(children_cpu_seconds() - sipp0, 2)
    step.peak_rss_kb = peak_rss_kb(server_pid)
    step.sipp_exits = [p.returncode for p, _, _ in procs]
    for _, stat, _ in procs:
        try:
            last = read_stat_csv(stat)
            step.successful += int(last.get("SuccessfulCall(C)", "0") or 0)
            step.failed += int(last.get("FailedCall(C)", "0") or 0)
        except (OSError, BenchError, ValueError) as exc:
            step.note = f"no statistics: {exc}"
    judge(step, duration)
    return step


def judge(step: Step, duration: int) -> None:
    """Fill in the derived figures and whether the step passed."""
    total = step.registrations
    done = step.successful + step.failed
    if step.elapsed_s > 0:
        step.sustained_per_s = round(step.successful / step.elapsed_s, 1)
    step.failed_pct = round(100 * step.failed / total, 3) if total else 0.0
    if step.successful:
        step.cpu_ms_per_registration = round(1000 * step.cpu_s / step.successful, 3)
    slow = step.elapsed_s > duration * 1.1 + 2
    too_many_failed = step.failed > MAX_FAILED_FRACTION * total
    step.passed = not step.note and done >= total and not too_many_failed and not slow
    if step.note:
        return
    if done < total:
        step.note = f"only {done} of {total} registrations completed"
    elif too_many_failed:
        step.note = f"{step.failed} failed registrations"
    elif slow:
        step.note = f"took {step.elapsed_s}s for {duration}s of registrations (rate not sustained)"


@dataclass
class ServerResult:
    server: str
    best_rate: int = 0
    steps: list[Step] = field(default_factory=list)
    error: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    warmup: Step | None = None

    @property
    def best_step(self) -> Step | None:
        passing = [s for s in self.steps if s.passed]
        return passing[-1] if passing else None


def warm_up(
    result: ServerResult,
    server_pid: int,
    target: tuple[str, int],
    warm_rate: int,
    users: int,
    files: list[tuple[str, Path]],
    workdir: Path,
) -> None:
    """Register every user once at ``warm_rate`` (not a step): the steps then measure
    re-registrations of bound phones, as 20,000 phones refreshing every 600 s are."""
    if warm_rate <= 0:
        return
    seconds = max(1, -(-users // warm_rate))
    step = run_step(server_pid, target, warm_rate, seconds, files, workdir)
    result.warmup = step
    print(
        f"  {result.server:8} warm-up: {step.successful} users registered at {warm_rate}/s "
        f"({step.failed} failed, {step.elapsed_s:.1f}s)",
        flush=True,
    )
    time.sleep(2)


def ladder(
    result: ServerResult,
    server_pid: int,
    target: tuple[str, int],
    rates: list[int],
    duration: int,
    files: list[tuple[str, Path]],
    workdir: Path,
    profile_dir: Path | None = None,
) -> None:
    for rate in rates:
        profile = None if profile_dir is None else profile_dir / f"{result.server}-{rate}.raw"
        step = run_step(server_pid, target, rate, duration, files, workdir, profile)
        result.steps.append(step)
        status = "ok" if step.passed else f"FAIL {step.note}"
        print(
            f"  {result.server:8} {rate:6d} reg/s offered: "
            f"{step.sustained_per_s:8.1f}/s sustained, "
            f"{step.successful}/{step.registrations} ok, {step.failed_pct:.3f} % failed, "
            f"cpu {step.cpu_s:.1f}s = {step.cpu_ms_per_registration:.3f} ms/reg, "
            f"sipp cpu {step.sipp_cpu_s:.1f}s  {status}",
            flush=True,
        )
        if not step.passed:
            break
        result.best_rate = rate
        time.sleep(2)  # let retransmission timers drain


def write_injection(users: list[User], sources: int, workdir: Path) -> list[tuple[str, Path]]:
    """One injection file per source address: [(address, path)]."""
    out = []
    parts = slices(users, sources)
    for addr, part in zip(source_addresses(len(parts)), parts, strict=True):
        path = workdir / f"users-{addr}.csv"
        path.write_text(injection_csv(part))
        out.append((addr, path))
    return out


# -- servers ------------------------------------------------------------------


def bench_offhook(
    rates: list[int],
    duration: int,
    users: list[User],
    sources: int,
    workdir: Path,
    default_limits: bool,
    warm_rate: int,
    profile_dir: Path | None = None,
    name: str = "offhook",
    src: str = "",
    workers: int = 1,
) -> ServerResult:
    """``src``: run the node from this source tree (``name`` tells the runs apart);
    ``workers``: its ``[node] workers`` (the sources spread over them by address)."""
    result = ServerResult(name)
    wd = workdir / name
    wd.mkdir()
    sip = {} if default_limits else per_source_limits(max(*rates, warm_rate), sources)
    # [sip] min_expires etc. stay the node's; the registrar binds for PHONE_EXPIRES s.
    extra: dict[str, dict[str, Any]] = {"sip": sip, "node": {"workers": workers}}
    result.config = {
        "sip": sip or "node defaults",
        "auth": "node defaults",
        "overload": "off",
        "workers": workers,
    }
    t0 = time.monotonic()
    server, why = start_offhook(wd, extra, plan_for(users), src=src)
    if server is None:
        result.error = why
        return result
    try:
        for index in range(1, workers):  # worker 0 answered the start check
            wait_worker(server.admin_host, server.admin_port + index)
    except BenchError as exc:
        server.stop(show_log=False)
        result.error = str(exc)
        return result
    print(f"  {name}: {len(users)} users loaded and node up in {time.monotonic() - t0:.1f}s")
    try:
        files = write_injection(users, sources, wd)
        target = (HOST, server.sip_port)
        warm_up(result, server.pid, target, warm_rate, len(users), files, wd)
        ladder(result, server.pid, target, rates, duration, files, wd, profile_dir)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    finally:
        server.stop(show_log=False)
    return result


def wait_worker(host: str, port: int, timeout: float = 60.0) -> None:
    """Until the worker whose control endpoint is ``port`` answers ``status``."""
    from offhook.ris.control import request_at

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request_at(host, port, "status", timeout=5.0)
            return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise BenchError(f"the worker with control port {port} did not answer in {timeout:.0f}s")


KAMAILIO_CFG = """#!KAMAILIO
debug=0
log_stderror=yes
children={children}
auto_aliases=no
listen=udp:{host}:{port}
mpath="{mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "kex.so"
loadmodule "corex.so"
modparam("usrloc", "db_mode", 0)
modparam("auth", "secret", "offhook-bench-register-secret")
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!is_method("REGISTER")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!pv_www_authenticate("$td", "{prefix}$au", "0")) {{
        www_challenge("$td", "1");
        exit;
    }}
    if ($au != $tU) {{
        sl_send_reply("403", "Forbidden");
        exit;
    }}
    if (!save("location")) {{
        sl_reply_error();
    }}
    exit;
}}
"""


@contextlib.contextmanager
def kamailio(workdir: Path, children: int) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    exe = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if not Path(exe).exists():
        raise BenchError("kamailio not found (Debian package kamailio)")
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(
        KAMAILIO_CFG.format(
            children=children, host=HOST, port=port, mpath=KAMAILIO_MODULES, prefix=PASSWORD_PREFIX
        )
    )
    check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError(f"kamailio refused its config: {check.stderr[-2000:]}")
    cmd = [exe, "-f", str(cfg), "-DD", "-E", "-m", "256", "-M", "16", "-Y", str(workdir)]
    with open(workdir / "kamailio.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            wait_bound(port, proc, "kamailio")
            time.sleep(0.5)
            yield proc, port
        finally:
            stop(proc)


def bench_kamailio(
    rates: list[int],
    duration: int,
    users: list[User],
    sources: int,
    workdir: Path,
    children: int,
    warm_rate: int,
) -> ServerResult:
    result = ServerResult("kamailio", config={"children": children, "usrloc": "memory"})
    wd = workdir / "kamailio"
    wd.mkdir()
    try:
        with kamailio(wd, children) as (proc, port):
            files = write_injection(users, sources, wd)
            warm_up(result, proc.pid, (HOST, port), warm_rate, len(users), files, wd)
            ladder(result, proc.pid, (HOST, port), rates, duration, files, wd)
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    return result


# -- report -------------------------------------------------------------------


def summarize(results: list[ServerResult]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for r in results:
        best = r.best_step
        per = best.cpu_ms_per_registration if best else None
        summary[r.server] = {
            "best_registrations_per_s": r.best_rate,
            "sustained_per_s_at_best": best.sustained_per_s if best else None,
            "failed_pct_at_best": best.failed_pct if best else None,
            "cpu_ms_per_registration_at_best": per,
            "sipp_cpu_s_at_best": best.sipp_cpu_s if best else None,
            "reregistration_20000_phones": rereg_load(per) if per else None,
            "error": r.error or None,
        }
    by = {r.server: r for r in results}
    if "offhook" in by and "kamailio" in by and by["kamailio"].best_rate:
        summary["ratio_offhook_over_kamailio"] = round(
            by["offhook"].best_rate / by["kamailio"].best_rate, 2
        )
    return summary


def print_table(summary: dict[str, Any], duration: int) -> None:
    print()
    print(f"Highest REGISTER rate sustained {duration}s with < {MAX_FAILED_FRACTION:.1%} failed")
    print(f"{'server':10} {'reg/s':>7} {'sustained':>10} {'failed %':>9} {'cpu ms/reg':>11}")
    for name, s in summary.items():
        if not isinstance(s, dict):
            continue
        sus = s["sustained_per_s_at_best"] or "-"
        fail = "-" if s["failed_pct_at_best"] is None else f"{s['failed_pct_at_best']:.3f}"
        per = s["cpu_ms_per_registration_at_best"] or "-"
        print(f"{name:10} {s['best_registrations_per_s']:>7} {sus:>10} {fail:>9} {per:>11}")
        rr = s["reregistration_20000_phones"]
        if rr:
            print(
                f"{'':10} 20,000 phones at {rr['expires_s']} s: {rr['registrations_per_s']} reg/s "
                f"= {rr['cpu_ms_per_s']} ms CPU/s ({rr['core_share_pct']} % of one core)"
            )
        if s["error"]:
            print(f"{'':10} error: {s['error']}")
    if "ratio_offhook_over_kamailio" in summary:
        print(f"ratio offhook/kamailio: {summary['ratio_offhook_over_kamailio']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="offhook,kamailio", help="comma list: offhook,kamailio")
    ap.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    ap.add_argument("--duration", type=int, default=10, help="seconds per step (max 60)")
    ap.add_argument("--users", type=int, default=PHONES, help="distinct users (max 100,000)")
    ap.add_argument("--sources", type=int, default=8, help="source addresses (SIPp instances)")
    ap.add_argument("--kamailio-children", type=int, default=2, help="its UDP worker processes")
    ap.add_argument(
        "--default-limits",
        action="store_true",
        help="keep the node's per-source flood bucket (shows what the defaults allow)",
    )
    ap.add_argument(
        "--warm-rate",
        type=int,
        default=500,
        help="register every user once at this rate before the steps (0: the steps "
        "register new phones)",
    )
    ap.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="profile offhook during each step: DIR/offhook-RATE.raw (py-spy raw format)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--src", default="", help="run offhook from this source tree (default: ours)")
    ap.add_argument("--before", default="", help="also run offhook from this source tree")
    ap.add_argument("--rounds", type=int, default=1, help="before/after rounds (with --before)")
    ap.add_argument(
        "--workers",
        default="1",
        help="comma list of [node] workers counts to run offhook with (e.g. 1,2)",
    )
    args = ap.parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp not found: install Debian sip-tester (scripts/install-deps.sh)")
        return 2
    if args.py_spy is not None:
        if shutil.which("py-spy") is None:
            print("py-spy not found (pip install py-spy)")
            return 2
        args.py_spy.mkdir(parents=True, exist_ok=True)
    rates = sorted({int(x) for x in args.rates.split(",") if x.strip()})[:30]
    duration = max(1, min(args.duration, 60))
    users = make_users(max(1, min(args.users, 100_000)))
    sources = max(1, min(args.sources, 64))
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="offhook-bench-register-"))
    print(
        f"work directory {workdir}; rates {rates}; {duration}s per step; "
        f"{len(users)} users from {sources} source addresses",
        flush=True,
    )
    results: list[ServerResult] = []
    for name in servers:
        if name == "offhook":
            rounds = max(1, min(args.rounds, 10))
            counts = sorted({max(1, min(int(x), 64)) for x in args.workers.split(",") if x})
            runs: list[tuple[str, str, int]] = []  # (label, source tree, workers)
            trees = [("", args.src)]
            if args.before:  # the before tree first, then this one, alternating
                trees.insert(0, ("-before", args.before))
            for i in range(rounds if args.before or counts != [1] else 1):
                for suffix, src in trees:
                    for n in counts:
                        label = "offhook" + suffix + (f"-w{n}" if counts != [1] else "")
                        more = rounds > 1 and (args.before or counts != [1])
                        runs.append((label + (f"-{i + 1}" if more else ""), src, n))
            for label, src, n in runs:
                results.append(
                    bench_offhook(
                        rates,
                        duration,
                        users,
                        sources,
                        workdir,
                        args.default_limits,
                        args.warm_rate,
                        args.py_spy,
                        label,
                        src,
                        n,
                    )
                )
        elif name == "kamailio":
            results.append(
                bench_kamailio(
                    rates, duration, users, sources, workdir, args.kamailio_children, args.warm_rate
                )
            )
        else:
            print(f"unknown server {name!r}")
            return 2
    summary = summarize(results)
    print_table(summary, duration)
    write_results(
        "register",
        {
            "duration_s": duration,
            "users": len(users),
            "sources": sources,
            "max_failed_fraction": MAX_FAILED_FRACTION,
            "summary": summary,
            "warm_rate": args.warm_rate,
            "servers": [asdict(r) for r in results],
        },
    )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
