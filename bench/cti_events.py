"""CTI benchmark: events delivered to 0, 1, 10 and 100 WebSocket clients under a SIPp call load.

One ``offhook serve`` with its web process runs for the whole run. For each
client count N, N CTI clients (the ``websockets`` library, a full-admin API
token, subscribed to everything) connect to ``/cti/v1/events`` and count what
they receive, while SIPp drives UAC -> offhook -> UAS calls at a fixed rate
for a bounded time (``rate x duration`` calls). For each N the run records:
the calls that completed and failed, the node's and the web process's CPU
seconds per call (``/proc``), and the events per second the clients received
in all. With ``--ladder`` it also steps the call rate up (as
``bench/sip_calls.py`` does) with the N clients connected, and records the
highest rate sustained with < 0.1 % failed calls.

The figure the issue asks for is the cost of CTI to call processing: the
node's CPU per call with N clients against the same with none, measured in
the same run (``cti_cost``: (cpu_N - cpu_0) / cpu_0), and, with ``--ladder``,
the sustained call rate with N clients over the one without. The web
process's CPU is reported beside it: on this 2-core machine SIPp, the node
and the web process share the cores.

``--node-cpu 0`` (with the bench run as ``taskset -c 1 python bench/...``)
gives the node a core of its own and puts SIPp, the web process and the
clients on the other: the layout of a node whose CTI applications run
elsewhere, so that the ladder measures what CTI costs call processing, not
how a shared core is split.

``--before DIR`` runs every step first against a node started from the
source tree ``DIR`` (e.g. ``git archive REV src | tar -x -C /tmp/before``,
then ``--before /tmp/before/src``), then against this tree: the "before"
figures of the same run, on the same machine at the same time.

Run from the repository root::

    python bench/cti_events.py                                  # 0,1,10,100 clients at 200 calls/s
    python bench/cti_events.py --clients 0,100 --rate 300 --duration 20 --ladder
    python bench/cti_events.py --before /tmp/before/src --clients 0,1,10,100,0

(``--src DIR`` runs only against ``DIR``: a ladder of both trees takes
longer than one run should, so it is two runs back to back.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import sip_calls as sc  # noqa: E402

from support.ports import HOST  # noqa: E402

RESULTS = HERE / "results"
ADMIN = "bench-cti"
ADMIN_PASSWORD = "bench-Cti-Secret-1"
MAX_CLIENTS = 100


@dataclass
class Clients:
    """N WebSocket clients counting events, on their own event loop in a thread.

    Each is a minimal RFC 6455 client: the upgrade request, then events
    counted in the raw bytes (``_count``; nothing is decoded). The clients
    stand for applications on other machines; on this one they must cost
    little, or they, not CTI, take the node's CPU (the ``websockets`` library
    decoding every event took more than a core at 100 clients; walking every
    frame header in Python, about a third of one). The interop tests use
    that library.
    """

    url: str
    token: str
    count: int
    received: int = 0
    connected: int = 0
    lost: int = 0
    """Clients the server disconnected (fallen behind: overflowed) before the end."""
    resyncs: int = 0
    """Resync frames received (the web process missed events from the node)."""
    nice: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise sc.BenchError(f"{self.count} CTI clients did not connect in {timeout}s")
        if self.connected != self.count:
            raise sc.BenchError(
                f"only {self.connected} of {self.count} CTI clients connected: {self.errors[:3]}"
            )

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # ``nice`` > 0: the clients, standing for applications on other machines, run
        # below everything else on this one (this thread only).
        if self.nice:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        connections = []
        for _ in range(self.count):
            try:
                connections.append(await asyncio.wait_for(self._connect(), 10))
            except (OSError, TimeoutError, sc.BenchError) as exc:
                self.errors.append(repr(exc))
        self.connected = len(connections)
        readers = [asyncio.create_task(self._read(*c)) for c in connections]
        self._ready.set()
        await self._stop.wait()
        for _, writer in connections:
            with contextlib.suppress(OSError):
                writer.write(_client_frame(0x8, b"\x03\xe8"))  # close, 1000
                writer.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host_port, _, path = self.url.removeprefix("ws://").partition("/")
        host, _, port = host_port.rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {self.token}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            status = head.partition(b"\r\n")[0]
            raise sc.BenchError(f"upgrade refused: {status!r}")
        return reader, writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await self._count(reader)
        if self._stop is not None and not self._stop.is_set():
            self.lost += 1

    async def _count(self, reader: asyncio.StreamReader) -> None:
        """Count events by their opening bytes until the server closes.

        Every event frame's payload starts with ``{"seq":`` (docs/cti.md), and
        those bytes cannot occur elsewhere in a frame: inside a JSON string a
        quote is escaped, and a frame header is 2-4 bytes with no ``{``
        after its length byte but the payload's own. ``bytes.count`` is the
        whole per-event cost, so the clients take next to no CPU from the
        node beside them. The run sets ``[cti] ping_interval`` above its
        length, so there is no ping to answer; the server's close ends it.
        """
        carry = b""
        while chunk := await reader.read(1 << 18):
            data = carry + chunk
            self.received += data.count(EVENT_MARK)
            self.resyncs += data.count(RESYNC_MARK)
            carry = data[-(len(RESYNC_MARK) - 1) :]


EVENT_MARK = b'{"seq":'
RESYNC_MARK = b'{"type":"resync"'


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A client's control frame (payload < 126 bytes), masked with a zero key."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def web_pid(node_pid: int) -> int:
    for pid in child_pids(node_pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"web" in cmdline:
                return pid
    raise sc.BenchError("no web process among the node's children")


def cli(server: Any, *args: str, stdin: str = "") -> str:
    from support.server import CLI

    done = subprocess.run(
        [*CLI, *args, "--config", str(server.config_path)],
        input=stdin,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise sc.BenchError(f"offhook {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Result:
    clients: int
    tree: str = "this tree"
    connected: int = 0
    rate: int = 0
    calls: int = 0
    successful: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    node_cpu_ms_per_call: float | None = None
    web_cpu_ms_per_call: float | None = None
    events: int = 0
    events_per_s: float = 0.0
    lost: int = 0
    resyncs: int = 0
    published: int = 0
    """Events the node published in the step (each client subscribed to all gets each)."""

    @property
    def delivered_share(self) -> float:
        return self.events / max(1, self.clients * self.published)

    best_rate: int | None = None
    ladder_lost: int = 0
    """Clients overflowed by the end of the ladder (a ladder with clients gone is cheaper)."""
    ladder_delivered_share: float = 0.0
    """Events the clients got during the ladder, of what each should have got."""
    error: str = ""


def measure(
    server: Any, web: int, clients: int, token: str, args: argparse.Namespace, wd: Path, uac: list
) -> Result:
    result = Result(clients=clients, rate=args.rate)
    url = f"ws://{HOST}:{server.web_port}/cti/v1/events"
    group = Clients(url, token, clients, nice=args.client_nice) if clients else None
    try:
        if group is not None:
            group.start()
            result.connected = group.connected
        web0 = sc.cpu_seconds(web)
        before = group.received if group else 0
        published0 = server.status()["cti"]["published"]
        step = sc.run_step(server.pid, server.sip_port, args.rate, args.duration, wd, uac)
        result.calls, result.successful, result.failed = step.calls, step.successful, step.failed
        result.elapsed_s = step.elapsed_s
        if not step.successful + step.failed:  # SIPp gave nothing: say why, no figure
            raise sc.BenchError(step.note or f"SIPp exited {step.sipp_exit}, no call counted")
        time.sleep(1.0)  # the last calls' events reach the clients
        result.published = server.status()["cti"]["published"] - published0
        if step.calls:
            result.node_cpu_ms_per_call = round(1000 * step.cpu_s / step.calls, 3)
            result.web_cpu_ms_per_call = round(1000 * (sc.cpu_seconds(web) - web0) / step.calls, 3)
        if group is not None:
            result.events = group.received - before
            result.lost = group.lost
            result.resyncs = group.resyncs
            result.events_per_s = round(result.events / max(step.elapsed_s, 0.001), 1)
        if args.ladder:
            ladder = sc.ServerResult(f"cti-{clients}")
            got0 = group.received if group else 0
            published0 = server.status()["cti"]["published"]
            sc.ladder(ladder, server.pid, server.sip_port, args.rates, args.duration, wd, uac)
            result.best_rate = ladder.best_rate
            if group is not None:
                time.sleep(1.0)
                published = server.status()["cti"]["published"] - published0
                result.ladder_lost = group.lost
                result.ladder_delivered_share = round(
                    (group.received - got0) / max(1, clients * published), 4
                )
    except (sc.BenchError, subprocess.SubprocessError, OSError) as exc:
        result.error = str(exc)
    finally:
        if group is not None:
            group.stop()
    return result


def run(args: argparse.Namespace, workdir: Path) -> list[Result]:
    """Every step against the ``--before`` tree (if any), then against this one."""
    results: list[Result] = []
    if args.before:
        results += run_tree(args, workdir, args.before)
        time.sleep(3)
    results += run_tree(args, workdir, args.src)
    return results


def run_tree(args: argparse.Namespace, workdir: Path, src: str) -> list[Result]:
    """The steps against one node, started from the source tree ``src`` ("": this one)."""
    from support.server import OffhookServer

    tree = os.path.abspath(src) if src else "this tree"
    print(f"node from {tree}", flush=True)

    unlimited = {"rate_per_source": 1e9, "rate_burst": 1e9}
    server = OffhookServer(
        workdir,
        sc.PLAN,
        extra_config={
            "sip": unlimited,
            "web": {
                "max_connections": 1024,
                "max_connections_per_source": 4 * MAX_CLIENTS,
                "rate_per_source": 1e6,
            },
            "cti": {
                "max_clients": 4 * MAX_CLIENTS,
                "max_clients_per_user": 4 * MAX_CLIENTS,
                # Longer than any run: the counting clients never need to answer a ping.
                "ping_interval": 3600,
                **({"coalesce": args.coalesce} if args.coalesce is not None else {}),
            },
            # Every step must do the same work: no call shed as "overload" on a shared machine.
            "overload": {"enabled": False},
        },
        web=True,
        env={"PYTHONPATH": tree} if src else None,
    )
    server.start(timeout=60)
    if args.node_cpu:
        # The node's threads only: its children (web, media) stay where the bench runs.
        subprocess.run(
            ["taskset", "-a", "-pc", args.node_cpu, str(server.pid)],
            capture_output=True,
            timeout=10,
            check=True,
        )
    results: list[Result] = []
    try:
        cli(server, "user", "add", ADMIN, "--role", "full-admin", stdin=ADMIN_PASSWORD + "\n")
        token = cli(server, "token", "create", "--user", ADMIN, "--label", "bench").split()[0]
        web = web_pid(server.pid)
        with sc.sipp_uas(workdir) as uas_port:
            uac = sc.register_uas(server.sip_port, uas_port, workdir)
            if args.warmup:
                # The first steps of a fresh node pay for its heap growing (page faults,
                # RSS 200 -> 300 MB): one step at the ladder's first rate, not counted.
                top = min(args.rates) if args.ladder else args.rate
                warm = sc.run_step(server.pid, server.sip_port, top, args.duration, workdir, uac)
                print(f"  warm-up at {top} calls/s: {warm.successful}/{warm.calls} ok", flush=True)
                time.sleep(3)
            for n in args.clients:
                r = measure(server, web, n, token, args, workdir, uac)
                r.tree = tree
                results.append(r)
                print(
                    f"  {n:4d} clients ({r.connected} up): {r.successful}/{r.calls} calls ok, "
                    f"{r.failed} failed; node {r.node_cpu_ms_per_call} ms/call, "
                    f"web {r.web_cpu_ms_per_call} ms/call; {r.events} events, "
                    f"{r.events_per_s}/s delivered ({r.delivered_share:.1%} of the "
                    f"{r.published} published, to each), {r.lost} overflowed, {r.resyncs} resyncs"
                    + (
                        f"; best {r.best_rate} calls/s (ladder: {r.ladder_lost} overflowed, "
                        f"{r.ladder_delivered_share:.1%} delivered)"
                        if r.best_rate is not None
                        else ""
                    )
                    + (f"  ERROR {r.error}" if r.error else ""),
                    flush=True,
                )
                time.sleep(3)
    finally:
        server.stop(show_log=False)
    return results


def summarize_trees(results: list[Result]) -> dict[str, dict[str, Any]]:
    """``summarize`` for each source tree of the run."""
    trees: dict[str, list[Result]] = {}
    for r in results:
        trees.setdefault(r.tree, []).append(r)
    return {tree: summarize(runs) for tree, runs in trees.items()}


def summarize(results: list[Result]) -> dict[str, Any]:
    """Per client count, the mean of its steps; the cost against the mean of the steps
    with no client (list 0 more than once, e.g. ``0,1,10,100,0``, to see the drift)."""
    by_count: dict[int, list[Result]] = {}
    for r in results:
        by_count.setdefault(r.clients, []).append(r)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    base_runs = [r.node_cpu_ms_per_call for r in by_count.get(0, []) if r.node_cpu_ms_per_call]
    base = mean(base_runs)
    base_rates = [r.best_rate for r in by_count.get(0, []) if r.best_rate]
    base_web = mean([r.web_cpu_ms_per_call for r in by_count.get(0, []) if r.web_cpu_ms_per_call])
    summary: dict[str, Any] = {}
    for clients, runs in by_count.items():
        # Events each client was sent per call (what the node published per call).
        events_per_call = mean([r.published / r.calls for r in runs if r.calls])
        cpu = mean([r.node_cpu_ms_per_call for r in runs])
        row: dict[str, Any] = {
            "steps": len(runs),
            "events_per_s": round(mean([r.events_per_s for r in runs]), 1),
            "delivered_share": round(mean([r.delivered_share for r in runs]), 4),
            "overflowed": sum(r.lost for r in runs),
            "resyncs": sum(r.resyncs for r in runs),
            "node_cpu_ms_per_call": round(cpu, 3),
            "node_cpu_ms_per_call_range": [
                min(r.node_cpu_ms_per_call for r in runs),
                max(r.node_cpu_ms_per_call for r in runs),
            ],
            "web_cpu_ms_per_call": round(mean([r.web_cpu_ms_per_call for r in runs]), 3),
            "web_us_per_event_and_client": (
                round(
                    1000
                    * (mean([r.web_cpu_ms_per_call for r in runs]) - base_web)
                    / (events_per_call * clients),
                    2,
                )
                if clients and base_web and events_per_call
                else None
            ),
            "failed_calls": sum(r.failed for r in runs),
            "best_rate": max((r.best_rate for r in runs if r.best_rate), default=None),
        }
        if base and cpu:
            row["cti_cost"] = round((cpu - base) / base, 3)
        if base_rates and row["best_rate"] is not None:
            row["rate_ratio"] = round(row["best_rate"] / max(base_rates), 3)
        summary[str(clients)] = row
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="0,1,10,100", help="comma list of client counts")
    ap.add_argument("--rate", type=int, default=200, help="calls/s of the fixed-rate step")
    ap.add_argument("--duration", type=int, default=10, help="seconds per step (max 60)")
    ap.add_argument("--ladder", action="store_true", help="also find the sustained rate per N")
    ap.add_argument("--rates", default="100,200,300,400,500,600,800")
    ap.add_argument(
        "--before", default="", help="first run the steps against a node from this source tree"
    )
    ap.add_argument("--src", default="", help="run the node from this source tree")
    ap.add_argument(
        "--client-nice",
        type=int,
        default=0,
        help="run the clients at this nice value (19: as if on another machine)",
    )
    ap.add_argument(
        "--coalesce", type=float, default=None, help="[cti] coalesce (default: the node's)"
    )
    ap.add_argument(
        "--node-cpu",
        default="",
        help="pin the node's threads to these cores (taskset); run the bench itself under "
        "`taskset -c OTHERS` so that SIPp, the web process and the clients share the others",
    )
    ap.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="measure from the first step (by default one uncounted step first)",
    )
    args = ap.parse_args(argv)
    args.clients = [min(MAX_CLIENTS, max(0, int(x))) for x in args.clients.split(",") if x]
    args.rate = max(1, min(args.rate, 2000))
    args.duration = max(1, min(args.duration, 60))
    args.client_nice = max(0, min(args.client_nice, 19))
    args.rates = sorted({max(1, min(int(x), 4000)) for x in args.rates.split(",") if x})[:12]
    workdir = Path(tempfile.mkdtemp(prefix="offhook-cti-bench-"))
    print(f"work directory {workdir}; clients {args.clients}; {args.rate} calls/s", flush=True)
    try:
        results = run(args, workdir)
    except (sc.BenchError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench failed: {exc}")
        return 1
    summary = summarize_trees(results)
    for tree, rows in summary.items():
        print(f"\n{tree}")
        print(
            f"{'clients':>8} {'events/s':>10} {'node ms/call':>13} {'web ms/call':>12} "
            f"{'web us/ev/cl':>13} {'cost':>7} {'best':>6}"
        )
        for n, row in rows.items():
            cost = row.get("cti_cost")
            print(
                f"{n:>8} {row['events_per_s']:>10} {row['node_cpu_ms_per_call']!s:>13} "
                f"{row['web_cpu_ms_per_call']!s:>12} "
                f"{row['web_us_per_event_and_client']!s:>13} "
                f"{'-' if cost is None else f'{cost:+.1%}':>7} {row['best_rate']!s:>6}"
            )
    sc.write_results(
        "cti_events",
        {
            "rate": args.rate,
            "duration_s": args.duration,
            "before": args.before,
            "summary": summary,
            "results": [asdict(r) for r in results],
        },
    )
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
