"""The dial plan on a whole in-process node: CSS, translations, route lists, SIP trunks.

Uses the harness of ``test_sip_node`` (``run_node`` with its module-level
``plan`` swapped for the plans built here) and the raw test UA of
``sipclient``. A trunk's far end is a ``FarEnd``: a ``SipClient`` bound to
another loopback address (127.0.0.2, 127.0.0.3) acting as UAS (or UAC for
calls into offhook), so every assertion is on a real wire message; CDRs are
read after the node stopped.

Every wait is bounded (``recv`` timeouts, ``run_node``'s scenario timeout).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import test_sip_node as harness
from sipclient import Call, SipClient, angle_uri, header_param, is_request, sdp, tag
from test_sip_node import A_PORT, B_PORT, Ctx, Result, media_port, run_node

from offhook.db.cdr import CdrRow
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from support.ports import free_port

CARRIER_HOST = "127.0.0.2"
BACKUP_HOST = "127.0.0.3"
DEAD_HOST = "127.0.0.4"
E164 = "+12125550100"  # what 9.1[2-9]XX[2-9]XXXXXX makes of DIALED
DIALED = "912125550100"

# name -> (password, DN, partition, css)
PHONES: dict[str, tuple[str, str, str, str]] = {
    "alice": ("alice-Secret-1", "1001", "internal", "staff"),
    "bob": ("bob-Secret-1", "1002", "internal", "staff"),
    "reception": ("reception-Secret-1", "1000", "internal", "staff"),
    "lobby": ("lobby-Secret-1", "3000", "public", "lobby"),  # CSS without `internal`
}


def trunk(
    name: str, host: str, port: int, *, transport: str = "udp", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "sip",
        "host": host,
        "port": port,
        "transport": transport,
        "css": "inbound",
        "options_ping": 0,  # unsupervised unless a test asks (then: always up)
        **extra,
    }


def dial_plan(
    trunks: list[dict[str, Any]],
    members: list[Any] | None = None,
    *,
    distribution: str = "top-down",
    calling_transform: dict[str, Any] | None = None,
    extra_patterns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The issue-3 plan shape: route list pstn-out -> group carriers -> ``members``."""
    nanp: dict[str, Any] = {
        "pattern": "9.1[2-9]XX[2-9]XXXXXX",
        "partition": "pstn",
        "route_list": "pstn-out",
        "called_transform": {"discard": "pre-dot", "prefix": "+"},
    }
    if calling_transform is not None:
        nanp["calling_transform"] = calling_transform
    return {
        "partitions": ["internal", "pstn", "public"],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal", "pstn"]},
            {"name": "lobby", "partitions": ["public"]},
            {"name": "inbound", "partitions": ["internal"]},
        ],
        "devices": [
            {
                "name": name,
                "protocol": "sip",
                "password": pw,
                "css": css,
                "lines": [{"dn": dn, "partition": part, "display": name.title()}],
            }
            for name, (pw, dn, part, css) in PHONES.items()
        ],
        "trunks": trunks,
        "route_groups": [
            {
                "name": "carriers",
                "distribution": distribution,
                "members": members if members is not None else [t["name"] for t in trunks],
            }
        ],
        "route_lists": [{"name": "pstn-out", "groups": ["carriers"]}],
        "route_patterns": [
            nanp,
            {"pattern": "9.1900XXXXXXX", "partition": "pstn", "block": True},
            *(extra_patterns or []),
        ],
        "translation_patterns": [
            {
                "pattern": "0",
                "partition": "internal",
                "css": "staff",
                "called_transform": {"replace": "1000"},
            }
        ],
    }


def run_plan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plan: dict[str, Any],
    scenario: Callable[[Ctx], Awaitable[None]],
    **sip: Any,
) -> Result:
    """``test_sip_node.run_node`` with ``plan`` loaded instead of its own."""
    monkeypatch.setattr(harness, "plan", lambda: plan)
    return run_node(tmp_path, monkeypatch, scenario, **sip)


