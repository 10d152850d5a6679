"""RIS on a whole in-process node: a device whose address is blocked for failed logins.

bob's phone (127.0.0.2) registers with a wrong password until the failed-login
guard (``[auth] block_after`` 3) blocks its address; from then on its
REGISTERs are dropped unanswered. ``ris_devices`` shows bob refused *and*
blocked, which is why he does not register; alice, registered from
127.0.0.1, is not touched.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sip_node_rig import Ctx, make_settings, run_node
from sipclient import SipClient

from offhook.config import AuthSettings

BLOCKED_HOST = "127.0.0.2"


def test_a_device_refused_from_a_blocked_address_shows_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        await ctx.ua("alice", register=True)
        bob = SipClient(
            ctx.sip, "bob", "not-bobs-password", realm=ctx.settings.sip.realm, local=BLOCKED_HOST
        )
        await bob.start()
        ctx.clients.append(bob)
        for _ in range(3):
            _, final = await bob.register(expires=300)
            assert final.status == 403, (final.status, final.reason)
        rows = {d["name"]: d for d in (await ctx.control("ris_devices"))["devices"]}
        assert (rows["bob"]["status"], rows["bob"]["address"]) == ("rejected", BLOCKED_HOST)
        assert rows["bob"]["blocked"] is True
        assert rows["alice"]["status"] == "registered" and rows["alice"]["blocked"] is False
        status = await ctx.status()
        assert status["auth"]["blocked_now"] == 1

    base = make_settings(tmp_path)
    settings = base.model_copy(
        update={"auth": AuthSettings(secret="integration-test-secret", block_after=3)}
    )
    run_node(tmp_path, monkeypatch, scenario, settings=settings)
