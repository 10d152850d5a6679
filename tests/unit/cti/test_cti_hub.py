"""cti.hub: one stream from a node (a real ControlServer over a cti.journal.Journal), fanned out.

The node here is the real control endpoint serving a ``Journal``'s
streams on loopback, and the hub follows it with the real
``ris.event_client.EventStream``: events reach every sink in order, the
ring replays after an id or says it cannot, a node that goes away is
reconnected after the last id (nothing lost, nothing twice), a node that
restarted (new ids) gives every sink a gap, a slow sink costs the hub
nothing (it is offered synchronously), and an upstream overflow line makes
the hub reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from offhook.cti.hub import Hub, encode
from offhook.cti.journal import Journal
from offhook.net.guard import ListenerLimits
from offhook.ris.control import ControlServer, Streaming
from offhook.ris.control_codec import StreamStart
from offhook.ris.event_client import EventStream
from support.ports import HOST

RUN = 1_800_000_000_000_000
LIMITS = ListenerLimits(
    max_message=4096,
    idle_timeout=30.0,
    handshake_timeout=30.0,
    max_connections=16,
    max_connections_per_source=16,
    rate_per_source=1e6,
    rate_burst=1e6,
)
WAIT = 60.0


def event(n: int, kind: str = "line.state", **fields: Any) -> dict[str, Any]:
    return {"id": 0, "type": kind, "time": 1.0, "node": "n", "dn": str(n), **fields}


class Recorder:
    """A sink that keeps what it is offered."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.bodies: list[str] = []
        self.gaps = 0

    def offer(self, event: dict[str, Any], body: str) -> None:
        self.events.append(event)
        self.bodies.append(body)

    def gap(self) -> None:
        self.gaps += 1

    @property
    def ids(self) -> list[int]:
        return [e["id"] for e in self.events]


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


class Node:
    """A control endpoint streaming a journal, which can be stopped and restarted."""

    def __init__(self, first_id: int = RUN, capacity: int = 1000, queue_bytes: int = 1 << 20):
        self.journal = Journal(first_id, capacity=capacity, queue_bytes=queue_bytes)
        self.server: ControlServer | None = None
        self.port = 0
        self.afters: list[int | None] = []

    def _events(self, args: dict[str, Any]) -> Streaming:
        self.afters.append(args.get("after"))
        sub, start = self.journal.subscribe(args.get("after"))
        return Streaming(start._asdict(), sub)

    async def start(self, port: int = 0) -> int:
        self.server = ControlServer(
            {"events": self._events},
            allow=lambda host: host == HOST,
            reject=lambda reason, peer: None,
            limits=LIMITS,
        )
        self.port = await self.server.start(HOST, port)
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    def connect(self, after: int | None) -> EventStream:
        return EventStream(HOST, self.port, after=after, timeout=5.0)


def run(body: Callable[[Node, Hub], Awaitable[None]], **hub_args: Any) -> None:
    async def main() -> None:
        node = Node()
        await node.start()
        hub = Hub(node.connect, backoff_min=0.01, backoff_max=0.05, seed=1, **hub_args)
        hub.start()
        try:
            await asyncio.wait_for(body(node, hub), 2 * WAIT)
        finally:
            await hub.stop()
            await node.stop()

    asyncio.run(main())


def test_events_reach_every_sink_in_order_once_encoded() -> None:
    async def body(node: Node, hub: Hub) -> None:
        a, b = Recorder(), Recorder()
        hub.attach(a)
        hub.attach(b)
        hub.attach(a)  # twice is once
        await until(lambda: node.journal.subscribers == 1, "the hub follows the node")
        for n in range(5):
            node.journal.record(event(n))
        await until(lambda: len(a.events) == 5 and len(b.events) == 5, "five events")
        assert a.ids == b.ids == list(range(RUN, RUN + 5))
        assert a.bodies[0] == encode(a.events[0]) and a.bodies[0].startswith('{"id":')
        assert a.bodies[0] is b.bodies[0]  # encoded once for everybody
        assert hub.connected and hub.last_id == RUN + 4 and hub.stats.received == 5
        hub.detach(b)
        node.journal.record(event(5))
        await until(lambda: len(a.events) == 6, "the sixth")
        assert len(b.events) == 5

    run(body)


def test_the_ring_replays_after_an_id_or_says_it_cannot() -> None:
    async def body(node: Node, hub: Hub) -> None:
        await until(lambda: hub.connected, "following")
        assert hub.replay(RUN - 1) == []  # nothing yet, and nothing missed
        for n in range(8):
            node.journal.record(event(n))
        await until(lambda: hub.last_id == RUN + 7, "eight events")
        assert hub.ring_size == 4
        assert [e["id"] for e, _ in hub.replay(RUN + 5) or []] == [RUN + 6, RUN + 7]
        assert [e["id"] for e, _ in hub.replay(RUN + 3) or []] == [
            RUN + 4,
            RUN + 5,
            RUN + 6,
            RUN + 7,
        ]
        assert hub.replay(RUN + 7) == []
        assert hub.replay(RUN + 2) is None  # RUN + 3 left the ring
        assert hub.replay(RUN + 8) is None  # from the future (another run)
        assert hub.replay(0) is None

    run(body, replay=4)


