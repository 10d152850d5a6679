"""Call coverage benchmark: calls/s and time to answer through a coverage feature,
next to direct calls, in one run.

Each scenario (``SCENARIOS``) is a number the SIPp UAC dials and the SIPp
UASs that answer behind it, each registered as a device of the plan and
answering after ``--answer-delay`` ms (``bench/scenarios/uas_answer_delay.xml``:
100, 180, pause, 200). For each scenario this starts its own ``offhook
serve`` (the plan of ``sip_calls.py`` plus the scenario's devices and keys),
starts and registers its UASs, then drives SIPp UAC -> offhook -> UASs at
stepped rates, as ``sip_calls.py`` does: each step places ``rate x
duration`` calls (both bounded); a step passes when every call completed,
fewer than 0.1 % failed and the rate was sustained. Per step: offhook's CPU
seconds and peak RSS, and the time to answer of every call (SIPp's response
time, from the first INVITE to its 200, so it includes the 407 round trip and
the answer delay), as p50 and p95. At the end, per scenario: the highest
passing rate and the p95 time to answer at the lowest rate (where every
scenario is unloaded) and at the highest rate all scenarios passed.

Scenarios:

* ``direct``: the UAC calls DN 2002, one UAS (the baseline);
* ``hunt``: the UAC calls hunt pilot 2500, whose hunt list is one circular
  line group of 10 members (DNs 2101-2110), each a SIPp UAS. The calls
  each member answered are counted from its own statistics: circular
  distribution spreads them evenly.
* ``forward-no-answer``: the UAC calls DN 2600, whose UAS rings and never
  answers; after its line's CFNA timer (1 s, the shortest a plan allows)
  offhook cancels it and forwards to DN 2601, which answers after the
  delay. Its time to answer is the direct one plus the timer.

Add a scenario with a ``Scenario`` entry in ``SCENARIOS`` (its devices, the
plan keys it adds, the number dialled).

Run from the repository root::

    python bench/sip_coverage.py                        # direct and hunt, default ladder
    python bench/sip_coverage.py --scenarios hunt --rates 50,100 --duration 10 --keep
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sip_calls  # noqa: E402 (the directory of this script is put on the path first)
from sip_calls import (  # noqa: E402
    MAX_FAILED_FRACTION,
    PASSWORDS,
    PLAN,
    RESULTS,
    BenchError,
    cpu_seconds,
    machine,
    peak_rss_kb,
    read_stat_csv,
    sipp_base,
    stop,
    wait_bound,
)

from support.ports import HOST, free_port  # noqa: E402 (put on the path by sip_calls)

DEFAULT_RATES = [25, 50, 100, 150, 200, 300, 400]
DEFAULT_ANSWER_DELAY_MS = 500
UAS_SCENARIO = HERE / "scenarios" / "uas_answer_delay.xml"
MAX_MEMBERS = 50  # SIPp UAS processes one scenario may start


@dataclass(frozen=True)
class Member:
    """A device played by a SIPp UAS that answers after the delay."""

    device: str
    dn: str
    scenario: Path = UAS_SCENARIO  # what its SIPp UAS plays (default: answers after the delay)
    cfna_to: str = ""  # its line forwards on no answer to this DN (cfna_timer 1 s)

    @property
    def password(self) -> str:
        return f"bench-{self.device}-Secret-1"


@dataclass(frozen=True)
class Scenario:
    name: str
    number: str  # what the UAC dials
    members: tuple[Member, ...]
    plan: dict[str, Any] = field(default_factory=dict)  # plan keys added (line_groups, ...)
    about: str = ""


HUNT_MEMBERS = tuple(Member(f"member{i:02d}", str(2100 + i)) for i in range(1, 11))
FNA_MEMBERS = (
    Member("ringer", "2600", sip_calls.SCENARIOS / "uas_ring_cancel.xml", cfna_to="2601"),
    Member("covering", "2601"),
)

SCENARIOS: dict[str, Scenario] = {
    "direct": Scenario(
        "direct",
        "2002",
        (Member("benchuas", "2002"),),
        about="DN 2002, one UAS",
    ),
    "hunt": Scenario(
        "hunt",
        "2500",
        HUNT_MEMBERS,
        plan={
            "line_groups": [
                {
                    "name": "bench",
                    "distribution": "circular",
                    "rna_timeout": 10,
                    "members": [m.dn for m in HUNT_MEMBERS],
                }
            ],
            "hunt_lists": [{"name": "bench", "line_groups": ["bench"]}],
            "hunt_pilots": [{"pattern": "2500", "hunt_list": "bench"}],
        },
        about="pilot 2500 -> 10-member circular line group",
    ),
    "forward-no-answer": Scenario(
        "forward-no-answer",
        "2600",
        FNA_MEMBERS,
        about="DN 2600 rings 1 s unanswered (CFNA timer), forwards to 2601",
    ),
}


def plan_for(scenario: Scenario) -> dict[str, Any]:
    """``sip_calls.PLAN``'s UAC, the scenario's members (no call limit) and keys."""
    caller = next(d for d in PLAN["devices"] if d["name"] == "benchuac")
    members = [
        {
            "name": m.device,
            "protocol": "sip",
            "password": m.password,
            "max_calls": 0,
            "lines": [
                {"dn": m.dn, "display": m.device}
                | (
                    {"forward_no_answer": {"destination": m.cfna_to}, "cfna_timer": 1}
                    if m.cfna_to
                    else {}
                )
            ],
        }
        for m in scenario.members
    ]
    return {"devices": [caller, *members], **scenario.plan}


# -- the UASs -----------------------------------------------------------------


@dataclass
class RunningUas:
    member: Member
    port: int
    stat: Path

    def answered(self) -> int:
        """Calls this UAS completed so far (its statistics file, at most 1 s old)."""
        try:
            return int(read_stat_csv(self.stat).get("SuccessfulCall(C)", "0") or 0)
        except (OSError, BenchError, ValueError):
            return 0


@contextlib.contextmanager
def member_uases(
    members: tuple[Member, ...], server_port: int, delay_ms: int, workdir: Path
) -> Iterator[list[RunningUas]]:
    """One SIPp UAS per member, each registered with offhook as its device."""
    procs: list[subprocess.Popen[bytes]] = []
    running: list[RunningUas] = []
    try:
        for m in members[:MAX_MEMBERS]:
            port = free_port()
            name = f"uas-{m.device}"
            stat = workdir / f"{name}.stat.csv"
            cmd = [
                *sipp_base(str(m.scenario), port, workdir, name),
                "-d", str(delay_ms), "-timeout", "3600s",
                "-trace_stat", "-stf", str(stat), "-fd", "1",
                HOST,
            ]  # fmt: skip
            with open(workdir / f"{name}.out", "wb") as out:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            procs.append(proc)
            wait_bound(port, proc, f"SIPp {name}")
            register(m, port, server_port, workdir)
            running.append(RunningUas(m, port, stat))
        yield running
    finally:
        for proc in procs:
            stop(proc)


def register(member: Member, uas_port: int, server_port: int, workdir: Path) -> None:
    name = f"register-{member.device}"
    cmd = [
        *sipp_base("register.xml", free_port(), workdir, name),
        "-m", "1", "-timeout", "20s", "-timeout_error",
        "-key", "user", member.device, "-key", "contact_host", HOST,
        "-key", "contact_port", str(uas_port), "-key", "expires", "3600",
        "-au", member.device, "-ap", member.password,
        f"{HOST}:{server_port}",
    ]  # fmt: skip
    with open(workdir / f"{name}.out", "wb") as out:
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=40, check=False
        )
    if done.returncode != 0:
        raise BenchError(f"{member.device} did not register (sipp exit {done.returncode})")


# -- one step -----------------------------------------------------------------


@dataclass
class Step:
    rate: int
    calls: int
    successful: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_kb: int = 0
    answer_p50_ms: float | None = None
    answer_p95_ms: float | None = None
    passed: bool = False
    note: str = ""


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def response_times(workdir: Path) -> list[float]:
    """Every call's time to answer (ms) from SIPp's RTT dumps (``-trace_rtt``)."""
    times: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        with open(path) as f:
            for line in f:
                parts = line.strip().split(";")
                if len(parts) == 3 and parts[0] != "Date_ms":
                    with contextlib.suppress(ValueError):
                        times.append(float(parts[1]))
    return times


def run_step(
    server_pid: int,
    server_port: int,
    number: str,
    rate: int,
    duration: int,
    delay_ms: int,
    workdir: Path,
) -> Step:
    calls = rate * duration
    step = Step(rate=rate, calls=calls)
    wd = workdir / f"uac-{rate}"
    wd.mkdir()
    stat = wd / "uac.stat.csv"
    cmd = [
        *sipp_base(str(sip_calls.SCENARIOS / "uac_auth.xml"), free_port(), wd, "uac"),
        "-key", "caller", "benchuac", "-s", number,
        "-au", "benchuac", "-ap", PASSWORDS["benchuac"],
        "-auth_uri", f"{number}@{HOST}:{server_port}",
        "-r", str(rate), "-m", str(calls), "-l", str(max(rate * 10, 100)),
        "-recv_timeout", "8000", "-timeout", f"{duration * 2 + 30}s",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-trace_rtt", "-rtt_freq", "1",
        f"{HOST}:{server_port}",
    ]  # fmt: skip
    cpu0 = cpu_seconds(server_pid)
    t0 = time.monotonic()
    with open(wd / "uac.out", "wb") as out:
        subprocess.run(
            cmd, cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            timeout=duration * 2 + 60, check=False,
        )  # fmt: skip
    step.elapsed_s = round(time.monotonic() - t0, 2)
    step.cpu_s = round(cpu_seconds(server_pid) - cpu0, 2)
    step.peak_rss_kb = peak_rss_kb(server_pid)
    try:
        last = read_stat_csv(stat)
        step.successful = int(last.get("SuccessfulCall(C)", "0") or 0)
        step.failed = int(last.get("FailedCall(C)", "0") or 0)
    except (OSError, BenchError, ValueError) as exc:
        step.note = f"no statistics: {exc}"
        return step
    times = response_times(wd)
    p50, p95 = percentile(times, 50), percentile(times, 95)
    step.answer_p50_ms = None if p50 is None else round(p50, 1)
    step.answer_p95_ms = None if p95 is None else round(p95, 1)
    done = step.successful + step.failed
    # (the last call is answered ``delay_ms`` after it was placed)
    sustained = step.elapsed_s <= duration * 1.1 + 2 + delay_ms / 1000
    step.passed = done >= calls and step.failed <= MAX_FAILED_FRACTION * calls and sustained
    if done < calls:
        step.note = f"only {done} of {calls} calls completed"
    elif step.failed > MAX_FAILED_FRACTION * calls:
        step.note = f"{step.failed} failed calls"
    elif not sustained:
        step.note = f"took {step.elapsed_s}s for {duration}s of calls (rate not sustained)"
    return step


# -- one scenario -------------------------------------------------------------


@dataclass
class ScenarioResult:
    scenario: str
    about: str
    best_rate: int = 0
    steps: list[Step] = field(default_factory=list)
    answered_per_member: dict[str, int] = field(default_factory=dict)
    peak_rss_kb: int = 0
    error: str = ""

    def step_at(self, rate: int) -> Step | None:
        return next((s for s in self.steps if s.rate == rate and s.passed), None)


def bench_scenario(
    scenario: Scenario, rates: list[int], duration: int, delay_ms: int, workdir: Path
) -> ScenarioResult:
    from support.server import OffhookServer, ServerError

    result = ScenarioResult(scenario.name, scenario.about)
    wd = workdir / scenario.name
    wd.mkdir()
    # Every SIPp process sends from 127.0.0.1: lift the per-source rate limit.
    unlimited = {"rate_per_source": 1e9, "rate_burst": 1e9}
    server = OffhookServer(wd, plan_for(scenario), extra_config={"sip": unlimited})
    try:
        server.start(timeout=30)
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        result.error = f"offhook did not start: {exc}"
        with contextlib.suppress(Exception):
            server.stop(show_log=False)
        return result
    try:
        with member_uases(scenario.members, server.sip_port, delay_ms, wd) as uases:
            for rate in rates:
                step = run_step(
                    server.pid, server.sip_port, scenario.number, rate, duration, delay_ms, wd
                )
                result.steps.append(step)
                result.peak_rss_kb = max(result.peak_rss_kb, step.peak_rss_kb)
                print(
                    f"  {scenario.name:8} {rate:5d} calls/s: {step.successful}/{step.calls} ok, "
                    f"{step.failed} failed, {step.elapsed_s:.1f}s, cpu {step.cpu_s:.1f}s, "
                    f"answer p50 {step.answer_p50_ms} ms p95 {step.answer_p95_ms} ms  "
                    f"{'ok' if step.passed else 'FAIL ' + step.note}",
                    flush=True,
                )
                if not step.passed:
                    break
                result.best_rate = rate
                time.sleep(3)  # let retransmission timers and timewaits drain
            time.sleep(2)  # the UASs' statistics files catch up (-fd 1)
            result.answered_per_member = {u.member.device: u.answered() for u in uases}
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    finally:
        server.stop(show_log=False)
    return result


# -- report -------------------------------------------------------------------


def summarize(results: list[ScenarioResult], rates: list[int]) -> dict[str, Any]:
    passing = [r.best_rate for r in results if r.best_rate]
    common = max((x for x in rates if all(r.step_at(x) for r in results)), default=None)
    summary: dict[str, Any] = {"lowest_rate": rates[0], "common_rate": common}
    for r in results:
        low, shared = r.step_at(rates[0]), r.step_at(common) if common else None
        best = r.step_at(r.best_rate) if r.best_rate else None
        spread = list(r.answered_per_member.values())
        summary[r.scenario] = {
            "best_calls_per_s": r.best_rate,
            "answer_p95_ms_at_lowest": low.answer_p95_ms if low else None,
            "answer_p95_ms_at_common": shared.answer_p95_ms if shared else None,
            "answer_p95_ms_at_best": best.answer_p95_ms if best else None,
            "cpu_ms_per_call_at_best": round(1000 * best.cpu_s / best.calls, 3)
            if best and best.calls
            else None,
            "answered_per_member_min_max": [min(spread), max(spread)] if len(spread) > 1 else None,
            "error": r.error or None,
        }
    if len(passing) == len(results) and "direct" in summary:
        for name in ("hunt", "forward-no-answer"):
            if name in summary:
                summary[f"ratio_{name}_over_direct"] = round(
                    summary[name]["best_calls_per_s"] / summary["direct"]["best_calls_per_s"], 2
                )
    return summary


def print_table(summary: dict[str, Any], duration: int, delay_ms: int) -> None:
    low, common = summary["lowest_rate"], summary["common_rate"]
    print()
    print(f"Highest rate sustained {duration}s with < {MAX_FAILED_FRACTION:.1%} failed calls;")
    print(f"time to answer (INVITE to 200, members answer after {delay_ms} ms), p95:")
    print(
        f"{'scenario':18} {'calls/s':>8} {'p95 @' + str(low):>10} "
        f"{'p95 @' + str(common):>10} {'p95 @best':>10} {'cpu ms/call':>12} {'per member':>12}"
    )
    for name, s in summary.items():
        if not isinstance(s, dict):
            continue
        spread = s["answered_per_member_min_max"]
        members = f"{spread[0]}-{spread[1]}" if spread else "-"
        print(
            f"{name:18} {s['best_calls_per_s']:>8} {_ms(s['answer_p95_ms_at_lowest']):>10} "
            f"{_ms(s['answer_p95_ms_at_common']):>10} {_ms(s['answer_p95_ms_at_best']):>10} "
            f"{_ms(s['cpu_ms_per_call_at_best']):>12} {members:>12}"
        )
        if s["error"]:
            print(f"{'':18} error: {s['error']}")
    for name in ("hunt", "forward-no-answer"):
        if f"ratio_{name}_over_direct" in summary:
            print(f"ratio {name}/direct (calls/s): {summary[f'ratio_{name}_over_direct']}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of scenarios")
    ap.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    ap.add_argument("--duration", type=int, default=10, help="seconds per step (max 120)")
    ap.add_argument(
        "--answer-delay", type=int, default=DEFAULT_ANSWER_DELAY_MS, help="ms (max 10000)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp not found: install Debian sip-tester (scripts/install-deps.sh)")
        return 2
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}")
        return 2
    rates = sorted({int(x) for x in args.rates.split(",") if x.strip()})[:30]
    duration = max(1, min(args.duration, 120))
    delay_ms = max(0, min(args.answer_delay, 10_000))
    workdir = Path(tempfile.mkdtemp(prefix="offhook-bench-coverage-"))
    print(f"work directory {workdir}; rates {rates}; {duration}s per step", flush=True)
    results = [bench_scenario(SCENARIOS[n], rates, duration, delay_ms, workdir) for n in names]
    summary = summarize(results, rates)
    print_table(summary, duration, delay_ms)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"sip_coverage-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "machine": machine(),
                "duration_s": duration,
                "answer_delay_ms": delay_ms,
                "max_failed_fraction": MAX_FAILED_FRACTION,
                "summary": summary,
                "scenarios": [
                    {**asdict(r), "steps": [asdict(s) for s in r.steps]} for r in results
                ],
            },
            indent=2,
        )
    )
    print(f"results written to {out}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
