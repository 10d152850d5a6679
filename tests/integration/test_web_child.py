"""The web process beside the node: a supervised child of ``offhook serve``, or standalone.

A real ``offhook serve`` with ``[web] enabled`` (``OffhookServer(web=True)``)
runs ``offhook web`` as its child: ``GET /api/v1/health`` answers 200 on
``[web] port``, and ``offhook status`` shows the child. Killed with SIGKILL,
the child is restarted (a new pid, health 200 again) while the node goes
on answering SIP OPTIONS and its control endpoint, untouched. When the node
itself is killed with SIGKILL, the child sees its stdin close and exits:
no orphan keeps the port. ``offhook web`` runs standalone too, and stops
cleanly on SIGTERM and when its stdin closes (``--exit-on-stdin-eof``).
A node with ``[web] enabled = false`` (the test default) starts no child.
A child that is up but hung (its port accepts, nothing answers) is killed
and restarted; one that answers is left alone.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from offhook.children import ChildSupervisor, http_probe, tcp_probe
from support.ports import HOST, free_port
from support.server import CLI, OffhookServer, device, plan_of, sip_options_ping

PLAN = plan_of([device("alice", "alice-Secret-1", "1001")])
LOW_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}


def health(port: int, host: str = HOST) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/api/v1/health")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    """Poll ``check()`` until it returns something true; that value (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with_value = check()
        if with_value:
            return with_value
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def web_state(server: OffhookServer) -> dict[str, Any] | None:
    web: dict[str, Any] | None = server.control("status")["web"]
    return web


def test_the_web_child_is_restarted_and_the_node_never_notices(tmp_path: Path) -> None:
    with OffhookServer(tmp_path, PLAN, web=True, extra_config={"web": LOW_ARGON2}) as server:
        assert health(server.web_port) == (200, {"status": "ok"})
        first = web_state(server)
        assert first is not None and first["up"] and first["starts"] == 1
        pid = first["pid"]
        assert pid != server.pid and alive(pid)
        assert f"web process up on {HOST}:{server.web_port}" in server.log()
        text = server.run_cli("status", check=True).stdout
        assert f"web process ({HOST}:{server.web_port}): up, pid {pid}" in text

        os.kill(pid, signal.SIGKILL)
        # SIP and the control endpoint go on answering while the child is gone.
        assert sip_options_ping(server.sip_port, timeout=2.0) is not None
        assert server.control("status")["node"]
        again = wait_for(
            lambda: (w := web_state(server)) is not None and w["up"] and w["pid"] != pid and w
        )
        assert again["starts"] == 2 and not alive(pid)
        wait_for(lambda: health(server.web_port)[0] == 200)
        assert sip_options_ping(server.sip_port, timeout=2.0) is not None
        assert server.proc is not None and server.proc.poll() is None
        assert "web process down; restarting it" in server.log()
        child = again["pid"]

        os.kill(server.pid, signal.SIGKILL)  # the node dies: its child must not outlive it
        server.proc.wait(10)
        wait_for(lambda: not alive(child))


def test_no_web_child_unless_enabled(tmp_path: Path) -> None:
    with OffhookServer(tmp_path, PLAN) as server:
        assert web_state(server) is None
        assert "web process" not in server.log()
        with pytest.raises(OSError):
            health(server.web_port)


def test_offhook_web_standalone(tmp_path: Path) -> None:
    node = OffhookServer(tmp_path, PLAN, extra_config={"web": LOW_ARGON2})
    node.load(PLAN)  # the database, with its schema; no node needed

    def start(*extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*CLI, "web", "--config", str(node.config_path), *extra],
            env=node.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def serving(proc: subprocess.Popen[bytes]) -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            return health(node.web_port)[0] == 200
        except OSError:
            return False

    proc = start()
    try:
        wait_for(lambda: serving(proc))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc = start("--exit-on-stdin-eof")
    try:
        wait_for(lambda: serving(proc))
        assert proc.stdin is not None
        proc.stdin.close()  # the parent went away
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


HUNG_CHILD = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
held = []
while True:  # accepts (as a hung process's kernel does) and never answers
    held.append(s.accept()[0])
"""

ANSWERING_CHILD = """
import http.server, sys
address = (sys.argv[1], int(sys.argv[2]))
http.server.HTTPServer(address, http.server.BaseHTTPRequestHandler).serve_forever()
"""


def _supervise(script: str, until: Any) -> ChildSupervisor:
    """Supervise ``python -c script HOST PORT`` with the web's liveness probe, quickly
    paced, until ``until(supervisor, probes asked)`` (at most a minute)."""
    port = free_port()
    probes = 0
    probe = http_probe(HOST, port)

    async def counted() -> bool:
        nonlocal probes
        probes += 1
        return await probe()

    async def main() -> ChildSupervisor:
        child = ChildSupervisor(
            "test child",
            [sys.executable, "-c", script, HOST, str(port)],
            tcp_probe(HOST, port),
            alive=counted,
            watch_every=0.2,
            watch_misses=2,
            backoff=(0.05, 0.05),
        )
        await child.start()
        try:
            async with asyncio.timeout(60):
                while not until(child, probes):
                    await asyncio.sleep(0.05)
        finally:
            await child.stop()
        return child

    return asyncio.run(main())


def test_a_hung_web_child_is_killed_and_restarted() -> None:
    child = _supervise(HUNG_CHILD, lambda c, probes: c.starts >= 2)
    assert child.hung >= 1


def test_an_answering_child_is_left_alone() -> None:
    child = _supervise(ANSWERING_CHILD, lambda c, probes: probes >= 6)
    assert child.starts == 1 and child.hung == 0
