"""media.supervisor: offhook serve's media server child, restarted when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from offhook.config import load_settings
from offhook.media.client import MediaClient
from offhook.media.supervisor import MediaSupervisor
from support.mediaserver import write_config


def run(coro: Coroutine[Any, Any, None], timeout: float = 120.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def until(check: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


def test_a_killed_media_server_is_restarted(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config, env={})

    async def main() -> None:
        ups: list[str] = []
        downs: list[int] = []
        sup = MediaSupervisor(
            settings, config, ups.append, lambda: downs.append(1), backoff=(0.1, 0.5)
        )
        address = sup.control_address
        assert address.startswith("unix:") and "offhook-media-" in address
        private = Path(address.removeprefix("unix:")).parent
        assert private.stat().st_mode & 0o777 == 0o700
        lost: list[tuple[str, int]] = []
        states: list[bool] = []
        client = MediaClient(
            address,
            lambda h, c: lost.append((h, c)),
            lambda e: None,
            on_state=states.append,
            backoff=(0.05, 0.2),
        )
        try:
            await sup.start()
            await until(lambda: ups == [address])
            assert sup.up and sup.starts == 1
            first = sup.pid
            assert first is not None
            await client.start()
            assert await client.wait_connected(10)
            opened: list[Any] = []
            client.open("held", 4, opened.append)
            await until(lambda: opened != [])
            assert opened[0] is not None

            os.kill(first, signal.SIGKILL)
            await until(lambda: downs == [1] and len(ups) == 2)
            assert sup.pid != first and sup.starts == 2
            await until(lambda: lost == [("held", 38)] and states == [True, False, True])

            # A child whose parent is gone (its stdin closes) stops by itself, cleanly.
            proc = sup.process
            assert proc is not None and proc.stdin is not None
            proc.stdin.close()
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            await until(lambda: downs == [1, 1] and len(ups) == 3)
        finally:
            await client.stop()
            last = sup.process
            await sup.stop()
        assert last is not None and last.returncode == 0  # SIGTERM: a clean exit
        assert not private.exists()
        assert len(downs) == 2  # stop() reports nothing

    run(main())


def test_an_explicit_control_address_is_used(tmp_path: Path) -> None:
    sock = tmp_path / "m.sock"
    config = write_config(tmp_path, control=f"unix:{sock}")
    settings = load_settings(config, env={})
    sup = MediaSupervisor(settings, config, lambda a: None, lambda: None)
    assert sup.control_address == f"unix:{sock}"
    assert sup.command()[1:5] == ["-m", "offhook", "media", "--control"]
    assert "--config" in sup.command() and "--exit-on-stdin-eof" in sup.command()
