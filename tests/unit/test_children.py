"""children.ChildSupervisor: a child process started, probed, restarted, stopped.

The child here is a small Python program (not offhook): it listens on a
TCP port given on its command line and exits when its stdin closes, as
``offhook media`` and ``offhook web`` do with ``--exit-on-stdin-eof``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from offhook.children import ChildSupervisor, offhook_command, tcp_probe
from offhook.common.ready import READY_LINE
from support.ports import HOST, free_port

CHILD = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
sys.stdin.buffer.read()  # until the supervisor goes away
"""


def run(coro: Coroutine[Any, Any, None], timeout: float = 120.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


def test_a_killed_child_is_restarted_and_stop_ends_it() -> None:
    port = free_port()

    async def main() -> None:
        events: list[str] = []
        sup = ChildSupervisor(
            "test child",
            [sys.executable, "-c", CHILD, str(port)],
            tcp_probe(HOST, port),
            on_up=lambda: events.append("up"),
            on_down=lambda: events.append("down"),
            backoff=(0.05, 0.2),
            where=f"{HOST}:{port}",
        )
        try:
            await sup.start()
            await until(lambda: events == ["up"])
            first = sup.pid
            assert first is not None and sup.up and sup.starts == 1
            where = f"{HOST}:{port}"
            assert sup.status() == {"up": True, "pid": first, "starts": 1, "where": where}
            os.kill(first, signal.SIGKILL)
            await until(lambda: events == ["up", "down", "up"])
            assert sup.pid != first and sup.starts == 2
            # Its stdin closing (the node gone) ends a child by itself.
            proc = sup.process
            assert proc is not None and proc.stdin is not None
            proc.stdin.close()
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            await until(lambda: len(events) == 5 and sup.up)
        finally:
            last = sup.process
            await sup.stop()
        assert last is not None and last.returncode is not None
        assert not sup.up and events == ["up", "down", "up", "down", "up"]  # stop reports nothing

    run(main())


def test_a_child_that_never_serves_is_killed_and_retried() -> None:
    port = free_port()  # nothing will listen there

    async def main() -> None:
        ups: list[int] = []
        sup = ChildSupervisor(
            "silent child",
            [sys.executable, "-c", "import sys; sys.stdin.buffer.read()"],
            tcp_probe(HOST, port),
            on_up=lambda: ups.append(1),
            backoff=(0.05, 0.1),
            ready_timeout=0.5,
        )
        try:
            await sup.start()
            await until(lambda: sup.starts >= 3)
        finally:
            await sup.stop()
        assert ups == [] and not sup.up

    run(main())


ANNOUNCING = CHILD.replace(
    "s.listen()\n", "s.listen()\nfrom offhook.common.ready import announce_ready\n"
).replace("sys.stdin.buffer.read()", "announce_ready()\nprint('later')\nsys.stdin.buffer.read()")
BIND_FAILS = """
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    raise SystemExit(1)
sys.stdin.buffer.read()
"""


def test_a_port_held_by_another_program_does_not_pass_for_the_child() -> None:
    """The start check waits for the child's own word: an accepting port is not enough."""
    import socket

    async def main() -> None:
        squatter = socket.socket()
        squatter.bind((HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        ups: list[int] = []
        sup = ChildSupervisor(
            "child whose port is taken",
            [sys.executable, "-c", BIND_FAILS, str(port)],
            tcp_probe(HOST, port),  # accepts: the squatter listens
            on_up=lambda: ups.append(1),
            backoff=(0.05, 0.1),
            announces=True,
        )
        try:
            assert await tcp_probe(HOST, port)()
            await sup.start()
            await until(lambda: sup.starts >= 3)
        finally:
            await sup.stop()
            squatter.close()
        assert ups == [] and not sup.up

    run(main())


def test_an_announcing_child_is_up_and_its_later_output_goes_nowhere() -> None:
    port = free_port()
    assert READY_LINE.endswith(b"\n")

    async def main() -> None:
        ups: list[int] = []
        sup = ChildSupervisor(
            "announcing child",
            [sys.executable, "-c", ANNOUNCING, str(port)],
            tcp_probe(HOST, port),
            on_up=lambda: ups.append(1),
            backoff=(0.05, 0.1),
            announces=True,
        )
        try:
            await sup.start()
            await until(lambda: sup.up)
            proc = sup.process
            assert proc is not None and proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.read(), 30) == b""  # 'later' not here
            assert proc.returncode is None and ups == [1] and sup.starts == 1
        finally:
            await sup.stop()

    run(main())


def test_a_command_that_fails_is_retried_and_never_up() -> None:
    async def main() -> None:
        prepared: list[int] = []
        sup = ChildSupervisor(
            "failing child",
            lambda: [sys.executable, "-c", "raise SystemExit(3)"],
            tcp_probe(HOST, free_port()),
            prepare=lambda: prepared.append(1),
            backoff=(0.05, 0.1),
        )
        missing = ChildSupervisor(
            "missing program",
            ["/nonexistent/offhook-child"],
            tcp_probe(HOST, free_port()),
            backoff=(0.05, 0.1),
        )
        try:
            await sup.start()
            await missing.start()
            await until(lambda: sup.starts >= 3 and len(prepared) >= 3)
            await asyncio.sleep(0.3)  # the missing program is retried, never raises
            assert missing.starts == 0 and missing.pid is None
            assert sup.process is not None
            await until(lambda: sup.process is not None and sup.process.returncode == 3)
        finally:
            await sup.stop()
            await missing.stop()
        assert not sup.up

    run(main())


def test_offhook_commands_run_this_interpreter() -> None:
    assert offhook_command("web", "--config", "x.toml") == [
        sys.executable,
        "-m",
        "offhook",
        "web",
        "--config",
        "x.toml",
    ]
