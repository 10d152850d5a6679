"""Redirections through the SIP legs: Diversion/History-Info out, Diversion in from a trunk."""

from __future__ import annotations

from sip_rig import CALLEE, PHONE, Peer, Rig, requests, sdp

from offhook.common.location import Binding
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.sip.headers import parse_name_addr
from offhook.sip.message import SipRequest
from offhook.sip.outbound_leg import OutboundLeg


def invite_for(rig: Rig, setup: Setup, *, trunk: bool = False) -> SipRequest:
    leg = rig.engine.outbound_leg("vm" if trunk else "callee")
    binding = Binding(
        device="vm" if trunk else "callee",
        protocol="sip",
        contact="" if trunk else f"sip:callee@{CALLEE[0]}:{CALLEE[1]}",
        expires_at=1e12,
        source=CALLEE,
        transport="udp",
    )
    driver = rig.engine.factory.create(binding, leg)
    assert isinstance(driver, OutboundLeg)
    driver.offer(setup)
    return requests(rig.take(), "INVITE")[-1]


FORWARDED = Setup(
    PartyInfo("1001"),
    "8000",
    None,
    original_called="1002",
    diversions=(
        Diversion("1002", RedirectReason.FORWARD_ALL, "Bob"),
        Diversion("1003", RedirectReason.FORWARD_NO_ANSWER),
    ),
)


def test_a_forwarded_call_carries_diversion_and_history_info() -> None:
    rig = Rig()
    invite = invite_for(rig, FORWARDED)
    diversions = invite.headers.get_all("Diversion")
    assert diversions == [
        "<sip:1003@192.0.2.1:5060>;reason=no-answer;counter=1",
        '"Bob" <sip:1002@192.0.2.1:5060>;reason=unconditional;counter=1',
    ]
    history = invite.headers.get_all("History-Info")
    assert [parse_name_addr(h).params["index"] for h in history] == ["1", "1.1", "1.1.1"]
    assert ";cause=408" in history[2] and history[2].startswith("<sip:8000@")


def test_toward_a_trunk_too() -> None:
    rig = Rig()
    invite = invite_for(rig, FORWARDED, trunk=True)
    assert len(invite.headers.get_all("Diversion")) == 2
    assert invite.uri.startswith("sip:8000@")


def test_a_direct_call_has_none() -> None:
    rig = Rig()
    invite = invite_for(rig, Setup(PartyInfo("1001"), "1002", None))
    assert invite.headers.get_all("Diversion") == []
    assert invite.headers.get_all("History-Info") == []


def test_trunk_call_with_diversion_sets_setup_diversions() -> None:
    rig = Rig()
    rig.engine.max_forward_hops = 12  # type: ignore[attr-defined]
    peer = Peer(PHONE)
    rig.feed(
        peer.invite(
            sdp(),
            [
                ("Diversion", "<sip:5551003@carrier>;reason=no-answer;counter=1"),
                ("Diversion", '"Bob" <sip:5551002@carrier>;reason=user-busy'),
            ],
        )
    )
    (_, setup), *_ = rig.engine.named("setup")
    assert setup.original_called == "5551002"
    assert setup.diversions == (
        Diversion("5551002", RedirectReason.FORWARD_BUSY, "Bob"),
        Diversion("5551003", RedirectReason.FORWARD_NO_ANSWER),
    )


def test_trunk_diversions_are_bounded_by_max_forward_hops() -> None:
    rig = Rig()
    rig.engine.max_forward_hops = 3  # type: ignore[attr-defined]
    peer = Peer(PHONE)
    headers = [("Diversion", f"<sip:{2000 + i}@carrier>;reason=unconditional") for i in range(9)]
    rig.feed(peer.invite(sdp(), headers))
    (_, setup), *_ = rig.engine.named("setup")
    assert [d.number for d in setup.diversions] == ["2008", "2001", "2000"]
    assert setup.original_called == "2008"


def test_a_malformed_diversion_is_ignored_and_the_call_goes_on() -> None:
    rig = Rig()
    rig.engine.max_forward_hops = 12  # type: ignore[attr-defined]
    rig.feed(Peer(PHONE).invite(sdp(), [("Diversion", "<sip:carrier>;reason=user-busy")]))
    (_, setup), *_ = rig.engine.named("setup")
    assert setup.diversions == () and setup.original_called == "1002"
