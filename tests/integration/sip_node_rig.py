"""The harness of the whole-node SIP tests: one offhook node in-process on loopback.

``run_node`` builds ``Settings`` (SQLite in ``tmp_path``, SIP and admin on free
loopback ports), loads the module-level ``plan()`` with
``offhook.db.plan.load_plan`` (tests with their own plan monkeypatch
``sip_node_rig.plan``), starts ``offhook.app.run(settings, ready)`` as a task
inside ``asyncio.run`` and stops it by setting the node's ``stopping`` event.
``run`` keeps its ``Node`` to itself, so the harness swaps ``offhook.app.Node``
for a subclass that records the instance (no change to app.py). The test UAs
are ``sipclient.SipClient``: raw messages out, ``parse_message`` on what comes
back, so every assertion is on a real wire message. CDRs are read with
``CdrRepository`` after the node stopped (it flushes its queue on the way out).
Also here: the SDP and OPTIONS helpers and ``place_call``/``establish`` for a
call between two registered test UAs.

Every wait is bounded (``SipClient.recv`` timeouts, ``asyncio.wait_for``
around the scenario and the shutdown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sipclient import HOST, Call, SipClient, sdp, tag

from offhook import app
from offhook.config import (
    AdminSettings,
    AuthSettings,
    DatabaseSettings,
    NodeSettings,
    SccpSettings,
    Settings,
    SipSettings,
    TftpSettings,
)
from offhook.db.cdr import CdrRepository, CdrRow
from offhook.db.engine import create_engine_for
from offhook.db.plan import load_plan
from offhook.ris.control import ControlClient
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from support.ports import free_port

REALM = "offhook.test"
NODE_NAME = "itest"
SCENARIO_TIMEOUT = 30.0

# name -> (password, DN, display)
DEVICES: dict[str, tuple[str, str, str]] = {
    "alice": ("alice-Secret-1", "1001", "Alice Smith"),
    "bob": ("bob-Secret-1", "1002", "Bob Jones"),
    "carol": ("carol-Secret-1", "1003", "Carol"),
    "frank": ("frank-Secret-1", "1004", "Frank"),  # never registers
    "dave": ("dave-Secret-1", "2000", "Sales Dave"),  # dave and erin share 2000
    "erin": ("erin-Secret-1", "2000", "Sales Erin"),
}


def plan() -> dict[str, Any]:
    return {
        "devices": [
            {
                "name": name,
                "protocol": "sip",
                "password": pw,
                "lines": [{"dn": dn, "display": display}],
            }
            for name, (pw, dn, display) in DEVICES.items()
        ]
    }


class RecordingNode(app.Node):
    """``app.Node`` that remembers every instance, so the test can stop the node."""

    instances: list[app.Node] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingNode.instances.append(self)


@dataclass
class Ctx:
    """What a scenario gets: the node, its addresses and UA factories."""

    settings: Settings
    node: app.Node
    clients: list[SipClient] = field(default_factory=list)

    @property
    def sip(self) -> tuple[str, int]:
        return (HOST, self.node.sip_port)

    async def ua(
        self,
        name: str,
        *,
        transport: str = "udp",
        password: str | None = None,
        display: str | None = None,
        register: bool = False,
    ) -> SipClient:
        pw = password if password is not None else DEVICES.get(name, ("x",))[0]
        client = SipClient(self.sip, name, pw, realm=REALM, transport=transport, display=display)
        await client.start()
        self.clients.append(client)
        if register:
            _, ok = await client.register(expires=300)
            assert ok.status == 200, f"{name} did not register: {ok.status} {ok.reason}"
        return client

    async def status(self) -> dict[str, Any]:
        """The node's ``status`` over its control endpoint (what ``offhook status`` shows)."""
        return await self.control("status")

    async def control(self, op: str, **args: Any) -> dict[str, Any]:
        """One op of the node's control endpoint (``metrics``: its Prometheus text)."""
        client = ControlClient(HOST, self.node.admin_port, timeout=3.0)
        try:
            data: dict[str, Any] = await client.request(op, **args)
        finally:
            await client.close()
        return data


@dataclass
class Result:
    settings: Settings

    def cdrs(self) -> list[CdrRow]:
        engine = create_engine_for(self.settings.database.url)
        try:
            return CdrRepository(engine).query()
        finally:
            engine.dispose()


