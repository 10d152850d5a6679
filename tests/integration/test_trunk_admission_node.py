"""Rate limits on a whole in-process node: what is dropped first, and trunks' own limits.

1. A source over its ``[sip]`` bucket (phones on 127.0.0.1, a bucket of 40
   at 1 a second) still gets its responses and in-dialog requests through
   while its new requests are dropped: bob floods OPTIONS, then his 180/200
   to alice's call still reach the node, her ACK and BYE still reach bob,
   and a new INVITE from the same address is not answered.
2. A trunk over its ``max_cps`` gets 503 with Retry-After for its new
   INVITEs (before routing), and at its ``max_calls`` 503 "Trunk Busy" with
   Retry-After.

Every wait is bounded (``recv`` timeouts); no assertion on a duration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dialplan_node_rig import CARRIER_HOST, dial_plan, far_end, phone, run_plan, trunk
from prometheus_client.parser import text_string_to_metric_families
from sip_node_rig import A_PORT, B_PORT, Ctx, options, run_node
from sipclient import is_request, is_response, sdp, tag

from offhook.sip.message import SipResponse
from support.ports import free_port

# --------------------------------------------------------------------------
# 1. work under way before new work


def test_responses_and_in_dialog_requests_pass_a_source_over_its_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        call = await alice.call("1002", body=sdp(A_PORT))
        invite = await bob.recv_request("INVITE")

        # bob's address (also alice's: both on 127.0.0.1) floods new requests.
        for _ in range(80):
            bob.send_bytes(options(bob))
        to_tag = tag()
        bob.answer(invite, 180, to_tag=to_tag)
        bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
        ok = await call.final(timeout=5.0)
        assert ok.status == 200, (ok.status, ok.reason)
        call.ack(ok)
        await bob.recv_request("ACK", timeout=5.0)

        assert call.dialog is not None
        alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
        bye = await bob.recv_request("BYE", timeout=5.0)
        bob.answer(bye, 200, to_tag=to_tag)
        done = await alice.recv(is_response("BYE", final=True), timeout=5.0)
        assert isinstance(done, SipResponse) and done.status == 200

        # New work from that address is still dropped: no 407 for a new INVITE.
        fresh = await alice.call("1002", body=sdp(A_PORT), authenticate=False)
        assert await alice.expect_nothing(fresh.matches, wait=0.5) == []
        status = await ctx.status()
        assert status["counters"]["rejections"]["sip"]["rate-limit"] > 0

    run_node(tmp_path, monkeypatch, scenario, rate_per_source=1.0, rate_burst=40.0)


# --------------------------------------------------------------------------
# 2. a trunk's max_cps and max_calls


def test_trunk_over_max_cps_gets_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        await phone(ctx, "alice")
        far = await far_end(ctx, "+12125550100", CARRIER_HOST)
        calls = [await far.call("1999", body=sdp(B_PORT), authenticate=False) for _ in range(8)]
        finals = [await c.final(timeout=5.0) for c in calls]
        for c, resp in zip(calls, finals, strict=True):
            c.ack_failure(resp)
        # A burst of 2 (max_cps 1 x 2 s): the first two are routed (1999: no such number).
        assert all(r.status != 503 for r in finals[:2]), [r.status for r in finals]
        refused = [r for r in finals if r.status == 503]
        assert refused, [r.status for r in finals]
        for r in refused:
            assert r.reason == "Trunk Call Rate Exceeded", r.reason
            assert int(r.headers.get("Retry-After") or "0") >= 1
        # Counted per trunk, in the status and the metrics.
        (row,) = (await ctx.status())["trunk_limits"]
        assert (row["name"], row["max_cps"], row["refused_rate"]) == ("carrier", 1, len(refused))
        assert row["calls_admitted"] == 8 - len(refused) and row["refused_busy"] == 0
        text = (await ctx.control("metrics"))["text"]
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for name in ("offhook_trunk_calls_refused", "offhook_trunk_calls_admitted")
            for s in families[name].samples
        }
        key = ("offhook_trunk_calls_refused_total", (("reason", "rate"), ("trunk", "carrier")))
        assert samples[key] == len(refused)
        key = ("offhook_trunk_calls_admitted_total", (("trunk", "carrier"),))
        assert samples[key] == 8 - len(refused)

    trunks = [
        trunk(
            "carrier",
            CARRIER_HOST,
            free_port(),
            max_cps=1,
            inbound_addresses=[f"{CARRIER_HOST}/32"],
        )
    ]
    run_plan(tmp_path, monkeypatch, dial_plan(trunks), scenario)


def test_trunk_at_max_calls_gets_503_trunk_busy_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        alice = await phone(ctx, "alice")
        far = await far_end(ctx, "+12125550100", CARRIER_HOST)
        first = await far.call("1001", body=sdp(B_PORT), authenticate=False)
        await alice.recv_request("INVITE")  # ringing: one call in progress with the trunk
        second = await far.call("1001", body=sdp(B_PORT + 2), authenticate=False)
        busy = await second.final()
        second.ack_failure(busy)
        assert (busy.status, busy.reason) == (503, "Trunk Busy")
        (row,) = (await ctx.status())["trunk_limits"]
        assert (row["refused_busy"], row["calls_admitted"]) == (1, 1)
        assert int(busy.headers.get("Retry-After") or "0") >= 1
        assert await alice.expect_nothing(is_request("INVITE"), wait=0.3) == []
        first.cancel()
        cancelled = await first.final()
        first.ack_failure(cancelled)

    trunks = [
        trunk(
            "carrier",
            CARRIER_HOST,
            free_port(),
            max_calls=1,
            inbound_addresses=[f"{CARRIER_HOST}/32"],
        )
    ]
    run_plan(tmp_path, monkeypatch, dial_plan(trunks), scenario)
