"""What overload control remembers per call, against a real ``offhook serve``: forced into
partial shedding (an injected load, ``[overload] min_admit`` 0.5: one new call in two), a
call whose first INVITE was admitted and challenged (407) is not shed when its INVITE
with credentials comes back (same Call-ID): it completes; a retransmission of a shed
INVITE gets the same 503 again without being counted as another shed call. Every wait is
bounded (a count of attempts and polls, the UA's receive timeouts); nothing is timed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sip_node_rig import A_PORT, B_PORT
from sipclient import SipClient, branch, sdp, tag
from test_overload_node import PLAN, control, run, ua

from support.overload import injected_only
from support.server import OffhookServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = OffhookServer(
        tmp_path_factory.mktemp("overload-memory"),
        PLAN,
        # Only the injected load counts (a busy CI machine must not shed these calls);
        # shedding never goes below one call in two.
        extra_config=injected_only(min_admit=0.5),
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def shedding_half(server: OffhookServer) -> dict[str, Any]:
    status: dict[str, Any] = {}
    for _ in range(300):
        status = await control(server, "overload")
        if status["state"] == "overloaded" and status["admit_ratio"] == 0.5:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"never shedding one call in two: {status}")


def test_a_challenged_call_is_not_shed_when_it_answers_the_challenge(
    server: OffhookServer, tmp_path: Path
) -> None:
    async def body() -> None:
        alice, bob = await ua(server, "alice"), await ua(server, "bob")
        try:
            await control(server, "overload_test_load", load=10)
            await shedding_half(server)
            first: list[int] = []
            completed = False
            for _ in range(8):  # one new call in two is admitted: 8 tries are plenty
                call = await alice.call("1002", body=sdp(A_PORT), authenticate=False)
                answer = await call.final()
                call.ack_failure(answer)
                first.append(answer.status)
                if answer.status == 503:
                    continue
                assert answer.status == 407, (answer.status, answer.reason)
                # The INVITE with credentials, as SipClient.call sends it.
                uri = f"sip:1002@{alice.server_host}:{alice.server[1]}"
                call.cseq += 1
                call.branch = branch()
                challenge = answer.headers.get("Proxy-Authenticate") or ""
                call.auth = alice.authorization(challenge, "INVITE", uri)
                alice.send_bytes(call.invite_bytes())
                invite = await bob.recv_request("INVITE")  # not shed: it reached bob
                to_tag = tag()
                bob.answer(invite, 200, to_tag=to_tag, body=sdp(B_PORT))
                ok = await call.final()
                assert ok.status == 200, (ok.status, ok.reason)
                call.ack(ok)
                await bob.recv_request("ACK")
                assert call.dialog is not None
                alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
                bye = await bob.recv_request("BYE")
                bob.answer(bye, 200, to_tag=to_tag)
                assert (await alice.recv_response("BYE")).status == 200
                completed = True
                break
            assert completed, first
            status = await control(server, "overload")
            assert status["memory"]["followed"] >= 1
        finally:
            await control(server, "overload_test_load", load=None)
            for client in (alice, bob):
                await client.close()

    run(body)


def test_a_retransmitted_shed_invite_gets_the_same_503_and_is_not_counted_again(
    server: OffhookServer,
) -> None:
    async def body() -> None:
        alice: SipClient = await ua(server, "alice", register=False)
        try:
            await control(server, "overload_test_load", load=10)
            await shedding_half(server)
            for _ in range(8):
                call = await alice.call("1002", body=sdp(A_PORT), authenticate=False)
                answer = await call.final()
                if answer.status == 503:
                    break
                call.ack_failure(answer)
            else:
                raise AssertionError("no INVITE shed in 8 tries at one in two")
            before = await control(server, "overload")
            alice.send_bytes(call.invite_bytes())  # the retransmission: same branch and CSeq
            again = await call.final()
            assert again.status == 503 and again.to_tag == answer.to_tag
            call.ack_failure(again)
            after = await control(server, "overload")
            assert after["shed"]["invite"] == before["shed"]["invite"]
            assert after["memory"]["resent"] == before["memory"]["resent"] + 1
        finally:
            await control(server, "overload_test_load", load=None)
            await alice.close()

    run(body)
