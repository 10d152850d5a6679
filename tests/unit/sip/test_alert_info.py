"""What the INVITE asks of the called phone: auto-answer (intercom), a silent offer (DND)."""

from __future__ import annotations

from sip_rig import PHONE, Peer, Rig, answer_in, call_in, requests
from test_diversion_legs import invite_for

from offhook.core.events import PartyInfo, Setup

PLAIN = Setup(PartyInfo("1001"), "1002")


def test_a_plain_call_asks_nothing() -> None:
    invite = invite_for(Rig(), PLAIN)
    assert invite.headers.get_all("Alert-Info") == []
    assert invite.headers.get_all("Call-Info") == []


def test_an_intercom_call_asks_the_phone_to_answer_itself() -> None:
    invite = invite_for(Rig(), Setup(PartyInfo("1001"), "9002", auto_answer=True))
    assert invite.headers.get_all("Call-Info") == ["<sip:auto-answer.invalid>;answer-after=0"]
    assert invite.headers.get_all("Alert-Info") == ["<urn:alert:service:auto-answer>"]


def test_a_phone_in_do_not_disturb_gets_a_ring_splash_only() -> None:
    invite = invite_for(Rig(), Setup(PartyInfo("1001"), "1002", silent=True))
    assert invite.headers.get_all("Alert-Info") == [
        "<http://127.0.0.1/Bellcore-dr5>;info=alert-silent"
    ]


def test_display_text_goes_to_a_sip_phone_as_a_message() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    assert leg.driver is not None
    leg.driver.show_display("Call park at 7001")  # before answer: no dialog to send in
    assert requests(rig.take(), "MESSAGE") == []
    answer_in(rig, peer, leg)
    rig.take()
    leg.driver.show_display("Call park at 7001")
    (message,) = requests(rig.take(), "MESSAGE")
    assert message.body == b"Call park at 7001"
    assert message.content_type() == "text/plain"
    assert message.headers.get("Call-ID") == peer.call_id
