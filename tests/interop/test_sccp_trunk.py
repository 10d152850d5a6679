"""An SCCP phone calls out over a SIP trunk: overlap dialing, route pattern, SIPp as the carrier.

The phone dials ``9`` then seven digits one key at a time; the route pattern
``9.XXXXXXX`` (discard pre-dot) sends the call over the ``carrier`` trunk, a
SIPp UAS that answers (with an SDP offer: the phone's call is a delayed
offer) and echoes RTP (``-rtp_echo``). RTP from the phone must come back to
it, and the call record must name the trunk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from interop.peers import require_binary
from interop.sipp import Sipp, describe
from offhook.sccp.messages import CallState, StartMediaTransmission
from offhook.sccp.ui import CallStateCode
from support.ports import HOST
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

CAROL = "SEP001122334455"


def plan(carrier_port: int) -> dict[str, Any]:
    return {
        "partitions": ["internal", "pstn"],
        "calling_search_spaces": [{"name": "staff", "partitions": ["internal", "pstn"]}],
        "devices": [
            {
                "name": CAROL,
                "protocol": "sccp",
                "model": "7960",
                "css": "staff",
                "lines": [{"dn": "1003", "display": "Carol", "partition": "internal"}],
            }
        ],
        "trunks": [
            {
                "name": "carrier",
                "protocol": "sip",
                "host": HOST,
                "port": carrier_port,
                "css": "staff",
                "options_ping": 0,
            }
        ],
        "route_groups": [{"name": "carriers", "members": ["carrier"]}],
        "route_lists": [{"name": "pstn-out", "groups": ["carriers"]}],
        "route_patterns": [
            {
                "pattern": "9.XXXXXXX",
                "partition": "pstn",
                "route_list": "pstn-out",
                "called_transform": {"discard": "pre-dot"},
            }
        ],
    }


def state_is(code: CallStateCode) -> Any:
    return lambda m: isinstance(m, CallState) and m.call_state == code


def test_sccp_phone_calls_out_over_a_sip_trunk(tmp_path: Path) -> None:
    require_binary("sipp")
    with Sipp(tmp_path, "uas.xml", "carrier", timeout_s=40, extra=["-rtp_echo"]) as uas:
        server = OffhookServer(tmp_path, plan(uas.port))
        server.start()
        try:

            async def body() -> None:
                async with SccpPhone(CAROL, server.sccp_port, rtp_packets=60) as carol:
                    await carol.register()
                    carol.off_hook(1)
                    await carol.wait_for(state_is(CallStateCode.OFF_HOOK))
                    carol.dial("95551234")
                    await carol.wait_for(state_is(CallStateCode.CONNECTED), timeout=15)
                    smt = await carol.wait_for(StartMediaTransmission, timeout=10)
                    assert smt.remote_port == uas.media_port
                    # SIPp echoes what the phone sends: RTP went out and came back
                    assert await carol.wait_rtp(25, timeout=10) >= 25
                    carol.on_hook(1)
                    await carol.wait_for(state_is(CallStateCode.ON_HOOK), timeout=10)

            asyncio.run(asyncio.wait_for(body(), 60))
            result = uas.wait(timeout=20)
            assert result.ok, describe(result)
            rows = server.wait_cdr(lambda r: r.get("calling") == "1003")
            row = rows[-1]
            assert row["called"] == "95551234" and row["answer"], row
            assert row["called_device"] == "carrier", row
        finally:
            server.stop()