def make_settings(tmp_path: Path, **sip: Any) -> Settings:
    return Settings(
        node=NodeSettings(name=NODE_NAME),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'offhook.db'}"),
        sip=SipSettings(
            listen=HOST,
            port=free_port(),
            allow=["127.0.0.0/8"],
            realm=REALM,
            **sip,
        ),
        admin=AdminSettings(listen=HOST, port=free_port()),
        auth=AuthSettings(secret="integration-test-secret"),
        # Every listener on a free loopback port: nodes side by side, no root needed.
        sccp=SccpSettings(listen=HOST, port=free_port(), allow=["127.0.0.0/8"]),
        tftp=TftpSettings(
            listen=HOST,
            port=free_port(),
            http_port=free_port(),
            allow=["127.0.0.0/8"],
            root=str(tmp_path / "tftproot"),
        ),
    )


def run_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[Ctx], Awaitable[None]],
    settings: Settings | None = None,
    **sip: Any,
) -> Result:
    """Load the plan, run a node, run ``scenario`` against it, stop the node.

    ``settings``: the node's own (default: ``make_settings`` with ``sip`` keys).
    """
    settings = settings or make_settings(tmp_path, **sip)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan(), sort_keys=False))
    load_plan(plan_path, settings.database.url, REALM)
    monkeypatch.setattr(RecordingNode, "instances", [])
    monkeypatch.setattr(app, "Node", RecordingNode)

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(app.run(settings, ready))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=15.0, return_when="FIRST_COMPLETED")
        if waiter not in done:
            waiter.cancel()
            if task.done():
                task.result()  # raises why the node did not start
            task.cancel()
            raise TimeoutError("node not ready in 15 s")
        node = RecordingNode.instances[-1]
        ctx = Ctx(settings, node)
        try:
            await asyncio.wait_for(scenario(ctx), SCENARIO_TIMEOUT)
        finally:
            for client in ctx.clients:
                await client.close()
            node.stopping.set()
            await asyncio.wait_for(task, 15.0)

    asyncio.run(main())
    return Result(settings)


def options(client: SipClient, call_id: str | None = None) -> bytes:
    return client.build(
        "OPTIONS",
        client.server_uri,
        from_=client.from_value(),
        to=f"<{client.server_uri}>",
        call_id=call_id or f"opt-{tag()}@{HOST}",
        cseq=1,
        extra=[("Accept", "application/sdp")],
    )


async def options_ok(client: SipClient, timeout: float = 2.0) -> SipResponse:
    call_id = f"opt-{tag()}@{HOST}"
    client.send_bytes(options(client, call_id))
    msg = await client.recv(lambda m: m.call_id == call_id, timeout)
    assert isinstance(msg, SipResponse) and msg.status == 200, msg
    return msg


def media_port(body: bytes) -> int:
    for line in body.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no m=audio in {body!r}")


def direction(body: bytes) -> str:
    for line in body.decode().splitlines():
        if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return line[2:]
    return "sendrecv"


def statuses(msgs: list[SipMessage]) -> list[int]:
    return [m.status for m in msgs if isinstance(m, SipResponse)]


A_PORT = 40000  # the caller's RTP port in its SDP
B_PORT = 40010  # the callee's


async def place_call(
    caller: SipClient, callee: SipClient, dn: str, body: bytes | None = None
) -> tuple[Call, SipRequest]:
    """Caller INVITEs ``dn`` (answering the 407); return the call and the callee's INVITE."""
    call = await caller.call(dn, body=sdp(A_PORT) if body is None else body)
    invite = await callee.recv_request("INVITE")
    return call, invite


@dataclass
class Established:
    call: Call
    invite: SipRequest  # the INVITE the callee got
    callee_tag: str
    ok: SipResponse  # the 200 the caller got

    def callee_dialog(self, callee: SipClient) -> Any:
        return callee.uas_dialog(self.invite, self.callee_tag)


async def establish(caller: SipClient, callee: SipClient, dn: str) -> Established:
    call, invite = await place_call(caller, callee, dn)
    to_tag = tag()
    callee.answer(invite, 180, to_tag=to_tag)
    await call.provisional(180)
    callee.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
    ok = await call.final()
    assert ok.status == 200, (ok.status, ok.reason)
    call.ack(ok)
    await callee.recv_request("ACK")
    return Established(call, invite, to_tag, ok)
