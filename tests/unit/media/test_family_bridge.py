"""media.relay / media.bridge: an IPv6 device and an IPv4 device exchange RTP through the node."""

from __future__ import annotations

import asyncio
import socket

from offhook.media.bridge import FamilyBridge
from offhook.media.relay import NO_TARGET, UNEXPECTED, RelayPath

HOSTS = {4: "127.0.0.1", 6: "::1"}


def test_path_decisions() -> None:
    path = RelayPath()
    assert path.receive(6, ("::1", 4000)) == UNEXPECTED  # nothing signalled yet
    path.expect(6, ("127.0.0.1", 5000))  # the IPv6 device is told to send to us
    assert path.receive(6, ("::1", 4000)) == UNEXPECTED  # ... but who it is is not known yet
    path.expect(4, ("::1", 4000))  # the IPv4 device is told about the IPv6 one
    assert path.receive(6, ("::1", 4000)) == ("127.0.0.1", 5000)
    assert path.receive(4, ("127.0.0.1", 5000)) == ("::1", 4000)
    assert path.receive(4, ("127.0.0.2", 5000)) == UNEXPECTED  # another host: dropped
    # Same host, another port (a NAT): the path latches on it (symmetric RTP).
    assert path.receive(4, ("127.0.0.1", 5002)) == ("::1", 4000)
    assert path.receive(6, ("::1", 4000)) == ("127.0.0.1", 5002)
    assert path.forwarded == 4 and path.dropped == {UNEXPECTED: 3}
    half = RelayPath()
    half.devices[6] = ("::1", 1)
    assert half.receive(6, ("::1", 1)) == NO_TARGET


def _udp(family: int, host: str) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.setblocking(False)
    return s


async def _recv(sock: socket.socket, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), timeout)
    return data, (addr[0], addr[1])


def test_rtp_and_rtcp_cross_families() -> None:
    counted: list[str] = []

    async def main() -> None:
        bridge = FamilyBridge(HOSTS, (40000, 40999), 4, count=lambda r, n: counted.append(r))
        a = _udp(socket.AF_INET6, "::1")  # the IPv6 phone's RTP
        b = _udp(socket.AF_INET, "127.0.0.1")  # the IPv4 phone's RTP
        a_addr, b_addr = a.getsockname()[:2], b.getsockname()[:2]
        try:
            # Leg of the IPv6 phone writes the IPv4 phone's address towards it, and back.
            to_a = bridge.bridge("call-1", "leg-a", 0, 6, b_addr)
            to_b = bridge.bridge("call-1", "leg-b", 0, 4, a_addr)
            assert to_a is not None and to_a[0] == "::1" and to_a[1] % 2 == 0
            assert to_b is not None and to_b[0] == "127.0.0.1" and to_b[1] % 2 == 0
            assert bridge.bridge("call-1", "leg-a", 0, 6, b_addr) == to_a  # stable
            a.sendto(b"from-a", to_a)
            data, source = await _recv(b)
            assert data == b"from-a" and source == to_b  # B sees the relay's IPv4 side
            b.sendto(b"from-b", to_b)
            data, source = await _recv(a)
            assert data == b"from-b" and source[:2] == to_a
            # RTCP on the odd ports, to each device's port + 1.
            a_rtcp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            b_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                a_rtcp.bind(("::1", a_addr[1] + 1))
                b_rtcp.bind(("127.0.0.1", b_addr[1] + 1))
                b_rtcp.setblocking(False)
                a_rtcp.sendto(b"rtcp-a", (to_a[0], to_a[1] + 1))
                data, _ = await _recv(b_rtcp)
                assert data == b"rtcp-a"
            except OSError:
                pass  # port + 1 taken by someone else: RTP is what matters here
            finally:
                a_rtcp.close()
                b_rtcp.close()
            # A stranger's packets (another host) go nowhere, and are counted.
            stranger = _udp(socket.AF_INET, "127.0.0.2")
            stranger.sendto(b"inject", to_b)
            await asyncio.sleep(0.1)
            stranger.close()
            assert "unexpected-source" in counted
            with_nothing = await asyncio.gather(_recv(a, 0.2), return_exceptions=True)
            assert isinstance(with_nothing[0], TimeoutError)
            assert bridge.status()["streams"] == 1
            bridge.release("call-1", "leg-a")
            assert bridge.status()["streams"] == 1  # leg B still uses it
            bridge.release("call-1", "leg-b")
            assert bridge.status()["streams"] == 0
            # The ports are free again.
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", to_b[1]))
            s.close()
        finally:
            a.close()
            b.close()
            bridge.close()

    asyncio.run(main())


def test_same_family_is_not_bridged_and_streams_are_bounded() -> None:
    async def main() -> None:
        bridge = FamilyBridge(HOSTS, (41000, 41999), 2)
        try:
            assert bridge.bridge("c", "l", 0, 4, ("127.0.0.1", 5000)) is None
            assert bridge.bridge("c1", "l", 0, 4, ("::1", 5000)) is not None
            assert bridge.bridge("c2", "l", 0, 4, ("::1", 5000)) is not None
            assert bridge.bridge("c3", "l", 0, 4, ("::1", 5000)) is None  # max_streams
            bridge.release("c1", "l")
            assert bridge.bridge("c3", "l", 0, 4, ("::1", 5000)) is not None
        finally:
            bridge.close()

    asyncio.run(main())


def test_end_of_call_closes_its_streams_whoever_holds_them() -> None:
    async def main() -> None:
        bridge = FamilyBridge(HOSTS, (43000, 43999), 4)
        try:
            assert bridge.bridge("c1", "a", 0, 4, ("::1", 5000)) is not None
            assert bridge.bridge("c1", "a", 1, 4, ("::1", 5002)) is not None
            assert bridge.bridge("c2", "x", 0, 6, ("127.0.0.1", 5000)) is not None
            bridge.end("c1")  # leg "a" never released (a protocol that lost track)
            assert bridge.status()["streams"] == 1
            bridge.release("c1", "a")  # late release: nothing left, no error
            bridge.end("c9")  # unknown call: nothing
            assert bridge.status()["streams"] == 1
        finally:
            bridge.close()

    asyncio.run(main())
