"""``offhook serve``'s child processes: started, watched and restarted (media server, web).

Theory of operation. A ``ChildSupervisor`` runs one command as a child
process (this interpreter, this copy of offhook: its directory is put first
on the child's ``PYTHONPATH``), in its own session (a Ctrl-C in the
terminal reaches the node, which stops its children in order) and with a
pipe as its standard input, which the child watches
(``--exit-on-stdin-eof``): if the node dies, even by SIGKILL, the pipe
closes and the child exits.

The child is up once it has said so on its standard output
(``announces``: the line of ``common.ready``, written once its own sockets
listen; another program holding the port cannot say it) and ``probe()``
says it serves (polled every 50 ms: a TCP or Unix socket that accepts,
:func:`tcp_probe`, :func:`unix_probe`);
``on_up()`` is called then. When the child exits (or is not up within
``ready_timeout``: it is killed), ``on_down()`` is called (if it had been
up) and a new child is started after a backoff (0.5 s doubling to 30 s;
back to 0.5 s once a child has run for ``STABLE`` seconds), for as long as
the supervisor runs. A child's death never raises into the node: a command
that cannot start is logged and retried the same way. ``stop`` sends
SIGTERM, waits ``STOP_TIMEOUT`` seconds, then SIGKILL; it calls no callback.

A child that is up but hung (its port still accepts: the kernel does that)
is found by an optional ``alive()`` probe, asked every ``watch_every``
seconds while it is up: ``watch_misses`` misses in a row (no answer within
``watch_every`` counts as one) and it is killed, then restarted as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from offhook.common.addr import host_port
from offhook.common.ready import READY_LINE

log = logging.getLogger("offhook.children")

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
WATCH_EVERY = 5.0
WATCH_MISSES = 3
STABLE = 60.0
BACKOFF = (0.5, 30.0)
_POLL = 0.05


def package_root() -> str:
    """The directory holding the ``offhook`` package the node runs (for the child's path)."""
    import offhook

    return str(Path(offhook.__file__).resolve().parent.parent)


def offhook_command(*args: str, python: str = sys.executable) -> list[str]:
    """``python -m offhook ARGS``: an offhook command as a child runs it."""
    return [python, "-m", "offhook", *args]


async def _accepts(connect: Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> bool:
    try:
        _, writer = await asyncio.wait_for(connect, 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _http_answers(host: str, port: int, tls: ssl.SSLContext | None) -> bool:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        writer.write(
            f"GET /api/v1/health HTTP/1.1\r\nHost: {host_port(host, port)}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        return (await reader.readline()).startswith(b"HTTP/1.")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def http_probe(host: str, port: int, *, tls: bool = False) -> Callable[[], Awaitable[bool]]:
    """A liveness probe: does ``host``:``port`` answer an HTTP request (any status)?

    With ``tls``, over TLS without checking the certificate (it is our own child).
    """
    context: ssl.SSLContext | None = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return lambda: _http_answers(host, port, context)


def tcp_probe(host: str, port: int) -> Callable[[], Awaitable[bool]]:
    """A probe: does ``host``:``port`` accept a TCP connection?"""
    return lambda: _accepts(asyncio.open_connection(host, port))


def unix_probe(path: str) -> Callable[[], Awaitable[bool]]:
    """A probe: does the Unix socket ``path`` accept a connection?"""
    return lambda: _accepts(asyncio.open_unix_connection(path))


def _nothing() -> None:
    return None


class ChildSupervisor:
    """Runs and restarts one child process; see the module docstring.

    ``command``: the argument list, or a callable giving it (asked at each
    start). ``prepare``: called before each start (e.g. to remove a stale
    socket). ``name``: how the log names the child. ``announces``: the
    child writes ``common.ready.READY_LINE`` once it serves (asked of every
    offhook child).
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str] | Callable[[], Sequence[str]],
        probe: Callable[[], Awaitable[bool]],
        *,
        on_up: Callable[[], None] = _nothing,
        on_down: Callable[[], None] = _nothing,
        prepare: Callable[[], None] = _nothing,
        backoff: tuple[float, float] = BACKOFF,
        ready_timeout: float = READY_TIMEOUT,
        where: str = "",
        alive: Callable[[], Awaitable[bool]] | None = None,
        watch_every: float = WATCH_EVERY,
        watch_misses: int = WATCH_MISSES,
        announces: bool = False,
    ) -> None:
        self.name = name
        self.announces = announces
        self._command = command
        self.probe = probe
        self.on_up = on_up
        self.on_down = on_down
        self.prepare = prepare
        self.backoff = backoff
        self.ready_timeout = ready_timeout
        self.where = where
        self.alive = alive
        self.watch_every = watch_every
        self.watch_misses = max(1, watch_misses)
        self.hung = 0
        self.process: asyncio.subprocess.Process | None = None
        self.up = False
        self.starts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        command = self._command() if callable(self._command) else self._command
        return list(command)

    def status(self) -> dict[str, object]:
        """For ``offhook status``: whether the child serves, its pid, how often it started."""
        return {"up": self.up, "pid": self.pid, "starts": self.starts, "where": self.where}

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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff[0]
        while not self._stopping:
            started = loop.time()
            try:
                await self._one_child()
            except OSError as exc:
                log.error("cannot start the %s: %s", self.name, exc)
            except Exception:
                log.exception("%s supervision failed", self.name)
            if self._stopping:
                return
            if loop.time() - started >= STABLE:
                delay = self.backoff[0]
            log.warning("%s restarts in %.1f s", self.name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _one_child(self) -> None:
        env = dict(os.environ)
        root = package_root()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.prepare()
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if self.announces else asyncio.subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.process = proc
        self.starts += 1
        where = f" on {self.where}" if self.where else ""
        log.info("%s started (pid %d)%s", self.name, proc.pid, where)
        try:
            if await self._ready(proc):
                self.up = True
                self._call(self.on_up, "on_up")
            elif proc.returncode is None:
                log.error("%s did not listen within %.0f s", self.name, self.ready_timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            code = await (self._watched(proc) if self.up else proc.wait())
            log.warning("%s (pid %d) exited with %s", self.name, proc.pid, code)
        finally:
            if self.up and not self._stopping:
                self.up = False
                self._call(self.on_down, "on_down")

    async def _watched(self, proc: asyncio.subprocess.Process) -> int:
        """Wait for the child to exit, killing it once ``alive()`` misses too often."""
        if self.alive is None:
            return await proc.wait()
        exited = asyncio.ensure_future(proc.wait())
        try:
            misses = 0
            while True:
                done, _ = await asyncio.wait({exited}, timeout=self.watch_every)
                if done:
                    return exited.result()
                misses = 0 if await self._answers() else misses + 1
                if misses >= self.watch_misses:
                    log.error("%s (pid %d) does not answer: killing it", self.name, proc.pid)
                    self.hung += 1
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    return await exited
        finally:
            if not exited.done():
                exited.cancel()

    async def _answers(self) -> bool:
        assert self.alive is not None
        try:
            async with asyncio.timeout(self.watch_every):
                return await self.alive()
        except (TimeoutError, OSError):
            return False

    async def _ready(self, proc: asyncio.subprocess.Process) -> bool:
        """Poll the probe until it succeeds, the child exits, or time runs out."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.ready_timeout
        if self.announces and not await self._announced(proc, end - loop.time()):
            return False
        while loop.time() < end and proc.returncode is None:
            if await self.probe():
                return True
            await asyncio.sleep(_POLL)
        return False

    async def _announced(self, proc: asyncio.subprocess.Process, within: float) -> bool:
        """Whether the child says it serves within ``within`` seconds."""
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(within):
                line = await proc.stdout.readline()
        except (TimeoutError, ValueError):  # ValueError: a line past the reader's limit
            return False
        if line != READY_LINE:
            log.error("%s did not say it serves (%r)", self.name, line[:80])
            return False
        return True

    async def _terminate(self) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        await terminate(proc, self.name, STOP_TIMEOUT)
        if proc.stdin is not None:
            proc.stdin.close()

    def _call(self, callback: Callable[[], None], what: str) -> None:
        try:
            callback()
        except Exception:
            log.exception("%s supervisor %s failed", self.name, what)


async def terminate(proc: asyncio.subprocess.Process, name: str, timeout: float) -> None:
    """SIGTERM, ``timeout`` seconds to exit, then SIGKILL (and wait for it)."""
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        log.error("%s (pid %d) did not stop: killing it", name, proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
