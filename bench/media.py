"""How many streams one media server process sustains: music on hold and conference parties.

```sh
python bench/media.py                          # MOH and conference ladders, 5 s a step
python bench/media.py --moh 100,250,500 --conf 24,48,96 --duration 5
```

Method (loopback only, bounded: each step lasts ``--duration`` seconds after
a one-second warm-up, the ladders are finite and stop after two failing
steps in a row; the figure is the largest passing step):

1. ``offhook media`` runs as a child process (uvloop, as ``offhook serve``
   runs it), driven by the node's own ``MediaClient`` over a Unix socket.
2. A receiver process (forked) owns one UDP socket per stream and reads
   every packet with its kernel receive time (``SO_TIMESTAMPNS``), so the
   receiver's own scheduling does not count. A stream's packet of RTP slot
   k is *late* when it arrives more than 5 ms after ``anchor + k * 20 ms``,
   the anchor being the earliest schedule the stream's packets allow; a slot
   never sent counts as late too. A step passes with < 1 % late packets.
3. Music on hold: N endpoints play ``moh:default`` (shared: one encoding a
   tick) to N receiver sockets. Conference: N parties in bridges of
   ``--bridge`` (8) parties; each party's socket also sends a 1 kHz-ish
   tone into its endpoint every 20 ms (the receiver process sends it), and
   receives its N-1 mix.
4. CPU: the media server's utime + stime over the step (``/proc``),
   as ms of CPU per stream-second and % of one core.
5. Reference, in the same run, for each step size: a plain Python loop (a
   forked process) that sends N streams of pre-encoded G.711 payloads with
   ``sendto`` on a 20 ms grid (an RTP header packed per packet, as the
   media server does), to the same kind of receiver, measured the same way.
   It is the floor a Python media server cannot go below; the ratio
   offhook/reference says what the server's tick, mixing and control cost
   on top.

Cisco CallManager's co-resident media streaming application was sized at
about 250 MOH streams and 48-128 conference streams per server; the figures
are printed next to those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import selectors
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from offhook.media import g711  # noqa: E402
from offhook.media.client import MediaClient  # noqa: E402

HOST = "127.0.0.1"
PTIME = 0.02
LATE = 0.005
RTP_PORTS = "40000-59999"
_HEADER = struct.Struct("!BBHII")
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
CALLMANAGER = {"moh": 250, "conf": "48-128"}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def receiver_sockets(n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.bind((HOST, 0))
        s.setblocking(False)
        out.append(s)
    return out


# -- the receiver (and party sender) process ----------------------------------------


def _late(records: list[tuple[int, float]]) -> tuple[int, int, np.ndarray[Any, Any]]:
    """(late or missing slots, expected slots, each packet's lateness) of one stream's
    (rtp ts, arrival)."""
    if len(records) < 2:
        return 0, 0, np.zeros(0)
    ts0 = records[0][0]
    # Slots relative to the first packet's (signed: a reordered packet may come before it).
    slots = np.array(
        [(((ts - ts0 + (1 << 31)) % (1 << 32)) - (1 << 31)) // 160 for ts, _ in records],
        dtype=np.int64,
    )
    arrival = np.array([t for _, t in records])
    anchor = float(np.min(arrival - slots * PTIME))
    lateness = arrival - (anchor + slots * PTIME)
    late = int(np.sum(lateness > LATE))
    expected = int(slots.max() - slots.min() + 1)
    missing = max(0, expected - len(set(slots.tolist())))
    return late + missing, expected, lateness


def receive(
    socks: list[socket.socket],
    seconds: float,
    send_to: list[tuple[str, int]] | None,
    result: Connection,
) -> None:
    """Drain, then record every packet's kernel time for ``seconds``; optionally send a
    tone from each socket to ``send_to[i]`` every 20 ms (conference parties)."""
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    records: list[list[tuple[int, float]]] = [[] for _ in socks]
    tone = (np.sin(2 * np.pi * 1004 * np.arange(160) / 8000) * 6000).astype(np.int16)
    payload = g711.encode("PCMU", tone)
    seq = [0] * len(socks)
    start = time.monotonic()
    measure_from = start + 1.0  # warm-up: jitter buffers fill, backlogs drain
    end = measure_from + seconds
    next_send = start
    n = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if send_to is not None and now >= next_send:
            for i, s in enumerate(socks):
                header = _HEADER.pack(0x80, 0, seq[i] & 0xFFFF, (seq[i] * 160) & 0xFFFFFFFF, i + 1)
                seq[i] += 1
                with contextlib.suppress(OSError):
                    s.sendto(header + payload, send_to[i])
            n += 1
            next_send = start + n * PTIME
        timeout = max(0.0, min(end, next_send if send_to is not None else end) - now)
        for key, _ in sel.select(timeout):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(2048, 64)
                except BlockingIOError:
                    break
                if now < measure_from or len(data) < 12:
                    continue
                stamp = time.time()
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        stamp = sec + nsec * 1e-9
                records[key.data].append((_HEADER.unpack_from(data)[3], stamp))
    late = expected = packets = 0
    spread = [np.zeros(0)]
    for rec in records:
        packets += len(rec)
        a, b, lateness = _late(rec)
        late += a
        expected += b
        spread.append(lateness)
    every = np.concatenate(spread) * 1000 if packets else np.zeros(1)
    result.send(
        {
            "late": late,
            "expected": expected,
            "packets": packets,
            "p50_ms": float(np.percentile(every, 50)),
            "p99_ms": float(np.percentile(every, 99)),
        }
    )


def reference_sender(targets: list[tuple[str, int]], seconds: float, done: Connection) -> None:
    """The plain loop: N streams of pre-encoded payloads on a 20 ms grid."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    frames = [
        g711.encode(
            "PCMU",
            (np.sin(2 * np.pi * 440 * (np.arange(160) + 160 * k) / 8000) * 8000).astype(np.int16),
        )
        for k in range(50)
    ]
    cpu0 = time.process_time()
    start = time.monotonic()
    end = start + seconds + 1.0
    n = 0
    while time.monotonic() < end:
        payload = frames[n % 50]
        for i, target in enumerate(targets):
            header = _HEADER.pack(0x80, 0, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, i + 1)
            sock.sendto(header + payload, target)
        n += 1
        delay = start + n * PTIME - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    done.send({"cpu": time.process_time() - cpu0, "wall": time.monotonic() - start})


