"""The asyncio TFTP server on loopback, fetched with a real client (PyPI ``tftpy``).

Also raw-socket checks: traversal gets an ERROR packet, a refused source
gets no answer at all, the concurrent-transfer cap holds, a WRQ is refused.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from offhook.tftp.aio import TftpLimits, TftpServer
from offhook.tftp.cnf import CallManagerNode, DeviceConfig, device_cnf, generator
from offhook.tftp.files import FileSource
from offhook.tftp.protocol import (
    Ack,
    Data,
    Error,
    ErrorCode,
    Opcode,
    Request,
    SessionSettings,
    parse_packet,
)

tftpy = pytest.importorskip("tftpy")

DEVICE = DeviceConfig("SEP001122334455", nodes=(CallManagerNode("127.0.0.1"),))
BIG = bytes((i * 7 + i // 256) % 256 for i in range(100_000))


def make_source(tmp_path: Path) -> FileSource:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.bin").write_bytes(BIG)
    (root / "exact.bin").write_bytes(b"e" * 1024)
    (tmp_path / "secret").write_bytes(b"secret")
    return FileSource(root, generator({DEVICE.device_name: DEVICE}))


def run(server: TftpServer, body: Callable[[int], Awaitable[None]], timeout: float = 30.0) -> None:
    async def main() -> None:
        await server.start()
        try:
            await asyncio.wait_for(body(server.port), timeout)
        finally:
            await server.close()

    asyncio.run(main())


def fetch(port: int, name: str, out: Path, options: dict[str, int] | None = None) -> bytes:
    client = tftpy.TftpClient("127.0.0.1", port, options or {})
    client.download(name, str(out), timeout=2, retries=2)
    return out.read_bytes()


@pytest.mark.parametrize("options", [None, {"blksize": 1428}, {"blksize": 1428, "tsize": 0}])
def test_tftpy_fetches_cnf_xml(tmp_path: Path, options: dict[str, int] | None) -> None:
    server = TftpServer(make_source(tmp_path), "127.0.0.1", 0)

    async def body(port: int) -> None:
        got = await asyncio.to_thread(
            fetch, port, "SEP001122334455.cnf.xml", tmp_path / "out", options
        )
        assert got == device_cnf(DEVICE)

    run(server, body)
    assert server.completed == 1


@pytest.mark.parametrize("options", [None, {"blksize": 1428}])
def test_tftpy_fetches_100k_file_byte_for_byte(tmp_path: Path, options: dict[str, int]) -> None:
    server = TftpServer(make_source(tmp_path), "127.0.0.1", 0)

    async def body(port: int) -> None:
        got = await asyncio.to_thread(fetch, port, "big.bin", tmp_path / "out", options)
        assert got == BIG
        got = await asyncio.to_thread(fetch, port, "exact.bin", tmp_path / "out2", options)
        assert got == b"e" * 1024

    run(server, body)


def test_tftpy_missing_file_errors(tmp_path: Path) -> None:
    server = TftpServer(make_source(tmp_path), "127.0.0.1", 0)

    async def body(port: int) -> None:
        with pytest.raises(tftpy.TftpException):
            await asyncio.to_thread(fetch, port, "nothing.bin", tmp_path / "out")

    run(server, body)


# --- raw socket client


class Raw:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    async def send(self, data: bytes, addr: tuple[str, int]) -> None:
        await asyncio.get_running_loop().sock_sendto(self.sock, data, addr)

    async def recv(self, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]] | None:
        try:
            async with asyncio.timeout(timeout):
                data, addr = await asyncio.get_running_loop().sock_recvfrom(self.sock, 70000)
        except TimeoutError:
            return None
        return data, addr

    def close(self) -> None:
        self.sock.close()


def rrq(name: str) -> bytes:
    return Request(Opcode.RRQ, name, "octet").encode()


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "a/../../secret", "x\\..\\secret"])
def test_traversal_gets_error_packet(tmp_path: Path, name: str) -> None:
    server = TftpServer(make_source(tmp_path), "127.0.0.1", 0)

    async def body(port: int) -> None:
        c = Raw()
        try:
            await c.send(rrq(name), ("127.0.0.1", port))
            got = await c.recv()
            assert got is not None
            pkt = parse_packet(got[0])
            assert isinstance(pkt, Error) and pkt.code == ErrorCode.ACCESS_VIOLATION
            assert got[1][1] != port  # answered from a fresh TID (RFC 1350 §4)
        finally:
            c.close()

    run(server, body)


def test_wrq_refused(tmp_path: Path) -> None:
    rejects: list[str] = []
    server = TftpServer(
        make_source(tmp_path), "127.0.0.1", 0, on_reject=lambda r, h: rejects.append(r)
    )

    async def body(port: int) -> None:
        c = Raw()
        try:
            await c.send(Request(Opcode.WRQ, "x", "octet").encode(), ("127.0.0.1", port))
            got = await c.recv()
            assert got is not None
            pkt = parse_packet(got[0])
            assert isinstance(pkt, Error) and pkt.code == ErrorCode.ACCESS_VIOLATION
        finally:
            c.close()

    run(server, body)
    assert rejects == ["write-request"]
    assert not (tmp_path / "root" / "x").exists()


def test_refused_source_gets_no_answer(tmp_path: Path) -> None:
    rejects: list[tuple[str, str]] = []
    server = TftpServer(
        make_source(tmp_path),
        "127.0.0.1",
        0,
        allow=lambda host: host != "127.0.0.1",
        on_reject=lambda r, h: rejects.append((r, h)),
    )

    async def body(port: int) -> None:
        c = Raw()
        try:
            await c.send(rrq("big.bin"), ("127.0.0.1", port))
            await c.send(b"\xff garbage", ("127.0.0.1", port))
            assert await c.recv(0.5) is None
        finally:
            c.close()

    run(server, body)
    assert rejects == [("not-allowed", "127.0.0.1")] * 2
    assert server.active_transfers == 0


def test_concurrent_transfer_caps(tmp_path: Path) -> None:
    rejects: list[str] = []
    limits = TftpLimits(max_transfers=3, max_per_source=2, session=SessionSettings(timeout=5.0))
    server = TftpServer(
        make_source(tmp_path),
        "127.0.0.1",
        0,
        limits=limits,
        on_reject=lambda r, h: rejects.append(r),
    )

    async def body(port: int) -> None:
        clients = [Raw() for _ in range(3)]
        try:
            # Three transfers from 127.0.0.1: the third is over the per-source cap.
            for c in clients:
                await c.send(rrq("big.bin"), ("127.0.0.1", port))
            answers = [await c.recv(0.5) for c in clients]
            assert [a is not None for a in answers] == [True, True, False]
            assert server.active_transfers == 2
            # Another source (127.0.0.2) fills the global cap (3), then is refused.
            other = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            for s in other:
                s.bind(("127.0.0.2", 0))
                s.sendto(rrq("big.bin"), ("127.0.0.1", port))
            await asyncio.sleep(0.3)
            assert server.active_transfers == 3
            for s in other:
                s.close()
            # Finishing one transfer frees its slot (ACK every block).
            first = answers[0]
            assert first is not None
            data, tid = first
            c = clients[0]
            while True:
                pkt = parse_packet(data)
                assert isinstance(pkt, Data)
                await c.send(Ack(pkt.block).encode(), tid)
                if len(pkt.payload) < 512:
                    break
                got = await c.recv()
                assert got is not None
                data = got[0]
            await asyncio.sleep(0.1)
            assert server.active_transfers == 2
        finally:
            for c in clients:
                c.close()

    run(server, body)
    assert rejects == ["busy-source", "busy"]
    assert server.completed == 1


def test_retransmits_then_gives_up(tmp_path: Path) -> None:
    limits = TftpLimits(session=SessionSettings(timeout=0.2, max_retries=2))
    server = TftpServer(make_source(tmp_path), "127.0.0.1", 0, limits=limits)

    async def body(port: int) -> None:
        c = Raw()
        try:
            await c.send(rrq("exact.bin"), ("127.0.0.1", port))
            got = [await c.recv(1.0) for _ in range(4)]
            assert [g is not None for g in got] == [True, True, True, False]
            assert len({g[0] for g in got if g is not None}) == 1  # the same DATA 1
            assert server.active_transfers == 0
        finally:
            c.close()

    run(server, body)
    assert server.failed == 1
