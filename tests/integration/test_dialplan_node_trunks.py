"""SIP trunks under failure and load on a whole in-process node
(``dialplan_node_rig``): failover to the next route-group member on 503, Timer B
and a refused TCP connection (and the skipped member in the CDR), no failover on
486 or on the caller's CANCEL, a trunk's max_calls counting calls both ways,
calls in from a trunk (matched by inbound_addresses or exact host:port, limited
by the trunk's CSS), and OPTIONS supervision taking a trunk out of the hunt and
back.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from dialplan_node_rig import (
    BACKUP_HOST,
    CARRIER_HOST,
    DEAD_HOST,
    DIALED,
    E164,
    answer_trunk_call,
    dial_plan,
    failed,
    far_end,
    hang_up,
    invites,
    phone,
    run_plan,
    trunk,
    user_of,
)
from sip_node_rig import A_PORT, B_PORT, Ctx, media_port
from sipclient import is_request, sdp, tag

from offhook.sip.message import SipResponse
from support.ports import free_port

# --------------------------------------------------------------------------
# 5. failover


def test_failover_on_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")

        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        carrier.answer(first, 503, to_tag=tag(), reason="Service Unavailable")
        ack = await carrier.recv_request("ACK")  # the node ACKs the 503 (§17.1.1.3)
        assert ack.cseq == (first.cseq[0], "ACK")
        second = await backup.recv_request("INVITE")
        assert second.uri == f"sip:{E164}@{BACKUP_HOST}:{backup_port}", second.uri
        assert media_port(second.body) == A_PORT
        tc = await answer_trunk_call(call, backup, second)
        assert media_port(tc.ok.body) == B_PORT
        # The caller never saw the 503.
        assert not [m for m in alice.inbox if isinstance(m, SipResponse) and m.status >= 300]
        await hang_up(alice, tc, backup)
        assert invites(carrier) == []

        # The first trunk rings, then fails: still a trunk failure, still failover.
        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        carrier_tag = tag()
        carrier.answer(first, 180, to_tag=carrier_tag)
        await call.provisional(180)
        carrier.answer(first, 503, to_tag=carrier_tag, reason="Service Unavailable")
        await carrier.recv_request("ACK")
        second = await backup.recv_request("INVITE")
        tc = await answer_trunk_call(call, backup, second, relayed_180=False)
        await hang_up(alice, tc, backup)

        # Every trunk answers 503: the caller gets 503.
        call = await alice.call(DIALED, body=sdp(A_PORT))
        for far in (carrier, backup):
            inv = await far.recv_request("INVITE")
            far.answer(inv, 503, to_tag=tag(), reason="Service Unavailable")
            await far.recv_request("ACK")
        final = await call.final()
        call.ack_failure(final)
        assert final.status == 503, (final.status, final.reason)

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert len(rows) == 3, rows
    rows.sort(key=lambda r: r.start)
    for row in rows[:2]:
        assert (row.called_device, row.cause) == ("backup", 16), rows
        assert row.answer is not None
    assert rows[2].answer is None and rows[2].cause == 41, rows[2]


def test_cdr_shows_skipped_trunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")
        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        carrier.answer(first, 503, to_tag=tag(), reason="Service Unavailable")
        second = await backup.recv_request("INVITE")
        tc = await answer_trunk_call(call, backup, second)
        await hang_up(alice, tc, backup)

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert len(rows) == 1 and rows[0].called_device == "backup", rows
    # Which member was skipped, and why (503 -> Q.850 41), somewhere in the record.
    skipped = json.dumps(rows[0].extra)
    assert "carrier" in skipped and "41" in skipped, rows[0].extra


def test_caller_cancels_while_trunk_rings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")
        call = await alice.call(DIALED, body=sdp(A_PORT))
        invite = await carrier.recv_request("INVITE")
        far_tag = tag()
        carrier.answer(invite, 180, to_tag=far_tag)
        await call.provisional(180)
        call.cancel()
        assert (await alice.recv_response("CANCEL")).status == 200
        terminated = await call.final()
        call.ack_failure(terminated)
        assert terminated.status == 487
        cancel = await carrier.recv_request("CANCEL")
        assert cancel.branch == invite.branch and cancel.uri == invite.uri
        carrier.answer(cancel, 200, to_tag=far_tag)
        carrier.answer(invite, 487, to_tag=far_tag)
        await carrier.recv_request("ACK")
        # A cancelled call is not a trunk failure: no hunt to the next trunk.
        assert await backup.expect_nothing(is_request("INVITE"), wait=0.5) == []

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert len(rows) == 1 and rows[0].answer is None and rows[0].cause == 16, rows


def test_no_failover_on_486(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")

        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        carrier.answer(first, 486, to_tag=tag())
        await carrier.recv_request("ACK")
        final = await call.final()
        call.ack_failure(final)
        assert final.status == 486, (final.status, final.reason)
        # A user-level answer ends the hunt: the second trunk never sees the call.
        assert await backup.expect_nothing(is_request("INVITE"), wait=0.8) == []

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert len(rows) == 1, rows
    assert (rows[0].called_device, rows[0].cause) == ("carrier", 17), rows
    assert rows[0].answer is None


def test_failover_after_timer_b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trunk that never answers (Timer B, cause 102) fails over to the next."""
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)  # silent
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")
        call = await alice.call(DIALED, body=sdp(A_PORT))
        await carrier.recv_request("INVITE")
        second = await backup.recv_request("INVITE", timeout=8.0)  # 64*T1 = 3.2 s
        assert len(invites(carrier)) >= 1, "Timer A: the INVITE was never retransmitted"
        tc = await answer_trunk_call(call, backup, second)
        await hang_up(alice, tc, backup)

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario, t1=0.05).cdrs()
    assert len(rows) == 1 and (rows[0].called_device, rows[0].cause) == ("backup", 16), rows