# -- a step ---------------------------------------------------------------------------


@dataclass
class Step:
    kind: str
    streams: int
    late_pct: float
    p99_ms: float
    server_late_ticks_pct: float
    packets: int
    cpu_ms_per_stream_s: float
    core_pct: float
    ref_late_pct: float
    ref_p99_ms: float
    ref_cpu_ms_per_stream_s: float

    @property
    def passed(self) -> bool:
        return self.late_pct < 1.0 and self.packets > 0

    @property
    def ratio(self) -> float:
        return self.cpu_ms_per_stream_s / max(self.ref_cpu_ms_per_stream_s, 1e-9)


def _fork(target: Any, *args: Any) -> tuple[mp.process.BaseProcess, Connection]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    return proc, parent


async def measure_reference(n: int, seconds: float) -> tuple[float, float, float]:
    """(late %, CPU ms per stream-second, p99 lateness ms) of the plain loop."""
    socks = receiver_sockets(n)
    try:
        targets = [s.getsockname() for s in socks]
        recv_proc, recv_pipe = _fork(receive, socks, seconds, None)
        send_proc, send_pipe = _fork(reference_sender, targets, seconds)
        got = await asyncio.to_thread(recv_pipe.recv)
        sent = await asyncio.to_thread(send_pipe.recv)
        recv_proc.join()
        send_proc.join()
    finally:
        for s in socks:
            s.close()
    late = 100.0 * got["late"] / max(1, got["expected"])
    return late, 1000.0 * sent["cpu"] / (n * sent["wall"]), got["p99_ms"]


async def server_counters(client: MediaClient) -> dict[str, int]:
    got: list[dict[str, Any] | None] = []
    client.stats(got.append)
    while not got:
        await asyncio.sleep(0.01)
    return dict((got[0] or {}).get("counters", {}))


