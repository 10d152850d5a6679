"""``/metrics`` (the web's registry, then the node's), ``/healthz`` and ``/readyz``.

The node side is a real control endpoint (``ris.control.ControlServer`` on a
loopback port) serving the ops of a real ``ris.metrics.NodeMetrics``; the
web app asks it through its ``ControlClient``, as in production. A full
``offhook serve`` with phones is in ``tests/interop/test_metrics_live.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from offhook.config import Settings
from offhook.core.bus import EventBus
from offhook.core.events import PartyInfo
from offhook.core.records import CallStarted
from offhook.net.acl import AllowList
from offhook.ris.control import ControlClient, ControlServer
from offhook.ris.metrics import NodeMetrics
from offhook.web.api_meta import merged_exposition
from offhook.web.app import create_app
from support.ports import HOST
from web.rig import client_for


def families(text: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in found, f"{family.name} twice"
        found[family.name] = family
    return found


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"no {name} {labels}")


@dataclass
class Node:
    bus: EventBus
    metrics: NodeMetrics
    server: ControlServer
    port: int


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    bus = EventBus()
    metrics = NodeMetrics(bus, lambda: 0.0, node="test-node").watch(clock=lambda: 0.0)
    server = ControlServer(metrics.ops(), allow=AllowList(["127.0.0.0/8"]).allows)
    port = await server.start(HOST, 0)
    try:
        yield Node(bus, metrics, server, port)
    finally:
        await server.close()


@pytest.fixture
async def live(
    node: Node, web_settings: Settings, web_engine: Engine
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    control = ControlClient(HOST, node.port, timeout=5.0)
    app = create_app(web_settings, engine=web_engine, control=control)
    async with client_for(app) as client:
        yield app, client
    await control.close()


async def test_healthz_is_public(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "alive"}


async def test_readyz_says_which_check_failed_when_the_node_is_down(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/readyz")  # the rig's node port: nothing listens
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not ready"
    assert body["failed"] == ["node"] and body["checks"]["database"] is True


async def test_readyz_with_the_node(live: tuple[FastAPI, httpx.AsyncClient], node: Node) -> None:
    app, client = live
    answer = await client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ready",
        "checks": {"database": True, "node": True},
        "failed": [],
    }
    node.metrics.media_expected = True  # [media] asks for a media server none runs
    app.state.readiness.at = float("-inf")  # past the reuse time
    answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["failed"] == ["media"]


async def test_metrics_need_live_read(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    assert (await client.get("/metrics")).status_code == 401
    user = {"Authorization": f"Bearer {tokens['user']}"}
    assert (await client.get("/metrics", headers=user)).status_code == 403


async def test_metrics_without_the_node(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    answer = await client.get(
        "/metrics", headers={"Authorization": f"Bearer {tokens['full-admin']}"}
    )
    assert answer.status_code == 200
    found = families(answer.text)
    assert sample(answer.text, "offhook_node_up") == 0
    assert "offhook_web_process_resident_memory_bytes" in found
    assert "offhook_web_requests" in found
    assert not any(name.startswith("offhook_call") for name in found)


async def test_metrics_with_the_node(live: tuple[FastAPI, httpx.AsyncClient], node: Node) -> None:
    app, client = live
    users = app.state.ctx.users
    users.add("ops", "full-admin", "correct horse battery staple")
    _, secret = users.create_token("ops", "scraper")
    node.bus.publish(CallStarted("c1", PartyInfo("1001"), "1002", "alice", 0.0))
    answer = await client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    found = families(answer.text)  # no name twice, though both processes collect theirs
    assert sample(answer.text, "offhook_node_up") == 1
    assert sample(answer.text, "offhook_call_attempts_total") == 1
    assert sample(answer.text, "offhook_node_info", node="test-node") == 1
    assert "offhook_process_cpu_seconds" in found and "offhook_web_process_cpu_seconds" in found
    assert all(name.startswith("offhook_") for name in found)


def test_a_node_family_the_web_has_is_left_out() -> None:
    web = [
        GaugeMetricFamily("offhook_web_sessions", "web", value=3),
        CounterMetricFamily("offhook_shared", "the web's", value=1),
    ]
    node_text = (
        "# TYPE offhook_shared_total counter\noffhook_shared_total 99\n"
        "# TYPE offhook_node_up gauge\noffhook_node_up 7\n"
        "# TYPE offhook_calls_active gauge\noffhook_calls_active 2\n"
    )
    text = merged_exposition(web, node_text).decode()
    families(text)
    assert sample(text, "offhook_shared_total") == 1
    assert sample(text, "offhook_node_up") == 1
    assert sample(text, "offhook_calls_active") == 2
    broken = merged_exposition(web, "offhook_x{ 1\n").decode()  # unreadable: node part left out
    assert sample(broken, "offhook_node_up") == 1 and "offhook_x" not in broken


NAMES = st.sampled_from(
    ["offhook_a", "offhook_b", "offhook_a_total", "offhook_a_created", "offhook_node_up"]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(NAMES, st.sampled_from(["counter", "gauge"])), max_size=4),
    st.lists(st.tuples(NAMES, st.sampled_from(["counter", "gauge"])), max_size=4),
)
def test_no_name_is_written_twice(
    web_side: list[tuple[str, str]], node_side: list[tuple[str, str]]
) -> None:
    web: list[Any] = []
    web_names: set[str] = set()
    for name, kind in dict(web_side).items():
        if kind == "counter":
            family: Any = CounterMetricFamily(name.removesuffix("_total"), "w", value=1)
        else:
            family = GaugeMetricFamily(name, "w", value=1)
        names = {family.name, *(s.name for s in family.samples)}
        if names & web_names:
            return  # a registry refuses such a pair: not a web side that can exist
        web_names |= names
        web.append(family)
    lines = []
    for name, kind in dict(node_side).items():
        lines += [f"# TYPE {name} {kind}", f"{name} 2"]
    try:
        node_text = "\n".join(lines) + "\n"
        list(text_string_to_metric_families(node_text))
    except ValueError:
        return  # not a valid node exposition in the first place
    for node in (node_text, [node_text, None, node_text]):  # one node, or three workers
        text = merged_exposition(web, node).decode()
        seen: set[str] = set()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                assert key not in seen, key
                seen.add(key)  # type: ignore[arg-type]


def test_workers_samples_carry_their_worker_label() -> None:
    web = [GaugeMetricFamily("offhook_web_sessions", "web", value=3)]
    worker = (
        "# TYPE offhook_calls_active gauge\noffhook_calls_active {n}\n"
        '# TYPE offhook_call_attempts counter\noffhook_call_attempts_total{{protocol="sip"}} {n}\n'
    )
    text = merged_exposition(web, [worker.format(n=2), None, worker.format(n=5)]).decode()
    families(text)  # one family per name, the workers' samples in it
    assert [sample(text, "offhook_node_up", worker=w) for w in "012"] == [1, 0, 1]
    assert sample(text, "offhook_calls_active", worker="0") == 2
    assert sample(text, "offhook_calls_active", worker="2") == 5
    assert sample(text, "offhook_call_attempts_total", protocol="sip", worker="2") == 5
    assert sample(text, "offhook_web_sessions") == 3  # the web's own: no worker label
    assert 'worker="1"' not in text.replace('offhook_node_up{worker="1"}', "")


async def test_metrics_of_every_worker(
    web_settings: Settings, web_engine: Engine, node: Node
) -> None:
    """A node of two workers: the web process asks both control endpoints."""
    bus = EventBus()
    second = NodeMetrics(bus, lambda: 0.0, node="test-node").watch(clock=lambda: 0.0)
    server = ControlServer(second.ops(), allow=AllowList(["127.0.0.0/8"]).allows)
    port = await server.start(HOST, 0)
    controls = (ControlClient(HOST, node.port, timeout=5.0), ControlClient(HOST, port, timeout=5.0))
    app = create_app(web_settings, engine=web_engine, control=controls[0], workers=controls[1:])
    try:
        async with client_for(app) as client:
            users = app.state.ctx.users
            users.add("ops", "full-admin", "correct horse battery staple")
            _, secret = users.create_token("ops", "scraper")
            node.bus.publish(CallStarted("c1", PartyInfo("1001"), "1002", "alice", 0.0))
            for n in range(2):
                bus.publish(CallStarted(f"d{n}", PartyInfo("1003"), "1002", "carol", 0.0))
            answer = await client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
            await server.close()
            down = await client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    finally:
        for control in controls:
            await control.close()
    assert answer.status_code == 200
    families(answer.text)
    assert sample(answer.text, "offhook_call_attempts_total", worker="0") == 1
    assert sample(answer.text, "offhook_call_attempts_total", worker="1") == 2
    assert [sample(answer.text, "offhook_node_up", worker=w) for w in "01"] == [1, 1]
    assert [sample(down.text, "offhook_node_up", worker=w) for w in "01"] == [1, 0]
