"""Metrics, health, JSON logs and SIGHUP against a real ``offhook serve`` with baresip phones.

Each test runs its own node with its web process as a child (``[web]
enabled``), as production does. ``/metrics`` is scraped over HTTP with an
API token and parsed with prometheus_client's parser: the node's counters
move with real calls (answered, refused busy, to a number nobody has),
registrations are counted by protocol, and no metric name appears twice
although both processes export their own. ``/healthz`` and ``/readyz``
answer without a token; ``/readyz`` says 503 and which check failed while
the node does not answer (stopped with SIGSTOP, then gone with only a
standalone ``offhook web`` left). With ``[log] format = "json"`` the call
and registration lines carry ``call_id``, ``device`` and ``source``. A
SIGHUP after the settings file changed applies a new SIP allow-list (the
phone's REGISTER goes unanswered afterwards, and is answered again when the
list is restored) and a new ``[web] allow`` in the web child, and reports
a changed port as needing a restart.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from interop.baresip import Baresip
from interop.peers import require_binary
from support.ports import HOST
from support.server import CLI, OffhookServer, device, dump_toml, plan_of, sip_options_ping

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2"}
DNS = {"alice": "1001", "bob": "1002"}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])
LOW_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something true (a state, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s")


def get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


def scrape(server: OffhookServer, token: str) -> tuple[Samples, list[str]]:
    """``/metrics`` parsed: the samples, and the family names in order."""
    status, text = get(server.web_port, "/metrics", token)
    assert status == 200, text
    samples: Samples = {}
    names = []
    for family in text_string_to_metric_families(text):
        names.append(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, names


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(k[1])[label]: v for k, v in samples.items() if k[0] == name}


def phone(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=PASSWORDS[name],
        regint=60,
    )


def json_lines(server: OffhookServer) -> list[dict[str, Any]]:
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def ready(server: OffhookServer) -> tuple[int, dict[str, Any]]:
    status, body = get(server.web_port, "/readyz")
    return status, json.loads(body)


def serving(server: OffhookServer) -> bool:
    """The web process answers (a loaded machine may take a while to start it)."""
    try:
        return get(server.web_port, "/healthz")[0] == 200
    except (ConnectionError, http.client.HTTPException, OSError):
        return False


def reset_by_web(server: OffhookServer) -> bool:
    """The web port accepts a connection and drops it unanswered (its allow-list refuses
    this host), which is not the same as nothing listening there."""
    try:
        get(server.web_port, "/healthz")
    except ConnectionRefusedError:
        return False
    except (ConnectionError, http.client.HTTPException):
        return True
    return False


def until_ready(server: OffhookServer) -> tuple[int, dict[str, Any]]:
    """Until ``/readyz`` answers 200 (the media server and the web process are up)."""
    return wait_for(  # type: ignore[no-any-return]
        lambda: serving(server) and (r := ready(server))[0] == 200 and r,
        timeout=120,
        what="ready",
    )


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OffhookServer]:
    server = OffhookServer(
        tmp_path,
        PLAN,
        web=True,
        extra_config={"web": LOW_ARGON2, "log": {"format": "json"}},
    )
    server.start(timeout=180)  # a loaded machine starts the web process slowly
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGCONT)
        server.stop()


def call(caller: Baresip, callee: Baresip, uri: str, *, answer: bool) -> None:
    mark_caller, mark_callee = caller.mark(), callee.mark()
    caller.dial(uri)
    callee.wait_event("CALL_INCOMING", timeout=15, since=mark_callee)
    caller.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=15, since=mark_caller)
    if answer:
        callee.accept()
        caller.wait_event("CALL_ESTABLISHED", timeout=15, since=mark_caller)
        caller.hangup()
    else:
        callee.hangup()  # rejecting a ringing call: 486 Busy Here
    caller.wait_event("CALL_CLOSED", timeout=15, since=mark_caller)
    callee.wait_event("CALL_CLOSED", timeout=15, since=mark_callee)


def test_metrics_move_with_calls_and_json_logs(node: OffhookServer, tmp_path: Path) -> None:
    token = node.api_token()
    until_ready(node)  # the media server is up too
    before, names = scrape(node, token)
    assert len(names) == len(set(names)), "a metric name appears twice"
    assert all(name.startswith("offhook_") for name in names)
    assert value(before, "offhook_node_up") == 1
    assert value(before, "offhook_media_server_up", server="embedded") == 1
    for name in (
        "offhook_process_resident_memory_bytes",
        "offhook_process_open_fds",
        "offhook_web_process_resident_memory_bytes",
        "offhook_media_process_resident_memory_bytes",
    ):
        assert value(before, name) > 0, name

    alice, bob = phone(tmp_path, node, "alice"), phone(tmp_path, node, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        wait_for(
            lambda: (
                value(scrape(node, token)[0], "offhook_registered_devices", protocol="sip") == 2
            ),
            what="two SIP devices registered",
        )
        call(alice, bob, f"sip:1002@{HOST}:{node.sip_port}", answer=True)
        call(alice, bob, f"sip:1002@{HOST}:{node.sip_port}", answer=False)
        mark = alice.mark()
        alice.dial(f"sip:1999@{HOST}:{node.sip_port}")  # nobody has 1999
        alice.wait_event("CALL_CLOSED", timeout=15, since=mark)

        def counted() -> Samples | None:
            now, _ = scrape(node, token)
            done = value(now, "offhook_call_attempts_total") - value(
                before, "offhook_call_attempts_total"
            )
            return now if done >= 3 and value(now, "offhook_calls_active") == 0 else None

        after = wait_for(counted, what="three call attempts counted")
    assert (
        value(after, "offhook_calls_answered_total") - value(before, "offhook_calls_answered_total")
        == 1
    )
    failures = by_label(after, "offhook_call_failures_total", "cause")
    assert failures.get("17", 0) >= 1 and failures.get("1", 0) >= 1, failures
    assert by_label(after, "offhook_calls_ended_total", "cause").get("16", 0) >= 1
    setups = value(after, "offhook_call_setup_seconds_count")
    assert setups >= 2  # both calls to bob rang
    assert value(after, "offhook_call_setup_seconds_bucket", le="+Inf") == setups
    assert value(after, "offhook_call_setup_seconds_sum") > 0
    listeners = by_label(after, "offhook_listener_connections", "listener")
    assert {"sip", "sccp", "admin", "tftp"} <= set(listeners)
    _, names = scrape(node, token)
    assert len(names) == len(set(names))

    # JSON logs: the call lines name the call and the device; registrations the source.
    lines = json_lines(node)
    calls = [line for line in lines if line.get("logger") == "offhook.calls"]
    assert len(calls) >= 3 and all(line.get("call_id") for line in calls), calls
    assert {line.get("device") for line in calls} == {"alice"}
    registered = [
        line
        for line in lines
        if line.get("logger") == "offhook.sip.registrar" and line.get("device") == "bob"
    ]
    assert registered and registered[0]["source"].startswith(f"{HOST}:"), registered
    assert all(set(line) >= {"ts", "level", "logger", "msg"} for line in lines)


def test_health_and_readiness_follow_the_node(node: OffhookServer, tmp_path: Path) -> None:
    token = node.api_token()
    status, body = until_ready(node)
    assert get(node.web_port, "/healthz") == (200, '{"status":"alive"}')
    assert body["checks"] == {
        "database": True,
        "node": True,
        "sip": True,
        "sccp": True,
        "tftp": True,
        "tftp-http": True,
        "media": True,
    }

    os.kill(node.pid, signal.SIGSTOP)  # the node hangs: its control endpoint never answers
    try:
        status, body = wait_for(lambda: (r := ready(node))[0] == 503 and r, what="not ready")
        assert body["failed"] == ["node"] and body["checks"]["database"] is True
        assert get(node.web_port, "/healthz")[0] == 200  # the web process itself is alive
        samples, _ = scrape(node, token)
        assert value(samples, "offhook_node_up") == 0
        assert value(samples, "offhook_web_process_open_fds") > 0
    finally:
        os.kill(node.pid, signal.SIGCONT)
    until_ready(node)

    node.stop()  # the node and its web child are gone; a standalone web process is left
    web = subprocess.Popen(
        [*CLI, "web", "--config", str(node.config_path)],
        env=node.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            assert web.poll() is None, "offhook web exited"
            return serving(node)

        wait_for(up, timeout=120, what="the standalone web process")
        status, body = ready(node)
        assert status == 503 and body["failed"] == ["node"], body
        samples, names = scrape(node, token)
        assert value(samples, "offhook_node_up") == 0
        assert not any(name.startswith("offhook_call") for name in names)
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()


def rewrite(server: OffhookServer, change: Callable[[dict[str, Any]], None]) -> None:
    sections = tomllib.loads(server.config_path.read_text())
    change(sections)
    server.config_path.write_text(dump_toml(sections))


def acl_refusals(server: OffhookServer) -> int:
    rejections = server.control("status")["counters"]["rejections"]
    return int(rejections.get("sip", {}).get("acl", 0))


def test_sighup_applies_allow_lists_and_reports_a_port(node: OffhookServer, tmp_path: Path) -> None:
    until_ready(node)
    alice = phone(tmp_path, node, "alice")
    with alice:
        alice.wait_registered()  # admitted before the reload
    old_port = node.sip_port

    def refuse_loopback(sections: dict[str, Any]) -> None:
        sections["sip"]["allow"] = ["192.0.2.0/24"]
        sections["sip"]["port"] = old_port + 1
        sections["web"]["allow"] = ["192.0.2.0/24"]

    rewrite(node, refuse_loopback)
    os.kill(node.pid, signal.SIGHUP)
    wait_for(
        lambda: "needs a restart" in node.log() and "passed on to the web process" in node.log(),
        what="the reload logged",
    )
    messages = [line["msg"] for line in json_lines(node) if line.get("logger") == "offhook.reload"]
    assert any("[sip] allow applied" in m for m in messages), messages
    assert any(
        f"[sip] port changed ({old_port} -> {old_port + 1}): needs a restart" in m for m in messages
    ), messages
    # The SIP listener (still on its old port) now refuses this host.
    assert sip_options_ping(node.sip_port, timeout=1.0) is None
    # The web child applied its new list: a connection from here is reset.
    wait_for(lambda: reset_by_web(node), what="the web process refusing this host")

    bob = phone(tmp_path, node, "bob")
    with bob:
        refused = acl_refusals(node)
        wait_for(lambda: acl_refusals(node) > refused, what="bob's REGISTER refused")
        assert not any(e.type == "REGISTER_OK" for e in bob.events)

        def restore(sections: dict[str, Any]) -> None:
            sections["sip"]["allow"] = ["127.0.0.0/8"]
            sections["sip"]["port"] = old_port
            sections["web"]["allow"] = ["127.0.0.0/8"]

        rewrite(node, restore)
        os.kill(node.pid, signal.SIGHUP)
        bob.wait_registered(timeout=60)  # a retransmission of its REGISTER is answered now
    assert sip_options_ping(node.sip_port, timeout=1.0) is not None
    wait_for(lambda: serving(node), what="the web process serving this host")
    assert node.proc is not None and node.proc.poll() is None  # the node never restarted
