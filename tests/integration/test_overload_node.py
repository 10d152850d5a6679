"""Overload control against a real ``offhook serve`` (``support.server``): forced into
overload through the test-only control op ``overload_test_load`` (``[overload]
test_control``), the node answers a new INVITE and a new REGISTER with 503 and
Retry-After, while a call set up before goes on and ends with BYE/200, OPTIONS and a
registration refresh are answered, and an SCCP phone that dials gets reorder; the load
cleared, the node recovers by itself and a new call completes. Every wait is bounded
(a count of polls, the UA's receive timeouts); nothing is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sip_node_rig import establish, options_ok
from sipclient import HOST, SipClient, sdp

from offhook.sccp.messages import CallState, StartTone
from offhook.sccp.ui import CallStateCode, DeviceTone
from support.overload import injected_only
from support.sccp_phone import SccpPhone
from support.server import OffhookServer, device

PHONE = "SEP0011223344AA"
PLAN: dict[str, Any] = {
    "devices": [
        device("alice", "alice-Secret-1", "1001"),
        device("bob", "bob-Secret-1", "1002"),
        device("carol", "carol-Secret-1", "1003"),
        {
            "name": PHONE,
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": "1005", "display": "Dave"}],
        },
    ]
}
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-1", "carol": "carol-Secret-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = OffhookServer(
        tmp_path_factory.mktemp("overload"),
        PLAN,
        # Only the injected load counts: a busy CI machine (loop lag, CPU, backlog) must not make
        # this node shed the calls the test expects to go through.
        extra_config=injected_only(),
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def run(body: Callable[[], Awaitable[None]], timeout: float = 90.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(main())


async def control(server: OffhookServer, op: str, **args: Any) -> Any:
    return await asyncio.to_thread(server.control, op, **args)


async def wait_state(server: OffhookServer, state: str, polls: int = 300) -> dict[str, Any]:
    """Poll the node's overload status until it is ``state`` (and, overloaded, shedding all)."""
    status: dict[str, Any] = {}
    for _ in range(polls):
        status = await control(server, "overload")
        if status["state"] == state and (state == "normal" or status["admit_ratio"] == 0):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"overload state never became {state}: {status}")


async def ua(server: OffhookServer, name: str, register: bool = True) -> SipClient:
    client = SipClient((HOST, server.sip_port), name, PASSWORDS[name], realm=server.realm)
    await client.start()
    if register:
        _, ok = await client.register(expires=300)
        assert ok.status == 200, (ok.status, ok.reason)
    return client


def test_overload_sheds_new_calls_keeps_established_ones_and_recovers(
    server: OffhookServer, tmp_path: Path
) -> None:
    async def body() -> None:
        alice, bob = await ua(server, "alice"), await ua(server, "bob")
        carol = await ua(server, "carol", register=False)
        try:
            # A call set up before the overload.
            est = await establish(alice, bob, "1002")

            await control(server, "overload_test_load", load=10)
            status = await wait_state(server, "overloaded")
            assert status["injected"] == 10

            # A new INVITE: 503 with Retry-After, without a digest challenge first.
            call = await alice.call("1002", body=sdp(40100), authenticate=False)
            refused = await call.final()
            assert refused.status == 503, (refused.status, refused.reason)
            retry_after = refused.headers.get("Retry-After") or ""
            assert retry_after.isdigit() and 1 <= int(retry_after) <= 8
            call.ack_failure(refused)
            # A new registration: 503 too.
            first, _ = await carol.register(expires=300)
            assert first.status == 503 and (first.headers.get("Retry-After") or "").isdigit()
            # OPTIONS (keepalives) and a registration refresh are answered.
            await options_ok(alice)
            _, refreshed = await alice.register(expires=300)
            assert refreshed.status == 200

            # The established call goes on: a re-INVITE (hold) and the BYE get through.
            dialog = est.call.dialog
            assert dialog is not None
            alice.send_bytes(alice.in_dialog(dialog, "INVITE", body=sdp(40000, "sendonly")))
            reinvite = await bob.recv_request("INVITE")
            bob.answer(reinvite, 200, to_tag=est.callee_tag, body=sdp(40010, "recvonly"))
            ok = await alice.recv_response("INVITE")
            assert ok.status == 200
            alice.send_bytes(alice.in_dialog(dialog, "ACK", cseq=dialog.cseq))
            await bob.recv_request("ACK")
            alice.send_bytes(alice.in_dialog(dialog, "BYE"))
            bye = await bob.recv_request("BYE")
            bob.answer(bye, 200, to_tag=est.callee_tag)
            done = await alice.recv_response("BYE")
            assert done.status == 200

            # The shedding shows in the status and the metrics.
            status = await control(server, "overload")
            assert status["shed"]["invite"] >= 1 and status["shed"]["register"] >= 1
            text = (await control(server, "metrics"))["text"]
            assert "offhook_overload_state 1.0" in text
            assert 'offhook_overload_shed_total{kind="invite"}' in text
            shown = await asyncio.to_thread(server.run_cli, "status", check=True)
            assert "overload control: OVERLOADED for" in shown.stdout, shown.stdout

            # The load goes: the node recovers by itself, and a new call completes.
            await control(server, "overload_test_load", load=None)
            await wait_state(server, "normal")
            again = await establish(alice, bob, "1002")
            assert again.call.dialog is not None
            alice.send_bytes(alice.in_dialog(again.call.dialog, "BYE"))
            bye = await bob.recv_request("BYE")
            bob.answer(bye, 200, to_tag=again.callee_tag)
            assert (await alice.recv_response("BYE")).status == 200
            text = (await control(server, "metrics"))["text"]
            assert "offhook_overload_state 0.0" in text
            shown = await asyncio.to_thread(server.run_cli, "status", check=True)
            assert "overload control: normal" in shown.stdout, shown.stdout
        finally:
            await control(server, "overload_test_load", load=None)
            for client in (alice, bob, carol):
                await client.close()

    run(body)


def test_sccp_phone_dialling_under_overload_gets_reorder(server: OffhookServer) -> None:
    async def body() -> None:
        async with SccpPhone(PHONE, server.sccp_port) as phone:
            await phone.register()
            try:
                await control(server, "overload_test_load", load=10)
                await wait_state(server, "overloaded")
                since = phone.mark()
                phone.off_hook()
                await phone.wait_for(
                    lambda m: isinstance(m, StartTone) and m.tone == DeviceTone.INSIDE_DIAL,
                    since=since,
                )
                phone.dial("1001")
                await phone.wait_for(
                    lambda m: isinstance(m, StartTone) and m.tone == DeviceTone.REORDER,
                    since=since,
                    timeout=10,
                )
                await phone.wait_for(
                    lambda m: isinstance(m, CallState) and m.call_state == CallStateCode.CONGESTION,
                    since=since,
                )
                phone.on_hook()
                status = await control(server, "overload")
                assert status["shed"]["sccp"] >= 1
            finally:
                await control(server, "overload_test_load", load=None)
            await wait_state(server, "normal")

    run(body)
