"""Hunt pilots through a real ``offhook serve``: SIPp and baresip members, an SCCP member.

The plan (all in the null partition; line groups ring each member for 2 s):

=========  ======  ===================================  ==========================
pilot      group   members (distribution)               final forward
=========  ======  ===================================  ==========================
1500       front   1003 carol, 1002 bob, 1004 dave      -
                   (top-down)
1510       sales   1001 alice, 1002 bob (broadcast)     -
1520       desk    1002 bob, 1004 dave (top-down)       8000 (vm)
1530       floor   1006 the SCCP phone, 1002 bob        -
1540       busy    1003 carol (top-down)                -
1550       round   1002 bob, 1003 carol, 1004 dave      -
                   (circular)
=========  ======  ===================================  ==========================

alice and bob are baresip (or SIPp UASs registered under their names when a
test needs a member that is busy or never answers), carol is a SIPp UAC or a
busy SIPp UAS, dave and vm SIPp UASs. What each member saw is what its UA
reports (baresip events, SIPp's scenario passing); the order offhook offered
the call in is read from the SIP heads of its debug log; the CDR from
``offhook cdr``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sipp import Sipp, describe
from interop.test_sip_calls import PASSWORDS as BASE_PASSWORDS
from interop.test_sip_calls import PLAN as BASE_PLAN
from interop.test_sip_features import sip_heads
from offhook.sccp.messages import CallState
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from support.ports import HOST
from support.sccp_phone import SccpPhone
from support.server import OffhookServer, device

PASSWORDS = {**BASE_PASSWORDS, "vm": "vm-Secret-8"}
SCCP = "SEP00AABBCCDD06"
RNA = 2


def hunt_plan() -> dict[str, Any]:
    plan = copy.deepcopy(BASE_PLAN)
    plan["devices"].append(device("vm", PASSWORDS["vm"], "8000", "Voicemail"))
    plan["devices"].append(
        {"name": SCCP, "protocol": "sccp", "model": "7960", "lines": [{"dn": "1006"}]}
    )

    def group(name: str, members: list[str], distribution: str = "top-down") -> dict[str, Any]:
        return {
            "name": name,
            "distribution": distribution,
            "rna_timeout": RNA,
            "members": members,
        }

    plan["line_groups"] = [
        group("front", ["1003", "1002", "1004"]),
        group("sales", ["1001", "1002"], "broadcast"),
        group("desk", ["1002", "1004"]),
        group("floor", ["1006", "1002"]),
        group("busy", ["1003"]),
        group("round", ["1002", "1003", "1004"], "circular"),
    ]
    names = ("front", "sales", "desk", "floor", "busy", "round")
    plan["hunt_lists"] = [{"name": name, "line_groups": [name]} for name in names]
    plan["hunt_pilots"] = [
        {"pattern": "1500", "hunt_list": "front"},
        {"pattern": "1510", "hunt_list": "sales"},
        {"pattern": "1520", "hunt_list": "desk", "final_forward": "8000"},
        {"pattern": "1530", "hunt_list": "floor"},
        {"pattern": "1540", "hunt_list": "busy"},
        {"pattern": "1550", "hunt_list": "round"},
    ]
    return plan


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, hunt_plan(), log_level="debug")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sipp_dir(tmp_path: Path) -> Path:
    require_binary("sipp")
    d = tmp_path / "sipp"
    d.mkdir()
    return d


def ua(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=PASSWORDS[name],
        regint=120,
    )


def uas(server: OffhookServer, workdir: Path, scenario: str, name: str, calls: int = 1) -> Sipp:
    """A SIPp UAS running ``scenario`` for ``calls`` calls, started and registered as ``name``."""
    member = Sipp(workdir, scenario, f"uas-{name}", calls=calls, timeout_s=40).start()
    reg = Sipp(
        workdir,
        "register.xml",
        f"register-{name}",
        target=f"{HOST}:{server.sip_port}",
        keys={
            "user": name,
            "contact_host": HOST,
            "contact_port": str(member.port),
            "expires": "300",
        },
        auth=(name, PASSWORDS[name]),
        timeout_s=15,
    )
    result = reg.run()
    if not result.ok:
        member.stop()
    assert result.ok, describe(result)
    return member


def dial(server: OffhookServer, number: str) -> str:
    return f"sip:{number}@{HOST}:{server.sip_port}"


def cdr_to(server: OffhookServer, called: str) -> dict[str, str]:
    return server.wait_cdr(lambda r: r.get("called") == called)[-1]


def assert_hunted(row: dict[str, str], pilot: str, original: str = "") -> None:
    assert row["original_called"] == (original or pilot), row
    assert row["last_redirecting"] == pilot, row
    assert row["redirect_reason"] == "hunt", row
    assert json.loads(row["extra"])["hunt_pilot"] == pilot, row


def invites_sent(server: OffhookServer) -> list[tuple[str, int]]:
    """(method, destination port) of the INVITEs and CANCELs offhook sent, in order
    (a retransmission is not counted again)."""
    sent: dict[tuple[str, int], None] = {}
    for head in sip_heads(server.log()):
        method = head.first_line.split()[0]
        if head.direction == "->" and method in ("INVITE", "CANCEL"):
            sent.setdefault((method, int(head.peer.rsplit("/", 1)[0].rsplit(":", 1)[1])))
    return list(sent)


# ------------------------------------------------------------ SIP members
def test_top_down_passes_a_busy_and_a_silent_member_to_one_who_answers(
    server: OffhookServer, tmp_path: Path, sipp_dir: Path
) -> None:
    """Pilot 1500: carol 486, bob rings 2 s unanswered (CANCEL), dave answers."""
    busy = uas(server, sipp_dir, "uas_busy.xml", "carol")
    silent = uas(server, sipp_dir, "uas_ring_cancel.xml", "bob")
    answering = uas(server, sipp_dir, "uas.xml", "dave")
    alice = ua(tmp_path, server, "alice")
    try:
        with alice:
            alice.wait_registered()
            alice.dial(dial(server, "1500"))
            alice.wait_event("CALL_ESTABLISHED", timeout=20)
            alice.hangup()
            alice.wait_event("CALL_CLOSED", timeout=10)
        results = [member.wait(timeout=30) for member in (busy, silent, answering)]
        for result in results:
            assert result.ok, describe(result)
    finally:
        for member in (busy, silent, answering):
            member.stop()
    # The answering member's INVITE names the pilot as the diverting number (RFC 5806).
    diversions = [
        line for line in results[2].messages.splitlines() if line.lower().startswith("diversion:")
    ]
    assert diversions and all("<sip:1500@" in line for line in diversions), diversions
    assert invites_sent(server) == [
        ("INVITE", busy.port),
        ("INVITE", silent.port),
        ("CANCEL", silent.port),
        ("INVITE", answering.port),
    ]
    row = cdr_to(server, "1004")
    assert row["cause"] == "16" and row["answer"], row
    assert row["calling"] == "1001" and row["called_device"] == "dave", row
    assert_hunted(row, "1500")


def test_every_member_busy_the_caller_gets_busy(
    server: OffhookServer, tmp_path: Path, sipp_dir: Path
) -> None:
    busy = uas(server, sipp_dir, "uas_busy.xml", "carol")
    alice = ua(tmp_path, server, "alice")
    try:
        with alice:
            alice.wait_registered()
            alice.dial(dial(server, "1540"))
            closed = alice.wait_event("CALL_CLOSED", timeout=15)
            assert "486" in closed.param or "busy" in closed.param.lower(), closed.data
        result = busy.wait(timeout=20)
        assert result.ok, describe(result)
    finally:
        busy.stop()
    row = cdr_to(server, "1540")
    assert row["cause"] == "17" and not row["answer"], row
    assert json.loads(row["extra"])["hunt_pilot"] == "1540", row


def test_broadcast_rings_every_baresip_member_for_a_sipp_caller(
    server: OffhookServer, tmp_path: Path, sipp_dir: Path
) -> None:
    """Pilot 1510: alice and bob ring together; bob answers, alice stops ringing."""
    alice = ua(tmp_path, server, "alice")
    bob = ua(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        caller = Sipp(
            sipp_dir,
            "uac_auth.xml",
            "uac-carol",
            target=f"{HOST}:{server.sip_port}",
            keys={"caller": "carol"},
            service="1510",
            auth=("carol", PASSWORDS["carol"]),
            timeout_s=30,
            pause_ms=1000,
        )
        caller.start(listening=False)
        alice.wait_event("CALL_INCOMING", timeout=15)
        bob.wait_event("CALL_INCOMING", timeout=15)
        mark = alice.mark()
        bob.accept()
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
        result = caller.wait()
        assert result.ok, describe(result)
        bob.wait_event("CALL_CLOSED", timeout=10)
    row = cdr_to(server, "1002")
    assert row["calling"] == "1003" and row["cause"] == "16" and row["answer"], row
    assert_hunted(row, "1510")


def test_circular_spreads_consecutive_calls_over_the_members(
    server: OffhookServer, sipp_dir: Path
) -> None:
    """Pilot 1550: six calls one after the other, each member answers every third."""
    members = [uas(server, sipp_dir, "uas.xml", name, 2) for name in ("bob", "carol", "dave")]
    caller = Sipp(
        sipp_dir,
        "uac_auth.xml",
        "uac-alice",
        target=f"{HOST}:{server.sip_port}",
        keys={"caller": "alice"},
        service="1550",
        auth=("alice", PASSWORDS["alice"]),
        calls=6,
        timeout_s=60,
        extra=["-l", "1", "-r", "5"],  # one call at a time
    )
    try:
        result = caller.run()
        assert result.ok, describe(result)
        for member in members:
            served = member.wait(timeout=30)
            assert served.ok, describe(served)
    finally:
        for member in members:
            member.stop()
    rows = server.wait_cdr(lambda r: r.get("calling") == "1001", count=6)
    rows.sort(key=lambda r: r["start"])
    assert [r["called_device"] for r in rows] == ["bob", "carol", "dave"] * 2, rows
    for row in rows:
        assert row["cause"] == "16" and row["answer"], row
        assert_hunted(row, "1550")


@pytest.mark.parametrize(("off", "on"), [("*36", "*36"), ("*78", "*79")])
def test_member_logged_out_or_in_dnd_is_skipped_then_final_forward(
    server: OffhookServer, tmp_path: Path, sipp_dir: Path, off: str, on: str
) -> None:
    """Pilot 1520: bob logs out (*36) or sets DND (*78): dave rings 2 s unanswered,
    then the pilot's final forward reaches vm. Back in, bob is offered the next call."""
    silent = uas(server, sipp_dir, "uas_ring_cancel.xml", "dave")
    vm = uas(server, sipp_dir, "uas.xml", "vm")
    alice = ua(tmp_path, server, "alice")
    bob = ua(tmp_path, server, "bob")
    try:
        with alice, bob:
            alice.wait_registered()
            bob.wait_registered()
            bob.dial(dial(server, off))  # a short confirmation, then cleared
            bob.wait_event("CALL_CLOSED", timeout=15)
            alice.dial(dial(server, "1520"))
            alice.wait_event("CALL_ESTABLISHED", timeout=20)
            alice.hangup()
            alice.wait_event("CALL_CLOSED", timeout=10)
            assert "CALL_INCOMING" not in bob.event_types()
            for member in (silent, vm):
                result = member.wait(timeout=30)
                assert result.ok, describe(result)
            mark = bob.mark()
            bob.dial(dial(server, on))
            bob.wait_event("CALL_CLOSED", timeout=15, since=mark)
            mark = alice.mark()
            alice.dial(dial(server, "1520"))
            bob.wait_event("CALL_INCOMING", timeout=15)
            bob.accept()
            alice.wait_event("CALL_ESTABLISHED", timeout=10, since=mark)
            alice.hangup()
            bob.wait_event("CALL_CLOSED", timeout=10)
    finally:
        for member in (silent, vm):
            member.stop()
    row = cdr_to(server, "8000")
    assert row["calling"] == "1001" and row["answer"] and row["called_device"] == "vm", row
    assert_hunted(row, "1520")
    row = cdr_to(server, "1002")
    assert row["calling"] == "1001" and row["answer"], row
    assert_hunted(row, "1520")


