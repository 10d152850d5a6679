"""Soak: legitimate calls at a steady rate while a second process floods every listener.

The advisory's failure classes, all at once and for a long time, against one
real ``offhook serve`` on loopback (free ports, default defences):

- legitimate traffic, from 127.0.0.1: a SIPp UAS registered as ``soakuas``
  (DN 2002) and re-registered every ``--register-every`` seconds (SIPp
  ``register.xml``, digest); a SIPp UAC (``uac_auth.xml``: INVITE, 407, ACK,
  INVITE with credentials, 100/180/200, ACK, BYE) calling 2002 as
  ``soakuac`` at ``--rate`` calls/s; and ``--sccp-pairs`` pairs of simulated
  Cisco 7960s (``tests/support/sccp_phone.py``) calling each other in turn
  (off-hook, dial, ring, answer, media channels, hang up) and registering
  again from a new connection every ``--sccp-reregister`` calls;
- hostile traffic, from a second process (``multiprocessing``, spawn), from
  random source addresses in 127.0.0.0/8 (never 127.0.0.1), at
  ``--flood-rate`` operations per second (one datagram or one connection
  each), at most ``--flood-connections`` connections open at once:
  SIP over UDP and TCP (the 49 RFC 4475 torture messages, mutated copies,
  random bytes, crafted Content-Length values 1 .. 2**32-1 and negative,
  oversize and header-bomb messages; TCP connections closed, half-closed,
  reset, left idle or trickled a byte at a time), SCCP (length fields 0, 3,
  4095 .. 4097, 2**31-1, 2**32-1, random frames, unknown devices
  registering, truncated frames), TFTP (traversal names, bad modes and
  options, WRQ, stray DATA/ACK/ERROR, junk, oversize datagrams), HTTP
  provisioning (traversal, junk, bodies, huge heads, TLS and HTTP/2
  preambles, idle connections) and the control endpoint ([admin], junk JSON lines; refused by its
  allow-list: it is loopback-only by default).

With ``--dual-stack`` every listener of the node (SIP, SCCP, TFTP, HTTP,
admin) is one dual-stack socket (``listen = "::"``; allow-lists
``127.0.0.0/8`` and ``::1/128``, the admin's its default loopback pair), and
the one run covers both families: the legitimate clients are IPv4 as above
(from 127.0.0.1, so they arrive on the IPv6 sockets as ``::ffff:127.0.0.1``),
and half of the flood's operations, of every kind, come over IPv6 from ::1,
the other half over IPv4 from random 127.x.y.z (arriving mapped too). ::1 is
the only IPv6 loopback address, so the IPv6 half is one source to the
per-source defences (one rate bucket, one failed-login entry, at most
``max_connections_per_source`` connections per listener; and the admin
endpoint admits it, as it admits 127.0.0.1); legitimate IPv6 clients on
that same address would share its fate, hence IPv4 for the legitimate
clients. One more check then: no IPv4-mapped address (``::ffff:``) anywhere
in the node's log or ``offhook status``.

The SIPp UAS and registration scenarios are the interop ones
(``tests/interop/scenarios/uas.xml``, ``register.xml``), which tolerate what
a late answer brings (an extra ACK for a retransmitted 200, a second 401 for
a retransmitted REGISTER), since offhook answering correctly a little late
is not a failed call.

Every ``--sample`` seconds the node's resident memory (``VmRSS``), open file
descriptors (``/proc/PID/fd``) and CPU share are recorded, and every second
an OPTIONS from 127.0.0.1 measures how long the node takes to answer (a stall
of the node, or of the box, shows there). Verdict (exit status 1 when any
fails):

- no legitimate call or registration failed (SIPp counters, SCCP driver);
- RSS growth after the warm-up: the median of the last 10 s of load minus the
  median of the first 10 s after ``--warmup``, below ``--max-rss-growth-mb``
  (the warm-up covers the 32 s that finished SIP transactions linger, RFC
  3261 Timer J/H, so the node's steady state is reached);
- open descriptors: after the flood stopped (its sockets closed), back to
  the count before it started (SCCP phones registered) within
  ``--max-fd-delta``, within ``--settle`` seconds;
- the node is alive and logged no ERROR or traceback.

Run from the repository root (needs ``sipp``; loopback only; bounded by
``--duration``)::

    python bench/soak.py --duration 120 --rate 5            # what CI runs (test_soak.py)
    python bench/soak.py --duration 120 --rate 5 --dual-stack   # CI too: "::", both families
    python bench/soak.py --duration 1800 --rate 10 --flood-rate 300 --json soak.json

The figures of a 30-minute run are in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from soak_flood import FloodConfig, flood_main  # noqa: E402

from support.ports import HOST, free_port  # noqa: E402

SCENARIOS = REPO / "tests" / "interop" / "scenarios"
VECTORS = REPO / "tests" / "vectors" / "sip" / "rfc4475"
PASSWORDS = {"soakuac": "soak-Uac-Secret-1", "soakuas": "soak-Uas-Secret-1"}


def sccp_name(i: int) -> str:
    return f"SEP00000050{i:04X}"


def plan(pairs: int) -> dict[str, Any]:
    devices: list[dict[str, Any]] = [
        {
            "name": name,
            "protocol": "sip",
            "password": PASSWORDS[name],
            "max_calls": 0,  # a load generator, not a phone
            "lines": [{"dn": dn, "display": name}],
        }
        for name, dn in (("soakuac", "2001"), ("soakuas", "2002"))
    ]
    devices += [
        {
            "name": sccp_name(i),
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": str(3000 + i), "display": f"Phone {i}"}],
        }
        for i in range(2 * pairs)
    ]
    return {"devices": devices}


# -- /proc ------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Pong(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def options_rtt(port: int, rtts: list[float], stop: asyncio.Event) -> None:
    """An OPTIONS to the node every second from 127.0.0.1: its round-trip times (s).

    A probe unanswered within 2 s counts as 2.0: the node (or the box) stalled.
    """
    loop = asyncio.get_running_loop()
    proto = _Pong()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(HOST, 0))
    lport = transport.get_extra_info("sockname")[1]
    n = 0
    try:
        while not stop.is_set():
            n += 1
            msg = (
                f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{lport};branch=z9hG4bKprobe{n};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:probe@{HOST}>;tag=p{n}\r\n"
                f"To: <sip:{HOST}:{port}>\r\nCall-ID: soak-probe-{n}@{HOST}\r\n"
                "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            proto.waiter = loop.create_future()
            sent = loop.time()
            transport.sendto(msg, (HOST, port))
            try:
                await asyncio.wait_for(proto.waiter, 2.0)
                rtts.append(loop.time() - sent)
            except TimeoutError:
                rtts.append(2.0)
            await asyncio.sleep(max(0.0, 1.0 - (loop.time() - sent)))
    finally:
        transport.close()


# -- legitimate traffic ----------------------------------------------------------------


@dataclass
class Legit:
    sip_calls_ok: int = 0
    sip_calls_failed: int = 0
    sip_calls_planned: int = 0
    sip_registrations_ok: int = 0
    sip_registrations_failed: int = 0
    sccp_registrations_ok: int = 0
    sccp_registrations_failed: int = 0
    sccp_calls_ok: int = 0
    sccp_calls_failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return (
            self.sip_calls_failed
            + self.sip_registrations_failed
            + self.sccp_registrations_failed
            + self.sccp_calls_failed
            + max(0, self.sip_calls_planned - self.sip_calls_ok - self.sip_calls_failed)
        )


def sipp(scenario: str, port: int, workdir: Path, name: str) -> list[str]:
    return [
        "sipp", "-sf", str(SCENARIOS / scenario),
        "-i", HOST, "-p", str(port), "-mp", str(free_port(span=4)),  # audio + video RTP/RTCP
        "-t", "u1", "-nostdin", "-buff_size", "4194304",
        "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
    ]  # fmt: skip


async def register_uas(node_port: int, uas_port: int, workdir: Path, n: int) -> bool:
    cmd = [
        *sipp("register.xml", free_port(), workdir, f"register-{n % 3}"),
        "-m", "1", "-timeout", "20s", "-timeout_error",
        "-key", "user", "soakuas", "-key", "contact_host", HOST,
        "-key", "contact_port", str(uas_port), "-key", "expires", "600",
        "-au", "soakuas", "-ap", PASSWORDS["soakuas"],
        f"{HOST}:{node_port}",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await proc.wait() == 0


async def sccp_pair(
    node_port: int, a_index: int, stop_at: float, legit: Legit, reregister: int
) -> None:
    """Two phones calling each other in turn until ``stop_at`` (loop time)."""
    from offhook.sccp.messages import CallState, SetRinger, StartMediaTransmission
    from support.sccp_phone import SccpPhone

    loop = asyncio.get_running_loop()
    names = (sccp_name(a_index), sccp_name(a_index + 1))
    dns = (str(3000 + a_index), str(3000 + a_index + 1))

    def on_hook(m: Any) -> bool:
        return isinstance(m, CallState) and m.call_state == 2

    while loop.time() < stop_at:
        phones = [SccpPhone(n, node_port) for n in names]
        try:
            for p in phones:
                try:
                    await p.register(timeout=10.0)
                    legit.sccp_registrations_ok += 1
                except Exception as exc:
                    legit.sccp_registrations_failed += 1
                    legit.errors.append(f"sccp register {p.name}: {exc!r}"[:300])
                    raise
            for n in range(reregister):
                if loop.time() >= stop_at:
                    break
                caller, callee = (phones[0], phones[1]) if n % 2 == 0 else (phones[1], phones[0])
                try:
                    c0, e0 = caller.mark(), callee.mark()
                    caller.off_hook(1)
                    caller.dial(dns[1] if caller is phones[0] else dns[0])
                    await callee.wait_for(SetRinger, timeout=10.0, since=e0)
                    callee.off_hook(1)
                    await caller.wait_for(StartMediaTransmission, timeout=10.0, since=c0)
                    await callee.wait_for(StartMediaTransmission, timeout=10.0, since=e0)
                    await asyncio.sleep(0.5)
                    c1, e1 = caller.mark(), callee.mark()
                    caller.on_hook(1)
                    await caller.wait_for(on_hook, timeout=10.0, since=c1)
                    await callee.wait_for(on_hook, timeout=10.0, since=e1)
                    callee.on_hook(1)
                    legit.sccp_calls_ok += 1
                except (OSError, TimeoutError) as exc:
                    legit.sccp_calls_failed += 1
                    legit.errors.append(f"sccp call {caller.name}: {exc!r}"[:300])
                    break
                await asyncio.sleep(1.0)
        except Exception:  # counted above; start again with new phones
            await asyncio.sleep(1.0)
        finally:
            for p in phones:
                await p.close()


# -- the run ---------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    cpu_pct: float  # the node's CPU since the previous sample (100 = one core)


def rtt_summary(rtts: list[float]) -> dict[str, float | int]:
    if not rtts:
        return {}
    ordered = sorted(rtts)
    return {
        "probes": len(ordered),
        "p50": round(1000 * ordered[len(ordered) // 2], 2),
        "p99": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max": round(1000 * ordered[-1], 2),
        "over_500ms": sum(1 for r in ordered if r > 0.5),
        "unanswered_2s": sum(1 for r in ordered if r >= 2.0),
    }


def median_in(samples: list[Sample], lo: float, hi: float) -> float | None:
    window = [s.rss_kib for s in samples if lo <= s.t <= hi]
    return float(statistics.median(window)) if window else None


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from support.server import OffhookServer

    node = OffhookServer(workdir, plan(args.sccp_pairs), listen="::" if args.dual_stack else None)
    node.start(timeout=60)
    loop = asyncio.get_running_loop()
    legit = Legit()
    samples: list[Sample] = []
    result: dict[str, Any] = {"args": vars(args), "node_pid": node.pid}
    uas: subprocess.Popen[bytes] | None = None
    uac: asyncio.subprocess.Process | None = None
    flood: multiprocessing.process.BaseProcess | None = None
    try:
        uas_port = free_port()
        uas_cmd = [
            *sipp("uas.xml", uas_port, workdir, "uas"),
            "-timeout", f"{int(args.duration) + 300}s", HOST,
        ]  # fmt: skip
        with open(workdir / "uas.out", "wb") as out:
            uas = subprocess.Popen(uas_cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        await asyncio.sleep(1.0)
        if not await register_uas(node.sip_port, uas_port, workdir, 0):
            raise RuntimeError("the SIPp UAS could not register (see the work directory)")
        legit.sip_registrations_ok += 1

        # The baseline: the node at rest (the UAS is registered over UDP: no descriptor).
        await asyncio.sleep(1.0)
        fd_before = fd_count(node.pid)
        rss_before = rss_kib(node.pid)
        start = loop.time()
        stop_at = start + args.duration
        pairs = [
            asyncio.ensure_future(
                sccp_pair(node.sccp_port, 2 * i, stop_at, legit, args.sccp_reregister)
            )
            for i in range(args.sccp_pairs)
        ]

        cfg = FloodConfig(
            sip=node.sip_port,
            sccp=node.sccp_port,
            tftp=node.tftp_port,
            http=node.tftp_http_port,
            admin=node.admin_port,
            duration=args.duration,
            rate=args.flood_rate,
            max_connections=args.flood_connections,
            seed=args.seed,
            ipv6=0.5 if args.dual_stack else 0.0,
        )
        parent, child = multiprocessing.get_context("spawn").Pipe(duplex=False)
        flood = multiprocessing.get_context("spawn").Process(
            target=flood_main, args=(cfg, child), name="soak-flood"
        )
        flood.start()
        child.close()

        calls = int(args.rate * args.duration)
        legit.sip_calls_planned = calls
        stat = workdir / "uac.stat.csv"
        uac_cmd = [
            *sipp("uac_auth.xml", free_port(), workdir, "uac"),
            "-key", "caller", "soakuac", "-s", "2002",
            "-au", "soakuac", "-ap", PASSWORDS["soakuac"],
            "-auth_uri", f"2002@{HOST}:{node.sip_port}",
            "-r", str(args.rate), "-m", str(calls), "-l", str(max(50, int(args.rate * 20))),
            "-recv_timeout", "20000", "-timeout", f"{int(args.duration) + 120}s",
            "-trace_stat", "-stf", str(stat), "-fd", "5",
            f"{HOST}:{node.sip_port}",
        ]  # fmt: skip
        uac_out = open(workdir / "uac.out", "wb")  # noqa: SIM115 - closed below
        uac = await asyncio.create_subprocess_exec(
            *uac_cmd, stdin=asyncio.subprocess.DEVNULL, stdout=uac_out, stderr=uac_out
        )

        async def registrations() -> None:
            n = 1
            while loop.time() < stop_at:
                await asyncio.sleep(args.register_every)
                if await register_uas(node.sip_port, uas_port, workdir, n):
                    legit.sip_registrations_ok += 1
                else:
                    legit.sip_registrations_failed += 1
                    legit.errors.append(f"SIP registration {n} failed")
                n += 1

        async def sampler() -> None:
            last_t, last_cpu = loop.time(), cpu_seconds(node.pid)
            while True:
                now, cpu = loop.time(), cpu_seconds(node.pid)
                pct = 100.0 * (cpu - last_cpu) / max(1e-3, now - last_t)
                last_t, last_cpu = now, cpu
                samples.append(
                    Sample(
                        round(now - start, 1),
                        rss_kib(node.pid),
                        fd_count(node.pid),
                        round(pct, 1),
                    )
                )
                await asyncio.sleep(args.sample)

        reg_task = asyncio.ensure_future(registrations())
        sample_task = asyncio.ensure_future(sampler())
        probe_stop = asyncio.Event()
        rtts: list[float] = []
        probe_task = asyncio.ensure_future(options_rtt(node.sip_port, rtts, probe_stop))
        progress = 0.0
        while loop.time() < stop_at:
            await asyncio.sleep(1.0)
            if node.proc is None or node.proc.poll() is not None:
                raise RuntimeError("offhook serve died during the soak")
            elapsed = loop.time() - start
            if elapsed - progress >= 60:
                progress = elapsed
                last = samples[-1] if samples else None
                print(
                    f"  {elapsed:6.0f}s  rss {last.rss_kib if last else 0} KiB  "
                    f"fds {last.fds if last else 0}  sccp calls {legit.sccp_calls_ok} ok "
                    f"{legit.sccp_calls_failed} failed",
                    flush=True,
                )
        load_end = loop.time() - start
        probe_stop.set()
        # The flood stops by itself at the duration; its report arrives through the pipe.
        flood_counts: dict[str, int] = {}
        if await loop.run_in_executor(None, parent.poll, 60.0):
            flood_counts = parent.recv()
        await loop.run_in_executor(None, flood.join, 30.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(uac.wait(), 120.0)
        uac_out.close()
        reg_task.cancel()
        await asyncio.gather(*pairs, reg_task, probe_task, return_exceptions=True)

        # Settle: every hostile socket is closed; the node's count comes back.
        settle_start = loop.time()
        fd_after = fd_count(node.pid)
        while loop.time() - settle_start < args.settle:
            fd_after = fd_count(node.pid)
            if abs(fd_after - fd_before) <= args.max_fd_delta:
                break
            await asyncio.sleep(0.5)
        settle_s = round(loop.time() - settle_start, 1)
        sample_task.cancel()

        with contextlib.suppress(OSError, ValueError, KeyError):
            with open(stat, newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter=";"))
            legit.sip_calls_ok = int(rows[-1]["SuccessfulCall(C)"])
            legit.sip_calls_failed = int(rows[-1]["FailedCall(C)"])
        result["status"] = node.status()
        log = node.log()
        result["node_errors"] = [
            line for line in log.splitlines() if " ERROR " in line or "Traceback" in line
        ][:20]

        base = median_in(samples, args.warmup, args.warmup + 10)
        end = median_in(samples, load_end - 10, load_end)
        growth_mb = (end - base) / 1024 if base is not None and end is not None else None
        result.update(
            legit=asdict(legit),
            flood=flood_counts,
            samples=[asdict(s) for s in samples],
            rss_kib={
                "before": rss_before,
                "after_warmup": base,
                "end_of_load": end,
                "peak_sampled": max((s.rss_kib for s in samples), default=0),
                "growth_mb": None if growth_mb is None else round(growth_mb, 2),
            },
            cpu_pct={
                "mean": round(statistics.mean(s.cpu_pct for s in samples[1:]), 1)
                if len(samples) > 1
                else None,
                "max": max((s.cpu_pct for s in samples[1:]), default=None),
            },
            options_rtt_ms=rtt_summary(rtts),
            fds={
                "before_flood": fd_before,
                "peak": max((s.fds for s in samples), default=0),
                "after": fd_after,
                "settle_s": settle_s,
            },
        )
        checks = {
            "no legitimate failure": legit.failures == 0
            and legit.sip_calls_ok == legit.sip_calls_planned,
            f"RSS growth < {args.max_rss_growth_mb} MB": growth_mb is not None
            and growth_mb < args.max_rss_growth_mb,
            f"fds back to {fd_before} +- {args.max_fd_delta}": abs(fd_after - fd_before)
            <= args.max_fd_delta,
            "node alive, no ERROR logged": node.proc is not None
            and node.proc.poll() is None
            and not result["node_errors"],
        }
        if args.dual_stack:
            mapped = "::ffff:" in log or "::ffff:" in json.dumps(result["status"], default=str)
            checks["one address form (no ::ffff: in log or status)"] = not mapped
        result["checks"] = checks
        result["passed"] = all(checks.values())
        return result
    finally:
        if flood is not None and flood.is_alive():
            flood.terminate()
        if uac is not None and uac.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                uac.terminate()
        if uas is not None and uas.poll() is None:
            uas.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                uas.wait(timeout=10)
            if uas.poll() is None:
                uas.kill()
        node.stop(show_log=False)


def report(r: dict[str, Any]) -> None:
    legit, rss, fds = r["legit"], r["rss_kib"], r["fds"]
    total = legit["sip_calls_ok"] + legit["sip_calls_failed"]
    print("== soak" + (' (dual-stack listeners, "::")' if r["args"].get("dual_stack") else ""))
    share = 100.0 * legit["sip_calls_ok"] / max(1, total)
    print(
        f"SIP calls: {legit['sip_calls_ok']}/{legit['sip_calls_planned']} ok "
        f"({legit['sip_calls_failed']} failed, {share:.2f} % of those done)"
    )
    print(
        f"SIP registrations: {legit['sip_registrations_ok']} ok, "
        f"{legit['sip_registrations_failed']} failed"
    )
    print(
        f"SCCP: {legit['sccp_registrations_ok']} registrations ok "
        f"({legit['sccp_registrations_failed']} failed), {legit['sccp_calls_ok']} calls ok "
        f"({legit['sccp_calls_failed']} failed)"
    )
    flood = r["flood"]
    print(f"flood: {flood.get('operations', 0)} operations: " + ", ".join(
        f"{k} {v}" for k, v in sorted(flood.items()) if k != "operations"))  # fmt: skip
    print(
        f"RSS KiB: before {rss['before']}, after warm-up {rss['after_warmup']}, "
        f"end of load {rss['end_of_load']}, peak {rss['peak_sampled']}, "
        f"growth {rss['growth_mb']} MB"
    )
    print(
        f"fds: before flood {fds['before_flood']}, peak {fds['peak']}, after {fds['after']} "
        f"(settled in {fds['settle_s']} s)"
    )
    print(f"node CPU %: {r['cpu_pct']}; OPTIONS round trip ms: {r['options_rtt_ms']}")
    for name, ok in r["checks"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    for err in r["legit"]["errors"][:10] + r["node_errors"][:10]:
        print(f"  ! {err}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    ap.add_argument("--rate", type=float, default=5.0, help="legitimate SIP calls per second")
    ap.add_argument("--flood-rate", type=float, default=200.0, help="hostile operations/s")
    ap.add_argument("--flood-connections", type=int, default=128, help="hostile TCP at once")
    ap.add_argument("--sccp-pairs", type=int, default=1)
    ap.add_argument("--sccp-reregister", type=int, default=10, help="calls per registration")
    ap.add_argument("--register-every", type=float, default=10.0, help="SIP re-registration s")
    ap.add_argument("--warmup", type=float, default=40.0)
    ap.add_argument("--sample", type=float, default=2.0)
    ap.add_argument("--settle", type=float, default=30.0)
    ap.add_argument("--max-rss-growth-mb", type=float, default=15.0)
    ap.add_argument("--max-fd-delta", type=int, default=5)
    ap.add_argument("--seed", type=int, default=4475)
    ap.add_argument(
        "--dual-stack",
        action="store_true",
        help='every listener on one dual-stack socket ("::"); half the flood over IPv6 from ::1',
    )
    ap.add_argument("--json", type=Path, help="write the whole result here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    if args.duration < args.warmup + 30:
        ap.error("--duration must exceed --warmup by at least 30 s")
    if shutil.which("sipp") is None:
        print("soak: sipp (Debian sip-tester) is needed", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="offhook-soak-"))
    # SIGTERM like Ctrl-C: the run is cancelled and every process it started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = asyncio.run(soak(args, workdir))
    except KeyboardInterrupt:
        print(f"soak: interrupted (work directory kept: {workdir})", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"soak: {exc!r} (work directory kept: {workdir})", file=sys.stderr)
        return 1
    if not args.keep and result["passed"]:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"work directory: {workdir}")
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