async def measure_server(
    client: MediaClient, pid: int, kind: str, n: int, seconds: float, bridge: int
) -> tuple[float, int, float, float, float, float]:
    """(late %, packets, CPU ms per stream-second, % of a core, % of the server's own
    ticks late, p99 lateness ms) of the media server."""
    socks = receiver_sockets(n)
    handles = [f"{kind}{i}" for i in range(n)]
    opened: dict[str, tuple[str, int] | None] = {}
    try:
        for h in handles:
            client.open(h, 4, lambda r, h=h: opened.__setitem__(h, r))
        while len(opened) < n:
            await asyncio.sleep(0.01)
        if any(v is None for v in opened.values()):
            raise RuntimeError(f"{sum(v is None for v in opened.values())} endpoints not opened")
        for i, (h, s) in enumerate(zip(handles, socks, strict=True)):
            client.connect(h, HOST, s.getsockname()[1], "PCMU", 0, None, "sendrecv")
            if kind == "moh":
                client.play(h, "moh:default")
            else:
                client.join(h, f"bridge{i // bridge}")
        send_to = None
        if kind == "conf":
            send_to = [(HOST, opened[h][1]) for h in handles]  # type: ignore[index]
        proc, pipe = _fork(receive, socks, seconds, send_to)
        await asyncio.sleep(1.0)  # the receiver's warm-up
        before = await server_counters(client)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        got = await asyncio.to_thread(pipe.recv)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        after = await server_counters(client)
        proc.join()
    finally:
        for h in handles:
            client.release(h)
        for s in socks:
            s.close()
    cpu = cpu1 - cpu0
    wall = t1 - t0
    late = 100.0 * got["late"] / max(1, got["expected"])
    ticks = after.get("ticks", 0) - before.get("ticks", 0)
    late_ticks = after.get("late_ticks", 0) - before.get("late_ticks", 0)
    tick_pct = 100.0 * late_ticks / max(1, ticks)
    cpu_ms = 1000.0 * cpu / (n * wall)
    return late, got["packets"], cpu_ms, 100.0 * cpu / wall, tick_pct, got["p99_ms"]


async def run(args: argparse.Namespace) -> list[Step]:
    ladders = {"moh": args.moh, "conf": args.conf}
    raise_nofile(64 + 6 * max(max(ladders["moh"], default=0), max(ladders["conf"], default=0)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-media-"))
    config = tmp / "offhook.toml"
    config.write_text(
        f'[media]\nlisten = "{HOST}"\nrtp_ports = "{RTP_PORTS}"\nmax_streams = 5000\n'
        'rtp_timeout = 0\n[log]\nlevel = "warning"\n'
    )
    sock = tmp / "media.sock"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "offhook",
        "media",
        "--config",
        str(config),
        "--control",
        f"unix:{sock}",
        env=env,
    )
    client = MediaClient(f"unix:{sock}", lambda h, c: None, lambda e: None, deadline=10.0)
    steps: list[Step] = []
    try:
        await client.start()
        if not await client.wait_connected(30):
            raise RuntimeError("offhook media did not start")
        for kind, ladder in ladders.items():
            failed = 0
            for n in ladder:
                late, packets, cpu, core, ticks, p99 = await measure_server(
                    client, proc.pid, kind, n, args.duration, args.bridge
                )
                ref_late, ref_cpu, ref_p99 = await measure_reference(n, args.duration)
                step = Step(
                    kind, n, late, p99, ticks, packets, cpu, core, ref_late, ref_p99, ref_cpu
                )
                steps.append(step)
                print(
                    f"{kind:4} {n:5} streams: late {late:6.2f} % (p99 {p99:.1f} ms; {packets} "
                    f"packets; {ticks:.1f} % of the server's ticks late), "
                    f"CPU {cpu:6.3f} ms/stream-s ({core:5.1f} % of a core); reference late "
                    f"{ref_late:5.2f} % (p99 {ref_p99:.1f} ms), {ref_cpu:6.3f} ms/stream-s; "
                    f"ratio {step.ratio:5.2f} "
                    f"{'pass' if step.passed else 'FAIL'}",
                    flush=True,
                )
                failed = 0 if step.passed else failed + 1
                if failed == 2:
                    break
    finally:
        await client.stop()
        proc.terminate()
        await proc.wait()
    return steps


def _ladder(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moh", type=_ladder, default=_ladder("100,250,500,750,1000,1500"))
    parser.add_argument("--conf", type=_ladder, default=_ladder("24,48,96,128,192,256,384"))
    parser.add_argument("--bridge", type=int, default=8, help="parties per bridge")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds a step")
    parser.add_argument("--json", type=Path, help="write the steps here")
    args = parser.parse_args()
    steps = asyncio.run(run(args))
    print()
    for kind in ("moh", "conf"):
        passed = [s for s in steps if s.kind == kind and s.passed]
        passed.sort(key=lambda s: s.streams)
        best = passed[-1] if passed else None
        if best is None:
            print(f"{kind}: no step passed")
            continue
        print(
            f"{kind}: {best.streams} streams with < 1 % late (CallManager: {CALLMANAGER[kind]}); "
            f"{best.cpu_ms_per_stream_s:.3f} ms CPU per stream-second vs the plain loop's "
            f"{best.ref_cpu_ms_per_stream_s:.3f} (ratio {best.ratio:.2f})"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([s.__dict__ for s in steps], indent=2))


if __name__ == "__main__":
    main()
