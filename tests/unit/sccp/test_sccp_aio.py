"""The asyncio SCCP listener on loopback, driven by the test phone simulator.

A recording PhoneHandler stands in for the call endpoint. Covered: the whole
7960 registration, the location binding and the link, re-registration from a
new connection, unknown devices, register and keepalive timeouts, bad frames
(huge length, truncated body, unknown id, garbage) closing only their own
connection, half-closed sockets, the allow-list and the per-source cap, the
handler's timer and a handler that raises, auto-registration. IPv6: a
listener on a dual-stack ``"::"`` and on a list of addresses, one port, with
IPv4 peers in their plain form (bindings, the link, the allow-list, the
per-source tables).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from offhook.common.location import MemoryLocationStore
from offhook.net.acl import AllowList
from offhook.net.counters import RejectionCounters
from offhook.sccp import device as device_module
from offhook.sccp.aio import SccpLimits, SccpListener
from offhook.sccp.autoreg import AutoRegistrar
from offhook.sccp.device import DeviceProfile
from offhook.sccp.link import PhoneLink
from offhook.sccp.messages import (
    ButtonTemplate,
    Message,
    OffHook,
    RegisterAck,
    SetLamp,
    Unknown,
)
from support.sccp_phone import PhoneRejected, SccpPhone

HOST = "127.0.0.1"
CAROL = DeviceProfile(
    "SEP001122334455",
    "7960",
    lines=(("1003", "Carol"), ("1004", "Carol 2")),
    speed_dials=(("1001", "Alice"), ("1002", "Bob")),
)
DAVE = DeviceProfile("SEP00AABBCCDDEE", "7940", lines=(("1005", "Dave"),))
PROFILES = {p.name: p for p in (CAROL, DAVE)}


@dataclass
class Recorder:
    """A PhoneHandler that records what the adapter tells it."""

    events: list[tuple[str, str, Any]] = field(default_factory=list)
    links: dict[str, PhoneLink] = field(default_factory=dict)
    timer: float | None = None
    fired: list[float] = field(default_factory=list)
    raise_on_message: bool = False

    def attach(self, link: PhoneLink, now: float) -> None:
        self.events.append(("attach", link.name, link))
        self.links[link.name] = link

    def detach(self, link: PhoneLink, reason: str, now: float) -> None:
        self.events.append(("detach", link.name, reason))
        if self.links.get(link.name) is link:
            del self.links[link.name]

    def on_message(self, link: PhoneLink, msg: Message, now: float) -> None:
        self.events.append(("message", link.name, msg))
        if self.raise_on_message:
            raise RuntimeError("handler bug")
        if isinstance(msg, OffHook):
            self.timer = now + 0.05

    def next_timer(self) -> float | None:
        return self.timer

    def handle_timer(self, now: float) -> None:
        if self.timer is not None and now >= self.timer:
            self.fired.append(now)
            self.timer = None

    def kinds(self) -> list[tuple[str, str]]:
        return [(kind, name) for kind, name, _ in self.events]


@dataclass
class Node:
    listener: SccpListener
    handler: Recorder
    locations: MemoryLocationStore
    counters: RejectionCounters

    @property
    def port(self) -> int:
        return self.listener.local[1]

    def rejected(self, reason: str) -> int:
        return self.counters.snapshot().get("sccp", {}).get(reason, 0)


@contextlib.asynccontextmanager
async def node(
    *,
    listen: str | list[str] = HOST,
    allow: list[str] | None = None,
    auto: AutoRegistrar | None = None,
    **limits: Any,
) -> AsyncIterator[Node]:
    handler = Recorder()
    locations = MemoryLocationStore()
    counters = RejectionCounters()
    listener = SccpListener(
        handler,
        PROFILES.get,
        locations,
        AllowList(allow or ["127.0.0.0/8"]).allows,
        reject=lambda reason, peer: counters.increment("sccp", reason),
        limits=SccpLimits(**limits),
        auto_register=auto,
        node="test-node",
    )
    await listener.start(listen, 0)
    try:
        yield Node(listener, handler, locations, counters)
    finally:
        await listener.close()


def run(body: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(main())


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def raw_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 3.0) -> bool:
    """True when the server closed the connection (EOF or reset) within ``timeout``."""
    try:
        data = await asyncio.wait_for(reader.read(65536), timeout)
        while data:
            data = await asyncio.wait_for(reader.read(65536), timeout)
    except (ConnectionError, OSError):
        return True
    return True


def test_registration_binding_and_link() -> None:
    async def body() -> None:
        async with node() as n, SccpPhone(CAROL.name, n.port) as phone:
            ack = await phone.register()
            assert isinstance(ack, RegisterAck)
            assert ack.keep_alive_interval == 30
            template = next(m for m in phone.received if isinstance(m, ButtonTemplate))
            assert template.buttons[:2] == ((1, 9), (2, 9))
            assert {n: s.line_dir_number for n, s in phone.lines.items()} == {1: "1003", 2: "1004"}
            assert phone.lines[1].line_display_name == "Carol"
            dials = {k: (s.speed_dial_dir_number, s.speed_dial_display_name) for k, s in
                     phone.speed_dials.items() if s.speed_dial_dir_number}  # fmt: skip
            assert dials == {1: ("1001", "Alice"), 2: ("1002", "Bob")}
            assert phone.scapy_mismatches == []
            await until(lambda: CAROL.name in n.handler.links)
            assert n.listener.registered == 1
            [binding] = n.locations.bindings(CAROL.name, 0.0)
            assert binding.protocol == "sccp"
            assert binding.contact == f"sccp:{CAROL.name}"
            assert binding.transport == "tcp"
            assert binding.source == phone.local_address
            assert binding.node == "test-node"
            link = n.handler.links[CAROL.name]
            assert link.profile == CAROL
            assert link.version == 0
            assert link.address == phone.local_address
            assert [c.payload_capability for c in link.capabilities][:2] == [4, 2]
            # The link sends to the phone, in its header version.
            link.send(SetLamp(9, 1, 2))
            lamp = await phone.wait_for(SetLamp)
            assert (lamp.stimulus, lamp.stimulus_instance, lamp.lamp_mode) == (9, 1, 2)
            # Call-side messages go to the handler; registration ones do not.
            mark = len(n.handler.events)
            phone.off_hook(1)
            await phone.keepalive()
            await until(lambda: len(n.handler.events) > mark)
            assert [(k, type(m).__name__) for k, _, m in n.handler.events[mark:]] == [
                ("message", "OffHook")
            ]
            # The handler's timer runs (armed by the OffHook above).
            await until(lambda: bool(n.handler.fired))
            await phone.unregister()
            await until(lambda: n.listener.registered == 0)
            assert n.handler.kinds()[-1] == ("detach", CAROL.name)
            assert n.handler.events[-1][2] == "unregister"
            assert n.locations.bindings(CAROL.name, 0.0) == []
            await asyncio.wait_for(phone.closed.wait(), 3)

    run(body)


def test_header_version_0x11_phone() -> None:
    async def body() -> None:
        async with node() as n, SccpPhone(DAVE.name, n.port, version=0x11, model="7941") as p:
            await p.register()
            assert all(frame[4:8] == struct.pack("<I", 0x11) for frame in p.received_raw)
            assert p.lines[1].line_dir_number == "1005"
            await until(lambda: DAVE.name in n.handler.links)
            assert n.handler.links[DAVE.name].version == 0x11

    run(body)


def test_reregistration_from_a_new_connection_replaces_the_old() -> None:
    async def body() -> None:
        async with node() as n:
            old = SccpPhone(CAROL.name, n.port)
            new = SccpPhone(CAROL.name, n.port)
            try:
                await old.register()
                await until(lambda: CAROL.name in n.handler.links)
                old_link = n.handler.links[CAROL.name]
                await new.register()
                await asyncio.wait_for(old.closed.wait(), 3)
                assert n.handler.kinds() == [
                    ("attach", CAROL.name),
                    ("detach", CAROL.name),
                    ("attach", CAROL.name),
                ]
                assert n.handler.events[1][2] == "replaced"
                assert n.handler.links[CAROL.name] is not old_link
                assert n.listener.registered == 1
                [binding] = n.locations.bindings(CAROL.name, 0.0)
                assert binding.source == new.local_address
                await new.keepalive()
                assert n.handler.kinds()[-1] == ("attach", CAROL.name)
            finally:
                await old.close()
                await new.close()

    run(body)


def test_unknown_device_rejected_and_closed() -> None:
    async def body() -> None:
        async with node() as n, SccpPhone("SEP0000DEADBEEF", n.port) as phone:
            with pytest.raises(PhoneRejected, match="SEP0000DEADBEEF"):
                await phone.register()
            await asyncio.wait_for(phone.closed.wait(), 3)
            assert n.handler.events == []
            assert n.rejected("unknown-device") == 1
            await until(lambda: not n.listener.connections)

    run(body)


def test_register_timeout_closes_a_silent_connection() -> None:
    async def body() -> None:
        async with node(register_timeout=0.2) as n:
            reader, writer = await raw_connection(n.port)
            assert await closed_by_peer(reader)
            writer.close()
            assert n.rejected("register-timeout") == 1
            await until(lambda: not n.listener.connections)

    run(body)


def test_keepalive_timeout_unregisters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_module, "KEEPALIVE_GRACE", 0.2)

    async def body() -> None:
        async with node(keepalive=1) as n:
            quiet = SccpPhone(CAROL.name, n.port, auto_keepalive=False)
            alive = SccpPhone(DAVE.name, n.port)  # keepalives every second
            try:
                await quiet.register()
                await alive.register()
                await asyncio.wait_for(quiet.closed.wait(), 5)
                assert ("detach", CAROL.name) in n.handler.kinds()
                reason = next(e[2] for e in n.handler.events if e[:2] == ("detach", CAROL.name))
                assert reason == "keepalive timeout"
                assert n.rejected("keepalive-timeout") == 1
                assert n.locations.bindings(CAROL.name, 0.0) == []
                assert n.listener.registered == 1
                assert not alive.closed.is_set()
                await alive.keepalive()
            finally:
                await quiet.close()
                await alive.close()

    run(body)


BAD_INPUTS = {
    "length 0xFFFFFFFF": struct.pack("<III", 0xFFFFFFFF, 0, 1),
    "truncated body": struct.pack("<III", 12, 0, 1) + b"SEP0\0\0\0\0",
    "unknown id": struct.pack("<III", 4, 0, 0x7777),
    "garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "length below 4": struct.pack("<II", 2, 0) + b"\0\0",
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_frames_close_only_their_connection(name: str) -> None:
    async def body() -> None:
        async with node() as n, SccpPhone(CAROL.name, n.port) as phone:
            await phone.register()
            await until(lambda: n.listener.registered == 1)
            reader, writer = await raw_connection(n.port)
            writer.write(BAD_INPUTS[name])
            assert await closed_by_peer(reader)
            writer.close()
            expected = "unknown-message" if name == "unknown id" else "framing"
            assert n.rejected(expected) == 1
            await phone.keepalive()
            assert n.listener.registered == 1
            assert not phone.closed.is_set()
            await until(lambda: len(n.listener.connections) == 1)

    run(body)


def test_unknown_id_from_a_registered_phone_is_dropped() -> None:
    async def body() -> None:
        async with node() as n, SccpPhone(CAROL.name, n.port) as phone:
            await phone.register()
            phone.send(Unknown(0x7777, b"\1\2\3\4"))
            phone.send(Unknown(0x0030, b""))  # UpdateCapabilities: known id, no type here
            await phone.keepalive()
            assert n.rejected("unknown-message") == 1
            assert n.listener.registered == 1
            msgs = [m for kind, _, m in n.handler.events if kind == "message"]
            assert [m.msg_id for m in msgs] == [0x0030]

    run(body)


def test_half_closed_connections_are_closed() -> None:
    async def body() -> None:
        async with node() as n, SccpPhone(CAROL.name, n.port) as phone:
            await phone.register()
            await until(lambda: n.listener.registered == 1)
            assert phone._writer is not None
            phone._writer.write_eof()
            await asyncio.wait_for(phone.closed.wait(), 3)
            await until(lambda: n.listener.registered == 0)
            assert n.handler.events[-1][:2] == ("detach", CAROL.name)
            assert n.locations.all(0.0) == []
            # An unregistered connection half-closing is closed as well.
            reader, writer = await raw_connection(n.port)
            writer.write_eof()
            assert await closed_by_peer(reader)
            writer.close()
            await until(lambda: not n.listener.connections)

    run(body)


def test_acl_refuses_before_reading() -> None:
    async def body() -> None:
        async with node(allow=["192.0.2.0/24"]) as n:
            reader, writer = await raw_connection(n.port)
            with contextlib.suppress(ConnectionError):
                writer.write(b"\0" * 12)
            assert await closed_by_peer(reader)
            writer.close()
            assert n.rejected("acl") == 1
            assert not n.listener.connections
            assert n.listener.limiter.sources == 0

    run(body)


def test_per_source_connection_cap() -> None:
    async def body() -> None:
        async with node(max_connections_per_source=2) as n, SccpPhone(CAROL.name, n.port) as p:
            await p.register()
            _r1, w1 = await raw_connection(n.port)
            r2, w2 = await raw_connection(n.port)
            assert await closed_by_peer(r2)
            assert n.rejected("max-connections-per-source") == 1
            await p.keepalive()
            assert n.listener.limiter.count(HOST) == 2
            for w in (w1, w2):
                w.close()
            await until(lambda: n.listener.limiter.count(HOST) == 1)
            # Room again: another connection is admitted.
            _r3, w3 = await raw_connection(n.port)
            await until(lambda: n.listener.limiter.count(HOST) == 2)
            w3.close()

    run(body)


def test_a_raising_handler_does_not_break_the_phone() -> None:
    async def body() -> None:
        async with node() as n, SccpPhone(CAROL.name, n.port) as phone:
            await phone.register()
            n.handler.raise_on_message = True
            phone.off_hook(1)
            await phone.keepalive()
            assert n.rejected("internal-error") == 1
            assert n.listener.registered == 1

    run(body)


def test_auto_registration_hands_out_free_dns() -> None:
    auto = AutoRegistrar("2000-2001", taken=lambda dn: dn == "2000")

    async def body() -> None:
        async with node(auto=auto) as n:
            first = SccpPhone("SEP0000000000A1", n.port, model="7940")
            second = SccpPhone("SEP0000000000A2", n.port)
            odd = SccpPhone("notasepname", n.port)
            try:
                await first.register()
                assert first.lines[1].line_dir_number == "2001"
                assert len(first.buttons) == 2  # the 7940 layout from its device type
                with pytest.raises(PhoneRejected):
                    await second.register()  # the range is full
                with pytest.raises(PhoneRejected):
                    await odd.register()
                await until(lambda: "SEP0000000000A1" in n.handler.links)
                assert n.handler.links["SEP0000000000A1"].profile.model == "7940"
                # A known device is not auto-registered.
                async with SccpPhone(CAROL.name, n.port) as carol:
                    await carol.register()
                    assert carol.lines[1].line_dir_number == "1003"
            finally:
                for p in (first, second, odd):
                    await p.close()

    run(body)


def test_shutdown_detaches_every_phone() -> None:
    async def body() -> None:
        n_ref: list[Node] = []
        async with node() as n, SccpPhone(CAROL.name, n.port) as phone:
            n_ref.append(n)
            await phone.register()
            await until(lambda: n.listener.registered == 1)
        n = n_ref[0]
        assert n.handler.events[-1][:2] == ("detach", CAROL.name)
        assert n.handler.events[-1][2] == "shutdown"
        assert n.locations.all(0.0) == []

    run(body)


def test_connection_refused_leaves_no_socket_state() -> None:
    # A plain socket check that a refused peer sees its connection end at once.
    async def body() -> None:
        async with node(allow=["192.0.2.0/24"]) as n:
            loop = asyncio.get_running_loop()
            s = socket.socket()
            s.setblocking(False)
            try:
                await loop.sock_connect(s, (HOST, n.port))
                data = await asyncio.wait_for(loop.sock_recv(s, 10), 3)
                assert data == b""
            except ConnectionError:
                pass
            finally:
                s.close()

    run(body)


HOST6 = "::1"


def test_dual_stack_listener_keeps_ipv4_peers_plain() -> None:
    async def body() -> None:
        async with (
            node(listen="::", allow=["127.0.0.0/8", "::1/128"]) as n,
            SccpPhone(CAROL.name, n.port, HOST) as carol,
            SccpPhone(DAVE.name, n.port, HOST6, model="7940") as dave,
        ):
            assert n.listener.local == ("::", n.port)
            await carol.register()
            await dave.register()
            await until(lambda: {CAROL.name, DAVE.name} <= set(n.handler.links))
            [c] = n.locations.bindings(CAROL.name, 0.0)
            [d] = n.locations.bindings(DAVE.name, 0.0)
            assert c.source == carol.local_address and c.source[0] == HOST  # not ::ffff:
            assert d.source == dave.local_address and d.source[0] == HOST6
            assert n.handler.links[CAROL.name].address[0] == HOST
            # The per-source tables are keyed by the plain address.
            assert n.listener.limiter.count(HOST) == 1
            assert n.listener.limiter.count(HOST6) == 1
            assert n.listener.limiter.count("::ffff:127.0.0.1") == 0

    run(body)


@pytest.mark.parametrize(
    ("allow", "admitted", "refused"),
    [(["::1/128"], HOST6, HOST), (["127.0.0.0/8"], HOST, HOST6)],
)
def test_allow_list_on_a_dual_stack_listener(allow: list[str], admitted: str, refused: str) -> None:
    """An IPv4 entry admits a mapped IPv4 peer and refuses IPv6; an IPv6 entry the reverse."""

    async def body() -> None:
        async with node(listen="::", allow=allow) as n:
            reader, writer = await asyncio.open_connection(refused, n.port)
            with contextlib.suppress(ConnectionError):
                writer.write(b"\0" * 12)
            assert await closed_by_peer(reader)
            writer.close()
            assert n.rejected("acl") == 1
            assert n.listener.limiter.sources == 0 and not n.listener.guard.rates
            async with SccpPhone(CAROL.name, n.port, admitted) as phone:
                await phone.register()
                [binding] = n.locations.bindings(CAROL.name, 0.0)
                assert binding.source == phone.local_address
            assert n.rejected("acl") == 1

    run(body)


def test_listen_list_opens_every_address_on_one_port() -> None:
    async def body() -> None:
        async with node(listen=[HOST, HOST6], allow=["127.0.0.0/8", "::1/128"]) as n:
            assert n.listener.local == (HOST, n.port)
            bound = sorted(
                (sock.family, sock.getsockname()[1])
                for server in n.listener.servers
                for sock in server.sockets
            )
            assert bound == [(socket.AF_INET, n.port), (socket.AF_INET6, n.port)]
            for name, host in ((CAROL.name, HOST), (DAVE.name, HOST6)):
                async with SccpPhone(name, n.port, host, model="7940") as phone:
                    await phone.register()
                    await phone.unregister()
        # An address that cannot be bound fails the start, naming nothing half-open.
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as busy:
            busy.bind((HOST6, 0))
            busy.listen()
            port = busy.getsockname()[1]
            listener = SccpListener(Recorder(), PROFILES.get, MemoryLocationStore(), bool)
            with pytest.raises(OSError):
                await listener.start([HOST, HOST6], port)
            assert listener.servers == []

    run(body)
