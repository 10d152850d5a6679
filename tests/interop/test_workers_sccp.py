"""SCCP phones on a node with two workers: called from a SIP phone another worker serves.

Every worker has a listener of the node's SCCP port, and the kernel hands a
phone's connection to its address's home worker, as for SIP (docs/workers.md).
dave is a baresip (an implementation no one here wrote) on 127.0.0.3, the
source address the kernel's program gives to worker 1; carol is the SCCP phone
simulator (``support.sccp_phone``: real RTP ports, G.711 streams) connected
from 127.0.0.2, so to worker 0; frank another one from 127.0.0.3 (worker 1).

- dave calls carol: worker 1 owns the call (dave's INVITE arrived there) and
  reaches carol through worker 0 over the node leg (a SIP dialog on the bus,
  ``workers.node_leg``). carol rings with dave's number and name, answers,
  holds and resumes (a re-INVITE from worker 0 to worker 1 to dave and
  back); RTP flows phone to phone both ways, counted by the simulator's
  receive port and by baresip; dave hangs up and carol goes on hook. One CDR
  row (worker 1's), none for the node leg's far half; each worker's counters
  show the node leg's messages.
- carol calls dave: worker 0 owns that call and reaches dave directly.
- carol calls frank, an SCCP phone on worker 1: worker 0 owns the call and
  rings frank through worker 1; they talk (RTP between the two simulators
  both ways) and one CDR row is written.
- pickup across workers: erin, a baresip on 127.0.0.2 (worker 0), calls
  carol (group sales), which rings; dave (worker 1, group sales) dials *8.
  Nothing rings among worker 1's calls, but carol's line rings in worker 0's
  shared lamp view: worker 1 asks worker 0 over a node leg, which makes the
  pickup. carol stops ringing, erin and dave talk (RTP both ways), and the
  one CDR row is erin's call, answered by dave, redirected by pickup.
- park across workers: erin calls carol, who answers and parks her (the
  Park softkey: 7000, on worker 0); dave (worker 1) dials 7000: worker 1
  knows worker 0 holds it and asks worker 0 over a node leg, which makes the
  retrieval. erin and dave talk (RTP both ways); the retrieval's one row
  names dave and erin, and 7000 as the number that redirected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sccp_media import hold_and_resume, run, state_is, wait_event
from interop.test_workers import ON_0, ON_1, registered, status, until
from offhook.sccp.messages import (
    CallInfo,
    CallState,
    OpenReceiveChannel,
    SetRinger,
    StartMediaTransmission,
)
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from offhook.workers.reuseport import home_of
from support.sccp_phone import SccpPhone
from support.server import OffhookServer, device, plan_of

CAROL = "SEP001122334466"
FRANK = "SEP001122334477"
DAVE_PASSWORD = "dave-Secret-4"
ERIN_PASSWORD = "erin-Secret-5"
PLAN: dict[str, Any] = plan_of(
    [device("dave", DAVE_PASSWORD, "1004"), device("erin", ERIN_PASSWORD, "1005")]
)
PLAN["devices"][0]["lines"][0].update(display="Dave Doe", pickup_group="sales")
PLAN["devices"].append(
    {
        "name": CAROL,
        "protocol": "sccp",
        "model": "7960",
        "lines": [{"dn": "1003", "display": "Carol", "pickup_group": "sales"}],
    }
)
PLAN["devices"].append(
    {"name": FRANK, "protocol": "sccp", "model": "7960", "lines": [{"dn": "1006"}]}
)
PLAN["pickup_groups"] = [{"name": "sales", "number": "8100"}]
PLAN["call_park"] = [{"range": "7000-7004", "reversion": 60}]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OffhookServer]:
    require_binary("baresip")
    server = OffhookServer(tmp_path, PLAN, extra_config={"node": {"workers": 2}})
    server.start()
    try:
        for index in (0, 1):  # each worker's media server plays the park's music
            until(f"worker {index} reaches its media server", lambda i=index: media_up(server, i))
        yield server
    finally:
        server.stop()


def media_up(server: OffhookServer, index: int) -> bool:
    return bool((status(server, index).get("media_server") or {}).get("connected"))


def dave_phone(node: OffhookServer, tmp_path: Path) -> Baresip:
    assert home_of(ON_1, 2) == 1
    return Baresip(
        tmp_path,
        "dave",
        aor=f"sip:dave@127.0.0.1:{node.sip_port}",
        password=DAVE_PASSWORD,
        regint=120,
        host=ON_1,
    )


def erin_phone(node: OffhookServer, tmp_path: Path) -> Baresip:
    assert home_of(ON_0, 2) == 0
    return Baresip(
        tmp_path,
        "erin",
        aor=f"sip:erin@127.0.0.1:{node.sip_port}",
        password=ERIN_PASSWORD,
        regint=120,
        host=ON_0,
    )


def only_row(node: OffhookServer, match: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """The call's one CDR row: it is there, and a second (were one written) would be by now."""
    node.wait_cdr(match)
    time.sleep(1.0)
    rows = [r for r in node.cdr_rows() if match(r)]
    assert len(rows) == 1, rows
    return rows[0]


