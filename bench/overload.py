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

    python bench/overload.py --base 300 --factors 1,2,4 --duration 10
"""

from __future__ import annotations

import argparse
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
    BenchError,
    cpu_seconds,
    free_port,
    read_stat_csv,
    register_uas,
    sipp_base,
    sipp_uas,
    start_offhook,
    write_results,
)

PROBE_INTERVAL = 0.02
PROBE_TIMEOUT = 1.0


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
    elapsed_s: float = 0.0
    goodput: float = 0.0  # successful calls per second of offered load
    goodput_share: float = 0.0  # of --base
    shed_invites: int = 0
    cpu_s: float = 0.0
    options_sent: int = 0
    options_lost: int = 0
    options_p50_ms: float | None = None
    options_p99_ms: float | None = None
    overload_episodes: int = 0
    note: str = ""


@dataclass
class Result:
    base: int
    steps: list[Step] = field(default_factory=list)
    error: str = ""


def run_step(
    server: Any, uac: list[str], base: int, factor: float, duration: int, wd: Path
) -> Step:
    rate = max(1, round(base * factor))
    step = Step(factor=factor, rate=rate, calls=rate * duration, duration=duration)
    name = f"uac-x{factor:g}"
    stat = wd / f"{name}.stat.csv"
    cmd = [
        *sipp_base(uac[0], free_port(), wd, name),
        *uac[1:],
        "-r", str(rate), "-m", str(step.calls), "-l", str(max(rate * 10, 100)),
        "-recv_timeout", "8000", "-timeout", f"{duration * 2 + 30}s",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        f"{HOST}:{server.sip_port}",
    ]  # fmt: skip
    before = server.control("overload")
    probe = OptionsProbe(server.sip_port)
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
    after = server.control("overload")
    step.shed_invites = after["shed"]["invite"] - before["shed"]["invite"]
    step.overload_episodes = after["episodes"] - before["episodes"]
    step.options_sent = len(probe.rtts) + probe.lost
    step.options_lost = probe.lost
    for attr, q in (("options_p50_ms", 0.5), ("options_p99_ms", 0.99)):
        value = probe.percentile(q)
        setattr(step, attr, None if value is None else round(value * 1000, 2))
    try:
        last = read_stat_csv(stat)
        step.successful = int(last.get("SuccessfulCall(C)", "0") or 0)
        step.failed = int(last.get("FailedCall(C)", "0") or 0)
    except (OSError, BenchError, ValueError) as exc:
        step.note = f"no statistics: {exc}"
    step.goodput = round(step.successful / duration, 1)  # calls were offered over duration s
    step.goodput_share = round(step.goodput / base, 3)
    return step


def bench(base: int, factors: list[float], duration: int, workdir: Path) -> Result:
    result = Result(base)
    # Overload control on, as shipped (the test helper turns it off for tests).
    server, why = start_offhook(workdir, {"overload": {"enabled": True}})
    if server is None:
        result.error = why
        return result
    try:
        with sipp_uas(workdir) as uas_port:
            uac = register_uas(server.sip_port, uas_port, workdir)
            for factor in factors:
                step = run_step(server, uac, base, factor, duration, workdir)
                result.steps.append(step)
                p99 = step.options_p99_ms
                print(
                    f"  x{factor:<4g} {step.rate:6d} calls/s offered: "
                    f"goodput {step.goodput:7.1f}/s "
                    f"({100 * step.goodput_share:5.1f} % of {base}), {step.successful} ok, "
                    f"{step.failed} failed ({step.shed_invites} shed 503), cpu {step.cpu_s:.1f}s, "
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
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp not found: install Debian sip-tester (scripts/install-deps.sh)")
        return 2
    factors = [float(x) for x in args.factors.split(",") if x.strip()][:5]
    duration = max(1, min(args.duration, 60))
    base = max(1, min(args.base, 20_000))
    workdir = Path(tempfile.mkdtemp(prefix="offhook-overload-"))
    print(f"work directory {workdir}; base {base} calls/s x {factors}; {duration}s per step")
    result = bench(base, factors, duration, workdir)
    if result.error:
        print(f"error: {result.error}")
    write_results(
        "overload",
        {
            "base": base,
            "duration_s": duration,
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
