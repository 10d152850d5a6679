"""``offhook serve`` with ``[node] workers`` > 1: the supervisor of the worker processes.

It binds the SIP UDP socket groups (``reuseport.udp_groups``: N sockets per
listen address, SO_REUSEPORT, the source-address BPF program), and the SIP
TCP listener groups alike (``reuseport.sip_groups``), and holds
them for as long as it runs, makes the bus directory (private, 0700), starts
worker ``i`` as ``python -m offhook worker --index i ...`` with its sockets
passed as file descriptors (``worker``), and the web process when ``[web]``
asks (it talks to worker 0). A worker that exits is started again with the
same sockets after a back-off (``children.BACKOFF``: 0.5 s doubling to 30 s,
back to 0.5 s once one ran ``children.STABLE`` seconds); the datagrams that
reached its socket meanwhile wait in the socket's buffer for the
replacement. SIGTERM/SIGINT stop the workers (SIGTERM, then SIGKILL after
``STOP_TIMEOUT``), then the web process. The supervisor parses nothing a
peer sends: it runs no listener of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from offhook.children import (
    BACKOFF,
    STABLE,
    ChildSupervisor,
    offhook_command,
    package_root,
    terminate,
)
from offhook.config import Settings
from offhook.config_base import ConfigError
from offhook.net.bindings import describe
from offhook.net.guard import LISTEN_BACKLOG
from offhook.workers.reuseport import listener_groups, sip_groups
from offhook.workers.worker import rtp_slice

log = logging.getLogger("offhook.workers")

STOP_TIMEOUT = 10.0
SQLITE_WRITERS = 4  # more workers than this on SQLite: a warning at start


class WorkerProcess:
    """Runs and restarts worker ``index`` on its sockets."""

    def __init__(
        self,
        index: int,
        workers: int,
        port: int,
        bus_dir: str,
        sockets: list[socket.socket],
        config_path: Path | None,
        backoff: tuple[float, float] = BACKOFF,
        env: dict[str, str] | None = None,
        tcp_sockets: list[socket.socket] | None = None,
        sccp_sockets: list[socket.socket] | None = None,
        sccp_port: int = 0,
    ) -> None:
        self.env = env or {}
        self.index = index
        self.workers = workers
        self.port = port
        self.bus_dir = bus_dir
        self.sockets = sockets
        self.tcp_sockets = tcp_sockets or []
        self.sccp_sockets = sccp_sockets or []
        self.sccp_port = sccp_port
        self.config_path = config_path
        self.backoff = backoff
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        fds = ",".join(str(s.fileno()) for s in self.sockets)
        cmd = offhook_command(
            "worker",
            *("--index", str(self.index), "--workers", str(self.workers)),
            *("--port", str(self.port), "--bus", self.bus_dir, "--fds", fds),
        )
        if self.tcp_sockets:
            cmd += ["--tcp-fds", ",".join(str(s.fileno()) for s in self.tcp_sockets)]
        if self.sccp_sockets:
            cmd += ["--sccp-fds", ",".join(str(s.fileno()) for s in self.sccp_sockets)]
            cmd += ["--sccp-port", str(self.sccp_port)]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff[0]
        while not self._stopping:
            started = loop.time()
            try:
                await self._one()
            except OSError as exc:
                log.error("cannot start worker %d: %s", self.index, exc)
            if self._stopping:
                return
            if loop.time() - started >= STABLE:
                delay = self.backoff[0]
            log.warning("worker %d restarts in %.1f s", self.index, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _one(self) -> None:
        env = {**os.environ, **self.env}
        root = package_root()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            env=env,
            pass_fds=[s.fileno() for s in (*self.sockets, *self.tcp_sockets, *self.sccp_sockets)],
            start_new_session=True,
        )
        self.process = proc
        self.starts += 1
        log.info("worker %d started (pid %d)", self.index, proc.pid)
        code = await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        log.warning("worker %d (pid %d) exited with %s", self.index, proc.pid, code)

    async def stop(self) -> None:
        self._stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None:
            await terminate(proc, f"worker {self.index}", STOP_TIMEOUT)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def status(self) -> dict[str, object]:
        proc = self.process
        up = proc is not None and proc.returncode is None
        return {
            "index": self.index,
            "pid": proc.pid if proc else None,
            "up": up,
            "starts": self.starts,
        }


async def supervise(settings: Settings, config_path: Path | None) -> None:
    """Run the workers until SIGTERM/SIGINT; OSError when the SIP port cannot be bound."""
    from offhook.node_web import start_web

    sip = settings.sip
    n = settings.node.workers
    for i in range(n):
        rtp_slice(settings.media.port_range, i, n)  # ConfigError now, not in a worker
    try:
        groups, tcp, port = sip_groups(sip.listen, sip.port, n, sip.tcp, LISTEN_BACKLOG)
    except OSError as exc:
        where = describe(sip.listen, sip.port)
        raise OSError(exc.errno, f"SIP cannot listen on {where} ({exc.strerror or exc})") from exc
    sccp_groups: list[list[socket.socket]] = [[] for _ in range(n)]
    sccp_port = 0
    if settings.sccp.enabled:
        sccp = settings.sccp
        try:
            sccp_groups, sccp_port = listener_groups(sccp.listen, sccp.port, n, LISTEN_BACKLOG)
        except OSError as exc:
            for socks in (*groups, *tcp):
                for sock in socks:
                    sock.close()
            where = describe(sccp.listen, sccp.port)
            raise OSError(
                exc.errno, f"SCCP cannot listen on {where}: {exc.strerror or exc}"
            ) from exc
    bus_dir = tempfile.mkdtemp(prefix="offhook-workers-")
    # One digest nonce key for every worker (a nonce one made, another accepts).
    env = {} if settings.auth.secret else {"OFFHOOK_AUTH__SECRET": secrets.token_hex(32)}
    # Each worker's media server (its child, reading the settings file) on its slice of ports.
    workers = [
        WorkerProcess(
            *(i, n, port, bus_dir, groups[i], config_path or settings.source),
            env={**env, "OFFHOOK_MEDIA__RTP_PORTS": rtp_slice(settings.media.port_range, i, n)},
            tcp_sockets=tcp[i],
            sccp_sockets=sccp_groups[i],
            sccp_port=sccp_port,
        )
        for i in range(n)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    log.info(
        "%d workers on SIP port %d/udp%s (bus %s)", n, port, "+tcp" if sip.tcp else "", bus_dir
    )
    if n > SQLITE_WRITERS and settings.database.url.startswith("sqlite"):
        log.warning(
            "%d workers write call records to one SQLite file: beyond %d writers use "
            "PostgreSQL ([database] url; docs/workers.md)",
            n,
            SQLITE_WRITERS,
        )
    web: ChildSupervisor | None = None
    try:
        for w in workers:
            w.start()
        web = await start_web(settings, config_path or settings.source)
        await stop.wait()
    finally:
        log.info("stopping %d workers", n)
        await asyncio.gather(*(w.stop() for w in workers))
        if web is not None:
            await web.stop()
        for socks in (*groups, *tcp, *sccp_groups):
            for sock in socks:
                sock.close()
        shutil.rmtree(bus_dir, ignore_errors=True)


def serve(settings: Settings, config_path: Path | None) -> int:
    """``offhook serve``'s body with N > 1 workers (``app.serve`` calls it)."""
    try:
        asyncio.run(supervise(settings, config_path))
    except (OSError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
