"""``offhook serve``'s media server: a child process, started, watched and restarted.

``MediaSupervisor`` runs ``python -m offhook media`` under a
``children.ChildSupervisor`` (the child's environment, its own session, the
stdin pipe it exits on, the restart backoff: see there) with the node's
settings file and a control address: ``[media] control`` when set, else a
Unix socket in a private directory (mode 0700, made when the supervisor
is, removed by ``stop``).

When the child's control socket accepts a connection, ``on_up(address)``
is called; the node's ``MediaClient`` connects there. When the child exits
(or does not listen within ``ready_timeout``), ``on_down()`` is called (if
it had been up) and a new child is started after a backoff (0.5 s doubling
to 30 s; back to 0.5 s once a child has run for a minute), for as long as
the supervisor runs. ``stop`` sends SIGTERM, waits, then SIGKILL; it calls
no callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from offhook.children import (
    BACKOFF,
    READY_TIMEOUT,
    ChildSupervisor,
    offhook_command,
    tcp_probe,
    unix_probe,
)
from offhook.media.control import ControlAddress, parse_control_address

if TYPE_CHECKING:
    from offhook.config import Settings


class MediaSupervisor:
    """Runs and restarts the media server child process; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        on_up: Callable[[str], None],
        on_down: Callable[[], None],
        *,
        python: str = sys.executable,
        backoff: tuple[float, float] = BACKOFF,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.on_up = on_up
        self.on_down = on_down
        self.python = python
        self._private: str | None = None
        if settings.media.control:
            self._address = parse_control_address(settings.media.control)
        else:
            self._private = tempfile.mkdtemp(prefix="offhook-media-")
            self._address = ControlAddress(path=os.path.join(self._private, "control.sock"))
        address = self._address
        self.child = ChildSupervisor(
            "media server",
            self.command,
            unix_probe(address.path) if address.unix else tcp_probe(address.host, address.port),
            on_up=lambda: self.on_up(self.control_address),
            on_down=lambda: self.on_down(),
            prepare=self._remove_stale_socket,
            backoff=backoff,
            ready_timeout=ready_timeout,
            where=self.control_address,
            announces=True,
        )

    @property
    def control_address(self) -> str:
        """Where the child's control listener is (``unix:PATH`` or ``HOST:PORT``)."""
        return str(self._address)

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self.child.process

    @property
    def pid(self) -> int | None:
        return self.child.pid

    @property
    def up(self) -> bool:
        return self.child.up

    @property
    def starts(self) -> int:
        return self.child.starts

    def command(self) -> list[str]:
        cmd = offhook_command("media", "--control", self.control_address, python=self.python)
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return [*cmd, "--exit-on-stdin-eof"]

    def _remove_stale_socket(self) -> None:
        if self._address.unix:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._address.path)

    async def start(self) -> None:
        """Start the first child (in the background: ``on_up`` tells when it serves)."""
        await self.child.start()

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and stop restarting it."""
        await self.child.stop()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
