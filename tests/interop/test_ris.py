"""Real-time information against a real ``offhook serve`` with real phones.

Which devices are registered where, and which calls are up, asked three
ways: the node's control op (``ris_devices``/``ris_calls``), the REST API
of its web process (``/api/v1/ris/...`` with an API token), and ``offhook
status``. The phones:

=================  ======  =========================================================
device             DN      played by
=================  ======  =========================================================
alice              1001    baresip (answers by itself)
bob                1002    baresip with a wrong password: refused (digest failure)
SEP00192F0A0B0C    1003    the SCCP simulator as a 7941 on SCCP41.9-0-3S (Register)
dave               1004    nobody: never registers
SEPDEADBEEF0001    -       the SCCP simulator, a phone the plan does not have: refused
=================  ======  =========================================================
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from offhook.sccp.messages import CallState, Register
from offhook.sccp.ui import CallStateCode
from support.ports import HOST
from support.sccp_phone import PhoneRejected, SccpPhone
from support.server import CLI, OffhookServer, device, plan_of

CAROL = "SEP00192F0A0B0C"
STRANGER = "SEPDEADBEEF0001"
LOAD = "SCCP41.9-0-3S"
PASSWORD = "correct horse battery staple"
PLAN: dict[str, Any] = plan_of(
    [
        device("alice", "alice-Secret-1", "1001"),
        device("bob", "bob-Secret-2", "1002"),
        device("dave", "dave-Secret-4", "1004"),
    ]
)
PLAN["devices"].append(
    {"name": CAROL, "protocol": "sccp", "model": "7960", "lines": [{"dn": "1003"}]}
)


class Phone7941(SccpPhone):
    """The simulator registering as a 7941 does: Register's newer fields, its firmware load."""

    def register_message(self) -> Register:
        return dataclasses.replace(
            super().register_message(),
            device_type=115,
            protocol_version=19,
            max_conferences=1,
            active_conferences=0,
            mac_address=bytes.fromhex("00192f0a0b0c"),
            ipv4_scope=3,
            max_lines=2,
            ipv6=b"",
            ipv6_scope=0,
            firmware_load=LOAD,
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    require_binary("baresip")
    srv = OffhookServer(tmp_path, PLAN, web=True)
    srv.env["COLUMNS"] = "250"  # offhook status's tables: one line a row
    srv.start()
    try:
        srv.wait_web(timeout=180)  # a loaded machine: the child may be restarted first
        yield srv
    finally:
        srv.stop()


def ua(tmp_path: Path, server: OffhookServer, name: str, password: str) -> Baresip:
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=password,
        regint=120,
        answermode="auto",
    )


