"""net.listen with port 0 on several addresses: a picked port taken elsewhere is picked again.

The first socket of the plan picks a free port on its address; the next
ones take the same number, which another program may hold on their
address. Real sockets: a blocker holds a port on ``::1``, and the first
pick is steered to that number (the kernel's choice cannot be predicted
otherwise); the plan must close what it opened and come back on another
port shared by both addresses. A port the caller asked for is never
changed.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from offhook.net import listen

HOST, HOST6 = "127.0.0.1", "::1"


def taken_on_v6_only(kind: int) -> tuple[socket.socket, int]:
    """A socket holding a port on ::1 that is free on 127.0.0.1."""
    for _ in range(50):
        blocker = socket.socket(socket.AF_INET6, kind)
        blocker.bind((HOST6, 0))
        port = int(blocker.getsockname()[1])
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                blocker.close()
                continue
        return blocker, port
    raise RuntimeError("no port free on 127.0.0.1 and held on ::1")


def steer_first_pick(monkeypatch: pytest.MonkeyPatch, port: int) -> list[int]:
    """The first port-0 bind of the plan gets ``port``; every bind's port is recorded."""
    real = listen._socket
    asked: list[int] = []

    def first_pick(spec: listen.BindSpec, kind: int, want: int) -> socket.socket:
        asked.append(want)
        if want == 0 and len(asked) == 1:
            want = port
        return real(spec, kind, want)

    monkeypatch.setattr(listen, "_socket", first_pick)
    return asked


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_port_zero_moves_to_a_port_free_on_every_address(
    monkeypatch: pytest.MonkeyPatch, kind: int
) -> None:
    blocker, taken = taken_on_v6_only(kind)
    asked = steer_first_pick(monkeypatch, taken)

    async def body() -> None:
        opened: list[Any]
        if kind == socket.SOCK_STREAM:
            servers, port = await listen.open_stream_servers(asyncio.Protocol, [HOST, HOST6], 0)
            opened = [sock for server in servers for sock in server.sockets]
        else:
            endpoints, port = await listen.open_datagram_endpoints(
                asyncio.DatagramProtocol, [HOST, HOST6], 0
            )
            opened = [transport.get_extra_info("socket") for _, transport in endpoints]
        try:
            assert port != taken
            assert sorted((s.family, s.getsockname()[1]) for s in opened) == [
                (socket.AF_INET, port),
                (socket.AF_INET6, port),
            ]
        finally:
            if kind == socket.SOCK_STREAM:
                for server in servers:
                    server.close()
            else:
                for _, transport in endpoints:
                    transport.close()

    try:
        asyncio.run(body())
        # Tried: 127.0.0.1 on the steered port, ::1 on it (taken), then again from port 0.
        assert asked[:3] == [0, taken, 0]
        # The first attempt's IPv4 socket was closed: the steered port is free there again.
        with socket.socket(socket.AF_INET, kind) as again:
            again.bind((HOST, taken))
    finally:
        blocker.close()


def test_a_port_asked_for_is_never_changed() -> None:
    blocker, taken = taken_on_v6_only(socket.SOCK_DGRAM)

    async def body() -> None:
        with pytest.raises(OSError):
            await listen.open_datagram_endpoints(asyncio.DatagramProtocol, [HOST, HOST6], taken)

    try:
        asyncio.run(body())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind((HOST, taken))  # closed again, nothing left open
    finally:
        blocker.close()