def _dead_tcp_plan(backup_port: int) -> dict[str, Any]:
    dead = free_port()  # nothing listens there on any loopback address
    return dial_plan(
        [
            trunk("dead", DEAD_HOST, dead, transport="tcp"),
            trunk("backup", BACKUP_HOST, backup_port),
        ]
    )


async def _call_over_backup(ctx: Ctx, backup_port: int, wait: float) -> None:
    backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
    alice = await phone(ctx, "alice")
    call = await alice.call(DIALED, body=sdp(A_PORT))
    second = await backup.recv_request("INVITE", timeout=wait)
    assert second.uri == f"sip:{E164}@{BACKUP_HOST}:{backup_port}", second.uri
    tc = await answer_trunk_call(call, backup, second)
    await hang_up(alice, tc, backup)


def test_failover_dead_tcp_trunk_short_t1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection refused: the call still completes over the next trunk (at Timer B)."""
    backup_port = free_port()

    async def scenario(ctx: Ctx) -> None:
        await _call_over_backup(ctx, backup_port, wait=8.0)

    result = run_plan(tmp_path, monkeypatch, _dead_tcp_plan(backup_port), scenario, t1=0.05)
    rows = result.cdrs()
    assert len(rows) == 1 and (rows[0].called_device, rows[0].cause) == ("backup", 16), rows


def test_failover_dead_tcp_trunk_immediately(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused with the default T1 (0.5 s): the next trunk within 2 s."""
    backup_port = free_port()

    async def scenario(ctx: Ctx) -> None:
        await _call_over_backup(ctx, backup_port, wait=2.0)

    run_plan(tmp_path, monkeypatch, _dead_tcp_plan(backup_port), scenario)


# --------------------------------------------------------------------------
# 6. trunk max_calls


@pytest.mark.parametrize("with_backup", [True, False], ids=["next-trunk", "no-trunk-left"])
def test_trunk_max_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_backup: bool
) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")
        bob = await phone(ctx, "bob")

        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        up = await answer_trunk_call(call, carrier, first)

        # carrier is at max_calls 1: bob's call skips it.
        call2 = await bob.call(DIALED, body=sdp(A_PORT + 2))
        if with_backup:
            second = await backup.recv_request("INVITE")
            assert second.uri == f"sip:{E164}@{BACKUP_HOST}:{backup_port}"
            tc2 = await answer_trunk_call(call2, backup, second)
            await hang_up(bob, tc2, backup)
        else:
            await failed(call2, 503, 34)
        assert invites(carrier) == []
        # Calls in from the trunk count against the same limit: 503 while it is full.
        caller = await far_end(ctx, E164, CARRIER_HOST)
        call_in = await caller.call("1002", body=sdp(B_PORT), authenticate=False)
        busy = await call_in.final()
        call_in.ack_failure(busy)
        assert busy.status == 503, (busy.status, busy.reason)
        assert await bob.expect_nothing(is_request("INVITE"), wait=0.3) == []
        await hang_up(alice, up, carrier)

        # The trunk is free again: the next call takes it.
        call3 = await bob.call(DIALED, body=sdp(A_PORT + 4))
        third = await carrier.recv_request("INVITE")
        tc3 = await answer_trunk_call(call3, carrier, third)
        await hang_up(bob, tc3, carrier)
        if not with_backup:
            assert invites(backup) == []

    trunks = [
        trunk(
            "carrier",
            CARRIER_HOST,
            carrier_port,
            max_calls=1,
            inbound_addresses=[f"{CARRIER_HOST}/32"],
        )
    ]
    if with_backup:
        trunks.append(trunk("backup", BACKUP_HOST, backup_port))
    rows = run_plan(tmp_path, monkeypatch, dial_plan(trunks), scenario).cdrs()
    got = sorted((r.calling_device, r.called_device, r.cause) for r in rows)
    second = ("bob", "backup", 16) if with_backup else ("bob", "", 34)
    assert got == sorted([("alice", "carrier", 16), second, ("bob", "carrier", 16)]), rows


# --------------------------------------------------------------------------
# 7. calls from a trunk


