"""The web process as a child of ``offhook serve`` (when ``[web] enabled``).

``start_web`` runs ``python -m offhook web --config FILE
--exit-on-stdin-eof`` under a ``children.ChildSupervisor``: the child is
up once its ``[web]`` port accepts TCP connections (the first ``listen``
address; a wildcard is probed on the loopback of its family), and is
restarted with a backoff whenever it exits. While it is up, it must answer
an HTTP request now and then (``GET /api/v1/health``, any status): a hung
child is killed and restarted (when ``[web] allow`` admits the probe's own
address; otherwise only its exit is watched). The node never depends on it:
the web process reads the database and asks the node's control endpoint
(``[admin]``) for live state, so its death, a leak or a load in it leave
call processing alone, and the node answers with or without it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from offhook.children import ChildSupervisor, http_probe, offhook_command, tcp_probe
from offhook.common.addr import is_wildcard
from offhook.config import Settings
from offhook.net.acl import AllowList
from offhook.net.bindings import describe

log = logging.getLogger("offhook.web.child")


def web_command(config_path: Path | None) -> list[str]:
    cmd = offhook_command("web")
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    return [*cmd, "--exit-on-stdin-eof"]


def probe_address(settings: Settings) -> tuple[str, int]:
    """Where the node checks that its web child serves: the first ``[web] listen`` address."""
    host = settings.web.listen[0].strip("[]")
    if is_wildcard(host):
        host = "::1" if ":" in host else "127.0.0.1"
    return host, settings.web.port


async def start_web(settings: Settings, config_path: Path | None) -> ChildSupervisor | None:
    """Start supervising the web child (None when ``[web]`` is off or has no fixed port)."""
    web = settings.web
    if not web.enabled:
        return None
    if web.port == 0:
        log.error("[web] port 0: the web process needs a fixed port to be supervised; not started")
        return None
    where = describe(web.listen, web.port)
    host, port = probe_address(settings)
    alive = http_probe(host, port, tls=web.tls) if AllowList(web.allow).allows(host) else None
    child = ChildSupervisor(
        "web process",
        web_command(config_path),
        tcp_probe(host, port),
        alive=alive,
        on_up=lambda: log.info("web process up on %s", where),
        on_down=lambda: log.warning("web process down; restarting it (calls are not affected)"),
        where=where,
        announces=True,
    )
    await child.start()
    return child
