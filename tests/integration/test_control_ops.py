"""The node's control ops on a running node: status, forward_all, dnd, coverage.

What the web process (self-care: a user's forwarding and do not disturb)
and ``offhook status`` ask the node, over its control endpoint on a real
node (``sip_node_rig``: the node in-process, SIP test UAs on loopback):

- ``coverage`` shows each line's forward all (the plan's or the one set
  since), its message waiting state, and the device's do not disturb;
- ``forward_all`` sets, clears (``""``) and gives back to the plan
  (``null``) a line's forward all, and refuses (a Q.850 cause, nothing
  changed) a line the device lacks (1), a number the line cannot reach
  (1) and the line itself (25); a call to the line then follows the
  forward to the phone it names;
- ``dnd`` turns do not disturb on and off;
- an unknown device, a missing argument or one of the wrong type is an
  error answer, and the connection goes on serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sip_node_rig as rig
from sip_node_rig import HOST, Ctx, place_call, run_node
from sipclient import tag

from offhook.ris.control import ControlClient, ControlError

BASE_PLAN = rig.plan


def plan() -> dict[str, Any]:
    base = BASE_PLAN()
    for dev in base["devices"]:
        if dev["name"] == "carol":
            dev["lines"][0]["forward_all"] = {"destination": "1002"}
    return base


def test_forward_all_dnd_and_coverage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rig, "plan", plan)

    async def scenario(ctx: Ctx) -> None:
        node = ControlClient(HOST, ctx.node.admin_port)
        try:
            status = await node.request("status")
            assert status["node"] == rig.NODE_NAME and status["web"] is None

            async def line(device: str) -> dict[str, Any]:
                cov = await node.request("coverage", device=device)
                assert len(cov["lines"]) == 1
                first: dict[str, Any] = cov["lines"][0]
                return first

            assert await node.request("coverage", device="alice") == {
                "dnd": False,
                "lines": [
                    {
                        "dn": "1001",
                        "partition": "",
                        "forward_all": None,
                        "mwi": {"waiting": False, "new": 0, "old": 0},
                    }
                ],
            }
            assert (await line("carol"))["forward_all"] == "1002"  # the plan's

            # Refusals change nothing.
            for dn, destination, cause in (("1001", "1001", 25), ("1001", "99999", 1)):
                answer = await node.request(
                    "forward_all", device="alice", dn=dn, destination=destination
                )
                assert answer == {"cause": cause}
            assert await node.request(
                "forward_all", device="alice", dn="1002", destination="1003"
            ) == {"cause": 1}  # bob's line, not alice's
            assert (await line("alice"))["forward_all"] is None

            # Set: a call to alice's line goes to bob.
            answer = await node.request(
                "forward_all", device="alice", dn="1001", destination="1002"
            )
            assert answer == {"cause": None}
            assert (await line("alice"))["forward_all"] == "1002"
            carol = await ctx.ua("carol", register=True)
            bob = await ctx.ua("bob", register=True)
            call, invite = await place_call(carol, bob, "1001")
            assert invite.method == "INVITE"
            bob.answer(invite, 486, to_tag=tag())
            final = await call.final(10)
            assert final.status >= 400
            call.ack_failure(final)

            # Off, and back to the plan.
            await node.request("forward_all", device="alice", dn="1001", destination="")
            assert (await line("alice"))["forward_all"] is None
            await node.request("forward_all", device="carol", dn="1003", destination="")
            assert (await line("carol"))["forward_all"] is None
            await node.request("forward_all", device="carol", dn="1003", destination=None)
            assert (await line("carol"))["forward_all"] == "1002"

            # Do not disturb.
            assert await node.request("dnd", device="bob", enabled=True) == {}
            assert (await node.request("coverage", device="bob"))["dnd"] is True
            await node.request("dnd", device="bob", enabled=False)
            assert (await node.request("coverage", device="bob"))["dnd"] is False

            # Errors: answered, and the connection goes on.
            for op, args, text in (
                ("coverage", {"device": "nobody"}, "no device 'nobody'"),
                ("dnd", {"device": "bob"}, "missing argument 'enabled'"),
                ("dnd", {"device": "bob", "enabled": "yes"}, "enabled must be true or false"),
                ("forward_all", {"device": "alice", "dn": "1001"}, "missing argument"),
                ("forward_all", {"device": 7, "dn": "1001", "destination": ""}, "device must be"),
                ("nothing", {}, "unknown op"),
            ):
                with pytest.raises(ControlError, match=text):
                    await node.request(op, **args)
            assert (await node.request("status"))["plan_version"] >= 1
        finally:
            await node.close()

    run_node(tmp_path, monkeypatch, scenario)
