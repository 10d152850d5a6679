"""Dial plan routing on a whole in-process node (``dialplan_node_rig``): what a
calling search space lets a phone see (a hidden number is 404 like a missing
one), a translation pattern analysed again with its own CSS, blocked (403) and
incomplete (484) numbers, an outbound call over a trunk with its called/calling
transformations on the wire (E.164 prefix, calling mask, a member's override,
restricted presentation), and circular distribution across a route group.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dialplan_node_rig import (
    BACKUP_HOST,
    CARRIER_HOST,
    DIALED,
    E164,
    answer_trunk_call,
    by_called,
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

from support.ports import free_port

# --------------------------------------------------------------------------
# 1. CSS visibility


def test_css_visibility(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await phone(ctx, "alice")
        bob = await phone(ctx, "bob")
        lobby = await phone(ctx, "lobby")

        # staff (internal, pstn) reaches 1002 in `internal`.
        call = await alice.call("1002", body=sdp(A_PORT))
        invite = await bob.recv_request("INVITE")
        assert invite.uri == bob.contact_uri
        assert user_of(invite.headers.get("To") or "") == "1002"
        tc = await answer_trunk_call(call, bob, invite)
        await hang_up(alice, tc, bob)

        # lobby (public only): 1002 does not exist for it -> 404 / cause 1, not 403.
        call = await lobby.call("1002", body=sdp(A_PORT))
        await failed(call, 404, 1)
        # ... exactly what a number that exists nowhere gets.
        call = await lobby.call("5555", body=sdp(A_PORT))
        await failed(call, 404, 1)
        assert await bob.expect_nothing(is_request("INVITE"), wait=0.3) == []

    plan = dial_plan([trunk("carrier", CARRIER_HOST, 5)])
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert len(rows) == 3, rows
    ok = [r for r in rows if r.calling_device == "alice"]
    assert len(ok) == 1 and (ok[0].called_device, ok[0].cause) == ("bob", 16), ok
    assert ok[0].answer is not None
    hidden = [r for r in rows if r.calling_device == "lobby"]
    assert sorted((r.called, r.cause, r.called_device) for r in hidden) == [
        ("1002", 1, ""),
        ("5555", 1, ""),
    ], hidden


# --------------------------------------------------------------------------
# 2. translation pattern


def test_translation_pattern_rings_reception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await phone(ctx, "alice")
        reception = await phone(ctx, "reception")
        call = await alice.call("0", body=sdp(A_PORT))
        invite = await reception.recv_request("INVITE")
        assert invite.uri == reception.contact_uri
        # "0" -> replace "1000", analysed again with the translation's CSS.
        assert user_of(invite.headers.get("To") or "") == "1000"
        assert user_of(invite.headers.get("From") or "") == "1001"
        assert media_port(invite.body) == A_PORT
        tc = await answer_trunk_call(call, reception, invite)
        assert media_port(tc.ok.body) == B_PORT
        await hang_up(alice, tc, reception)

    result = run_plan(
        tmp_path, monkeypatch, dial_plan([trunk("carrier", CARRIER_HOST, 5)]), scenario
    )
    rows = result.cdrs()
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row.calling_device, row.called_device, row.cause) == ("alice", "reception", 16)
    assert row.answer is not None
    assert row.original_called == "0", row


# --------------------------------------------------------------------------
# 3. blocked and incomplete numbers


def test_blocked_and_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port = free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        alice = await phone(ctx, "alice")
        # 9.1900XXXXXXX is closer than 9.1[2-9]XX[2-9]XXXXXX and blocks: 403, cause 21.
        call = await alice.call("919005551234", body=sdp(A_PORT))
        await failed(call, 403, 21)
        # A prefix of a route pattern, en bloc: 484 (address incomplete, cause 28).
        call = await alice.call("912125", body=sdp(A_PORT))
        await failed(call, 484, 28)
        assert await carrier.expect_nothing(is_request("INVITE"), wait=0.3) == []

    plan = dial_plan([trunk("carrier", CARRIER_HOST, carrier_port)])
    rows = by_called(run_plan(tmp_path, monkeypatch, plan, scenario).cdrs())
    assert set(rows) == {"919005551234", "912125"}, rows
    assert rows["919005551234"].cause == 21
    assert rows["912125"].cause == 28
    assert all(r.answer is None and r.calling_device == "alice" for r in rows.values())


# --------------------------------------------------------------------------
# 4. outbound over a trunk


def test_outbound_call_over_trunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port = free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        alice = await phone(ctx, "alice")

        call = await alice.call(DIALED, body=sdp(A_PORT))
        invite = await carrier.recv_request("INVITE")
        # discard pre-dot, prefix "+": the far end is asked for the E.164 number.
        assert invite.uri == f"sip:{E164}@{CARRIER_HOST}:{carrier_port}", invite.uri
        assert user_of(invite.headers.get("To") or "") == E164
        from_ = invite.headers.get("From") or ""
        assert user_of(from_) == "1001", from_
        assert from_.startswith('"Alice" '), from_
        assert invite.content_type() == "application/sdp"
        assert media_port(invite.body) == A_PORT
        via = invite.top_via
        assert via.startswith(f"SIP/2.0/UDP 127.0.0.1:{ctx.node.sip_port};"), via

        tc = await answer_trunk_call(call, carrier, invite)
        assert media_port(tc.ok.body) == B_PORT
        calls = (await ctx.status())["calls"]["calls"]
        assert len(calls) == 1, calls
        await hang_up(alice, tc, carrier)

        # Again, this time the far end hangs up (an in-dialog BYE from the trunk's address).
        call = await alice.call(DIALED, body=sdp(A_PORT))
        invite = await carrier.recv_request("INVITE")
        tc = await answer_trunk_call(call, carrier, invite)
        carrier.send_bytes(carrier.in_dialog(carrier.uas_dialog(invite, tc.far_tag), "BYE"))
        bye = await alice.recv_request("BYE")
        assert bye.call_id == call.call_id
        alice.answer(bye, 200, to_tag=call.from_tag)
        assert (await carrier.recv_response("BYE")).status == 200
        await asyncio.sleep(0.3)
        assert (await ctx.status())["calls"]["calls"] == []

    plan = dial_plan([trunk("carrier", CARRIER_HOST, carrier_port)])
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert len(rows) == 2, rows
    for row in rows:
        assert (row.calling, row.called) == ("1001", DIALED)
        assert (row.calling_device, row.called_device) == ("alice", "carrier")
        assert row.cause == 16 and row.answer is not None


def test_transformations_on_the_wire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calling mask, a route-group member's called override, restricted presentation."""
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        carrier = await far_end(ctx, "carrier", CARRIER_HOST, carrier_port)
        backup = await far_end(ctx, "backup", BACKUP_HOST, backup_port)
        alice = await phone(ctx, "alice")

        # The pattern's calling mask 5551XXXX on 1001; carrier uses the pattern's "+".
        call = await alice.call(DIALED, body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        assert first.uri == f"sip:{E164}@{CARRIER_HOST}:{carrier_port}", first.uri
        assert user_of(first.headers.get("From") or "") == "55511001", first.headers.get("From")
        carrier.answer(first, 503, to_tag=tag(), reason="Service Unavailable")
        # backup's member transform (prefix "00") overrides the pattern's prefix only.
        second = await backup.recv_request("INVITE")
        assert second.uri == f"sip:00{E164[1:]}@{BACKUP_HOST}:{backup_port}", second.uri
        assert user_of(second.headers.get("From") or "") == "55511001"
        tc = await answer_trunk_call(call, backup, second)
        await hang_up(alice, tc, backup)

        # 8.XXXX: presentation restricted -> anonymous From, no display name.
        call = await alice.call("84321", body=sdp(A_PORT))
        first = await carrier.recv_request("INVITE")
        assert first.uri == f"sip:84321@{CARRIER_HOST}:{carrier_port}", first.uri
        from_ = first.headers.get("From") or ""
        assert user_of(from_) == "anonymous" and '"' not in from_, from_
        carrier.answer(first, 404, to_tag=tag(), reason="Not Found")
        await failed(call, 404, 1)

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)],
        ["carrier", {"trunk": "backup", "called_transform": {"prefix": "00"}}],
        calling_transform={"mask": "5551XXXX"},
        extra_patterns=[
            {
                "pattern": "8.XXXX",
                "partition": "pstn",
                "route_list": "pstn-out",
                "calling_transform": {"presentation": "restricted"},
            }
        ],
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    got = sorted((r.called, r.called_device, r.cause) for r in rows)
    assert got == [("84321", "carrier", 1), (DIALED, "backup", 16)], rows


def test_circular_route_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    carrier_port, backup_port = free_port(), free_port()

    async def scenario(ctx: Ctx) -> None:
        fars = {
            "carrier": await far_end(ctx, "carrier", CARRIER_HOST, carrier_port),
            "backup": await far_end(ctx, "backup", BACKUP_HOST, backup_port),
        }
        alice = await phone(ctx, "alice")
        used = []
        for _ in range(4):
            call = await alice.call(DIALED, body=sdp(A_PORT))
            await asyncio.sleep(0.2)
            got = [name for name, far in fars.items() if invites(far)]
            assert len(got) == 1, got  # one trunk per call, no parallel offer
            far = fars[got[0]]
            invite = await far.recv_request("INVITE")
            tc = await answer_trunk_call(call, far, invite)
            await hang_up(alice, tc, far)
            used.append(got[0])
        assert used[0] != used[1] and used[:2] == used[2:], used

    plan = dial_plan(
        [trunk("carrier", CARRIER_HOST, carrier_port), trunk("backup", BACKUP_HOST, backup_port)],
        distribution="circular",
    )
    rows = run_plan(tmp_path, monkeypatch, plan, scenario).cdrs()
    assert sorted(r.called_device for r in rows) == ["backup", "backup", "carrier", "carrier"]
