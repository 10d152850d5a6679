"""A node with two worker processes (``[node] workers = 2``, docs/workers.md), real peers.

SIPp user agents run from two loopback source addresses that the kernel's
source-address program sends to different workers: 127.0.0.2 to worker 0,
127.0.0.3 to worker 1 (``workers.reuseport.home_of``, checked first). Each
worker's control endpoint (``[admin] port + index``) says which worker it is
and what it forwarded and received over the bus, which is how the tests see
where each datagram landed.

- carol (127.0.0.2, worker 0) calls dave (registered from 127.0.0.3, worker
  1): worker 0 learns dave's binding over the bus, its INVITE's answers and
  dave's BYE reach worker 1 and are passed to worker 0; the call completes
  on both sides and has one CDR;
- a source that fails logins on worker 0 is blocked, its requests from
  another port are dropped there, and a source on worker 1 registers;
- failed logins against one account on both workers are summed: each
  worker's status shows the account under attack with the node's count;
- ``/metrics`` on the web listener has both workers' samples, each with its
  ``worker`` label;
- SIGKILL of worker 1: worker 0 still registers phones; the supervisor
  starts a replacement on the same socket; dave registers again and carol's
  call reaches him;
- dave as a baresip registered over TCP (it connects from 127.0.0.1, worker
  1's home too): the kernel hands his connection to worker 1; carol's call,
  owned by worker 0, reaches him on that connection (worker 0 writes through
  worker 1 and opens none) and his answers come back to worker 0.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sipp import Sipp, describe
from offhook.config import load_settings
from offhook.ris.control import request_at
from offhook.workers.reuseport import home_of
from offhook.workers.status import summaries
from support.server import OffhookServer, device, plan_of, sip_options_ping

PASSWORDS = {"carol": "carol-Secret-3", "dave": "dave-Secret-4", "erin": "erin-Secret-5"}
DNS = {"carol": "1003", "dave": "1004", "erin": "1005"}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])
ON_0 = "127.0.0.2"  # worker 0's source
ON_1 = "127.0.0.3"  # worker 1's source
WAIT = 30.0


def until(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something true (bounded: a stuck node fails)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)


def options_from(source: str, port: int) -> None:
    """One OPTIONS to the node from ``source`` (a fresh port); its answer is not read."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        tag = uuid.uuid4().hex[:10]
        s.sendto(
            (
                f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {source}:{s.getsockname()[1]};branch=z9hG4bK{tag};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:probe@{source}>;tag={tag}\r\n"
                f"To: <sip:127.0.0.1:{port}>\r\nCall-ID: {tag}@{source}\r\n"
                "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )


def status(server: OffhookServer, index: int) -> dict[str, Any]:
    state = request_at(server.admin_host, server.admin_port + index, "status", timeout=5.0)
    assert isinstance(state, dict)
    return state


def registered(server: OffhookServer, index: int, device_name: str) -> list[dict[str, Any]]:
    return [r for r in status(server, index)["registrations"] if r["device"] == device_name]


def start_node(tmp_path: Path, web: bool = False, **auth: Any) -> OffhookServer:
    extra: dict[str, dict[str, Any]] = {"node": {"workers": 2}}
    if auth:
        extra["auth"] = auth
    if web:
        extra["web"] = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
    server = OffhookServer(tmp_path, PLAN, extra_config=extra, web=web)
    server.start()
    # Both workers serve (the start-up OPTIONS reached one of them).
    for index in (0, 1):
        until(f"worker {index} answers", lambda i=index: status(server, i)["worker"])
    return server


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OffhookServer]:
    require_binary("sipp")
    server = start_node(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def sipp_dir(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return d


def register(
    server: OffhookServer,
    workdir: Path,
    name: str,
    host: str,
    contact_port: int,
    password: str | None = None,
    scenario: str = "register.xml",
    expires: int = 300,
) -> bool:
    reg = Sipp(
        workdir,
        scenario,
        f"register-{name}-{time.monotonic_ns()}",
        target=f"127.0.0.1:{server.sip_port}",
        keys={
            "user": name,
            "contact_host": host,
            "contact_port": str(contact_port),
            "expires": str(expires),
        },
        auth=(name, password or PASSWORDS[name]),
        timeout_s=15,
        host=host,
    )
    result = reg.run()
    return result.ok


def call(
    server: OffhookServer, workdir: Path, caller: str, callee: str, number: str = "1004"
) -> None:
    """``caller`` (a SIPp UAC) calls ``number``; ``callee`` (a SIPp UAS registered from
    the other worker's source) answers and hangs up."""
    caller_host, callee_host = (ON_0, ON_1) if caller == "carol" else (ON_1, ON_0)
    with Sipp(
        workdir,
        "uas_bye.xml",
        f"uas-{callee}-{time.monotonic_ns()}",
        pause_ms=500,
        host=callee_host,
    ) as uas:
        assert register(server, workdir, callee, callee_host, uas.port)
        # The caller's worker holds a copy of the callee's binding, learned over the bus.
        home = home_of(caller_host, 2)
        until(f"worker {home} knows {callee}", lambda: registered(server, home, callee))
        uac = Sipp(
            workdir,
            "uac_auth_callee_bye.xml",
            f"uac-{caller}-{time.monotonic_ns()}",
            target=f"127.0.0.1:{server.sip_port}",
            keys={"caller": caller},
            service=number,
            auth=(caller, PASSWORDS[caller]),
            timeout_s=30,
            host=caller_host,
        )
        called = uac.run()
        assert called.ok, describe(called)
        served = uas.wait(timeout=20)
        assert served.ok, describe(served)


def call_dave(server: OffhookServer, workdir: Path) -> None:
    """carol (worker 0) calls dave (worker 1), who answers and hangs up; one CDR."""
    call(server, workdir, "carol", "dave")


def test_sources_land_on_their_workers() -> None:
    assert home_of(ON_0, 2) == 0
    assert home_of(ON_1, 2) == 1


def test_call_across_workers_completes_with_one_cdr(node: OffhookServer, tmp_path: Path) -> None:
    work = sipp_dir(tmp_path, "sipp")
    call_dave(node, work)
    rows = node.wait_cdr(lambda r: r.get("called") == "1004")
    assert len(rows) == 1, rows
    assert rows[0]["cause"] == "16", rows[0]
    assert rows[0]["answer"], rows[0]
    w0, w1 = status(node, 0), status(node, 1)
    # dave registered on worker 1, from his own address; worker 0 has the copy.
    assert [r["source"].split(":")[0] for r in registered(node, 1, "dave")] == [ON_1]
    # dave's answers and BYE reached worker 1 and were passed to worker 0, the call's owner.
    assert w1["worker"]["forwarded"] >= 3, w1["worker"]
    assert w0["worker"]["received"] >= 3, w0["worker"]
    assert w0["worker"]["index"] == 0 and w1["worker"]["index"] == 1
    # offhook status: worker 0's view, then one line per worker.
    rows = summaries(load_settings(node.config_path))
    assert [(r["index"], r["pid"]) for r in rows] == [
        (0, w0["worker"]["pid"]),
        (1, w1["worker"]["pid"]),
    ]
    assert all(r["registrations"] >= 1 for r in rows)
    printed = node.run_cli("status", check=True).stdout
    assert "Workers (2)" in printed and str(w1["worker"]["pid"]) in printed


def ris_row(server: OffhookServer, index: int, name: str) -> dict[str, Any]:
    answer = request_at(server.admin_host, server.admin_port + index, "ris_devices", name=name)
    (row,) = answer["devices"]
    assert isinstance(row, dict)
    return row


def test_every_worker_sees_a_phone_come_and_go(node: OffhookServer, tmp_path: Path) -> None:
    """dave registers on worker 1 and leaves again: worker 0 (whose real-time
    information the web process and CTI read) publishes both, as worker 1 does, so
    its device row says when he came and went and what he was."""
    work = sipp_dir(tmp_path, "sipp")
    assert register(node, work, "dave", ON_1, 5996)
    until("worker 0 knows dave", lambda: registered(node, 0, "dave"))
    assert register(node, work, "dave", ON_1, 5996, expires=0)
    until("worker 0 let dave go", lambda: not registered(node, 0, "dave"))
    rows = [ris_row(node, index, "dave") for index in (0, 1)]
    for index, row in enumerate(rows):
        assert row["status"] == "unregistered", (index, row)
        assert row["registered_at"] and row["unregistered_at"], (index, row)
        assert (row["address"], row["transport"]) == (ON_1, "udp"), (index, row)


def test_blocked_source_stays_blocked_on_its_worker(tmp_path: Path) -> None:
    require_binary("sipp")
    work = sipp_dir(tmp_path, "sipp")
    server = start_node(tmp_path, block_after=3, throttle_after=100)
    try:
        for _ in range(3):  # three failed logins from 127.0.0.2 (worker 0)
            assert register(server, work, "erin", ON_0, 5999, "wrong", "register_wrong.xml")
        until("worker 0 blocks 127.0.0.2", lambda: status(server, 0)["auth"]["blocked_now"] == 1)
        before = status(server, 0)["counters"]["sip"]["blocked_requests"]
        # Another port of the same address: the same worker, dropped there.
        options_from(ON_0, server.sip_port)
        until(
            "the blocked source's OPTIONS dropped on worker 0",
            lambda: status(server, 0)["counters"]["sip"]["blocked_requests"] > before,
        )
        # The other worker's source is not affected: answered, and it registers.
        assert status(server, 1)["auth"]["blocked_now"] == 0
        assert register(server, work, "erin", ON_1, 5998)
        assert registered(server, 1, "erin")
    finally:
        server.stop()


def test_an_accounts_failed_logins_are_summed_over_the_workers(tmp_path: Path) -> None:
    require_binary("sipp")
    work = sipp_dir(tmp_path, "sipp")
    server = start_node(tmp_path, account_alert_after=4, block_after=0, throttle_after=100)
    try:
        for host in (ON_0, ON_1, ON_0, ON_1):  # two failures against erin on each worker
            assert register(server, work, "erin", host, 5997, "wrong", "register_wrong.xml")
        for index in (0, 1):
            until(
                f"worker {index} counts erin's failures on both workers",
                lambda i=index: (
                    status(server, i)["auth"]["accounts_under_attack"]
                    == [{"account": "erin", "failures": 4}]
                ),
            )
        assert "auth: account 'erin' under attack" in server.log()
    finally:
        server.stop()


def test_metrics_of_both_workers_on_the_web_listener(tmp_path: Path) -> None:
    require_binary("sipp")
    work = sipp_dir(tmp_path, "sipp")
    server = start_node(tmp_path, web=True, throttle_after=100)
    try:
        token = server.api_token()
        assert register(server, work, "dave", ON_1, 5996)  # registered by worker 1
        assert register(server, work, "erin", ON_0, 5995, "wrong", "register_wrong.xml")

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            request = urllib.request.Request(
                f"{server.web_url}/metrics", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                text = answer.read().decode()
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }

        def worker_sample(name: str, worker: str, **labels: str) -> float | None:
            key = (name, tuple(sorted({**labels, "worker": worker}.items())))
            return scraped().get(key)

        for index in "01":
            assert worker_sample("offhook_node_up", index) == 1
        until(
            "worker 0 counts its source's failed login",
            lambda: worker_sample("offhook_auth_failures_total", "0") == 1,
        )
        assert worker_sample("offhook_auth_failures_total", "1") == 0
        # dave's binding: worker 1's own, worker 0's copy (the registrations gauge per worker).
        for index in "01":
            until(
                f"worker {index} shows dave registered",
                lambda i=index: worker_sample("offhook_registered_devices", i, protocol="sip") == 1,
            )
    finally:
        server.stop()


def test_killed_worker_is_replaced_and_serves_its_socket(
    node: OffhookServer, tmp_path: Path
) -> None:
    work = sipp_dir(tmp_path, "sipp")
    assert register(node, work, "dave", ON_1, 5997)
    until("worker 0 knows dave", lambda: registered(node, 0, "dave"))
    old = status(node, 1)["worker"]["pid"]
    os.kill(old, signal.SIGKILL)
    # Worker 0 goes on: it registers a phone of its own.
    assert register(node, work, "carol", ON_0, 5996)
    assert registered(node, 0, "carol")
    # The supervisor starts a replacement on the same socket, which asks worker 0
    # for the table (carol's binding and its copy of dave's).
    new = until("a new worker 1", lambda: (p := status(node, 1)["worker"]["pid"]) != old and p)
    assert new != old
    until("worker 1 has the table", lambda: registered(node, 1, "carol"))
    # dave re-registers with the new worker 1, and carol's call reaches him.
    call_dave(node, work)
    rows = node.wait_cdr(lambda r: r.get("called") == "1004")
    assert [r["cause"] for r in rows] == ["16"], rows


def test_ipv4_and_ipv6_groups(tmp_path: Path) -> None:
    """One group per listen address: both families answered, each worker on both."""
    server = OffhookServer(
        tmp_path, PLAN, extra_config={"node": {"workers": 2}}, listen=["127.0.0.1", "::1"]
    )
    server.start()
    try:
        for index in (0, 1):
            state = until(f"worker {index} answers", lambda i=index: status(server, i))
            assert state["sip"]["listen"] == ["127.0.0.1", "::1"]
        assert home_of("::1", 2) == 1
        assert until("OPTIONS over IPv6", lambda: sip_options_ping(server.sip_port, "::1"))
        assert until("OPTIONS over IPv4", lambda: sip_options_ping(server.sip_port, "127.0.0.1"))
    finally:
        server.stop()


def dave_phone(
    node: OffhookServer, tmp_path: Path, uri_params: str = "", answermode: str = "manual"
) -> Baresip:
    """dave as a baresip on worker 1's source address (over UDP; ``;transport=tcp``: TCP)."""
    require_binary("baresip")
    return Baresip(
        tmp_path,
        "dave",
        aor=f"sip:dave@127.0.0.1:{node.sip_port}{uri_params}",
        password=PASSWORDS["dave"],
        regint=120,
        answermode=answermode,
        host=ON_1,
    )


def test_a_phone_on_tcp_is_reached_on_its_connection_from_any_worker(
    node: OffhookServer, tmp_path: Path
) -> None:
    dave = dave_phone(node, tmp_path, ";transport=tcp", answermode="auto")
    with dave:
        dave.wait_registered()
        (binding,) = until("worker 1 holds dave's binding", lambda: registered(node, 1, "dave"))
        # baresip connects from 127.0.0.1 whatever its interface: worker 1's home too.
        host = binding["source"].rsplit(":", 1)[0]
        assert home_of(host, 2) == 1 and binding["transport"] == "tcp", binding
        until("worker 0 knows dave", lambda: registered(node, 0, "dave"))
        uac = Sipp(
            sipp_dir(tmp_path, "sipp"),
            "uac_auth.xml",
            f"uac-carol-{time.monotonic_ns()}",
            target=f"127.0.0.1:{node.sip_port}",
            keys={"caller": "carol"},
            service="1004",
            auth=("carol", PASSWORDS["carol"]),
            pause_ms=1000,
            timeout_s=30,
            host=ON_0,
        )
        called = uac.run()
        assert called.ok, describe(called)
        rows = node.wait_cdr(lambda r: r.get("called") == "1004")
        assert [(r["cause"], bool(r["answer"])) for r in rows] == [("16", True)], rows
        w0, w1 = status(node, 0), status(node, 1)
        # Worker 0 owned the call: its INVITE, ACK and BYE went to dave through worker 1.
        assert w0["worker"]["relayed"] >= 3, w0["worker"]
        assert w1["worker"]["relays_written"] >= 3, w1["worker"]
        # dave's answers came in on worker 1's connection and were passed to worker 0.
        assert w1["worker"]["forwarded"] >= 3, w1["worker"]
        # One connection, dave's own: worker 0 opened none.
        assert w0["listeners"]["sip"]["tcp_connections"] == 0, w0["listeners"]
        assert w1["listeners"]["sip"]["tcp_connections"] == 1, w1["listeners"]


def test_forward_all_set_on_one_worker_routes_calls_on_the_other(
    node: OffhookServer, tmp_path: Path
) -> None:
    """dave's forward all, set through worker 0 (the web process's and CTI's), holds
    for erin's call that worker 1 takes: it rings carol, and is stored once."""
    work = sipp_dir(tmp_path, "sipp")
    forward = {"device": "dave", "dn": "1004", "destination": "1003"}
    assert request_at(node.admin_host, node.admin_port, "forward_all", **forward) == {"cause": None}

    def forwarded_on_1() -> bool:
        coverage = request_at(node.admin_host, node.admin_port + 1, "coverage", device="dave")
        return bool(coverage["lines"][0]["forward_all"] == "1003")

    until("worker 1 forwards dave's line", forwarded_on_1)
    call(node, work, "erin", "carol")  # erin dials dave's 1004 from worker 1's source
    rows = node.wait_cdr(lambda r: r.get("calling") == "1005")
    assert [(r["original_called"], r["called"], r["cause"]) for r in rows] == [
        ("1004", "1003", "16")
    ], rows
    assert status(node, 1)["worker"]["settings_adopted"] == 1


def test_a_busy_lamp_follows_a_call_on_another_worker(node: OffhookServer, tmp_path: Path) -> None:
    """carol's BLF of dave's line lives on worker 0 (her address's); erin's call to
    dave is worker 1's: the lamp still shows it ringing, in use and idle again."""
    work = sipp_dir(tmp_path, "sipp")
    dave = dave_phone(node, tmp_path)
    blf = Sipp(
        work,
        "subscribe_dialog.xml",
        f"blf-carol-{time.monotonic_ns()}",
        target=f"127.0.0.1:{node.sip_port}",
        keys={"user": "carol"},
        service="1004",
        auth=("carol", PASSWORDS["carol"]),
        timeout_s=60,
        host=ON_0,
    )
    assert register(node, work, "carol", ON_0, blf.port)
    with dave:
        dave.wait_registered()
        blf.start(listening=False)
        try:
            until(
                "carol's lamp on worker 0",
                lambda: status(node, 0)["subscriptions"]["by_package"].get("dialog"),
            )
            call = Sipp(
                work,
                "uac_auth.xml",
                f"uac-erin-{time.monotonic_ns()}",
                target=f"127.0.0.1:{node.sip_port}",
                keys={"caller": "erin"},
                service="1004",
                auth=("erin", PASSWORDS["erin"]),
                pause_ms=1000,
                timeout_s=30,
                host=ON_1,
            )
            call.start(listening=False)
            try:
                dave.wait_event("CALL_INCOMING", timeout=10)
                time.sleep(0.5)
                dave.accept()
                called = call.wait(timeout=30)
            finally:
                call.stop()
            assert called.ok, describe(called)
            lamp = blf.wait(timeout=30)
        finally:
            blf.stop()
    assert lamp.ok, describe(lamp)
    assert status(node, 1)["worker"]["lines_sent"] >= 2
