"""Probes for the worker design (docs/workers.md): source affinity in the kernel, forwarding cost.

1. ``affinity``: a SO_REUSEPORT group of N UDP sockets on a loopback port with a
   classic BPF program that picks the socket by the IPv4 source address
   (``SKF_NET_OFF + 12``, modulo N). Several loopback sources send from
   several ports each; the probe prints which socket each source reached and
   fails if any source reached two.
2. ``forward``: the CPU a process spends passing a SIP datagram to another
   (``recvfrom``, find the Call-ID, ``sendto`` on a Unix datagram socket to
   one of N receivers), measured with ``time.thread_time`` over a bounded count
   sent by another process; and a receiver's ``recv``.

Loopback only, bounded in count and time. Run from the repository root::

    python bench/workers_probe.py
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import socket
import struct
import sys
import tempfile
import time
import zlib

SO_ATTACH_REUSEPORT_CBPF = 51  # linux/asm-generic/socket.h
SKF_NET_OFF = -0x100000
BPF_LD_W_ABS = 0x20
BPF_ALU_MOD_K = 0x94
BPF_RET_A = 0x16


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


def by_source(sock: socket.socket, n: int) -> ctypes.Array[SockFilter]:
    """Attach the source-address program to ``sock``'s group (keep the result alive)."""
    program = (SockFilter * 3)(
        SockFilter(BPF_LD_W_ABS, 0, 0, (SKF_NET_OFF + 12) & 0xFFFFFFFF),
        SockFilter(BPF_ALU_MOD_K, 0, 0, n),
        SockFilter(BPF_RET_A, 0, 0, 0),
    )
    sock.setsockopt(
        socket.SOL_SOCKET,
        SO_ATTACH_REUSEPORT_CBPF,
        struct.pack("HL", len(program), ctypes.addressof(program)),
    )
    return program


def affinity(n: int, sources: int, ports: int) -> bool:
    group = []
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    first.bind(("127.0.0.1", 0))
    port = first.getsockname()[1]
    group.append(first)
    for _ in range(n - 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        group.append(s)
    program = by_source(first, n)
    for i in range(1, sources + 1):
        for _ in range(ports):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.bind((f"127.0.0.{i}", 0))
                c.sendto(f"127.0.0.{i}".encode(), ("127.0.0.1", port))
    reached: dict[str, set[int]] = {}
    for index, s in enumerate(group):
        s.settimeout(0.2)
        while True:
            try:
                reached.setdefault(s.recv(64).decode(), set()).add(index)
            except TimeoutError:
                break
    del program
    for s in group:
        s.close()
    ok = all(len(v) == 1 for v in reached.values()) and len(reached) == sources
    for source in sorted(reached):
        print(f"  {source} ({ports} ports) -> socket {sorted(reached[source])}")
    print(f"affinity: {'every source reached one socket' if ok else 'FAILED'}")
    return ok


MESSAGE = (
    b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-w1-%d\r\n"
    b"From: <sip:1001@127.0.0.1>;tag=w1-abc\r\nTo: <sip:1002@127.0.0.1>;tag=9f8e\r\n"
    b"Call-ID: w1-%d-0123456789abcdef@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
    b"Contact: <sip:1002@127.0.0.1:5062>\r\nContent-Length: 0\r\n\r\n"
)


def _send(port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for k in range(count):
            s.sendto(MESSAGE % (k, k), ("127.0.0.1", port))
            if k % 500 == 0:
                time.sleep(0.004)  # stay under what the forwarder takes


def _receive(path: str, out: mp.Queue[tuple[int, float]]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(2.0)
        n, cpu = 0, 0.0
        start = time.thread_time()
        try:
            while True:
                s.recv(65536)
                n += 1
                cpu = time.thread_time() - start
        except TimeoutError:
            pass
        out.put((n, cpu))


def forward(n: int, count: int) -> None:
    directory = tempfile.mkdtemp(prefix="offhook-probe-")
    paths = [os.path.join(directory, f"w{i}") for i in range(n)]
    results: mp.Queue[tuple[int, float]] = mp.Queue()
    receivers = [mp.Process(target=_receive, args=(p, results), daemon=True) for p in paths]
    for r in receivers:
        r.start()
    while not all(os.path.exists(p) for p in paths):
        time.sleep(0.01)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(1.0)
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender = mp.Process(target=_send, args=(rx.getsockname()[1], count), daemon=True)
    done, start = 0, time.thread_time()
    sender.start()
    try:
        while True:
            data, addr = rx.recvfrom(65536)
            at = data.find(b"\nCall-ID:")
            end = data.find(b"\r", at + 1)
            key = data[at + 9 : end].strip()
            head = f"{addr[0]}:{addr[1]}\n".encode()
            out.sendto(head + data, paths[zlib.crc32(key) % n])
            done += 1
    except TimeoutError:
        pass
    cpu = time.thread_time() - start
    got = [results.get(timeout=10) for _ in receivers]
    sender.join(5)
    print(
        f"forward: {done} of {count} datagrams passed on, {1e6 * cpu / max(1, done):.1f} µs "
        f"CPU each in the forwarder; receivers {1e6 * sum(c for _, c in got) / max(1, done):.1f} "
        f"µs each ({sum(k for k, _ in got)} received)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args(argv)
    n = max(2, min(args.workers, 64))
    ok = affinity(n, sources=min(8, 4 * n), ports=5)
    forward(n, max(1000, min(args.count, 1_000_000)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
