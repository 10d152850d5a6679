"""The port-6970 HTTP file server on loopback, fetched with urllib and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from offhook.tftp.cnf import CallManagerNode, DeviceConfig, device_cnf, generator
from offhook.tftp.files import FileSource
from offhook.tftp.http import HttpFileServer, HttpLimits

DEVICE = DeviceConfig("SEP001122334455", nodes=(CallManagerNode("127.0.0.1"),))
BIG = bytes(range(256)) * 400


def make_source(tmp_path: Path) -> FileSource:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "big.bin").write_bytes(BIG)
    (tmp_path / "secret").write_bytes(b"secret")
    return FileSource(root, generator({DEVICE.device_name: DEVICE}))


def run(server: HttpFileServer, body: Callable[[int], Awaitable[None]]) -> None:
    async def main() -> None:
        await server.start()
        try:
            await asyncio.wait_for(body(server.port), 20.0)
        finally:
            await server.close()

    asyncio.run(main())


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3.0) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


async def raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


def test_get_cnf_xml_and_file(tmp_path: Path) -> None:
    server = HttpFileServer(make_source(tmp_path), "127.0.0.1", 0)

    async def body(port: int) -> None:
        status, headers, data = await asyncio.to_thread(get, port, "/SEP001122334455.cnf.xml")
        assert status == 200 and data == device_cnf(DEVICE)
        assert headers["Content-Type"] == "text/xml"
        assert headers["Content-Length"] == str(len(data))
        status, headers, data = await asyncio.to_thread(get, port, "/big.bin?x=1")
        assert status == 200 and data == BIG

    run(server, body)
    assert server.served == 2


@pytest.mark.parametrize(
    "path",
    ["/nothing", "/", "/sub", "/sub/", "/../secret", "/%2e%2e/secret", "/a%00b", "//etc/passwd"],
)
def test_not_found_and_traversal(tmp_path: Path, path: str) -> None:
    server = HttpFileServer(make_source(tmp_path), "127.0.0.1", 0)

    async def body(port: int) -> None:
        data = await raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert data.startswith(b"HTTP/1.1 404 ")
        assert b"secret\n" not in data.split(b"\r\n\r\n", 1)[1]

    run(server, body)


def test_bad_requests(tmp_path: Path) -> None:
    server = HttpFileServer(make_source(tmp_path), "127.0.0.1", 0, limits=HttpLimits(max_head=1024))

    async def body(port: int) -> None:
        assert (await raw(port, b"POST /big.bin HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405 ")
        assert (await raw(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        assert (await raw(port, b"GET /x HTTP/2.0\r\n\r\n")).startswith(b"HTTP/1.1 505 ")
        big = b"GET /big.bin HTTP/1.1\r\nX: " + b"a" * 4000 + b"\r\n\r\n"
        assert (await raw(port, big)).startswith(b"HTTP/1.1 431 ")
        head = await raw(port, b"HEAD /big.bin HTTP/1.1\r\n\r\n")
        assert head.endswith(b"\r\n\r\n") and f"Content-Length: {len(BIG)}".encode() in head
        missing = await raw(port, b"HEAD /nothing HTTP/1.1\r\n\r\n")
        assert missing.startswith(b"HTTP/1.1 404 ") and missing.endswith(b"\r\n\r\n")

    run(server, body)


def test_slow_client_times_out(tmp_path: Path) -> None:
    server = HttpFileServer(
        make_source(tmp_path), "127.0.0.1", 0, limits=HttpLimits(request_timeout=0.3)
    )

    async def body(port: int) -> None:
        assert (await raw(port, b"GET /big.bin HTTP/1.1\r\n")).startswith(b"HTTP/1.1 408 ")

    run(server, body)


def test_refused_source_gets_nothing(tmp_path: Path) -> None:
    rejects: list[str] = []
    server = HttpFileServer(
        make_source(tmp_path),
        "127.0.0.1",
        0,
        allow=lambda host: False,
        on_reject=lambda r, h: rejects.append(r),
    )

    async def body(port: int) -> None:
        try:
            got = await raw(port, b"GET /big.bin HTTP/1.1\r\n\r\n")
        except ConnectionResetError:
            got = b""  # closed with the request unread: a reset, no answer
        assert got == b""

    run(server, body)
    assert rejects == ["not-allowed"]


def test_connection_caps(tmp_path: Path) -> None:
    rejects: list[str] = []
    server = HttpFileServer(
        make_source(tmp_path),
        "127.0.0.1",
        0,
        limits=HttpLimits(max_connections=3, max_per_source=2, request_timeout=5.0),
        on_reject=lambda r, h: rejects.append(r),
    )

    async def body(port: int) -> None:
        # Two idle connections from 127.0.0.1 hold its per-source slots.
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.1)
        with contextlib.suppress(ConnectionResetError):
            await raw(port, b"GET /big.bin HTTP/1.1\r\n\r\n")
        # Another source takes the last global slot; a third source is refused.
        r2, w2 = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
        await asyncio.sleep(0.1)
        with contextlib.suppress(ConnectionResetError):
            await raw_from("127.0.0.3", port, b"GET /big.bin HTTP/1.1\r\n\r\n")
        for _, w in [*held, (r2, w2)]:
            w.close()
        await asyncio.sleep(0.1)
        # Slots are free again.
        data = await raw(port, b"GET /big.bin HTTP/1.1\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 200 ")

    run(server, body)
    assert rejects == ["busy-source", "busy"]


async def raw_from(source: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data
