"""An IPv6 SIP caller and an SCCP phone (IPv4 media): the phone sends through the bridge.

SCCP carries IPv4 media addresses only (4-byte fields), so an IPv6 far end is
reached through the node's media bridge; when the call ends the bridge's
streams are closed.
"""

from __future__ import annotations

import asyncio

from test_sccp_endpoint import PCMA, Rig, SipSide  # type: ignore[import-not-found]

from offhook.core.events import PartyInfo, Setup
from offhook.core.media import MediaDescription, MediaStream
from offhook.media.bridge import FamilyBridge
from offhook.sccp import messages as m
from offhook.sccp.templates import SoftKey


def test_ipv6_far_end_goes_through_the_bridge() -> None:
    async def main() -> None:
        rig = Rig()
        bridge = FamilyBridge({4: "127.0.0.1", 6: "::1"}, (42000, 42999), 8)
        rig.ep.bridge = bridge
        for phone in rig.ep.phones.values():
            phone.bridge = bridge
        try:
            driver = SipSide()
            leg = rig.engine.inbound_leg(driver, "sipphone")
            driver.leg = leg
            offer = MediaDescription((MediaStream("audio", "::1", 4000, (PCMA,)),))
            rig.engine.setup(leg, Setup(PartyInfo("2001", "Sip"), "1001", offer))
            ref = rig.a.last(m.CallState).call_reference
            rig.press(rig.a, m.SoftKeyEvent(SoftKey.ANSWER, 1, ref))
            rig.ack_open(rig.a, 31000)
            smt = rig.a.last(m.StartMediaTransmission)
            # The phone sends to the bridge's IPv4 side, never to an IPv6 address.
            assert smt.remote_ip == "127.0.0.1" and smt.remote_port % 2 == 0
            assert 42000 <= smt.remote_port <= 42999
            assert bridge.status()["streams"] == 1
            rig.press(rig.a, m.OnHook(1, ref))
            assert bridge.status()["streams"] == 0
        finally:
            bridge.close()

    asyncio.run(main())