def api_token(server: OffhookServer) -> str:
    """A read-only user's API token (live.read), made with the CLI."""
    subprocess.run(
        [*CLI, "user", "add", "ops", "--role", "read-only", "--config", str(server.config_path)],
        input=PASSWORD + "\n",
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = server.run_cli("token", "create", "--user", "ops", check=True).stdout
    return out.strip()


def rest(server: OffhookServer, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.web_url}/api/v1/ris/{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def names(answer: dict[str, Any]) -> list[str]:
    return [d["name"] for d in answer["devices"]]


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """``check()``'s first true answer (a state reached, not a time: fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def run(body: Callable[[], Any], timeout: float = 120.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(body(), timeout)

    return asyncio.run(main())


def test_devices_by_pattern_protocol_status_and_address(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice = ua(tmp_path, server, "alice", "alice-Secret-1")
    bob = ua(tmp_path, server, "bob", "not-bobs-password")
    token = api_token(server)
    with alice, bob:
        alice.wait_registered()
        bob.wait_register_failed()

        async def body() -> None:
            async with Phone7941(CAROL, server.sccp_port, model="7941") as carol:
                await carol.register()
                async with SccpPhone(STRANGER, server.sccp_port) as stranger:
                    with pytest.raises(PhoneRejected):
                        await stranger.register()
                await asyncio.to_thread(check_queries, server, token, alice, carol)
                await carol.unregister()
                await asyncio.wait_for(carol.closed.wait(), 10)

        run(body)

        # Gone now: unregistered, showing what it was when it was last here.
        def carol_gone() -> dict[str, Any] | None:
            (row,) = server.control("ris_devices", name=CAROL)["devices"]
            return row if row["status"] == "unregistered" else None

        row = until(carol_gone, "carol unregistered")
        assert (row["model"], row["firmware"]) == ("Cisco 7941", LOAD)
        assert row["unregistered_at"] is not None and row["registered_at"] is not None


def check_queries(server: OffhookServer, token: str, alice: Baresip, carol: SccpPhone) -> None:
    everything = server.control("ris_devices")
    assert names(everything) == ["alice", "bob", "dave", CAROL, STRANGER]
    rows = {d["name"]: d for d in everything["devices"]}

    a = rows["alice"]
    assert (a["protocol"], a["status"], a["lines"], a["transport"]) == (
        "sip",
        "registered",
        ["1001"],
        "udp",
    )
    assert "baresip" in a["model"] and a["address"] == HOST and a["port"] == alice.sip_port
    assert a["registered_at"].endswith("+00:00") and a["last_rejection"] is None

    c = rows[CAROL]
    assert (c["protocol"], c["status"], c["model"], c["firmware"], c["lines"]) == (
        "sccp",
        "registered",
        "Cisco 7941",  # what the station says, not the plan's 7960
        LOAD,
        ["1003"],
    )
    assert (c["address"], c["port"], c["transport"]) == (HOST, carol.local_address[1], "tcp")

    b = rows["bob"]
    assert (b["status"], b["address"], b["configured"]) == ("rejected", HOST, True)
    assert b["last_rejection"]["reason"] == "auth-failed"
    assert b["last_rejection"]["source"].startswith(f"{HOST}:") and b["rejections"] >= 1

    s = rows[STRANGER]
    assert (s["status"], s["protocol"], s["configured"], s["address"]) == (
        "rejected",
        "sccp",
        False,
        HOST,
    )
    assert s["last_rejection"]["reason"] == "unknown-device"

    assert rows["dave"]["status"] == "unregistered" and rows["dave"]["address"] == ""

    def ask(**query: Any) -> list[str]:
        return names(server.control("ris_devices", **query))

    assert ask(name="SEP*") == [CAROL, STRANGER]
    assert ask(name="a?ICE") == ["alice"]
    assert ask(protocol="sip") == ["alice", "bob", "dave"]
    assert ask(protocol="sccp", status="registered") == [CAROL]
    assert ask(status="rejected") == ["bob", STRANGER]
    assert ask(status="unregistered") == ["dave"]
    assert ask(address=HOST, status="registered") == ["alice", CAROL]
    assert ask(address="127.0.0.0/8") == ["alice", "bob", CAROL, STRANGER]
    assert ask(address="127.") == ["alice", "bob", CAROL, STRANGER]
    assert ask(address="10.0.0.0/8") == []
    limited = server.control("ris_devices", limit=2)
    assert names(limited) == ["alice", "bob"] and limited["total"] == 5 and limited["truncated"]

    # The REST API answers the same.
    answer = rest(server, token, "devices", name="sep*", status="registered")
    assert answer.status_code == 200, answer.text
    assert names(answer.json()) == [CAROL]
    assert answer.json()["devices"][0]["firmware"] == LOAD
    answer = rest(server, token, "devices", status="rejected", address="127.0.0.0/8")
    assert names(answer.json()) == ["bob", STRANGER]
    assert rest(server, token, "devices", address="not-an-address").status_code == 422
    assert rest(server, "ofh_wrong", "devices").status_code == 401

    # offhook status, filtered (--json) and as tables.
    out = server.run_cli(
        "status", "--devices", "SEP*", "--status", "rejected", "--json", check=True
    )
    assert names(json.loads(out.stdout)) == [STRANGER]
    text = server.run_cli("status", "--protocol", "sip", check=True).stdout
    assert "alice" in text and "bob" in text and "auth-failed" in text and CAROL not in text
    text = server.run_cli("status", check=True).stdout
    registered, _, rest_of_it = text.partition("Refused registration")
    assert "Registered devices (2)" in registered and CAROL in registered and LOAD in registered
    assert "bob" in rest_of_it and STRANGER in rest_of_it and "unknown-device" in rest_of_it
    status = server.status()  # --json: the node's status with the query's answers
    assert {d["name"] for d in status["ris"]["devices"]["devices"]} >= {"alice", CAROL}


def state_is(code: CallStateCode) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, CallState) and m.call_state == code


def test_a_call_in_progress_shows_its_legs_and_media(server: OffhookServer, tmp_path: Path) -> None:
    alice = ua(tmp_path, server, "alice", "alice-Secret-1")
    token = api_token(server)
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with Phone7941(CAROL, server.sccp_port, model="7941") as carol:
                await carol.register()
                carol.off_hook(1)
                await carol.wait_for(state_is(CallStateCode.OFF_HOOK))
                carol.dial("1001")  # alice answers by herself
                await carol.wait_for(state_is(CallStateCode.CONNECTED), timeout=15)
                assert await carol.wait_rtp(20, timeout=10) >= 20
                await asyncio.to_thread(check_call, server, token, alice, carol)
                carol.on_hook(1)
                await carol.wait_for(state_is(CallStateCode.ON_HOOK), timeout=10)

        run(body)
        until(lambda: server.control("ris_calls")["calls"] == [], "the call gone")


def check_call(server: OffhookServer, token: str, alice: Baresip, carol: SccpPhone) -> None:
    def both_legs_have_media() -> dict[str, Any] | None:
        calls = server.control("ris_calls")["calls"]
        if len(calls) != 1:
            return None
        legs = {leg["device"]: leg for leg in calls[0]["legs"]}
        if set(legs) != {"alice", CAROL} or not all(leg["media"] for leg in legs.values()):
            return None
        return dict(calls[0])

    call = until(both_legs_have_media, "a call whose legs both have media")
    assert (call["calling"], call["called"], call["state"]) == ("1003", "1001", "connected")
    assert call["answer"] is not None
    legs = {leg["device"]: leg for leg in call["legs"]}
    (carol_rtp,) = carol.rtp.values()
    c = legs[CAROL]
    assert (c["line"], c["direction"], c["state"]) == ("1003", "inbound", "connected")
    assert (c["media"][0]["address"], c["media"][0]["port"]) == (HOST, carol_rtp.port)
    assert c["media"][0]["codec"] in {"PCMU", "PCMA"}
    a = legs["alice"]
    assert (a["line"], a["direction"], a["state"]) == ("1001", "outbound", "connected")
    low, high = alice.rtp_ports
    assert a["media"][0]["address"] == HOST and low <= a["media"][0]["port"] <= high
    assert a["media"][0]["codec"] in {"PCMU", "PCMA"}

    answer = rest(server, token, "calls", device="SEP*")
    assert answer.status_code == 200, answer.text
    assert [c["call_id"] for c in answer.json()["calls"]] == [call["call_id"]]
    assert rest(server, token, "calls", device="dave").json()["calls"] == []

    out = server.run_cli("status", "--devices", "alice", "--json", check=True)
    shown = json.loads(out.stdout)
    assert names(shown) == ["alice"] and shown["calls"][0]["call_id"] == call["call_id"]
    text = server.run_cli("status", check=True).stdout
    assert "Active calls (1)" in text
    assert f"{HOST}:{carol_rtp.port} {c['media'][0]['codec']}" in text