def test_inbound_from_trunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        alice = await phone(ctx, "alice")
        await phone(ctx, "lobby")
        # Any port of the carrier's inbound_addresses network; a literal host in the R-URI.
        far = await far_end(ctx, E164, CARRIER_HOST, uri_host="offhook")
        assert far.port != carrier_port

        call = await far.call("1001", body=sdp(B_PORT), authenticate=False)
        invite = await alice.recv_request("INVITE")
        assert invite.uri == alice.contact_uri
        assert user_of(invite.headers.get("From") or "") == E164
        assert user_of(invite.headers.get("To") or "") == "1001"
        assert media_port(invite.body) == B_PORT
        a_tag = tag()
        alice.answer(invite, 180, to_tag=a_tag)
        await call.provisional(180)
        alice.answer(invite, 200, to_tag=a_tag, body=sdp(A_PORT))
        ok = await call.final()
        assert ok.status == 200 and media_port(ok.body) == A_PORT
        call.ack(ok)
        await alice.recv_request("ACK")
        assert call.dialog is not None
        far.send_bytes(far.in_dialog(call.dialog, "BYE"))
        bye = await alice.recv_request("BYE")
        alice.answer(bye, 200, to_tag=a_tag)
        assert (await far.recv_response("BYE")).status == 200

        # Outside the trunk's CSS (inbound = internal only): 404, no challenge.
        for number in ("3000", DIALED):
            call = await far.call(number, body=sdp(B_PORT), authenticate=False)
            await failed(call, 404, 1)

        # Not a trunk address: the usual 407.
        stranger = await phone(ctx, "bob", register=False)
        call = await stranger.call("1001", body=sdp(A_PORT), authenticate=False)
        final = await call.final()
        call.ack_failure(final)
        assert final.status == 407, (final.status, final.reason)
        # backup has no inbound_addresses: only its exact host:port is the trunk.
        other_port = await far_end(ctx, "intruder", BACKUP_HOST)
        call = await other_port.call("1001", body=sdp(A_PORT), authenticate=False)
        final = await call.final()
        call.ack_failure(final)
        assert final.status == 407, (final.status, final.reason)
        assert await alice.expect_nothing(is_request("INVITE"), wait=0.3) == []

        exact = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        call = await exact.call("1001", body=sdp(B_PORT), authenticate=False)
        invite = await alice.recv_request("INVITE")
        alice.answer(invite, 486, to_tag=tag())
        await alice.recv_request("ACK")
        final = await call.final()
        call.ack_failure(final)
        assert final.status == 486, (final.status, final.reason)

    plan = dial_plan(
        [
            trunk("carrier", CARRIER_HOST, carrier_port, inbound_addresses=[f"{CARRIER_HOST}/32"]),
            trunk("backup", BACKUP_HOST, backup_port),
        ]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    got = sorted((r.calling_device, r.called, r.called_device, r.cause) for r in rows)
    assert got == [
        ("backup", "1001", "alice", 17),
        ("carrier", "1001", "alice", 16),
        ("carrier", "3000", "", 1),
        ("carrier", DIALED, "", 1),
    ], rows
    answered = [r for r in rows if r.cause == 16]
    assert answered[0].calling == E164 and answered[0].answer is not None


# --------------------------------------------------------------------------
# trunk supervision (OPTIONS pings)


async def trunk_state(ctx: Ctx, name: str) -> str:
    rows = [t for t in (await ctx.status())["trunks"] if t["name"] == name]
    assert len(rows) == 1, rows
    state: str = rows[0]["state"]
    return state


def test_trunk_down_by_options_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trunk answering its OPTIONS ping 503 is skipped at once, until it answers 200."""
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")

        ping = await carrier.recv_request("OPTIONS", timeout=3.0)  # options_ping: 1 s
        assert ping.uri.endswith(f"{CARRIER_HOST}:{carrier_port}"), ping.uri
        carrier.answer(ping, 503, to_tag=tag(), reason="Service Unavailable")
        for _ in range(20):
            if await trunk_state(ctx, "carrier") == "down":
                break
            await asyncio.sleep(0.1)
        assert await trunk_state(ctx, "carrier") == "down"

        call = await alice.call(DIALED, body=sdp(A_PORT))
        second = await backup.recv_request("INVITE", timeout=1.0)  # no Timer B wait
        tc = await answer_trunk_call(call, backup, second)
        await hang_up(alice, tc, backup)
        assert invites(carrier) == []

        # Alive again: the next ping's 200 brings it back into the hunt.
        ping = await carrier.recv_request("OPTIONS", timeout=3.0)
        carrier.answer(ping, 200, to_tag=tag())
        for _ in range(20):
            if await trunk_state(ctx, "carrier") == "up":
                break
            await asyncio.sleep(0.1)
        assert await trunk_state(ctx, "carrier") == "up"
        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        tc = await answer_trunk_call(call, carrier, first)
        await hang_up(alice, tc, carrier)

    plan = dial_plan(
        [
            trunk("carrier", CARRIER_HOST, carrier_port, options_ping=1),
            trunk("backup", BACKUP_HOST, backup_port),
        ]
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    rows.sort(key=lambda r: r.start)
    assert [(r.called_device, r.cause) for r in rows] == [("backup", 16), ("carrier", 16)], rows
