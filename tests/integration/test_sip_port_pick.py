"""``SipTransport.start`` with port 0: UDP picks the port, TCP takes the same one.

The port the kernel gives the UDP socket may be in use for TCP (another
listener, or an outgoing connection's local port): then both pick again,
instead of failing the start with "address in use" (seen once in CI).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from offhook.sip import aio
from offhook.sip.aio import SipTransport
from support.ports import HOST


def test_a_udp_pick_taken_for_tcp_is_picked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen()
    busy = taken.getsockname()[1]
    real = aio.open_datagram_endpoints
    asked: list[int] = []

    async def first_on_the_busy_port(factory: Any, hosts: Any, port: int) -> Any:
        asked.append(port)
        return await real(factory, hosts, busy if len(asked) == 1 else port)

    monkeypatch.setattr(aio, "open_datagram_endpoints", first_on_the_busy_port)

    async def main() -> None:
        transport = SipTransport(on_message=lambda *a: None, allow=lambda host: True)
        try:
            _, port = await transport.start(HOST, 0, udp=True, tcp=True)
            assert port != busy and asked == [0, 0]
            assert len(transport.udp_endpoints) == 1 and len(transport.servers) == 1
            assert transport.udp_endpoints[0][1].get_extra_info("socket").getsockname()[1] == port
        finally:
            await transport.close()

    try:
        asyncio.run(main())
    finally:
        taken.close()


def test_a_port_asked_for_and_taken_still_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen()
    busy = taken.getsockname()[1]

    async def main() -> None:
        transport = SipTransport(on_message=lambda *a: None, allow=lambda host: True)
        try:
            with pytest.raises(OSError, match="in use"):
                await transport.start(HOST, busy, udp=True, tcp=True)
        finally:
            await transport.close()

    try:
        asyncio.run(main())
    finally:
        taken.close()
