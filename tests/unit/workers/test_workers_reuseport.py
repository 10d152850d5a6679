"""The source-address socket groups (``workers.reuseport``), the worker settings, the bus.

The BPF program is run by its interpreter on IPv4 and IPv6 headers and must
agree with ``home_of``; then a real group in the kernel must send every
datagram of a source to that socket, whatever its source port.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.location import Binding
from offhook.config import load_settings
from offhook.config_base import ConfigError
from offhook.net.authguard import AuthGuard, AuthPolicy
from offhook.sip.aio import SipTransport
from offhook.sip.message import SipMessage, SipResponse
from offhook.workers.codec import Forward, encode
from offhook.workers.context import WorkerContext
from offhook.workers.replica import ReplicatedLocationStore
from offhook.workers.reuseport import (
    by_source_program,
    home_of,
    run_program,
    sip_groups,
    tcp_groups,
    udp_groups,
)
from offhook.workers.worker import rtp_slice, worker_settings

WORKERS = st.integers(min_value=1, max_value=64)


def ipv4_header(source: ipaddress.IPv4Address) -> bytes:
    return bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]) + source.packed + bytes(4)


def ipv6_header(source: ipaddress.IPv6Address) -> bytes:
    return bytes([0x60, 0, 0, 0, 0, 8, 17, 64]) + source.packed + bytes(16)


@given(st.ip_addresses(v=4), WORKERS)
def test_program_picks_home_of_an_ipv4_source(source: ipaddress.IPv4Address, n: int) -> None:
    assert run_program(by_source_program(n), ipv4_header(source)) == home_of(str(source), n)


@given(st.ip_addresses(v=6), WORKERS)
def test_program_picks_home_of_an_ipv6_source(source: ipaddress.IPv6Address, n: int) -> None:
    got = run_program(by_source_program(n), ipv6_header(source))
    if source.ipv4_mapped is None:  # a mapped address arrives as an IPv4 packet
        assert got == home_of(str(source), n)
    assert got < n


def test_program_bounds() -> None:
    for bad in (0, 0x10000):
        with pytest.raises(ValueError):
            by_source_program(bad)


def drain(sock: socket.socket, want: int) -> list[str]:
    got: list[str] = []
    while len(got) < want and select.select([sock], [], [], 5.0)[0]:
        got.append(sock.recv(100).decode())
    return got


@pytest.mark.parametrize("n", [2, 3])
def test_a_kernel_group_sends_each_source_to_its_home(n: int) -> None:
    groups, port = udp_groups("127.0.0.1", 0, n)
    sources = [f"127.0.0.{i}" for i in range(2, 8)]
    try:
        for source in sources:
            for _ in range(3):  # three source ports each
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                    c.bind((source, 0))
                    c.sendto(source.encode(), ("127.0.0.1", port))
        for index, socks in enumerate(groups):
            mine = [s for s in sources if home_of(s, n) == index]
            got = drain(socks[0], 3 * len(mine))
            assert sorted(got) == sorted(s for s in mine for _ in range(3))
    finally:
        for socks in groups:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("n", [2, 3])
def test_a_kernel_tcp_group_accepts_each_source_on_its_home(n: int) -> None:
    udp, tcp, port = sip_groups("127.0.0.1", 0, n, True, 16)
    sources = [f"127.0.0.{i}" for i in range(2, 8)]
    clients: list[socket.socket] = []
    try:
        for source in sources:
            for _ in range(2):  # two connections each, from two ports
                c = socket.create_connection(("127.0.0.1", port), 5.0, (source, 0))
                clients.append(c)
        for index, socks in enumerate(tcp):
            mine = [s for s in sources if home_of(s, n) == index]
            accepted: list[str] = []
            while len(accepted) < 2 * len(mine) and select.select(socks, [], [], 5.0)[0]:
                conn, (host, _) = socks[0].accept()
                conn.close()
                accepted.append(host)
            assert sorted(accepted) == sorted(s for s in mine for _ in range(2))
            assert not select.select(socks, [], [], 0)[0]  # no other source's connection
    finally:
        for sock in (*clients, *(s for socks in (*udp, *tcp) for s in socks)):
            sock.close()


def test_rtp_slices_split_the_range_in_whole_pairs() -> None:
    assert [rtp_slice((16384, 32767), i, 2) for i in range(2)] == [
        "16384-24575",
        "24576-32767",
    ]
    assert rtp_slice((16384, 16399), 3, 4) == "16396-16399"
    with pytest.raises(ConfigError):
        rtp_slice((16384, 16399), 0, 5)


def test_worker_settings_place_the_listeners() -> None:
    base = load_settings(None, env={"OFFHOOK_NODE__WORKERS": "2", "OFFHOOK_ADMIN__PORT": "5099"})
    first, second = (worker_settings(base, i, 2, 5070) for i in range(2))
    assert (first.sip.port, second.sip.port) == (5070, 5070)
    assert (first.admin.port, second.admin.port) == (5099, 5100)
    assert first.sip.tcp and second.sip.tcp  # each on its socket of the TCP group
    assert first.sccp.enabled and not second.sccp.enabled
    assert first.tftp.enabled and not second.tftp.enabled
    assert not first.web.enabled and not second.web.enabled  # the supervisor's child
    any_port = load_settings(None, env={"OFFHOOK_ADMIN__PORT": "0"})
    assert worker_settings(any_port, 1, 2, 5070).admin.port == 0


RINGING = (
    b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKw1-abc\r\n"
    b"From: <sip:1003@127.0.0.1>;tag=w1-a\r\nTo: <sip:1004@127.0.0.1>;tag=b\r\n"
    b"Call-ID: w1-c@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_two_workers_pass_datagrams_and_bindings_over_the_bus(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[int, SipMessage, tuple[str, int]]] = []
        contexts = [WorkerContext(i, 2, str(tmp_path)) for i in range(2)]
        transports = []
        stores: list[ReplicatedLocationStore] = []
        for i, ctx in enumerate(contexts):
            transport = SipTransport(
                on_message=lambda m, a, t, i=i: got.append((i, m, a)), allow=lambda h: True
            )
            stores.append(ctx.locations(loop.time))
            await ctx.attach(transport)
            transports.append(transport)
        # Worker 0 read a 180 of worker 1's INVITE: passed on, parsed there.
        assert transports[0].forward is not None
        assert transports[0].forward(RINGING, ("127.0.0.3", 5062))
        forward1 = transports[1].forward
        assert forward1 is not None and not forward1(RINGING, ("127.0.0.3", 5062))  # its own
        while not got:
            await asyncio.sleep(0.01)
        index, message, source = got[0]
        assert index == 1 and isinstance(message, SipResponse) and message.status == 180
        assert source == ("127.0.0.3", 5062)
        # A burst larger than the receiver's queue (net.unix.max_dgram_qlen) waits, none lost.
        dropped = contexts[0].counters["bus_dropped"]  # the table request before 1 was there
        for _ in range(300):
            assert transports[0].forward(RINGING, ("127.0.0.3", 5062))
        while len(got) < 301:
            await asyncio.sleep(0.01)
        assert contexts[0].counters["bus_dropped"] == dropped
        assert contexts[0].counters["bus_waits"] >= 1
        # A binding made on worker 1 reaches worker 0's store.
        store0, store1 = stores
        store1.put(Binding("dave", "sip", "sip:dave@127.0.0.3", loop.time() + 300))
        while not store0.bindings("dave", loop.time()):
            await asyncio.sleep(0.01)
        # Failed logins against an account on both workers: each guard counts them all.
        guards = [AuthGuard(AuthPolicy(), share_accounts=True, lead=i == 0) for i in range(2)]
        for ctx, guard in zip(contexts, guards, strict=True):
            ctx.share_account_failures(guard, loop.time)
        for i in range(70):  # past MAX_ACCOUNTS accounts: two reports
            guards[i % 2].failure(f"10.0.{i % 2}.{i}", "alice" if i < 6 else f"u{i}", loop.time())
        while guards[0].account_failures("alice", loop.time()) < 6:
            await asyncio.sleep(0.01)
        assert guards[1].account_failures("alice", loop.time()) == 6
        while guards[0].account_failures("u69", loop.time()) < 1:
            await asyncio.sleep(0.01)
        assert contexts[1].counters["account_reports"] >= 1
        # A bad bus datagram is counted, never raised.
        contexts[0].receive(b"\x00junk")
        contexts[0].receive(encode(Forward(b"not sip", ("127.0.0.9", 1))))
        assert contexts[0].counters["bus_bad"] == 1
        assert contexts[1].counters["forwarded"] == 0 and contexts[0].counters["forwarded"] == 301
        for ctx in contexts:
            ctx.close()
        for transport in transports:
            await transport.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_port_in_use_is_refused_even_by_a_group_of_the_same_user() -> None:
    groups, listeners, port = sip_groups("127.0.0.1", 0, 2, True, 16)
    try:
        with pytest.raises(OSError):
            udp_groups("127.0.0.1", port, 2)
        with pytest.raises(OSError):
            tcp_groups("127.0.0.1", port, 2, 16)
    finally:
        for socks in (*groups, *listeners):
            for sock in socks:
                sock.close()
