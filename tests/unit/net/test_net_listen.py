"""net.listen: which sockets a listen setting opens (issue 14)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from offhook.net.listen import (
    BindSpec,
    bind_plan,
    open_datagram_endpoints,
    open_stream_servers,
    pick_endpoint,
    served_families,
)
from support.ports import free_port


def test_dual_stack_alone() -> None:
    (spec,) = bind_plan("::")
    assert spec.family == socket.AF_INET6 and spec.dual_stack
    assert served_families("::") == {4, 6}
    assert served_families(["[::]"]) == {4, 6}


def test_one_socket_per_family() -> None:
    v4, v6 = bind_plan(["0.0.0.0", "::"])
    assert v4.family == socket.AF_INET
    assert v6.family == socket.AF_INET6 and v6.v6only  # else it would collide with 0.0.0.0
    assert served_families(["0.0.0.0", "::"]) == {4, 6}


def test_specific_addresses_and_forms() -> None:
    specs = bind_plan(["127.0.0.1", "0:0::1", "::1"])  # duplicate in another form
    assert [s.host for s in specs] == ["127.0.0.1", "::1"]
    assert served_families("::1") == {6}
    assert served_families("127.0.0.1") == {4}
    assert bind_plan("::ffff:127.0.0.1")[0].host == "127.0.0.1"


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (["0.0.0.0", "127.0.0.1"], "cannot share a port"),
        (["::", "::1"], "cannot share a port"),
        (["localhost"], "not an IP address"),
        ([], "no listen address"),
    ],
)
def test_refused(listen: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bind_plan(listen)


def test_pick_endpoint() -> None:
    v4 = BindSpec("0.0.0.0", socket.AF_INET)
    v6 = BindSpec("::", socket.AF_INET6, v6only=True)
    dual = BindSpec("::", socket.AF_INET6, v6only=False)
    assert pick_endpoint([(v4, "a"), (v6, "b")], "192.0.2.1") == ("a", ("192.0.2.1", 0))
    assert pick_endpoint([(v4, "a"), (v6, "b")], "2001:db8::1") == ("b", ("2001:db8::1", 0))
    assert pick_endpoint([(dual, "d")], "192.0.2.1") == ("d", ("::ffff:192.0.2.1", 0))
    assert pick_endpoint([(v4, "a")], "::1") == (None, None)
    assert pick_endpoint([(v6, "b")], "127.0.0.1") == (None, None)


def _exchange(listen: str | list[str], client: tuple[int, str]) -> tuple[str, int]:
    """Open UDP+TCP on ``listen``, send from ``client`` (family, host); the peer as seen."""
    seen: list[tuple[str, int]] = []

    class Udp(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            seen.append(addr)

    async def main() -> tuple[str, int]:
        endpoints, port = await open_datagram_endpoints(Udp, listen, free_port())
        servers, tcp_port = await open_stream_servers(asyncio.Protocol, listen, port)
        assert tcp_port == port  # one port for every socket and both transports
        try:
            with socket.socket(client[0], socket.SOCK_DGRAM) as c:
                c.sendto(b"x", (client[1], port))
                for _ in range(100):
                    if seen:
                        break
                    await asyncio.sleep(0.01)
            _reader, writer = await asyncio.open_connection(client[1], port)
            writer.close()
        finally:
            for _, t in endpoints:
                t.close()
            for s in servers:
                s.close()
        return seen[0]

    return asyncio.run(main())


def test_dual_stack_socket_serves_both_loopbacks() -> None:
    assert _exchange("::", (socket.AF_INET, "127.0.0.1"))[0] == "::ffff:127.0.0.1"
    assert _exchange("::", (socket.AF_INET6, "::1"))[0] == "::1"


def test_two_sockets_serve_both_loopbacks() -> None:
    assert _exchange(["0.0.0.0", "::"], (socket.AF_INET, "127.0.0.1"))[0] == "127.0.0.1"
    assert _exchange(["0.0.0.0", "::"], (socket.AF_INET6, "::1"))[0] == "::1"
