"""docs/grafana/offhook-dashboard.json asks only for metrics offhook exports.

Every ``offhook_*`` name in a panel's query must be a sample the node's
registry (``ris.metrics.NodeMetrics``, with a media server and its child
process) or the web app's registry (requests, sessions, logins, CTI, the
web process) writes, so that a renamed metric breaks this test instead of
a panel.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from offhook.core.bus import EventBus
from offhook.core.events import PartyInfo
from offhook.core.records import (
    CallAlerting,
    CallEnded,
    CallRecord,
    CallStarted,
    RegistrationRejected,
)
from offhook.net.counters import RejectionCounters
from offhook.ris.metrics import NodeMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "offhook-dashboard.json"
NAME = re.compile(r"\boffhook_[a-z0-9_]+")


@dataclass
class Client:
    connected: bool = True
    handles: frozenset[str] = frozenset()

    def stats(self, reply: Any) -> None:
        answer = {
            "streams": 1,
            "bridges": 0,
            "counters": {"late_ticks": 0, "jitter_late": 0, "rx_packets": 1, "tx_packets": 1},
        }
        asyncio.get_running_loop().call_soon(reply, answer)


@dataclass
class Supervisor:
    pid: int | None = os.getpid()
    starts: int = 1


@dataclass
class Plane:
    clients: dict[str, Client]
    supervisor: Supervisor


class Admin:
    def status(self) -> dict[str, int]:
        return {"connections": 1}


class Auth:
    def status(self) -> dict[str, int]:
        keys = ("failures", "blocks", "throttled", "dropped_blocked", "dropped_throttled")
        gauges = ("blocked_now", "throttled_now", "tracked_sources")
        return dict.fromkeys((*keys, *gauges), 0)


def samples(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def node_samples() -> set[str]:
    bus = EventBus()
    counters = RejectionCounters()
    counters.increment("sip", "acl")
    plane = Plane({"embedded": Client()}, Supervisor())
    metrics = NodeMetrics(bus, lambda: 0.0).watch(
        clock=lambda: 0.0,
        rejections=counters,
        auth=Auth(),
        media=lambda: plane,
        admin=lambda: Admin(),
    )
    bus.publish(CallStarted("c1", PartyInfo("1001"), "1002", "alice", 0.0))
    bus.publish(CallAlerting("c1", "bob"))
    record = CallRecord("c1", "1001", "1002", "1002", "alice", "bob", 0.0, None, 1.0, 0, 17, "")
    bus.publish(CallEnded(record))
    bus.publish(RegistrationRejected("mallory", "sip", "192.0.2.1:5060", "auth_failed"))
    return samples(asyncio.run(metrics.exposition()))


def queried_names() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            names |= set(NAME.findall(target["expr"]))
    for variable in board["templating"]["list"]:
        names |= set(NAME.findall(json.dumps(variable.get("query", ""))))
    return names


def test_every_queried_metric_is_exported(web_app: FastAPI) -> None:
    exported = node_samples() | samples(generate_latest(web_app.state.metrics.registry).decode())
    exported.add("offhook_node_up")  # written by /metrics itself (api_meta)
    web_refused = {"offhook_web_refused_total"}  # labelled by reason: no sample until one
    missing = sorted(queried_names() - exported - web_refused)
    assert missing == []
    assert len(queried_names()) >= 30


def test_the_dashboard_is_importable_json() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] == "offhook" and board["uid"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
