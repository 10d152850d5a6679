"""/api/v1/ris: the web process asks a real control endpoint serving the node's RIS ops.

The node side is in-process but real: a ``CallEngine`` (the core test
harness's devices and bindings), ``node_ris.ris_ops`` over it, served by a
``ris.control.ControlServer`` on a loopback port; the app reaches it with a
``ControlClient``, as the web process reaches a node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from offhook.common.location import Binding
from offhook.config import Settings
from offhook.core.directory import DeviceInfo, LineInfo
from offhook.core.records import RegistrationChanged, RegistrationRejected
from offhook.node_ris import ris_ops
from offhook.ris.control import ControlClient, ControlServer
from offhook.web.app import create_app
from unit.core.core_harness import Harness
from web.rig import PASSWORD, client_for

PHONE = "SEP001122334455"


@dataclass
class Rig:
    harness: Harness
    client: httpx.AsyncClient
    headers: dict[str, str]
    user_headers: dict[str, str]

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)


@pytest.fixture
async def rig(web_settings: Settings, web_engine: Engine) -> AsyncIterator[Rig]:
    h = Harness()
    h.device("alice", "1001")
    h.device("bob", "1002")
    h.devices.append(DeviceInfo(PHONE, "sccp", (LineInfo("2001"),), model="7960"))
    h.locations.put(
        Binding("alice", "sip", "sip:alice@10.0.0.5", 1e9, ("10.0.0.5", 5060), user_agent="x/1.2")
    )
    h.bus.publish(RegistrationChanged("alice", "sip", True))
    h.bus.publish(RegistrationRejected("bob", "sip", "192.0.2.7:5060", "auth-failed"))
    ops = ris_ops(h.engine, h.bus, h.locations, h.clock)
    # the index follows the bus from when the ops were made: these come after
    h.bus.publish(RegistrationRejected("bob", "sip", "192.0.2.7:5060", "auth-failed"))
    h.bus.publish(
        RegistrationRejected("SEPFFFFFFFFFFFF", "sccp", "10.9.0.1:51000", "unknown-device")
    )
    server = ControlServer(ops, allow=lambda host: True)
    port = await server.start("127.0.0.1", 0)
    control = ControlClient("127.0.0.1", port)
    app = create_app(web_settings, engine=web_engine, control=control)
    users = app.state.ctx.users
    users.add("ops", "read-only", PASSWORD)
    users.add("someone", "user", PASSWORD)
    _, token = users.create_token("ops", "tests")
    _, user_token = users.create_token("someone", "tests")
    async with client_for(app) as client:
        yield Rig(
            h,
            client,
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Bearer {user_token}"},
        )
    await control.close()
    await server.close()


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [d["name"] for d in answer.json()["devices"]]


async def test_devices_by_pattern_protocol_status_and_address(rig: Rig) -> None:
    answer = await rig.get("/api/v1/ris/devices")
    assert names(answer) == ["alice", "bob", PHONE, "SEPFFFFFFFFFFFF"]  # case ignored
    body = answer.json()
    assert (body["total"], body["truncated"], body["node"]) == (4, False, "n1")
    rows = {d["name"]: d for d in body["devices"]}
    assert rows["alice"]["status"] == "registered" and rows["alice"]["address"] == "10.0.0.5"
    assert rows["alice"]["lines"] == ["1001"] and rows["alice"]["configured"]
    assert rows[PHONE]["status"] == "unregistered" and rows[PHONE]["model"] == "Cisco 7960"
    bob = rows["bob"]
    assert (bob["status"], bob["rejections"], bob["address"]) == ("rejected", 1, "192.0.2.7")
    assert bob["last_rejection"]["reason"] == "auth-failed"
    assert not rows["SEPFFFFFFFFFFFF"]["configured"]

    assert names(await rig.get("/api/v1/ris/devices", name="sep*")) == [PHONE, "SEPFFFFFFFFFFFF"]
    assert names(await rig.get("/api/v1/ris/devices", protocol="sip")) == ["alice", "bob"]
    assert names(await rig.get("/api/v1/ris/devices", status="rejected")) == [
        "bob",
        "SEPFFFFFFFFFFFF",
    ]
    assert names(await rig.get("/api/v1/ris/devices", status="unregistered")) == [PHONE]
    assert names(await rig.get("/api/v1/ris/devices", address="10.0.0.0/8")) == [
        "alice",
        "SEPFFFFFFFFFFFF",
    ]
    assert names(await rig.get("/api/v1/ris/devices", address="192.0.")) == ["bob"]
    limited = await rig.get("/api/v1/ris/devices", limit=1)
    assert names(limited) == ["alice"] and limited.json()["truncated"]


async def test_a_user_agent_that_is_not_utf8_is_shown_not_a_500(rig: Rig) -> None:
    """The SIP parser keeps such header bytes as lone surrogates; the answer shows U+FFFD."""
    agent = b"Acme \xff\xfe/1.0".decode("utf-8", "surrogateescape")
    rig.harness.locations.put(
        Binding("bob", "sip", "sip:bob@10.0.0.6", 1e9, ("10.0.0.6", 5060), user_agent=agent)
    )
    answer = await rig.get("/api/v1/ris/devices", name="bob")
    assert answer.status_code == 200, answer.text
    assert answer.json()["devices"][0]["model"] == "Acme \ufffd\ufffd/1.0"


async def test_bad_queries_are_422(rig: Rig) -> None:
    refused = await rig.get("/api/v1/ris/devices", address="nowhere")  # the node refuses it
    assert refused.status_code == 422 and "address" in refused.json()["detail"]
    for params in ({"status": "busy"}, {"protocol": "h323"}, {"limit": 0}, {"name": "x" * 200}):
        assert (await rig.get("/api/v1/ris/devices", **params)).status_code == 422, params


async def test_calls_with_legs_and_media(rig: Rig) -> None:
    h = rig.harness
    contact = h.register("bob")
    h.call("alice", "1002")
    b_leg, _ = h.out(contact)
    h.engine.on_alerting(b_leg)
    answer = await rig.get("/api/v1/ris/calls")
    assert answer.status_code == 200, answer.text
    (call,) = answer.json()["calls"]
    assert (call["calling"], call["called"], call["state"]) == ("alice", "1002", "alerting")
    legs = {leg["device"]: leg for leg in call["legs"]}
    assert legs["alice"]["media"][0]["address"] == "10.0.0.1"
    assert (legs["bob"]["state"], legs["bob"]["direction"]) == ("alerting", "outbound")
    assert (await rig.get("/api/v1/ris/calls", device="carol")).json()["calls"] == []


async def test_permissions_and_a_node_that_is_down(
    rig: Rig, web_settings: Settings, web_engine: Engine
) -> None:
    assert (await rig.client.get("/api/v1/ris/devices")).status_code == 401
    refused = await rig.client.get("/api/v1/ris/calls", headers=rig.user_headers)
    assert refused.status_code == 403 and "live.read" in refused.text
    down = create_app(web_settings, engine=web_engine)  # [admin] port: nothing listens
    users = down.state.ctx.users
    _, token = users.create_token("ops", "down")
    async with client_for(down) as client:
        for path in ("/api/v1/ris/devices", "/api/v1/ris/calls"):
            answer = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 503 and answer.json() == {"detail": "node unavailable"}