def test_a_node_that_goes_away_is_followed_again_after_the_last_id() -> None:
    async def body(node: Node, hub: Hub) -> None:
        sink = Recorder()
        hub.attach(sink)
        await until(lambda: node.journal.subscribers == 1, "following")
        node.journal.record(event(0))
        await until(lambda: len(sink.events) == 1, "one")
        port = node.port
        await node.stop()  # the hub's stream ends; it retries with back-off
        await until(lambda: not hub.connected, "disconnected")
        for n in range(1, 4):
            node.journal.record(event(n))  # while the hub is away
        await node.start(port)
        await until(lambda: len(sink.events) == 4, "the missed three, replayed")
        assert sink.ids == list(range(RUN, RUN + 4))
        assert node.afters[0] is None and node.afters[-1] == RUN
        assert sink.gaps == 0 and hub.stats.connects >= 2 and hub.stats.failures >= 1
        node.journal.record(event(4))
        await until(lambda: len(sink.events) == 5, "live again")
        assert hub.replay(RUN) is not None  # continuous across the reconnect

    run(body)


def test_a_restarted_node_cuts_the_ring_and_tells_every_sink() -> None:
    async def main() -> None:
        old = Node(RUN)
        port = await old.start()
        nodes = [old]  # the node at the address: the old process, then the new one
        hub = Hub(
            lambda after: nodes[-1].connect(after), backoff_min=0.01, backoff_max=0.05, seed=2
        )
        sink = Recorder()
        hub.attach(sink)
        hub.start()
        try:
            await until(lambda: old.journal.subscribers == 1, "following")
            old.journal.record(event(0))
            await until(lambda: len(sink.events) == 1, "one")
            await old.stop()
            new = Node(RUN + 1_000_000)  # a later run: its ids start higher
            nodes.append(new)
            await new.start(port)
            await until(lambda: sink.gaps == 1, "the sink told to resync")
            assert hub.stats.resyncs == 1 and hub.ring_size == 0
            assert hub.replay(RUN) is None  # an id of the old run
            new.journal.record(event(1))
            await until(lambda: len(sink.events) == 2, "the new run's event")
            assert sink.ids[-1] == RUN + 1_000_000
            await new.stop()
        finally:
            await hub.stop()

    asyncio.run(main())


def test_a_sink_that_never_drains_costs_the_hub_nothing() -> None:
    class Stuck:
        """Never does anything with what it is offered (a client that never reads)."""

        offered = 0

        def offer(self, event: dict[str, Any], body: str) -> None:
            Stuck.offered += 1

        def gap(self) -> None:
            pass

    async def body(node: Node, hub: Hub) -> None:
        live = Recorder()
        hub.attach(Stuck())
        hub.attach(live)
        await until(lambda: node.journal.subscribers == 1, "following")
        for n in range(2000):
            node.journal.record(event(n))
        await until(lambda: len(live.events) == 2000, "all 2000 to the live sink")
        assert Stuck.offered == 2000 and hub.ring_size == 100

    run(body, replay=100)


def test_an_upstream_overflow_makes_the_hub_reconnect_after_its_last_id() -> None:
    class Script:
        """An upstream that says overflow once, then streams normally."""

        def __init__(self) -> None:
            self.afters: list[int | None] = []

        @asynccontextmanager
        async def connect(self, after: int | None) -> AsyncIterator[Any]:
            self.afters.append(after)
            first = len(self.afters) == 1
            start = StreamStart(RUN, RUN - 1 if first else RUN, False)

            class Stream:
                def __init__(self) -> None:
                    self.start = start

                async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
                    if first:
                        yield {"id": RUN, "type": "line.state"}
                        yield {"type": "overflow", "reason": "behind"}
                        yield {"id": RUN + 5, "type": "line.state"}  # never read
                    else:
                        yield {"id": RUN, "type": "line.state"}  # replayed: seen already
                        yield {"id": RUN + 1, "type": "line.state"}
                        await asyncio.Event().wait()

            yield Stream()

    async def main() -> None:
        script = Script()
        hub = Hub(script.connect, backoff_min=0.01, backoff_max=0.05, seed=3)
        sink = Recorder()
        hub.attach(sink)
        hub.start()
        try:
            await until(lambda: len(sink.events) == 2, "two events")
            assert sink.ids == [RUN, RUN + 1]
            assert script.afters[:2] == [None, RUN]
            assert hub.stats.upstream_overflows == 1 and sink.gaps == 0
        finally:
            await hub.stop()

    asyncio.run(main())


def test_a_stream_control_line_or_a_repeated_id_is_not_an_event() -> None:
    hub = Hub(Node().connect)
    sink = Recorder()
    hub.attach(sink)
    assert hub.feed([{"id": 5, "type": "a"}, {"id": 5, "type": "a"}, {"id": 4}]) == 1
    assert hub.feed([{"type": "overflow"}, {"id": True}, {"id": "6"}, {"id": 6}]) == 1
    assert sink.ids == [5, 6]
    assert hub.replay(5) is not None and hub.replay(3) is None