def talked(*uas: Baresip) -> None:
    """Each baresip received and sent RTP through its last call (its own RTP summary)."""
    time.sleep(0.3)
    for ua in uas:
        summaries = ua.rtp_summaries()
        assert summaries, ua.log()[-3000:]
        rx, tx = summaries[-1]
        assert rx >= 25 and tx >= 25, (ua, rx, tx)


def registered_on(node: OffhookServer, *phones: tuple[Baresip, str, int]) -> None:
    """Each (baresip, device, worker index) registered, on that worker."""
    for ua, name, index in phones:
        ua.wait_registered()
        until(f"worker {index} holds {name}", lambda n=name, i=index: registered(node, i, n))


async def erin_rings(node: OffhookServer, erin: Baresip, carol: SccpPhone) -> CallState:
    """carol registers, erin calls her (1003): the CallState of her ringing."""
    await carol.connect()
    await carol.register()
    await asyncio.to_thread(erin.dial, f"sip:1003@127.0.0.1:{node.sip_port}")
    ringing: CallState = await carol.wait_for(state_is(CallStateCode.RING_IN), timeout=10)
    return ringing


def node_legs(node: OffhookServer, index: int) -> tuple[int, int]:
    worker = status(node, index)["worker"]
    return worker["node_sent"], worker["node_received"]


