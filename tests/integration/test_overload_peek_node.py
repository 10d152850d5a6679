"""A real ``offhook serve`` (``support.server``) sheds new INVITEs before their full parse.

Forced into overload through the test-only control op ``overload_test_load``,
the node answers new INVITEs over UDP 503 from the look at their bytes
(``sip.shed_peek``: ``shed_unparsed`` in the overload status counts them): a
retransmission gets the same 503 (the same To tag), the ACK of that 503 is
dropped unparsed too (``absorbed``), an INVITE with a To tag
(in-dialog) or with Replaces is not shed by it, OPTIONS are answered, and a
call to an exempt number goes on to its digest challenge. Every wait is
bounded (a count of polls, the UA's receive timeouts); nothing is timed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sip_node_rig import options_ok
from sipclient import HOST, SipClient, sdp
from test_overload_node import PASSWORDS, PLAN, control, run, wait_state

from support.overload import injected_only
from support.server import OffhookServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = OffhookServer(
        tmp_path_factory.mktemp("overload_peek"),
        PLAN,
        extra_config=injected_only(exempt=["1003"]),
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_new_invites_are_shed_before_the_full_parse(server: OffhookServer, tmp_path: Path) -> None:
    async def body() -> None:
        alice = SipClient((HOST, server.sip_port), "alice", PASSWORDS["alice"], realm=server.realm)
        await alice.start()
        try:
            await control(server, "overload_test_load", load=10)
            before = (await wait_state(server, "overloaded"))["shed_unparsed"]

            call = await alice.call("1002", body=sdp(40100), authenticate=False)
            refused = await call.final()
            assert refused.status == 503, (refused.status, refused.reason)
            assert (refused.headers.get("Retry-After") or "").isdigit()
            status = await control(server, "overload")
            assert status["shed_unparsed"] == before + 1, status

            # A retransmission of the same INVITE: the same answer, from memory.
            alice.send_bytes(call.invite_bytes())
            again = await call.final()
            assert again.status == 503 and again.to_tag == refused.to_tag
            call.ack_failure(refused)
            status = await control(server, "overload")
            assert status["shed_unparsed"] == before + 2 and status["memory"]["resent"] >= 1
            # The ACK of the 503 is dropped before its parse too (absorbed).
            for _ in range(100):
                if status["memory"]["absorbed"] >= 1:
                    break
                await asyncio.sleep(0.05)
                status = await control(server, "overload")
            assert status["memory"]["absorbed"] == 1, status

            # An exempt number goes on (to its digest challenge), OPTIONS are answered.
            exempt = await alice.call("1003", body=sdp(40200), authenticate=False)
            challenged = await exempt.final()
            assert challenged.status in (401, 407), (challenged.status, challenged.reason)
            exempt.ack_failure(challenged)
            await options_ok(alice)
            status = await control(server, "overload")
            assert status["shed_unparsed"] == before + 2, status
        finally:
            await control(server, "overload_test_load", load=None)
            await alice.close()

    run(body)
