"""Trunk host names: SipTransport's resolver, its cache and the family it picks.

``SipTransport.resolve`` runs getaddrinfo in the loop's executor and keeps
one address per name: IPv6 first on a node that serves IPv6, never a
family the node has no socket for. ``cached`` answers without a lookup
(the endpoint asks it for every trunk request, to choose the Via/Contact
family) and keeps giving an expired answer while it is looked up again
(serve-stale); one lookup per name is in flight however many ask.

The lookups are faked by replacing the loop's ``getaddrinfo`` (counted),
except in ``test_real_getaddrinfo_localhost``; the last test sends a
datagram to a name over real loopback sockets of both families.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from offhook.sip import aio
from offhook.sip.aio import SipTransport

V4 = (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.10", 0))
V6 = (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("2001:db8::10", 0, 0, 0))
LOOP6 = (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 0, 0, 0))
MAPPED = (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::ffff:192.0.2.11", 0, 0, 0))


class FakeDns:
    """A stand-in for ``loop.getaddrinfo``: answers per name, counts lookups."""

    def __init__(self, answers: dict[str, list[Any]], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.calls: list[str] = []

    async def __call__(self, host: str, port: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(host)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answers.get(host.lower())
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answer


def run(
    families: set[int],
    dns: FakeDns | None,
    body: Callable[[SipTransport], Awaitable[None]],
) -> None:
    async def main() -> None:
        transport = SipTransport(on_message=lambda *a: None, allow=lambda host: True)
        transport.families = frozenset(families)
        if dns is not None:
            transport.loop.getaddrinfo = dns  # type: ignore[method-assign]
        await body(transport)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("families", "answer", "picked"),
    [
        ({4, 6}, [V4, V6], "2001:db8::10"),  # dual-stack node: IPv6 first
        ({4, 6}, [V6, V4], "2001:db8::10"),
        ({4, 6}, [V4], "192.0.2.10"),  # no AAAA: IPv4
        ({4, 6}, [LOOP6], "::1"),  # only AAAA (::1)
        ({6}, [V4, V6], "2001:db8::10"),
        ({4}, [V6, V4], "192.0.2.10"),  # IPv4-only node: never IPv6
        ({4}, [MAPPED], "192.0.2.11"),  # a mapped answer is the IPv4 address
        ({4}, [V6], None),  # nothing this node can send to
        ({6}, [V4], None),  # IPv6-only node, A record only
    ],
)
def test_family_preference(families: set[int], answer: list[Any], picked: str | None) -> None:
    dns = FakeDns({"carrier.test": answer})

    async def body(t: SipTransport) -> None:
        assert await t.resolve("carrier.test") == picked
        assert t.cached("carrier.test") == picked
        assert dns.calls == ["carrier.test"]

    run(families, dns, body)


def test_cache_answers_without_a_lookup_case_insensitively() -> None:
    dns = FakeDns({"v6only.test": [LOOP6]})

    async def body(t: SipTransport) -> None:
        assert t.cached("v6only.test") is None  # nothing known yet, and no lookup started
        assert dns.calls == []
        assert await t.resolve("V6Only.Test") == "::1"
        assert await t.resolve("v6only.test") == "::1"
        assert t.cached("V6ONLY.TEST") == "::1"
        assert dns.calls == ["V6Only.Test"]

    run({4, 6}, dns, body)


def test_prefetch_fills_the_cache_in_the_background() -> None:
    dns = FakeDns({"v6only.test": [LOOP6]}, delay=0.01)

    async def body(t: SipTransport) -> None:
        t.prefetch("v6only.test")
        t.prefetch("v6only.test")  # one lookup in flight, not two
        assert t.cached("v6only.test") is None
        await asyncio.sleep(0.05)
        assert t.cached("v6only.test") == "::1"
        t.prefetch("v6only.test")  # fresh: nothing to do
        await asyncio.sleep(0)
        assert dns.calls == ["v6only.test"]

    run({4, 6}, dns, body)


def test_concurrent_resolves_share_one_lookup() -> None:
    dns = FakeDns({"carrier.test": [V6]}, delay=0.02)

    async def body(t: SipTransport) -> None:
        results = await asyncio.gather(*(t.resolve("carrier.test") for _ in range(20)))
        assert results == ["2001:db8::10"] * 20
        assert dns.calls == ["carrier.test"]

    run({4, 6}, dns, body)


def expire(t: SipTransport, name: str, ago: float = 1.0) -> None:
    host, _ = t._resolved[name]
    t._resolved[name] = (host, t.loop.time() - ago)


def test_expired_answer_is_served_while_it_is_looked_up_again() -> None:
    """Serve-stale: a trunk keeps its address (and Via family) across expiry."""
    dns = FakeDns({"carrier.test": [V6]}, delay=0.01)

    async def body(t: SipTransport) -> None:
        assert await t.resolve("carrier.test") == "2001:db8::10"
        dns.answers["carrier.test"] = [(*V6[:4], ("2001:db8::20", 0, 0, 0))]
        expire(t, "carrier.test")
        assert t.cached("carrier.test") == "2001:db8::10"  # stale, and a lookup started
        assert t.cached("carrier.test") == "2001:db8::10"  # still one lookup
        await asyncio.sleep(0.05)
        assert t.cached("carrier.test") == "2001:db8::20"
        assert dns.calls == ["carrier.test", "carrier.test"]

    run({4, 6}, dns, body)


def test_failed_lookup_keeps_the_stale_answer_for_a_while() -> None:
    dns = FakeDns({"carrier.test": [V6]})

    async def body(t: SipTransport) -> None:
        assert await t.resolve("carrier.test") == "2001:db8::10"
        del dns.answers["carrier.test"]  # the resolver fails now
        expire(t, "carrier.test")
        assert await t.resolve("carrier.test") is None  # a fresh answer is asked for
        assert t.cached("carrier.test") == "2001:db8::10"  # but the last one is kept
        expire(t, "carrier.test", ago=aio._STALE_MAX + 1)
        assert t.cached("carrier.test") is None  # an hour past expiry: forgotten

    run({4, 6}, dns, body)


def test_answer_of_a_family_no_longer_served_is_dropped() -> None:
    dns = FakeDns({"carrier.test": [V4]})

    async def body(t: SipTransport) -> None:
        assert await t.resolve("carrier.test") == "192.0.2.10"
        dns.answers["carrier.test"] = [V6]  # now AAAA only, on an IPv4-only node
        expire(t, "carrier.test")
        assert await t.resolve("carrier.test") is None
        assert t.cached("carrier.test") is None

    run({4}, dns, body)


def test_lookups_in_flight_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aio, "_MAX_RESOLVING", 3)
    dns = FakeDns({f"n{i}.test": [V6] for i in range(10)}, delay=0.05)

    async def body(t: SipTransport) -> None:
        for i in range(10):
            t.prefetch(f"n{i}.test")
        assert len(dns.calls) <= 3 and len(t._resolving) == 3
        assert await t.resolve("n9.test") is None  # over the bound: no lookup, no answer
        await asyncio.sleep(0.2)
        assert t._resolving == {}
        assert sorted(t._resolved) == ["n0.test", "n1.test", "n2.test"]
        assert await t.resolve("n9.test") == "2001:db8::10"  # room again

    run({4, 6}, dns, body)


def test_real_getaddrinfo_localhost() -> None:
    """The system resolver: ``localhost`` gives a loopback address of a served family."""
    known = {
        info[4][0]
        for info in socket.getaddrinfo("localhost", None, type=socket.SOCK_DGRAM)
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    }
    has_v6 = any(":" in h for h in known)

    async def body4(t: SipTransport) -> None:
        assert await t.resolve("localhost") == "127.0.0.1"

    async def body_dual(t: SipTransport) -> None:
        got = await t.resolve("localhost")
        assert got in known, (got, known)
        assert (":" in str(got)) == has_v6  # IPv6 first when the name has it

    run({4}, None, body4)
    run({4, 6}, None, body_dual)


def test_send_to_a_name_goes_to_its_ipv6_address() -> None:
    """Loop level, real sockets: a node on 127.0.0.1 and ::1 sends to a name with
    only an AAAA record (::1) from its IPv6 socket; with an A record too, still IPv6."""
    receivers = {
        fam: socket.socket(fam, socket.SOCK_DGRAM) for fam in (socket.AF_INET, socket.AF_INET6)
    }
    receivers[socket.AF_INET].bind(("127.0.0.1", 0))
    receivers[socket.AF_INET6].bind(("::1", receivers[socket.AF_INET].getsockname()[1]))
    port = receivers[socket.AF_INET].getsockname()[1]
    for r in receivers.values():
        r.setblocking(False)
    a_record = (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.1", 0))
    dns = FakeDns({"v6only.test": [LOOP6], "both.test": [a_record, LOOP6]})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        t = SipTransport(on_message=lambda *a: None, allow=lambda host: True)
        loop.getaddrinfo = dns  # type: ignore[method-assign]
        await t.start(["127.0.0.1", "::1"], 0, tcp=False)
        try:
            failed: list[str] = []
            for name, body in (("v6only.test", b"one"), ("both.test", b"two")):
                t.send(body, (name, port), "udp", lambda name=name: failed.append(name))
                data, src = await asyncio.wait_for(
                    loop.sock_recvfrom(receivers[socket.AF_INET6], 100), timeout=5
                )
                assert data == body and src[0] == "::1" and not failed
                assert t.cached(name) == "::1"
            with pytest.raises(BlockingIOError):
                receivers[socket.AF_INET].recvfrom(100)  # nothing went to the A record
        finally:
            await t.close()

    try:
        asyncio.run(main())
    finally:
        for r in receivers.values():
            r.close()


def test_a_closed_transport_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """After close() (a node stopping), what timers still send (a BYE, a retransmission)
    is dropped quietly: asyncio logged 'socket.send() raised exception.' for each."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    where = receiver.getsockname()

    async def main() -> None:
        t = SipTransport(on_message=lambda *a: None, allow=lambda host: True)
        await t.start(["127.0.0.1"], 0, tcp=False)
        t.send(b"before", where, "udp")
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.sock_recv(receiver, 100), timeout=5) == b"before"
        await t.close()
        for _ in range(10):
            t.send(b"after", where, "udp")
        await asyncio.sleep(0.05)

    try:
        with caplog.at_level(logging.WARNING):
            asyncio.run(main())
        with pytest.raises(BlockingIOError):
            receiver.recv(100)
    finally:
        receiver.close()
    assert not [r for r in caplog.records if "socket.send" in r.getMessage()]
