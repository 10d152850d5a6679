"""SCCP phones calling SIP phones through a real ``offhook serve``, with baresip as the SIP side.

The SCCP side is the test phone simulator (``support.sccp_phone``), which
opens real RTP ports when the node asks it to and streams G.711 when told
where to send. The SIP side is baresip, an implementation no one here wrote.
RTP must flow phone to phone both ways: counted by the simulator on its
receive port and by baresip's own RTP summary.

=================  ======  ==============
device             DN      played by
=================  ======  ==============
alice              1001    baresip
SEP001122334455    1003    SCCP simulator
=================  ======  ==============
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sccp_media import hold_and_resume
from offhook.sccp.messages import (
    CallState,
    OpenReceiveChannel,
    SetRinger,
    StartMediaTransmission,
    StopMediaTransmission,
)
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from support.ports import HOST
from support.sccp_phone import SccpPhone
from support.server import OffhookServer, device, plan_of

CAROL = "SEP001122334455"
PLAN: dict[str, Any] = plan_of([device("alice", "alice-Secret-1", "1001")])
PLAN["devices"].append(
    {
        "name": CAROL,
        "protocol": "sccp",
        "model": "7960",
        "lines": [{"dn": "1003", "display": "Carol"}],
    }
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, PLAN)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def alice_ua(tmp_path: Path, server: OffhookServer) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        "alice",
        aor=f"sip:alice@{HOST}:{server.sip_port}",
        password="alice-Secret-1",
        regint=120,
    )


def state_is(code: CallStateCode) -> Any:
    return lambda m: isinstance(m, CallState) and m.call_state == code


def run(body: Any, timeout: float = 90.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(body(), timeout)

    return asyncio.run(main())


async def wait_event(ua: Baresip, event: str, timeout: float = 15.0, since: int = 0) -> Any:
    return await asyncio.to_thread(ua.wait_event, event, timeout=timeout, since=since)


def baresip_rx_tx(ua: Baresip) -> tuple[int, int]:
    summaries = ua.rtp_summaries()
    assert summaries, ua.log()[-3000:]
    return summaries[-1]


@pytest.mark.parametrize("hangup_side", ["sccp", "sip"])
def test_sccp_phone_calls_baresip_rtp_both_ways(
    server: OffhookServer, tmp_path: Path, hangup_side: str
) -> None:
    alice = alice_ua(tmp_path, server)
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with SccpPhone(CAROL, server.sccp_port, rtp_packets=100) as carol:
                await carol.connect()
                await carol.register()
                carol.off_hook(1)
                await carol.wait_for(state_is(CallStateCode.OFF_HOOK))
                mark = alice.mark()
                carol.dial("1001")
                await wait_event(alice, "CALL_INCOMING", since=mark)
                await carol.wait_for(state_is(CallStateCode.RING_OUT), timeout=10)
                await asyncio.to_thread(alice.accept)
                await carol.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
                orc = await carol.wait_for(OpenReceiveChannel, timeout=10)
                smt = await carol.wait_for(StartMediaTransmission, timeout=10)
                assert smt.remote_ip == HOST and smt.payload_capability == orc.payload_capability
                await wait_event(alice, "CALL_ESTABLISHED")
                assert await carol.wait_rtp(40, timeout=10) >= 40
                await asyncio.sleep(1.0)
                mark = alice.mark()
                if hangup_side == "sccp":
                    carol.on_hook(1)
                    await wait_event(alice, "CALL_CLOSED", since=mark)
                else:
                    await asyncio.to_thread(alice.hangup)
                    await carol.wait_for(state_is(CallStateCode.ON_HOOK), timeout=10)
                await carol.wait_for(StopMediaTransmission, timeout=10)

        run(body)
        time.sleep(0.3)
        rx, tx = baresip_rx_tx(alice)
        assert rx >= 25 and tx >= 25, (rx, tx)


def test_baresip_calls_sccp_phone_hold_and_resume(server: OffhookServer, tmp_path: Path) -> None:
    alice = alice_ua(tmp_path, server)
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with SccpPhone(CAROL, server.sccp_port, rtp_packets=150) as carol:
                await carol.connect()
                await carol.register()
                await asyncio.to_thread(alice.dial, f"sip:1003@{HOST}:{server.sip_port}")
                ringing = await carol.wait_for(state_is(CallStateCode.RING_IN), timeout=10)
                ringer = await carol.wait_for(SetRinger, timeout=5)
                assert ringer.ring_mode == 2
                await wait_event(alice, "CALL_RINGING")
                carol.softkey(SoftKey.ANSWER, 1, ringing.call_reference)
                await carol.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
                await carol.wait_for(StartMediaTransmission, timeout=10)
                await wait_event(alice, "CALL_ESTABLISHED")
                assert await carol.wait_rtp(30, timeout=10) >= 30
                # hold from the SCCP phone (its media stops, baresip gets a re-INVITE),
                # then resume: a new receive channel, media to baresip again
                await hold_and_resume(carol, ringing.call_reference)
                mark = alice.mark()
                carol.softkey(SoftKey.END_CALL, 1, ringing.call_reference)
                await wait_event(alice, "CALL_CLOSED", since=mark)

        run(body)
    rows = server.wait_cdr(lambda r: r.get("called") == "1003")
    assert rows[-1]["answer"] and rows[-1]["calling"] == "1001", rows
