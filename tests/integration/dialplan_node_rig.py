"""The harness of the whole-node dial plan tests: plans with CSS, route lists and SIP trunks.

Builds on ``sip_node_rig`` (``run_plan`` is its ``run_node`` with the
module-level ``plan`` swapped for a plan built by ``dial_plan``) and the raw
test UA of ``sipclient``. A trunk's far end is a ``FarEnd``: a ``SipClient``
bound to another loopback address (127.0.0.2, 127.0.0.3) acting as UAS (or UAC
for calls into offhook), so every assertion is on a real wire message. Also
here: the phones of the plan, and helpers that answer, hang up or fail a call
through a trunk and read Q.850 causes and CDRs.

Every wait is bounded (``recv`` timeouts, ``run_node``'s scenario timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sip_node_rig as harness
from sip_node_rig import B_PORT, Ctx, Result, run_node
from sipclient import Call, SipClient, angle_uri, header_param, sdp, tag

from offhook.db.cdr import CdrRow
from offhook.sip.message import SipMessage, SipRequest, SipResponse

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
    """``sip_node_rig.run_node`` with ``plan`` loaded instead of its own."""
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
