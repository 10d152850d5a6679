"""bench/soak.py's flood: a second process hammering every listener of the node.

``Flood`` runs in its own process (``flood_main``, started by ``soak.py``
with the ``spawn`` context) so that its CPU never counts as the node's nor
slows the legitimate clients' loop: RFC 4475 torture messages and junk over
SIP UDP/TCP, crafted SCCP lengths, TFTP and provisioning HTTP abuse, idle,
trickling, half-closed and reset connections, and the admin endpoint, in
the proportions of ``_WEIGHTS``, at ``FloodConfig.rate`` operations a
second, a share of them over IPv6 from ``::1`` when asked. It reports its
operation counts back over a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import struct
import sys
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from support.ports import HOST6  # noqa: E402

VECTORS = REPO / "tests" / "vectors" / "sip" / "rfc4475"


# -- the flood (a separate process) -------------------------------------------------


@dataclass(frozen=True)
class FloodConfig:
    sip: int
    sccp: int
    tftp: int
    http: int
    admin: int
    duration: float
    rate: float
    max_connections: int
    seed: int
    ipv6: float = 0.0  # share of the operations sent over IPv6 (from ::1)


_CRAFTED_LENGTHS = (1, 4095, 65535, 65536, 2**31 - 1, 2**32 - 1, -1, 10**30)
_SCCP_LENGTHS = (0, 1, 3, 4, 4095, 4096, 4097, 2**31 - 1, 2**32 - 1)
_WEIGHTS = {"sip_udp": 30, "sip_tcp": 15, "sccp": 20, "tftp": 15, "http": 15, "admin": 5}


class Flood:
    """Hostile traffic at a bounded rate and concurrency (see the module doc)."""

    def __init__(self, cfg: FloodConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.vectors = [p.read_bytes() for p in sorted(VECTORS.glob("*.dat"))]
        self.counts: Counter[str] = Counter()
        self.open = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.udp: list[socket.socket] = []
        self.udp6: list[socket.socket] = []  # all bound to ::1 (the one IPv6 loopback address)
        self.kinds = list(_WEIGHTS)
        self.weights = list(_WEIGHTS.values())

    def source(self) -> str:
        r = self.rng
        return f"127.{r.randint(10, 250)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    # payloads
    def sip_payload(self, transport: str) -> bytes:
        r = self.rng
        kind = r.randrange(7)
        if kind <= 1:
            return r.choice(self.vectors)
        if kind == 2:
            data = bytearray(r.choice(self.vectors))
            for _ in range(r.randint(1, 8)):
                data[r.randrange(len(data))] = r.randrange(256)
            return bytes(data)
        if kind == 3:
            return r.randbytes(r.randint(1, 1400))
        tag = r.getrandbits(40)
        head = (
            f"INVITE sip:2002@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 192.0.2.7:5060;branch=z9hG4bK{tag:x}\r\n"
            f"From: <sip:x@192.0.2.7>;tag={tag:x}\r\nTo: <sip:2002@127.0.0.1>\r\n"
            f"Call-ID: soak-{tag:x}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        )
        if kind == 4:
            return f"{head}Content-Length: {r.choice(_CRAFTED_LENGTHS)}\r\n\r\nv=0\r\n".encode()
        if kind == 5:
            return (head + "X-Pad: " + "a" * 64000 + "\r\nContent-Length: 0\r\n\r\n").encode()
        return (head + "X-H: y\r\n" * 2000 + "Content-Length: 0\r\n\r\n").encode()

    def sccp_payload(self) -> bytes:
        r = self.rng
        kind = r.randrange(5)
        if kind <= 1:
            length = r.choice(_SCCP_LENGTHS)
            return struct.pack("<III", length, 0, r.randrange(0x200)) + r.randbytes(
                r.randint(0, 64)
            )
        if kind == 2:
            return r.randbytes(r.randint(1, 600))
        if kind == 3:  # an unknown phone registering (RegisterReject)
            name = f"SEPDEAD{r.getrandbits(20):05X}".encode().ljust(16, b"\0")
            body = name + struct.pack("<II4sIII", 0, 1, bytes([127, 0, 0, 9]), 7, 5, 0)
            return struct.pack("<III", 4 + len(body), 0, 1) + body
        return struct.pack("<III", 200, 0, 1) + b"SEP" + r.randbytes(20)  # truncated

    def tftp_payload(self) -> bytes:
        r = self.rng
        kind = r.randrange(9)
        if kind == 0:
            return b"\x00\x01../../../../etc/passwd\x00octet\x00"
        if kind == 1:
            return b"\x00\x01XMLDefault.cnf.xml\x00octet\x00blksize\x000\x00tsize\x00-1\x00"
        if kind == 2:
            return b"\x00\x01RingList.xml\x00netascii\x00blksize\x0099999999\x00"
        if kind == 3:
            return b"\x00\x01x\x00octet\x00" + b"opt\x00val\x00" * 500
        if kind == 4:
            return b"\x00\x02upload.bin\x00octet\x00"
        if kind == 5:
            return struct.pack("!HH", r.choice((3, 4, 5)), r.randrange(65536)) + r.randbytes(8)
        if kind == 6:
            return b"\x00\x01noterminator"
        if kind == 7:
            return r.randbytes(r.randint(0, 4000))
        return b"\x00\x01SEP0000005000" + b"0" * 3 + b".cnf.xml\x00mail\x00"

    def http_payload(self) -> bytes:
        r = self.rng
        return r.choice(
            [
                b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.0\r\n\r\n",
                b"GET /XMLDefault.cnf.xml HTTP/1.1\r\n\r\n",
                b"POST /up HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nabc",
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                b"GET /" + b"A" * 20000 + b" HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 3000 + b"\r\n",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),
                b"GET / HTTP/1.1\r\n",  # never finished: the request timeout closes it
                r.randbytes(r.randint(1, 3000)),
            ]
        )

    def control_payload(self) -> bytes:
        """Junk for the node's control endpoint (JSON lines; refused unless from loopback)."""
        r = self.rng
        return r.choice(
            [
                b'{"op": "status"}\n',
                b'{"op": "no_such_op"}\n{"op": "dnd", "device": 7}\n',
                b'{"op": "forward_all", "device": "x", "dn": "1", "destination": null}\n',
                b'{"op": "status", "x": ' + b"[" * 5000 + b"\n",
                b'{"op": "status", "x": "' + b"a" * 70000 + b'"}\n',
                b'{"op": "sta',  # never finished: the handshake timeout closes it
                b"GET /status HTTP/1.0\r\n\r\n",
                r.randbytes(r.randint(1, 3000)),
            ]
        )

    def ipv6(self, kind: str) -> bool:
        """Whether this operation goes over IPv6 (``--dual-stack``); counted."""
        if self.cfg.ipv6 <= 0 or self.rng.random() >= self.cfg.ipv6:
            return False
        self.counts[f"{kind}_ipv6"] += 1
        return True

    # operations
    def datagram(self, port: int, data: bytes, v6: bool = False) -> None:
        pool = self.udp6 if v6 else self.udp
        if len(pool) < (64 if v6 else 256):
            s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.bind((HOST6 if v6 else self.source(), 0))
            pool.append(s)
        s = self.rng.choice(pool)
        with contextlib.suppress(OSError):
            s.sendto(data[:65000], (HOST6 if v6 else "127.0.0.1", port))
        for sock in self.rng.sample(pool, min(4, len(pool))):
            with contextlib.suppress(OSError):
                while sock.recv(65536):
                    self.counts["udp_answers"] += 1

    async def connection(self, kind: str, port: int, data: bytes, v6: bool = False) -> None:
        r = self.rng
        self.open += 1
        target, source = (HOST6, HOST6) if v6 else ("127.0.0.1", self.source())
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target, port, local_addr=(source, 0)), 5.0
            )
        except (OSError, TimeoutError):
            self.counts[f"{kind}_connect_failed"] += 1
            self.open -= 1
            return
        how = r.choice(["close", "half-close", "reset", "idle", "trickle", "read"])
        self.counts[f"{kind}_{how}"] += 1
        try:
            if how == "trickle":
                for b in data[: r.randint(1, 40)]:
                    writer.write(bytes([b]))
                    await asyncio.sleep(0.25)
            else:
                writer.write(data)
            await asyncio.wait_for(writer.drain(), 5.0)
            if how == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif how == "half-close":
                writer.write_eof()
                await asyncio.wait_for(reader.read(65536), 10.0)
            elif how in ("idle", "read"):
                # Wait for the node to close it (handshake/idle timeouts), bounded.
                wait = 15.0 if how == "idle" else 2.0
                got = await asyncio.wait_for(reader.read(65536), wait)
                if not got:
                    self.counts[f"{kind}_closed_by_node"] += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            self.open -= 1

    def one(self) -> None:
        cfg = self.cfg
        kind = self.rng.choices(self.kinds, self.weights)[0]
        self.counts[kind] += 1
        if kind == "sip_udp":
            self.datagram(cfg.sip, self.sip_payload("UDP"), self.ipv6(kind))
            return
        if kind == "tftp":
            self.datagram(cfg.tftp, self.tftp_payload(), self.ipv6(kind))
            return
        if self.open >= cfg.max_connections:
            self.counts["connection_cap_skips"] += 1
            return
        port, data = {
            "sip_tcp": (cfg.sip, self.sip_payload("TCP")),
            "sccp": (cfg.sccp, self.sccp_payload()),
            "http": (cfg.http, self.http_payload()),
            "admin": (cfg.admin, self.control_payload()),
        }[kind]
        v6 = self.ipv6(kind)
        task = asyncio.ensure_future(self.connection(kind, port, data, v6))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self) -> dict[str, int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        interval = 1.0 / self.cfg.rate
        due = start
        while loop.time() - start < self.cfg.duration:
            now = loop.time()
            burst = 0
            while due <= now and burst < 50:  # catch up, never in big bursts
                self.one()
                due += interval
                burst += 1
            if due < now - 1.0:
                due = now  # fell behind by a second: drop it, keep the rate bounded
            await asyncio.sleep(max(0.0, due - loop.time()))
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for s in self.udp + self.udp6:
            s.close()
        self.counts["operations"] = sum(self.counts[k] for k in _WEIGHTS)
        return dict(self.counts)


def flood_main(cfg: FloodConfig, out: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # asyncio warns on every write to a transport the node reset: expected here.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    with contextlib.suppress(ImportError):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    out.send(asyncio.run(Flood(cfg).run()))
    out.close()