def test_a_sip_phone_on_worker_1_calls_an_sccp_phone_on_worker_0(
    node: OffhookServer, tmp_path: Path
) -> None:
    dave = dave_phone(node, tmp_path)
    with dave:
        registered_on(node, (dave, "dave", 1))

        async def body() -> None:
            async with SccpPhone(CAROL, node.sccp_port, rtp_packets=150, source=ON_0) as carol:
                await carol.connect()
                await carol.register()
                (copy,) = await asyncio.to_thread(
                    until, "worker 1 knows carol", lambda: registered(node, 1, CAROL)
                )
                assert copy["protocol"] == "sccp", copy
                await asyncio.to_thread(dave.dial, f"sip:1003@127.0.0.1:{node.sip_port}")
                ringing = await carol.wait_for(state_is(CallStateCode.RING_IN), timeout=10)
                info = await carol.wait_for(CallInfo, timeout=5)
                assert (info.calling_party, info.calling_party_name) == ("1004", "Dave Doe")
                assert info.called_party == "1003", info
                ringer = await carol.wait_for(SetRinger, timeout=5)
                assert ringer.ring_mode == 2
                await wait_event(dave, "CALL_RINGING")
                carol.softkey(SoftKey.ANSWER, 1, ringing.call_reference)
                await carol.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
                orc = await carol.wait_for(OpenReceiveChannel, timeout=10)
                smt = await carol.wait_for(StartMediaTransmission, timeout=10)
                # carol streams to dave's own RTP address: the media never touches the node.
                assert smt.remote_ip == ON_1 and smt.payload_capability == orc.payload_capability
                await wait_event(dave, "CALL_ESTABLISHED")
                assert await carol.wait_rtp(30, timeout=10) >= 30

                # hold from the SCCP phone: worker 0 re-INVITEs worker 1, which asks dave
                smt = await hold_and_resume(carol, ringing.call_reference)
                assert smt.remote_ip == ON_1

                mark = len(carol.received)
                await asyncio.to_thread(dave.hangup)
                await carol.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)

        run(body)
        talked(dave)

    row = only_row(node, lambda r: r.get("called") == "1003")
    assert row["calling"] == "1004" and row["answer"], row
    assert row["calling_device"] == "dave" and row["called_device"] == CAROL, row
    sent_1, received_1 = node_legs(node, 1)
    sent_0, received_0 = node_legs(node, 0)
    # INVITE, ACK, re-INVITEs' answers and ACKs, BYE from worker 1; answers and re-INVITEs back.
    assert sent_1 >= 5 and received_0 == sent_1, (sent_1, received_0)
    assert sent_0 >= 5 and received_1 == sent_0, (sent_0, received_1)


def test_an_sccp_phone_on_worker_0_calls_a_sip_phone_on_worker_1(
    node: OffhookServer, tmp_path: Path
) -> None:
    dave = dave_phone(node, tmp_path)
    with dave:
        registered_on(node, (dave, "dave", 1))
        until("worker 0 knows dave", lambda: registered(node, 0, "dave"))

        async def body() -> None:
            async with SccpPhone(CAROL, node.sccp_port, rtp_packets=100, source=ON_0) as carol:
                await carol.connect()
                await carol.register()
                carol.off_hook(1)
                await carol.wait_for(state_is(CallStateCode.OFF_HOOK))
                mark = dave.mark()
                carol.dial("1004")
                await wait_event(dave, "CALL_INCOMING", since=mark)
                await asyncio.to_thread(dave.accept)
                await carol.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
                smt = await carol.wait_for(StartMediaTransmission, timeout=10)
                assert smt.remote_ip == ON_1
                assert await carol.wait_rtp(30, timeout=10) >= 30
                mark = dave.mark()
                carol.on_hook(1)
                await wait_event(dave, "CALL_CLOSED", since=mark)

        run(body)
    rows = node.wait_cdr(lambda r: r.get("called") == "1004")
    assert rows[-1]["calling_device"] == CAROL and rows[-1]["answer"], rows
    assert node_legs(node, 0)[0] == 0  # worker 0 owns it and reaches dave directly


def test_a_phone_on_worker_1_picks_up_a_call_worker_0_owns(
    node: OffhookServer, tmp_path: Path
) -> None:
    dave, erin = dave_phone(node, tmp_path), erin_phone(node, tmp_path)
    with dave, erin:
        registered_on(node, (dave, "dave", 1), (erin, "erin", 0))

        async def body() -> None:
            async with SccpPhone(CAROL, node.sccp_port, rtp_packets=50, source=ON_0) as carol:
                await erin_rings(node, erin, carol)
                await wait_event(erin, "CALL_RINGING")
                mark = len(carol.received)
                before = dave.mark()
                await asyncio.to_thread(dave.dial, f"sip:*8@127.0.0.1:{node.sip_port}")
                await carol.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)
                await wait_event(dave, "CALL_ESTABLISHED", since=before)
                await wait_event(erin, "CALL_ESTABLISHED")
                await asyncio.sleep(2.0)  # RTP both ways for a while
                mark = erin.mark()
                await asyncio.to_thread(dave.hangup)
                await wait_event(erin, "CALL_CLOSED", since=mark)

        run(body)
        talked(dave, erin)

    row = only_row(node, lambda r: True)  # neither half of the node leg has a row
    assert row["called_device"] == "dave" and row["called"] == "1004", row
    assert row["original_called"] == "1003" and row["answer"], row
    assert node_legs(node, 1)[0] >= 3  # dave's pickup went to worker 0 over the bus