@dataclass
class FarEnd(SipClient):
    """A UDP test UA bound to a chosen loopback address and port (a trunk's far end).

    ``server`` is the offhook node (where its requests and responses go);
    ``uri_host`` replaces the node's address in the Request-URI of INVITEs.
    """

    bind_host: str = CARRIER_HOST
    bind_port: int = 0
    uri_host: str | None = None

    async def start(self) -> FarEnd:
        assert self.transport == "udp", "FarEnd is UDP only"
        loop = asyncio.get_running_loop()
        owner = self

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                owner._received(data)

        self._udp, _ = await loop.create_datagram_endpoint(
            _Proto, local_addr=(self.bind_host, self.bind_port)
        )
        self.port = self._udp.get_extra_info("sockname")[1]
        return self

    @property
    def host_port(self) -> str:
        return f"{self.bind_host}:{self.port}"

    def invite_request(
        self,
        called: str,
        *,
        call_id: str,
        from_tag: str,
        cseq: int,
        body: bytes = b"",
        auth: str | None = None,
        branch_: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> bytes:
        data = super().invite_request(
            called,
            call_id=call_id,
            from_tag=from_tag,
            cseq=cseq,
            body=body,
            auth=auth,
            branch_=branch_,
            headers=headers,
        )
        if self.uri_host is None:
            return data
        old = f"INVITE sip:{called}@{self.server[0]}:{self.server[1]} SIP/2.0".encode()
        new = f"INVITE sip:{called}@{self.uri_host} SIP/2.0".encode()
        return data.replace(old, new, 1)


async def far_end(ctx: Ctx, name: str, host: str, port: int = 0, **kw: Any) -> FarEnd:
    ua = FarEnd(ctx.sip, name, bind_host=host, bind_port=port, **kw)
    await ua.start()
    ctx.clients.append(ua)
    return ua


async def phone(ctx: Ctx, name: str, register: bool = True) -> SipClient:
    return await ctx.ua(name, password=PHONES[name][0], register=register)


def q850(resp: SipResponse) -> int | None:
    for value in resp.headers.get_all("Reason"):
        if value.lower().startswith("q.850"):
            cause = header_param(value, "cause")
            return int(cause) if cause is not None else None
    return None


def user_of(value: str) -> str:
    uri = angle_uri(value)
    return uri.split(":", 1)[1].split("@", 1)[0]


def invites(ua: SipClient) -> list[SipMessage]:
    return [m for m in ua.inbox if isinstance(m, SipRequest) and m.method == "INVITE"]


async def failed(call: Call, status: int, cause: int | None, timeout: float = 3.0) -> SipResponse:
    """The call's final response is ``status`` with Reason Q.850 ``cause``; ACK it."""
    final = await call.final(timeout)
    call.ack_failure(final)
    assert (final.status, q850(final)) == (status, cause), (
        final.status,
        final.reason,
        final.headers.get_all("Reason"),
    )
    return final


@dataclass
class TrunkCall:
    call: Call
    invite: SipRequest  # what the far end received
    far_tag: str
    ok: SipResponse  # the 200 the caller received


async def answer_trunk_call(
    call: Call, far: SipClient, invite: SipRequest, *, relayed_180: bool = True
) -> TrunkCall:
    """The far end rings and answers ``invite`` with SDP; the caller ACKs.

    ``relayed_180=False``: the caller already heard ringing (an earlier fork
    or trunk), so this 180 is not relayed again.
    """
    far_tag = tag()
    far.answer(invite, 180, to_tag=far_tag)
    if relayed_180:
        ringing = await call.provisional(180)
        assert ringing.status == 180
    far.answer(invite, 200, to_tag=far_tag, body=sdp(B_PORT))
    ok = await call.final()
    assert ok.status == 200, (ok.status, ok.reason)
    call.ack(ok)
    ack = await far.recv_request("ACK")
    assert ack.call_id == invite.call_id
    return TrunkCall(call, invite, far_tag, ok)


async def hang_up(caller: SipClient, tc: TrunkCall, far: SipClient) -> None:
    assert tc.call.dialog is not None
    caller.send_bytes(caller.in_dialog(tc.call.dialog, "BYE"))
    bye = await far.recv_request("BYE")
    assert bye.call_id == tc.invite.call_id
    far.answer(bye, 200, to_tag=tc.far_tag)
    assert (await caller.recv_response("BYE")).status == 200


def by_called(rows: list[CdrRow]) -> dict[str, CdrRow]:
    out = {r.called: r for r in rows}
    assert len(out) == len(rows), rows
    return out


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