# ------------------------------------------------------------ an SCCP member
def test_sccp_phone_member_answers_a_pilot_call(server: OffhookServer, tmp_path: Path) -> None:
    """Pilot 1530: the SCCP phone rings first and answers with the Answer softkey."""
    alice = ua(tmp_path, server, "alice")
    bob = ua(tmp_path, server, "bob")

    def state_is(code: CallStateCode) -> Any:
        return lambda m: isinstance(m, CallState) and m.call_state == code

    async def body() -> None:
        async with SccpPhone(SCCP, server.sccp_port) as phone:
            await phone.connect()
            await phone.register()
            await asyncio.to_thread(alice.dial, dial(server, "1530"))
            ringing = await phone.wait_for(state_is(CallStateCode.RING_IN), timeout=10)
            phone.softkey(SoftKey.ANSWER, 1, ringing.call_reference)
            await phone.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
            await asyncio.to_thread(alice.wait_event, "CALL_ESTABLISHED", timeout=10)
            phone.softkey(SoftKey.END_CALL, 1, ringing.call_reference)
            await asyncio.to_thread(alice.wait_event, "CALL_CLOSED", timeout=10)

    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        asyncio.run(asyncio.wait_for(body(), 60))
        assert "CALL_INCOMING" not in bob.event_types()
    row = cdr_to(server, "1006")
    assert row["calling"] == "1001" and row["answer"] and row["called_device"] == SCCP, row
    assert_hunted(row, "1530")