def test_a_phone_on_worker_1_retrieves_a_call_parked_on_worker_0(
    node: OffhookServer, tmp_path: Path
) -> None:
    dave, erin = dave_phone(node, tmp_path), erin_phone(node, tmp_path)
    with dave, erin:
        registered_on(node, (dave, "dave", 1), (erin, "erin", 0))

        async def body() -> None:
            async with SccpPhone(CAROL, node.sccp_port, rtp_packets=50, source=ON_0) as carol:
                ringing = await erin_rings(node, erin, carol)
                carol.softkey(SoftKey.ANSWER, 1, ringing.call_reference)
                await wait_event(erin, "CALL_ESTABLISHED")
                mark, shown = len(carol.received), len(carol.displayed)
                carol.softkey(SoftKey.PARK, 1, ringing.call_reference)
                await carol.wait_display("Call park at 7000", since=shown, timeout=10)
                await carol.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)
                before = dave.mark()
                await asyncio.to_thread(dave.dial, f"sip:7000@127.0.0.1:{node.sip_port}")
                await wait_event(dave, "CALL_ESTABLISHED", since=before)
                await asyncio.sleep(2.0)  # RTP both ways for a while
                mark = erin.mark()
                await asyncio.to_thread(dave.hangup)
                await wait_event(erin, "CALL_CLOSED", since=mark)

        run(body)
        talked(dave, erin)

    row = only_row(node, lambda r: r.get("calling_device") == "dave")  # worker 0's alone
    assert row["called_device"] == "erin" and row["called"] == "1005", row
    assert row["original_called"] == "7000" and row["answer"], row
    assert node_legs(node, 1)[0] >= 3


def test_an_sccp_phone_on_worker_0_calls_one_on_worker_1(node: OffhookServer) -> None:
    async def body() -> None:
        async with (
            SccpPhone(CAROL, node.sccp_port, rtp_packets=100, source=ON_0) as carol,
            SccpPhone(FRANK, node.sccp_port, rtp_packets=100, source=ON_1) as frank,
        ):
            for phone in (carol, frank):
                await phone.connect()
                await phone.register()
            await asyncio.to_thread(
                until, "worker 1 holds frank", lambda: registered(node, 1, FRANK)
            )
            (copy,) = await asyncio.to_thread(
                until, "worker 0 knows frank", lambda: registered(node, 0, FRANK)
            )
            assert copy["protocol"] == "sccp", copy
            carol.off_hook(1)
            await carol.wait_for(state_is(CallStateCode.OFF_HOOK))
            carol.dial("1006")
            ringing = await frank.wait_for(state_is(CallStateCode.RING_IN), timeout=10)
            await carol.wait_for(state_is(CallStateCode.RING_OUT), timeout=10)
            frank.softkey(SoftKey.ANSWER, 1, ringing.call_reference)
            smt = await frank.wait_for(StartMediaTransmission, timeout=10)
            assert smt.remote_ip == ON_0  # to carol's own RTP port
            smt = await carol.wait_for(StartMediaTransmission, timeout=10)
            assert smt.remote_ip == ON_1
            assert await carol.wait_rtp(40, timeout=10) >= 40
            assert await frank.wait_rtp(40, timeout=10) >= 40
            mark = len(frank.received)
            carol.on_hook(1)
            await frank.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)

    run(body)
    row = only_row(node, lambda r: True)
    assert (row["calling_device"], row["called_device"]) == (CAROL, FRANK), row
    assert node_legs(node, 0)[0] >= 3 and node_legs(node, 1)[1] >= 3
