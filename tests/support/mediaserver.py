"""A real media server for tests, a raw control connection to it, and RTP phones.

- ``media_server(tmp_path, **config)``: a ``MediaServer`` with its
  ``ControlListener`` on a Unix socket in ``tmp_path``, on the running
  loop (the same code ``offhook media`` runs), RTP on 127.0.0.1.
- ``ControlPeer``: a control connection over the real socket: ``request``
  sends one command and returns the reply object; events are queued.
- ``Phone``: a UDP socket on 127.0.0.1 that records the RTP it receives
  (arrival time, parsed packet) and can send a stream of its own (a sine,
  20 ms G.711 packets paced by the loop, or any datagrams).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from offhook.media import g711
from offhook.media.control import ControlAddress
from offhook.media.process import CONTROL_LIMITS, ControlListener
from offhook.media.rtp import RtpError, RtpPacket, RtpStream, parse_rtp
from offhook.media.server import MediaServer, ServerConfig
from offhook.net.guard import ListenerLimits
from support.audio import decode_rtp_payloads, sine

HOST = "127.0.0.1"
RTP_PORTS = (61000, 64999)  # as the test nodes' relay range (support.ports.RELAY_PORTS)


@dataclass
class Running:
    server: MediaServer
    listener: ControlListener
    address: str


@contextlib.asynccontextmanager
async def media_server(
    tmp_path: Path, limits: ListenerLimits = CONTROL_LIMITS, **config: Any
) -> AsyncIterator[Running]:
    config.setdefault("listen", (HOST,))
    config.setdefault("port_range", RTP_PORTS)
    server = MediaServer(ServerConfig(**config))
    path = str(tmp_path / "media.sock")
    listener = ControlListener(server, ControlAddress(path=path), limits=limits)
    await listener.start()
    server.start()
    try:
        yield Running(server, listener, f"unix:{path}")
    finally:
        await listener.close()
        await server.close()


class ControlPeer:
    """A raw control connection: one request at a time, events queued."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 1
        self.lines = 0  # every line received
        self._task = asyncio.get_running_loop().create_task(self._read())
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, address: str) -> ControlPeer:
        reader, writer = await asyncio.open_unix_connection(address.removeprefix("unix:"))
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                self.lines += 1
                msg = json.loads(line)
                if "event" in msg:
                    self.events.put_nowait(msg)
                else:
                    fut = self.replies.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        except (ConnectionError, ValueError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def request(self, cmd: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        rid = self._next
        self._next += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[rid] = fut
        self.writer.write(json.dumps({"id": rid, "cmd": cmd, **fields}).encode() + b"\n")
        return await asyncio.wait_for(fut, timeout)

    async def ok(self, cmd: str, **fields: Any) -> dict[str, Any]:
        reply = await self.request(cmd, **fields)
        assert reply["ok"], reply
        return reply

    async def event(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Received:
    at: float
    packet: RtpPacket
    source: tuple[str, int]


class _Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.phone: Phone | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        if self.phone is None:
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.phone.garbage += 1
            return
        if len(self.phone.received) < self.phone.limit:
            self.phone.received.append(Received(loop.time(), packet, (addr[0], addr[1])))


@dataclass
class Phone:
    """A test phone: a UDP socket that records RTP and can send a stream."""

    transport: asyncio.DatagramTransport
    port: int
    received: list[Received] = field(default_factory=list)
    garbage: int = 0
    limit: int = 100_000
    sending: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int = 0, host: str = HOST) -> Phone:
        loop = asyncio.get_running_loop()
        transport, recorder = await loop.create_datagram_endpoint(
            _Recorder, local_addr=(host, port)
        )
        phone = cls(transport, transport.get_extra_info("sockname")[1])
        recorder.phone = phone
        return phone

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)

    def start_sine(
        self, freq: float, to: tuple[str, int], codec: str = "PCMU", seconds: float = 60.0
    ) -> None:
        """Send ``freq`` Hz as 20 ms packets to ``to``, paced by the loop's clock."""
        self.sending = asyncio.get_running_loop().create_task(
            self._send_samples(sine(freq, seconds), to, codec)
        )

    async def _send_samples(
        self, samples: NDArray[np.int16], to: tuple[str, int], codec: str
    ) -> None:
        loop = asyncio.get_running_loop()
        stream = RtpStream(g711.PAYLOAD_TYPES[codec])
        t0 = loop.time()
        for n in range(len(samples) // 160):
            payload = g711.encode(codec, samples[n * 160 : (n + 1) * 160])
            self.transport.sendto(stream.packet(payload), to)
            await asyncio.sleep(max(0.0, t0 + (n + 1) * 0.02 - loop.time()))

    async def stop_sending(self) -> None:
        if self.sending is not None:
            self.sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sending
            self.sending = None

    def audio(self, since: float = 0.0, pt: int | None = None) -> NDArray[np.int16]:
        """The decoded G.711 audio received after loop time ``since`` (in arrival order)."""
        return decode_rtp_payloads(
            (r.packet.payload_type, r.packet.payload)
            for r in self.received
            if r.at >= since and (pt is None or r.packet.payload_type == pt)
        )

    async def wait_packets(self, count: int, timeout: float = 10.0, since: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while sum(1 for r in self.received if r.at >= since) < count:
            if loop.time() > end:
                raise TimeoutError(f"{count} packets expected, got {len(self.received)}")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        if self.sending is not None:
            self.sending.cancel()
        self.transport.close()


def udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, **media: Any) -> Path:
    """A settings file for ``offhook media``: RTP on 127.0.0.1 in the test range."""
    media.setdefault("listen", HOST)
    media.setdefault("rtp_ports", f"{RTP_PORTS[0]}-{RTP_PORTS[1]}")
    lines = ["[media]"] + [f"{key} = {json.dumps(value)}" for key, value in media.items()]
    path = tmp_path / "offhook.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    """The environment of a child ``python -m offhook`` run from this checkout."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


async def spawn_media(tmp_path: Path, **media: Any) -> tuple[asyncio.subprocess.Process, str]:
    """``offhook media`` as a child process on a Unix socket in ``tmp_path``, listening."""
    config = write_config(tmp_path, **media)
    address = f"unix:{tmp_path / 'child.sock'}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "offhook",
        "media",
        "--config",
        str(config),
        "--control",
        address,
        env=child_env(),
    )
    await wait_listening(address, proc)
    return proc, address


async def wait_listening(
    address: str, proc: asyncio.subprocess.Process | None = None, timeout: float = 30.0
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if proc is not None and proc.returncode is not None:
            raise RuntimeError(f"offhook media exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_unix_connection(address.removeprefix("unix:"))
        except OSError:
            if loop.time() > end:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


async def end_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()
