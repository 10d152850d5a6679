"""One worker process of a node with ``[node] workers`` > 1 (``offhook worker``, hidden).

The supervisor starts ``python -m offhook worker --index I --workers N
--port P --bus DIR --fds F,...`` with its members of the SIP UDP socket
groups as inherited file descriptors (``pass_fds``: a fresh interpreter, no
fork of an asyncio process). The worker runs the node of ``app.serve`` on
them, with the settings the worker's place asks (:func:`worker_settings`),
and exits when its standard input closes (the supervisor is gone).

What each worker serves (docs/workers.md "Status"):

- SIP over UDP and TCP: every worker, on its socket of each group (one
  address and port for the node; ``--tcp-fds``, the TCP listeners);
- SCCP: every worker, on its listener of the SCCP group (``--sccp-fds``,
  one port for the node, ``--sccp-port``): a phone's connection reaches the
  home worker of its address, which holds its station; calls to it from
  another worker go through that one (``node_leg``);
- TFTP/HTTP provisioning: worker 0 only;
- the control endpoint ``[admin]``: worker ``I`` on ``port + I`` (0 stays
  "any"); the web process (the supervisor's child) and ``offhook status``
  talk to worker 0's, which is ``[admin] port`` itself;
- the media server: one per worker, each with its slice of ``[media]
  rtp_ports`` (:func:`rtp_slice`, set by the supervisor as
  ``OFFHOOK_MEDIA__RTP_PORTS`` in the worker's environment, so that the
  worker's media server child reads it too); a fixed ``[media] control``
  address stays worker 0's, the others use private sockets.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

from offhook.config import Settings
from offhook.config_base import ConfigError
from offhook.workers.context import WorkerContext


def rtp_slice(ports: tuple[int, int], index: int, workers: int) -> str:
    """Worker ``index``'s part of the RTP port range (whole even/odd pairs, at least two)."""
    first, last = ports
    pairs = (last - first + 1) // 2
    each = pairs // workers
    if each < 2:
        raise ConfigError(
            f"[media] rtp_ports {first}-{last} has {pairs} port pairs: too few for "
            f"{workers} workers (each needs at least two)"
        )
    low = first + 2 * each * index
    return f"{low}-{low + 2 * each - 1}"


def worker_settings(
    settings: Settings, index: int, workers: int, sip_port: int, sccp_port: int = 0
) -> Settings:
    """The settings worker ``index`` of ``workers`` runs with (see the module docstring).

    ``sccp_port``: the SCCP group's port (0: no group, SCCP on worker 0 alone)."""
    first = index == 0
    sccp = settings.sccp
    sccp = (
        sccp.model_copy(update={"port": sccp_port})
        if sccp_port
        else sccp.model_copy(update={"enabled": sccp.enabled and first})
    )
    admin = settings.admin
    media = settings.media
    return settings.model_copy(
        update={
            "sip": settings.sip.model_copy(update={"port": sip_port}),
            "admin": admin.model_copy(update={"port": admin.port + index if admin.port else 0}),
            "sccp": sccp,
            "tftp": settings.tftp.model_copy(update={"enabled": settings.tftp.enabled and first}),
            # rtp_ports: the supervisor gives each worker its slice (rtp_slice) in the
            # environment, which the worker's media server (its child) reads too.
            "media": media.model_copy(
                update={"control": media.control if first or not media.embedded else ""}
            ),
            "web": settings.web.model_copy(update={"enabled": False}),  # the supervisor's
        }
    )


def _exit_on_stdin_eof() -> None:
    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-eof", daemon=True).start()


def main(
    settings: Settings,
    config_path: Path | None,
    *,
    index: int,
    workers: int,
    port: int,
    bus_dir: str,
    fds: list[int],
    tcp_fds: list[int] | None = None,
    sccp_fds: list[int] | None = None,
    sccp_port: int = 0,
    exit_on_stdin_eof: bool = True,
) -> int:
    from offhook import app

    sccp = [socket.socket(fileno=fd) for fd in sccp_fds or ()]
    mine = worker_settings(settings, index, workers, port, sccp_port if sccp else 0)
    sockets = [socket.socket(fileno=fd) for fd in fds]
    listeners = [socket.socket(fileno=fd) for fd in tcp_fds or ()]
    for sock in (*sockets, *listeners, *sccp):
        sock.setblocking(False)
    if not listeners:  # the supervisor binds TCP only when [sip] tcp asks
        mine = mine.model_copy(update={"sip": mine.sip.model_copy(update={"tcp": False})})
    context = WorkerContext(index, workers, bus_dir, sockets, listeners, sccp)
    if exit_on_stdin_eof:
        _exit_on_stdin_eof()
    return app.serve(mine, config_path, worker=context)
