"""Finished calls free themselves on a whole in-process node (``sip_node_rig``): after
calls between two registered UAs end, none of their call-control or SIP leg objects is
alive, without the cyclic garbage collector, and a full collection finds none of them.

What stays for 32 s is each dialog's small ended record (``sip.ended``), which a late BYE
of the call still meets (200), and the transactions' own retransmission state.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from pathlib import Path

import pytest
from sip_node_rig import Ctx, establish, make_settings, run_node

from offhook.config import OverloadSettings

CALLS = 12
# What a call is made of, in call control and in the SIP legs.
CALL_TYPES = frozenset(
    {
        "Call",
        "Leg",
        "InboundLeg",
        "OutboundLeg",
        "MidCallOffers",
        "SessionRefresh",
        "ReferHandler",
        "RemoteAnswer",
        "SdpWriter",
    }
)


def census(objects: list[object]) -> Counter[str]:
    """How many objects of a call's types among ``objects`` (by module and class)."""
    found: Counter[str] = Counter()
    for obj in objects:
        kind = type(obj)
        if kind.__name__ in CALL_TYPES and kind.__module__.startswith("offhook."):
            found[kind.__name__] += 1
    return found


def test_finished_calls_are_freed_without_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    async def scenario(ctx: Ctx) -> None:
        alice = await ctx.ua("alice", register=True)
        bob = await ctx.ua("bob", register=True)
        gc.collect()
        before = census(gc.get_objects())
        gc.disable()  # what goes now goes by reference counting
        try:
            last = None
            for n in range(CALLS):
                est = await establish(alice, bob, "1002")
                assert est.call.dialog is not None
                if n % 2:  # the caller hangs up, or the callee
                    alice.send_bytes(alice.in_dialog(est.call.dialog, "BYE"))
                    bye = await bob.recv_request("BYE")
                    bob.answer(bye, 200, to_tag=est.callee_tag)
                    assert (await alice.recv_response("BYE")).status == 200
                else:
                    bob.send_bytes(bob.in_dialog(est.callee_dialog(bob), "BYE"))
                    bye = await alice.recv_request("BYE")
                    alice.answer(bye, 200, to_tag=est.call.from_tag)
                    assert (await bob.recv_response("BYE")).status == 200
                last = est
            await asyncio.sleep(0.3)
            assert (await ctx.status())["calls"].get("calls", []) == []
            # A late BYE of the last call (it crossed ours) meets its ended record: 200.
            assert last is not None and last.call.dialog is not None
            alice.send_bytes(alice.in_dialog(last.call.dialog, "BYE"))
            assert (await alice.recv_response("BYE")).status == 200
            seen["alive"] = census(gc.get_objects()) - before
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                gc.collect()
                seen["garbage"] = census(gc.garbage)
                gc.garbage.clear()
            finally:
                gc.set_debug(0)
        finally:
            gc.enable()

    # Calls back to back from the node's own loop look like overload: not shed here.
    settings = make_settings(tmp_path).model_copy(
        update={"overload": OverloadSettings(enabled=False)}
    )
    run_node(tmp_path, monkeypatch, scenario, settings=settings)
    assert seen["alive"] == Counter(), seen
    assert seen["garbage"] == Counter(), seen
