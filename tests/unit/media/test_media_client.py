"""media.client: the node's non-blocking control client against real media servers.

In-process servers (``support.mediaserver.media_server``) for the requests
and refusals; ``offhook media`` child processes for what only a process can
do: die (SIGKILL: every handle lost with cause 38) and hang (SIGSTOP: replies
time out, the handle is lost with cause 41).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from offhook.media.client import MediaClient
from support.audio import dominant_frequencies
from support.mediaserver import HOST, Phone, end_process, media_server, spawn_media

NO_SERVER = "unix:/nonexistent/offhook-media.sock"


def run(coro: Coroutine[Any, Any, None], timeout: float = 90.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


class Recorder:
    """The node's side: what the client reported, in order."""

    def __init__(self) -> None:
        self.lost: list[tuple[str, int]] = []
        self.events: list[dict[str, Any]] = []
        self.states: list[bool] = []
        self.replies: dict[str, Any] = {}

    def client(self, address: str, **kwargs: Any) -> MediaClient:
        return MediaClient(
            address,
            lambda handle, cause: self.lost.append((handle, cause)),
            self.events.append,
            on_state=self.states.append,
            **kwargs,
        )

    def reply(self, name: str) -> Any:
        return lambda value: self.replies.__setitem__(name, value)

    async def wait(self, check: Any, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not check():
            assert loop.time() < end, (self.lost, self.replies, self.states)
            await asyncio.sleep(0.01)


def test_requests_replies_and_events(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            node = Recorder()
            client = node.client(media.address)
            await client.start()
            assert await client.wait_connected(10)
            phone = await Phone.open()
            client.open("call-1.a", 4, node.reply("open"))
            assert "open" not in node.replies  # never answered from inside the call
            await node.wait(lambda: "open" in node.replies)
            address, port = node.replies["open"]
            assert address == HOST and port % 2 == 0
            client.connect("call-1.a", HOST, phone.port, "PCMU", 0, 101, "sendrecv")
            client.play("call-1.a", "tone:dial")
            await phone.wait_packets(20)
            assert dominant_frequencies(phone.audio(), count=2) == [
                pytest.approx(350, abs=4),
                pytest.approx(440, abs=4),
            ]
            client.dtmf("call-1.a", "7")
            client.join("call-1.a", "conf", node.reply("join"))
            client.stats(node.reply("stats"))
            await node.wait(lambda: "stats" in node.replies)
            assert node.replies["join"]["parties"] == 1
            assert node.replies["stats"]["streams"] == 1
            client.release("call-1.a")
            client.stats(node.reply("stats2"))
            await node.wait(lambda: "stats2" in node.replies)
            assert node.replies["stats2"]["streams"] == 0
            assert node.lost == [] and node.states == [True]
            assert client.handles == frozenset()
            await client.stop()
            phone.close()

    run(main())


def test_a_refusal_loses_the_handle_with_cause_47(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path, max_streams=1) as media:
            node = Recorder()
            client = node.client(media.address)
            await client.start()
            assert await client.wait_connected(10)
            client.open("a", 4, node.reply("a"))
            client.open("b", 4, node.reply("b"))
            await node.wait(lambda: "a" in node.replies and "b" in node.replies)
            assert node.replies["a"] is not None and node.replies["b"] is None
            assert node.lost == [("b", 47)]
            client.play("a", "announce:no-such-prompt")  # refused: the handle goes too
            await node.wait(lambda: len(node.lost) == 2)
            assert node.lost[1] == ("a", 47)
            await node.wait(lambda: media.server.streams == 0)  # released on the server
            client.play("a", "tone:busy")  # no longer open: dropped, not reported again
            await asyncio.sleep(0.05)
            assert len(node.lost) == 2 and client.counters["not_open"] == 1
            await client.stop()

    run(main())


def test_requests_while_disconnected_fail_at_once() -> None:
    async def main() -> None:
        node = Recorder()
        client = node.client(NO_SERVER)
        await client.start()
        client.open("h", 4, node.reply("open"))
        client.stats(node.reply("stats"))
        client.sources([("jazz", "/nowhere/jazz.wav")], node.reply("sources"))
        assert node.lost == [] and node.replies == {}
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert node.lost == [("h", 38)]
        assert node.replies == {"open": None, "stats": None, "sources": None}
        assert not client.connected and client.handles == frozenset()
        await client.stop()

    run(main())


def test_the_media_server_dying_loses_every_handle_with_cause_38(tmp_path: Path) -> None:
    async def main() -> None:
        proc, address = await spawn_media(tmp_path)
        try:
            node = Recorder()
            client = node.client(address, backoff=(0.05, 0.2))
            await client.start()
            assert await client.wait_connected(10)
            for handle in ("x", "y"):
                client.open(handle, 4, node.reply(handle))
            await node.wait(lambda: node.replies.get("x") and node.replies.get("y"))
            proc.kill()
            await proc.wait()
            await node.wait(lambda: len(node.lost) == 2)
            assert sorted(node.lost) == [("x", 38), ("y", 38)]
            assert node.states == [True, False]
            client.open("z", 4, node.reply("z"))
            await node.wait(lambda: "z" in node.replies)
            assert node.replies["z"] is None and node.lost[-1] == ("z", 38)
            # A new media server on the same address: the client comes back by itself.
            proc, _ = await spawn_media(tmp_path)
            await node.wait(lambda: node.states == [True, False, True])
            client.open("w", 4, node.reply("w"))
            await node.wait(lambda: node.replies.get("w"))
            await client.stop()
        finally:
            await end_process(proc)

    run(main())


def test_no_reply_in_time_loses_the_handle_with_cause_41(tmp_path: Path) -> None:
    async def main() -> None:
        proc, address = await spawn_media(tmp_path)
        try:
            node = Recorder()
            client = node.client(address, ping_interval=600)
            await client.start()
            assert await client.wait_connected(10)
            client.open("a", 4, node.reply("a"))
            client.open("b", 4, node.reply("b"))
            await node.wait(lambda: node.replies.get("a") and node.replies.get("b"))
            os.kill(proc.pid, signal.SIGSTOP)  # hung: nothing is answered
            client.play("a", "tone:busy")
            client.open("c", 4, node.reply("c"))
            await node.wait(lambda: len(node.lost) == 2)
            assert sorted(node.lost) == [("a", 41), ("c", 41)]
            assert node.replies["c"] is None
            assert client.counters["timeouts"] == 2
            assert client.handles == frozenset({"b"})  # untouched by the others' timeouts
            os.kill(proc.pid, signal.SIGCONT)
            # The late requests are carried out, then released by the client.
            client.stats(node.reply("stats"))
            await node.wait(lambda: "stats" in node.replies)
            assert node.replies["stats"]["streams"] == 1
            await client.stop()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            await end_process(proc)

    run(main())
