"""``offhook serve``'s media server: a child process, started, watched and restarted.

Theory of operation. ``MediaSupervisor`` runs ``python -m offhook media``
(this interpreter, this copy of offhook: its directory is put first on the
child's ``PYTHONPATH``) with the node's settings file and a control
address: ``[media] control`` when set, else a Unix socket in a private
directory (mode 0700, made when the supervisor is, removed by ``stop``). The child runs in its own
session (a Ctrl-C in the terminal reaches the node, which stops the child
in order) and with a pipe as its standard input, which it watches: if the
node dies, even by SIGKILL, the pipe closes and the child exits.

When the child's control socket accepts a connection, ``on_up(address)``
is called; the node's ``MediaClient`` connects there. When the child exits
(or does not listen within ``ready_timeout``), ``on_down()`` is called (if
it had been up) and a new child is started after a backoff (0.5 s doubling
to 30 s; back to 0.5 s once a child has run for ``STABLE`` seconds), for
as long as the supervisor runs. ``stop`` sends SIGTERM, waits
``STOP_TIMEOUT`` seconds, then SIGKILL; it calls no callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from offhook.media.control import ControlAddress, parse_control_address

if TYPE_CHECKING:
    from offhook.config import Settings

log = logging.getLogger("offhook.media.supervisor")

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
STABLE = 60.0
BACKOFF = (0.5, 30.0)
_POLL = 0.05


def _package_root() -> str:
    """The directory holding the ``offhook`` package the node runs (for the child's path)."""
    import offhook

    return str(Path(offhook.__file__).resolve().parent.parent)


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
        self.backoff = backoff
        self.ready_timeout = ready_timeout
        self._private: str | None = None
        if settings.media.control:
            self._address = parse_control_address(settings.media.control)
        else:
            self._private = tempfile.mkdtemp(prefix="offhook-media-")
            self._address = ControlAddress(path=os.path.join(self._private, "control.sock"))
        self.process: asyncio.subprocess.Process | None = None
        self.up = False
        self.starts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def control_address(self) -> str:
        """Where the child's control listener is (``unix:PATH`` or ``HOST:PORT``)."""
        return str(self._address)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "offhook", "media", "--control", self.control_address]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return [*cmd, "--exit-on-stdin-eof"]

    async def start(self) -> None:
        """Start the first child (in the background: ``on_up`` tells when it serves)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL) and stop restarting it."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            while not task.done():  # a cancellation can be lost in an inner wait_for
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        await self._terminate()
        self.up = False
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff[0]
        while not self._stopping:
            started = loop.time()
            try:
                await self._one_child()
            except OSError as exc:
                log.error("cannot start the media server: %s", exc)
            if self._stopping:
                return
            if loop.time() - started >= STABLE:
                delay = self.backoff[0]
            log.warning("media server restarts in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _one_child(self) -> None:
        env = dict(os.environ)
        root = _package_root()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        if self._address.unix:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._address.path)
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.process = proc
        self.starts += 1
        log.info("media server started (pid %d) on %s", proc.pid, self.control_address)
        try:
            if await self._ready(proc):
                self.up = True
                self._call_up()
            else:
                if proc.returncode is None:
                    log.error("media server did not listen within %.0f s", self.ready_timeout)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            code = await proc.wait()
            log.warning("media server (pid %d) exited with %s", proc.pid, code)
        finally:
            if self.up and not self._stopping:
                self.up = False
                self._call_down()

    async def _ready(self, proc: asyncio.subprocess.Process) -> bool:
        """Poll the control address until it accepts, the child exits, or time runs out."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.ready_timeout
        while loop.time() < end and proc.returncode is None:
            try:
                if self._address.unix:
                    _, writer = await asyncio.open_unix_connection(self._address.path)
                else:
                    _, writer = await asyncio.open_connection(
                        self._address.host, self._address.port
                    )
            except OSError:
                await asyncio.sleep(_POLL)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    async def _terminate(self) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.error("media server (pid %d) did not stop: killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()

    def _call_up(self) -> None:
        try:
            self.on_up(self.control_address)
        except Exception:
            log.exception("media supervisor on_up failed")

    def _call_down(self) -> None:
        try:
            self.on_down()
        except Exception:
            log.exception("media supervisor on_down failed")
