"""The TFTP and HTTP file servers on IPv6, dual-stack ``"::"`` and address lists (real sockets).

A generator records the IP version each request was made over. Checked: an
IPv4 client of a dual-stack socket is seen as plain ``127.0.0.1`` (by the
allow-list, the refusal callback, the per-source tables) and its file is
generated for IPv4; its transfer is answered from an IPv4 address (the
transfer socket is the listening socket's kind, dual-stack, connected to the
mapped address); an IPv6 client's transfer comes from ``::1`` and its file
is generated for IPv6; a list of addresses listens on one port; an address
that cannot be bound fails the start without leaving the others open.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from offhook.net.acl import AllowList
from offhook.tftp.aio import TftpServer
from offhook.tftp.files import FileSource
from offhook.tftp.http import HttpFileServer
from offhook.tftp.protocol import Ack, Data, Error, ErrorCode, Opcode, Request, parse_packet

HOST, HOST6 = "127.0.0.1", "::1"
NAME = "SEP001122334455.cnf.xml"


class Recording:
    """A generator answering ``NAME`` with the IP version it was asked over."""

    def __init__(self) -> None:
        self.versions: list[int] = []

    def __call__(self, name: str, version: int) -> bytes | None:
        if name != NAME:
            return None
        self.versions.append(version)
        return f"<cnf ipv{version}/>".encode()


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def tftp_get(host: str, port: int, name: str = NAME) -> tuple[bytes | None, str]:
    """A whole octet RRQ from ``host``: (file or None on ERROR/silence, the transfer's host)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family(host), socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((host, 0))
    try:
        await loop.sock_sendto(sock, Request(Opcode.RRQ, name, "octet").encode(), (host, port))
        data = b""
        while True:
            try:
                raw, source = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 0.5)
            except TimeoutError:
                return None, ""
            packet = parse_packet(raw)
            if isinstance(packet, Error):
                return None, str(source[0])
            assert isinstance(packet, Data)
            data += packet.payload
            await loop.sock_sendto(sock, Ack(packet.block).encode(), source)
            if len(packet.payload) < 512:
                return data, str(source[0])
    finally:
        sock.close()


async def http_get(host: str, port: int) -> bytes:
    """The whole answer to a GET of ``NAME`` from ``host`` (b"": closed or reset unanswered)."""
    reader, writer = await asyncio.open_connection(host, port)
    data = b""
    try:
        writer.write(f"GET /{NAME} HTTP/1.1\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
    except ConnectionError:
        pass
    writer.close()
    return data


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 20.0)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("allow", "admitted", "refused"),
    [(["127.0.0.0/8"], HOST, HOST6), (["::1/128"], HOST6, HOST)],
)
def test_tftp_dual_stack_socket(allow: list[str], admitted: str, refused: str) -> None:
    gen = Recording()
    rejected: list[tuple[str, str]] = []
    server = TftpServer(
        FileSource(None, gen),
        "::",
        0,
        allow=AllowList(allow).allows,
        on_reject=lambda reason, host: rejected.append((reason, host)),
    )

    async def body() -> None:
        await server.start()
        try:
            assert server.addresses == f"[::]:{server.port}"
            data, source = await tftp_get(admitted, server.port)
            version = 6 if ":" in admitted else 4
            assert data == f"<cnf ipv{version}/>".encode()
            assert source == admitted  # the transfer answers from the client's own family
            assert gen.versions == [version]
            assert await tftp_get(refused, server.port) == (None, "")
            assert rejected == [("not-allowed", refused)]  # plain, never ::ffff:127.0.0.1
            assert server.rate_sources == 1  # the admitted source only
        finally:
            await server.close()

    run(body)
    assert server.completed == 1


def test_tftp_address_list_one_port_both_families() -> None:
    gen = Recording()
    server = TftpServer(FileSource(None, gen), [HOST, HOST6], 0)

    async def body() -> None:
        await server.start()
        try:
            assert server.addresses == f"{HOST}:{server.port}, [{HOST6}]:{server.port}"
            for host in (HOST6, HOST):
                data, source = await tftp_get(host, server.port)
                assert data is not None and source == host
            missing, _ = await tftp_get(HOST6, server.port, "nothing.bin")
            assert missing is None
        finally:
            await server.close()

    run(body)
    assert gen.versions == [6, 4]


def test_tftp_start_fails_whole_when_one_address_is_taken() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as busy:
        busy.bind((HOST6, 0))
        port = busy.getsockname()[1]
        server = TftpServer(FileSource(None, Recording()), [HOST, HOST6], port)

        async def body() -> None:
            with pytest.raises(OSError):
                await server.start()
            with pytest.raises(RuntimeError):
                _ = server.port  # nothing left open

        run(body)
        # The IPv4 half was closed again: the port is free on 127.0.0.1.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind((HOST, port))


def test_http_dual_stack_socket_and_list() -> None:
    gen = Recording()
    rejected: list[tuple[str, str]] = []
    dual = HttpFileServer(
        FileSource(None, gen),
        "::",
        0,
        allow=AllowList(["127.0.0.0/8"]).allows,
        on_reject=lambda reason, host: rejected.append((reason, host)),
    )
    both = HttpFileServer(FileSource(None, gen), [HOST, HOST6], 0)

    async def body() -> None:
        await dual.start()
        await both.start()
        try:
            assert dual.addresses == f"[::]:{dual.port}"
            assert both.addresses == f"{HOST}:{both.port}, [{HOST6}]:{both.port}"
            answer = await http_get(HOST, dual.port)  # mapped on the wire, IPv4 inside
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"<cnf ipv4/>")
            assert await http_get(HOST6, dual.port) == b""  # refused: reset, no answer
            assert rejected == [("not-allowed", HOST6)]
            assert dual.rate_sources == 1
            for host in (HOST6, HOST):
                answer = await http_get(host, both.port)
                assert answer.startswith(b"HTTP/1.1 200")
        finally:
            await dual.close()
            await both.close()

    run(body)
    assert gen.versions == [4, 6, 4]


def test_tftp_error_for_a_refused_name_over_ipv6() -> None:
    server = TftpServer(FileSource(None, Recording()), HOST6, 0)

    async def body() -> None:
        await server.start()
        try:
            loop = asyncio.get_running_loop()
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((HOST6, 0))
            try:
                rrq = Request(Opcode.RRQ, "../secret", "octet").encode()
                await loop.sock_sendto(sock, rrq, (HOST6, server.port))
                raw, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65536), 5)
            finally:
                sock.close()
            packet = parse_packet(raw)
            assert isinstance(packet, Error) and packet.code == ErrorCode.ACCESS_VIOLATION
        finally:
            await server.close()

    run(body)
