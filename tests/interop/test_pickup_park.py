"""Call pickup and call park through a real ``offhook serve``, SIP and SCCP phones.

The plan is ``interop.sccp_media``'s (baresip phones alice/bob/carol, SCCP
simulators A-G, music on hold at 1 kHz from the embedded media server) with
call coverage added:

==========================  ===========================================
pickup group ``sales``      1002 (bob), 1003 (carol), 2002 (B), 2003 (C);
                            its number 8100
pickup group ``support``    2004 (D); its number 8200
call park                   7000-7004 (reversion 60 s; 2 s in the
                            reversion test)
==========================  ===========================================

What each phone hears is judged from the RTP it receives (decoded G.711:
the SCCP simulator keeps its payloads, baresip's are captured with tshark);
the call records from ``offhook cdr``. Every wait is bounded; nothing is
judged by how long something took.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_capture
from interop.sccp_media import (
    MOH_HZ,
    SCCP,
    TONES,
    answer,
    dial_uri,
    off_hook_call,
    run,
    sccp_call,
    sccp_heard,
    sccp_phones,
    sccp_plan,
    sip_do,
    sip_heard,
    sip_phone,
    start_server,
    state_is,
    tone_of,
    wait_event,
    wait_hearing,
)
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from support.server import OffhookServer

GROUPS = {"1002": "sales", "1003": "sales", "2002": "sales", "2003": "sales", "2004": "support"}


def coverage_plan(tmp_path: Path, reversion: float = 60) -> dict[str, Any]:
    plan = sccp_plan(tmp_path)
    for dev in plan["devices"]:
        for line in dev["lines"]:
            if line["dn"] in GROUPS:
                line["pickup_group"] = GROUPS[line["dn"]]
    plan["pickup_groups"] = [
        {"name": "sales", "number": "8100"},
        {"name": "support", "number": "8200"},
    ]
    plan["call_park"] = [{"range": "7000-7004", "reversion": reversion}]
    return plan


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_server(tmp_path, coverage_plan(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


def extra(row: dict[str, str]) -> dict[str, Any]:
    value = json.loads(row.get("extra") or "{}")
    assert isinstance(value, dict), row
    return value


def sip_phones(tmp_path: Path, server: OffhookServer, *names: str) -> list[Baresip]:
    require_capture()
    return [sip_phone(tmp_path, server, n) for n in names]


# ---------------------------------------------------------------- pickup


def test_sip_phone_picks_up_a_ringing_call_with_star8(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice, bob, carol = sip_phones(tmp_path, server, "alice", "bob", "carol")
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()

        async def body() -> None:
            await sip_do(alice.dial, dial_uri(server, "1002"))
            await wait_event(bob, "CALL_INCOMING")
            await wait_event(alice, "CALL_RINGING", "CALL_PROGRESS")
            bob_mark, alice_mark = bob.mark(), alice.mark()
            await sip_do(carol.dial, dial_uri(server, "*8"))
            await wait_event(carol, "CALL_ESTABLISHED")
            await wait_event(alice, "CALL_ESTABLISHED", since=alice_mark)
            await wait_event(bob, "CALL_CLOSED", since=bob_mark)  # it stopped ringing
            await wait_hearing(
                lambda: sip_heard(tmp_path, alice), (TONES["carol"],), tries=3, who="alice"
            )
            await wait_hearing(
                lambda: sip_heard(tmp_path, carol), (TONES["alice"],), tries=3, who="carol"
            )
            mark = alice.mark()
            await sip_do(carol.hangup)
            await wait_event(alice, "CALL_CLOSED", since=mark)

        run(body)
    (row,) = server.wait_cdr(lambda r: r["calling"] == "1001")
    assert (row["called"], row["original_called"]) == ("1003", "1002")
    assert (row["last_redirecting"], row["redirect_reason"]) == ("1002", "pickup")
    assert row["called_device"] == "carol" and row["answer"]
    (code_row,) = server.wait_cdr(lambda r: r["called"] == "*8")
    assert extra(code_row)["picked_up"] == row["call_id"]


def test_sip_directed_pickup_of_an_sccp_callers_call(server: OffhookServer, tmp_path: Path) -> None:
    """An SCCP caller (no offer) ringing bob; carol dials **1002 (she offers)."""
    (bob, carol) = sip_phones(tmp_path, server, "bob", "carol")
    with bob, carol:
        bob.wait_registered()
        carol.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "A") as (a,):
                ref = await off_hook_call(a)
                mark = a.mark()
                a.dial("1002")
                await wait_event(bob, "CALL_INCOMING")
                bob_mark = bob.mark()
                await sip_do(carol.dial, dial_uri(server, "**1002"))
                await wait_event(carol, "CALL_ESTABLISHED")
                await a.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
                await wait_event(bob, "CALL_CLOSED", since=bob_mark)
                await wait_hearing(lambda: sccp_heard(a), (TONES["carol"],), who="A")
                await wait_hearing(
                    lambda: sip_heard(tmp_path, carol), (tone_of(a),), tries=3, who="carol"
                )
                mark = carol.mark()
                a.on_hook(1)
                await wait_event(carol, "CALL_CLOSED", since=mark)

        run(body)
    (row,) = server.wait_cdr(lambda r: r["calling"] == SCCP["A"][1])
    assert (row["called_device"], row["redirect_reason"]) == ("carol", "pickup")


def test_sccp_pickup_softkeys(server: OffhookServer) -> None:
    """PickUp (own group), GPickUp with another group's number, GPickUp with a DN (directed):
    each takes the call ringing B away from B."""

    async def body() -> None:
        async with sccp_phones(server, "A", "B", "C", "D") as (a, b, c, d):
            for picker, key, digits in (
                (c, SoftKey.PICKUP, ""),
                (d, SoftKey.GROUP_PICKUP, "8100"),
                (d, SoftKey.GROUP_PICKUP, SCCP["B"][1]),
            ):
                b_mark = b.mark()
                ref = await off_hook_call(a)
                a_mark = a.mark()
                a.dial(SCCP["B"][1])
                ring = await b.wait_for(state_is(CallStateCode.RING_IN), since=b_mark, timeout=10)
                await a.wait_for(state_is(CallStateCode.RING_OUT, ref), since=a_mark, timeout=10)
                mark = picker.mark()
                picker.softkey(key, 1)
                if digits:
                    await picker.wait_for(state_is(CallStateCode.OFF_HOOK), since=mark, timeout=10)
                    picker.dial(digits)
                connected = await picker.wait_for(
                    state_is(CallStateCode.CONNECTED), since=mark, timeout=10
                )
                await a.wait_for(state_is(CallStateCode.CONNECTED, ref), since=a_mark, timeout=10)
                await b.wait_for(
                    state_is(CallStateCode.ON_HOOK, ring.call_reference), since=b_mark, timeout=10
                )
                await wait_hearing(lambda: sccp_heard(a), (tone_of(picker),), who="A")
                await wait_hearing(lambda p=picker: sccp_heard(p), (tone_of(a),), who="picker")
                a.on_hook(1)
                await picker.wait_for(
                    state_is(CallStateCode.ON_HOOK, connected.call_reference),
                    since=mark,
                    timeout=10,
                )

    run(body, timeout=180)
    rows = server.wait_cdr(lambda r: r["redirect_reason"] == "pickup", count=3)
    assert [r["called_device"] for r in rows] == [SCCP["C"][0], SCCP["D"][0], SCCP["D"][0]]
    assert {r["last_redirecting"] for r in rows} == {SCCP["B"][1]}


def test_sccp_phone_picks_up_a_sip_call(server: OffhookServer, tmp_path: Path) -> None:
    """alice (she offers) rings B; C (no offer of its own) presses PickUp."""
    (alice,) = sip_phones(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "B", "C") as (b, c):
                b_mark = b.mark()
                await sip_do(alice.dial, dial_uri(server, SCCP["B"][1]))
                await b.wait_for(state_is(CallStateCode.RING_IN), since=b_mark, timeout=10)
                mark, alice_mark = c.mark(), alice.mark()
                c.softkey(SoftKey.PICKUP, 1)
                await c.wait_for(state_is(CallStateCode.CONNECTED), since=mark, timeout=10)
                await wait_event(alice, "CALL_ESTABLISHED", since=alice_mark)
                await b.wait_for(state_is(CallStateCode.ON_HOOK), since=b_mark, timeout=10)
                await wait_hearing(lambda: sccp_heard(c), (TONES["alice"],), who="C")
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice), (tone_of(c),), tries=3, who="alice"
                )
                mark = c.mark()
                await sip_do(alice.hangup)
                await c.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)

        run(body)
    (row,) = server.wait_cdr(lambda r: r["calling"] == "1001")
    assert (row["called_device"], row["last_redirecting"]) == (SCCP["C"][0], SCCP["B"][1])


# ---------------------------------------------------------------- park


@pytest.mark.parametrize(("target", "number"), [("7001", "7001"), ("*68", "7000")])
def test_sip_transfer_to_park_then_another_phone_retrieves(
    server: OffhookServer, tmp_path: Path, target: str, number: str
) -> None:
    """bob parks alice by REFER (to a park number, or to the park code); she hears
    music; carol dials the number and they talk."""
    alice, bob, carol = sip_phones(tmp_path, server, "alice", "bob", "carol")
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()

        async def body() -> None:
            await sip_do(alice.dial, dial_uri(server, "1002"))
            await wait_event(bob, "CALL_INCOMING")
            mark = alice.mark()
            await sip_do(bob.accept)
            await wait_event(alice, "CALL_ESTABLISHED", since=mark)
            mark = bob.mark()
            await sip_do(bob.command, "transfer", dial_uri(server, target))
            await wait_event(bob, "CALL_CLOSED", since=mark)
            await wait_hearing(
                lambda: sip_heard(tmp_path, alice),
                (MOH_HZ,),
                (TONES["bob"],),
                tries=4,
                who="alice parked",
            )
            parked = [c for c in server.status()["calls"]["calls"] if c["called"] == number]
            assert len(parked) == 1, server.status()["calls"]
            await sip_do(carol.dial, dial_uri(server, number))
            await wait_event(carol, "CALL_ESTABLISHED")
            await wait_hearing(
                lambda: sip_heard(tmp_path, alice),
                (TONES["carol"],),
                (MOH_HZ,),
                tries=4,
                who="alice retrieved",
            )
            await wait_hearing(
                lambda: sip_heard(tmp_path, carol), (TONES["alice"],), tries=3, who="carol"
            )
            assert "CALL_CLOSED" not in alice.event_types(), alice.event_types()
            mark = alice.mark()
            await sip_do(carol.hangup)
            await wait_event(alice, "CALL_CLOSED", since=mark)

        run(body)
    (retrieval,) = server.wait_cdr(lambda r: r["calling"] == "1003")
    assert (retrieval["called"], retrieval["original_called"]) == ("1001", number)
    assert (retrieval["last_redirecting"], retrieval["redirect_reason"]) == (number, "park")
    assert retrieval["called_device"] == "alice"
    (park_call,) = server.wait_cdr(lambda r: extra(r).get("parked_at") == number)
    assert extra(park_call)["parked_by"] == "bob"
    assert extra(park_call)["retrieved_by"] == "carol"
    assert extra(retrieval)["park_call"] == park_call["call_id"]


def test_sccp_park_softkey_then_an_sccp_phone_retrieves(server: OffhookServer) -> None:
    async def body() -> None:
        async with sccp_phones(server, "A", "B", "C") as (a, b, c):
            _, b_ref = await sccp_call(a, b, SCCP["B"][1])
            await wait_hearing(lambda: sccp_heard(a), (tone_of(b),), who="A")
            mark, shown = b.mark(), len(b.displayed)
            b.softkey(SoftKey.PARK, 1, b_ref)
            await b.wait_display("Call park at 7000", since=shown, timeout=10)
            await b.wait_for(state_is(CallStateCode.ON_HOOK, b_ref), since=mark, timeout=10)
            await wait_hearing(lambda: sccp_heard(a), (MOH_HZ,), (tone_of(b),), who="A parked")
            # a free park number has nothing to retrieve
            ref = await off_hook_call(c)
            c_mark, shown = c.mark(), len(c.displayed)
            c.dial("7001")
            await c.wait_for(state_is(CallStateCode.CONGESTION, ref), since=c_mark, timeout=10)
            await c.wait_display("No call parked at 7001", since=shown, timeout=10)
            c.on_hook(1)
            await c.wait_for(state_is(CallStateCode.ON_HOOK, ref), since=c_mark, timeout=10)
            ref = await off_hook_call(c)
            c_mark = c.mark()
            c.dial("7000")
            await c.wait_for(state_is(CallStateCode.CONNECTED, ref), since=c_mark, timeout=10)
            await wait_hearing(lambda: sccp_heard(a), (tone_of(c),), (MOH_HZ,), who="A")
            await wait_hearing(lambda: sccp_heard(c), (tone_of(a),), who="C")
            a_mark = a.mark()
            c.on_hook(1)
            await a.wait_for(state_is(CallStateCode.ON_HOOK), since=a_mark, timeout=10)

    run(body)
    (retrieval,) = server.wait_cdr(lambda r: r["calling"] == SCCP["C"][1] and r["answer"])
    assert (retrieval["called_device"], retrieval["redirect_reason"]) == (SCCP["A"][0], "park")
    (nothing,) = server.wait_cdr(lambda r: r["called"] == "7001")
    assert nothing["cause"] == "1"
    (park_call,) = server.wait_cdr(lambda r: extra(r).get("parked_at") == "7000")
    assert extra(park_call)["parked_by"] == SCCP["B"][0]


def test_parked_call_reverts_to_the_parker(tmp_path: Path) -> None:
    srv = start_server(tmp_path, coverage_plan(tmp_path, reversion=2))
    try:

        async def body() -> None:
            async with sccp_phones(srv, "A", "B") as (a, b):
                _, b_ref = await sccp_call(a, b, SCCP["B"][1])
                mark = b.mark()
                b.softkey(SoftKey.PARK, 1, b_ref)
                await b.wait_for(state_is(CallStateCode.ON_HOOK, b_ref), since=mark, timeout=10)
                await wait_hearing(lambda: sccp_heard(a), (MOH_HZ,), who="A parked")
                ref = await answer(b, since=mark)  # it rings B again
                await wait_hearing(lambda: sccp_heard(a), (tone_of(b),), (MOH_HZ,), who="A")
                await wait_hearing(lambda: sccp_heard(b), (tone_of(a),), who="B")
                b_mark = b.mark()
                a.on_hook(1)
                await b.wait_for(state_is(CallStateCode.ON_HOOK, ref), since=b_mark, timeout=10)

        run(body)
        (row,) = srv.wait_cdr(lambda r: extra(r).get("park_reversion") == "7000")
        assert (row["called_device"], row["last_redirecting"]) == (SCCP["B"][0], "7000")
        assert row["redirect_reason"] == "park" and row["answer"]
    finally:
        srv.stop()
