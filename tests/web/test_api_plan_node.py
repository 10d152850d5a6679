"""A device added over the REST API registers with a running node without a restart:
the change bumps ``plan_version``, the node reloads its plan, and a SIP REGISTER
with the new device's credentials (digest against the node's realm) is accepted
where it was refused before."""

from __future__ import annotations

from pathlib import Path

from integration.sipclient import HOST, SipClient
from web.live_node import live_node

PASSWORD = "dave-Secret-4"


async def test_device_added_over_the_api_registers(tmp_path: Path) -> None:
    async with live_node(tmp_path) as node:
        before = await node.status()
        dave = SipClient((HOST, node.server.sip_port), "dave", PASSWORD, realm=node.server.realm)
        await dave.start()
        try:
            _, refused = await dave.register(expires=120)
            assert refused.status == 403  # not in the plan yet

            made = await node.client.post(
                "/api/v1/devices",
                json={
                    "name": "dave",
                    "protocol": "sip",
                    "password": PASSWORD,
                    "lines": [{"dn": "1004", "display": "Dave"}],
                },
                headers=node.headers,
            )
            assert made.status_code == 201, made.text

            async def reloaded() -> bool:
                status = await node.status()
                return bool(status["plan_version"] > before["plan_version"])

            await node.until(reloaded)
            _, ok = await dave.register(expires=120)
            assert ok.status == 200, (ok.status, ok.reason)

            regs = await node.client.get("/api/v1/registrations", headers=node.headers)
            assert regs.status_code == 200
            assert [r["device"] for r in regs.json()["sip"]] == ["dave"]

            # A PATCH that changes only the description keeps the stored secret.
            patched = await node.client.patch(
                "/api/v1/devices/dave", json={"description": "Dave's desk"}, headers=node.headers
            )
            assert patched.status_code == 200

            async def reloaded_again() -> bool:
                status = await node.status()
                return bool(status["plan_version"] > before["plan_version"] + 1)

            await node.until(reloaded_again)
            _, still = await dave.register(expires=120)
            assert still.status == 200
        finally:
            await dave.close()
