"""The SIP legs' mid-call work on a real SipEndpoint with a hand-driven clock (``sip_rig``):
UPDATE, session timers, 100rel/PRACK both ways and DTMF INFO both ways."""

from __future__ import annotations

from sip_rig import (
    CALLEE,
    PHONE,
    Peer,
    Rig,
    answer_in,
    call_in,
    call_out,
    media,
    requests,
    responses,
    sdp,
)

from offhook.sip.message import SipRequest
from offhook.sip.session_timer import SessionTimerSettings

# --- UPDATE (RFC 3311) -------------------------------------------------------------------


def test_update_with_sdp_is_a_media_offer() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    rig.take()
    rig.feed(peer.request("UPDATE", body=sdp(41000)))
    offers = rig.engine.named("on_media_offer")
    assert len(offers) == 1 and offers[0][0] is leg
    assert offers[0][1].streams[0].port == 41000
    assert responses(rig.take(), "UPDATE") == []  # waits for core's answer
    assert leg.driver is not None
    leg.driver.media_answer(media(4444), None)
    (ok,) = responses(rig.take(), "UPDATE")
    assert ok.status == 200 and b"m=audio 4444 " in ok.body
    assert ok.headers.get("Contact")
    assert (ok.headers.get("Session-Expires") or "").startswith("1800")


def test_update_without_sdp_is_200_and_glare() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    rig.take()
    rig.feed(peer.request("UPDATE"))
    (ok,) = responses(rig.take(), "UPDATE")
    assert ok.status == 200 and not ok.body
    # Core offers (re-INVITE to the phone); the phone's UPDATE offer meanwhile: 491.
    assert leg.driver is not None
    leg.driver.update_media(media(5000))
    reinvite = requests(rig.take(), "INVITE")[-1]
    assert b"m=audio 5000 " in reinvite.body
    rig.feed(peer.request("UPDATE", body=sdp(41002)))
    assert [r.status for r in responses(rig.take(), "UPDATE")] == [491]
    # An UPDATE without SDP is no offer: still fine during the re-INVITE.
    rig.feed(peer.request("UPDATE"))
    assert [r.status for r in responses(rig.take(), "UPDATE")] == [200]
    # Their offer while their previous one waits for core: 500 with Retry-After.
    rig.feed(peer.answer(reinvite, 200, body=sdp(41004)))
    rig.take()
    rig.feed(peer.request("UPDATE", body=sdp(41006)))
    rig.feed(peer.request("UPDATE", body=sdp(41008)))
    (busy,) = responses(rig.take(), "UPDATE")
    assert busy.status == 500 and busy.headers.get("Retry-After")


def test_allow_lists_update_prack_refer() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    ok = answer_in(rig, peer, leg)
    allow = {m.strip() for m in (ok.headers.get("Allow") or "").split(",")}
    assert {"UPDATE", "PRACK", "REFER", "INFO"} <= allow
    assert ok.headers.get("Supported") == "100rel, timer, replaces"


# --- session timers (RFC 4028) ------------------------------------------------------------


def test_inbound_session_expires_without_refresh_sends_bye_cause_102() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer, [("Session-Expires", "90;refresher=uac"), ("Supported", "timer")])
    ok = answer_in(rig, peer, leg)
    assert ok.headers.get("Session-Expires") == "90;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    rig.take()
    rig.advance(59.0)
    assert requests(rig.take(), "BYE") == []
    rig.advance(1.5)  # 90 - min(32, 30) = 60 s
    (bye,) = requests(rig.take(), "BYE")
    assert bye.headers.get("Reason") == "Q.850;cause=102"
    assert rig.engine.named("on_release") == [(leg, 102)]


def test_a_refresh_by_the_peer_restarts_the_timer() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer, [("Session-Expires", "90;refresher=uac"), ("Supported", "timer")])
    answer_in(rig, peer, leg)
    for _ in range(3):
        rig.advance(40.0)
        rig.feed(peer.request("UPDATE", headers=[("Session-Expires", "90;refresher=uac"),
                                                 ("Supported", "timer")]))  # fmt: skip
        (ok,) = responses(rig.take(), "UPDATE")
        assert ok.status == 200 and ok.headers.get("Session-Expires") == "90;refresher=uac"
    rig.advance(50.0)
    assert requests(rig.take(), "BYE") == []
    assert rig.engine.named("on_release") == []


def test_too_small_interval_gets_422() -> None:
    rig, peer = Rig(session=SessionTimerSettings(1800, 120)), Peer(PHONE)
    rig.feed(peer.invite(sdp(), [("Session-Expires", "90"), ("Supported", "timer")]))
    (resp,) = [r for r in responses(rig.take(), "INVITE") if r.status >= 200]
    assert resp.status == 422 and resp.headers.get("Min-SE") == "120"
    assert rig.engine.named("setup") == []
    # A refresh asking too little in the call is refused the same way.
    peer2 = Peer(PHONE)
    leg = call_in(rig, peer2)
    answer_in(rig, peer2, leg)
    rig.take()
    rig.feed(peer2.request("UPDATE", headers=[("Session-Expires", "100"), ("Supported", "timer")]))
    (refused,) = responses(rig.take(), "UPDATE")
    assert refused.status == 422 and refused.headers.get("Min-SE") == "120"


def test_we_refresh_with_update_when_the_peer_allows_it() -> None:
    rig, peer = Rig(session=SessionTimerSettings(120, 90)), Peer(PHONE)
    allow = [("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE")]
    leg = call_in(rig, peer, allow)  # no timer support: we refresh
    ok = answer_in(rig, peer, leg)
    assert ok.headers.get("Session-Expires") == "120;refresher=uas"
    assert ok.headers.get("Require") is None
    rig.take()
    rig.advance(60.5)
    (update,) = requests(rig.take(), "UPDATE")
    assert not update.body
    assert update.headers.get("Session-Expires") == "120;refresher=uac"
    rig.feed(peer.answer(update, 200))
    rig.advance(59.0)
    assert requests(rig.take(), "UPDATE") == []
    rig.advance(1.5)
    (again,) = requests(rig.take(), "UPDATE")  # refreshed again half an interval later
    rig.feed(peer.answer(again, 481))  # the dialog is gone at the far end
    (bye,) = requests(rig.take(), "BYE")
    assert rig.engine.named("on_release") == [(leg, 41)]
    assert bye.call_id == peer.call_id


def test_we_refresh_with_reinvite_otherwise_and_a_dead_phone_is_hung_up() -> None:
    rig, peer = Rig(session=SessionTimerSettings(120, 90)), Peer(PHONE)
    leg = call_in(rig, peer, [("Allow", "INVITE, ACK, BYE, CANCEL")])
    ok = answer_in(rig, peer, leg)
    rig.take()
    rig.advance(60.5)
    (reinvite,) = requests(rig.take(), "INVITE")
    assert reinvite.body == ok.body  # the SDP we last sent, unchanged version
    assert rig.engine.named("on_media_offer") == []
    rig.feed(peer.answer(reinvite, 200, body=sdp()))
    (ack,) = requests(rig.take(), "ACK")
    assert ack.cseq[0] == reinvite.cseq[0]
    assert rig.engine.named("on_media_answer") == []  # our own refresh: core never hears
    # The phone dies: the next refresh is never answered (Timer B), then BYE, cause 102.
    rig.advance(60.5)
    assert requests(rig.take(), "INVITE")
    rig.advance(40.0)
    assert requests(rig.take(), "BYE")
    assert rig.engine.named("on_release") == [(leg, 102)]


def test_outbound_offers_a_session_timer_and_honours_the_answer() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, leg, invite = call_out(rig, callee)
    assert invite.headers.get("Session-Expires") == "1800"
    assert invite.headers.get("Min-SE") == "90"
    assert "timer" in (invite.headers.get("Supported") or "")
    # 422: once more with the callee's Min-SE, CSeq + 1.
    rig.feed(callee.answer(invite, 422, headers=[("Min-SE", "3600")]), CALLEE)
    again = requests(rig.take(), "INVITE")[-1]
    assert again.cseq[0] == invite.cseq[0] + 1
    assert again.headers.get("Session-Expires") == "3600"
    callee.tag = "callee-tag"
    rig.feed(
        callee.answer(
            again, 200, body=sdp(42000),
            headers=[("Session-Expires", "3600;refresher=uas"), ("Require", "timer")],
        ),
        CALLEE,
    )  # fmt: skip
    assert rig.engine.named("on_connect")[0][0] is leg
    agreement = driver.session.agreement
    assert agreement is not None and (agreement.interval, agreement.we_refresh) == (3600, False)


# --- 100rel / PRACK (RFC 3262) -------------------------------------------------------------


def test_inbound_reliable_provisional_retransmitted_until_prack() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer, [("Require", "100rel")])
    assert leg.driver is not None
    leg.driver.alert(None)
    (ringing,) = [r for r in responses(rig.take(), "INVITE") if r.status == 180]
    assert ringing.headers.get("Require") == "100rel"
    rseq = int(ringing.headers.get("RSeq") or 0)
    assert rseq > 0
    rig.advance(0.6)
    assert [r.status for r in responses(rig.take(), "INVITE")] == [180]  # T1
    rig.advance(1.1)
    assert [r.status for r in responses(rig.take(), "INVITE")] == [180]  # 2*T1
    peer.remote_tag = ringing.to_tag or ""
    rig.feed(peer.request("PRACK", headers=[("RAck", f"{rseq} 1 INVITE")]))
    assert [r.status for r in responses(rig.take(), "PRACK")] == [200]
    rig.advance(10.0)
    assert responses(rig.take(), "INVITE") == []  # no more retransmissions
    # A PRACK for nothing (already acknowledged): 481.
    rig.feed(peer.request("PRACK", headers=[("RAck", f"{rseq} 1 INVITE")]))
    assert [r.status for r in responses(rig.take(), "PRACK")] == [481]


def test_inbound_2xx_waits_for_the_prack_of_an_sdp_18x() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer, [("Supported", "100rel")])
    assert leg.driver is not None
    leg.driver.alert(None)  # no SDP: sent unreliably (only Supported)
    (plain,) = [r for r in responses(rig.take(), "INVITE") if r.status == 180]
    assert plain.headers.get("RSeq") is None
    leg.driver.progress(media(6000))  # early media: reliably
    (early,) = [r for r in responses(rig.take(), "INVITE") if r.status == 183]
    assert early.headers.get("RSeq") and b"m=audio 6000 " in early.body
    leg.driver.answer(media(6000))
    assert [r.status for r in responses(rig.take(), "INVITE")] == []  # held until the PRACK
    peer.remote_tag = early.to_tag or ""
    rig.feed(peer.request("PRACK", headers=[("RAck", f"{early.headers.get('RSeq')} 1 INVITE")]))
    msgs = rig.take()
    assert [r.status for r in responses(msgs, "PRACK")] == [200]
    (ok,) = [r for r in responses(msgs, "INVITE") if r.status == 200]
    assert ok.body == early.body  # the answer was given already: repeated


def test_inbound_no_prack_refuses_the_invite() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer, [("Require", "100rel")])
    assert leg.driver is not None
    leg.driver.alert(None)
    rig.take()
    rig.advance(40.0)
    finals = [r.status for r in responses(rig.take(), "INVITE") if r.status >= 200]
    assert finals == [500]
    assert rig.engine.named("on_release") == [(leg, 102)]


def test_prack_outside_any_dialog_is_481() -> None:
    rig, peer = Rig(), Peer(PHONE)
    rig.feed(peer.request("PRACK", headers=[("RAck", "1 1 INVITE")], to_tag=""))
    assert [r.status for r in responses(rig.take(), "PRACK")] == [481]


def test_outbound_reliable_18x_is_pracked_once() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    _, leg, invite = call_out(rig, callee)
    assert "100rel" in (invite.headers.get("Supported") or "")
    reliable = [("Require", "100rel"), ("RSeq", "77")]
    rig.feed(callee.answer(invite, 183, body=sdp(43000), headers=reliable), CALLEE)
    (prack,) = requests(rig.take(), "PRACK")
    assert prack.headers.get("RAck") == f"77 {invite.cseq[0]} INVITE"
    assert prack.to_tag == callee.tag and prack.cseq[0] == invite.cseq[0] + 1
    assert len(rig.engine.named("on_progress")) == 1
    rig.feed(callee.answer(invite, 183, body=sdp(43000), headers=reliable), CALLEE)  # again
    assert requests(rig.take(), "PRACK") == []
    assert len(rig.engine.named("on_progress")) == 1  # a retransmission: not processed
    rig.feed(callee.answer(prack, 200), CALLEE)
    rig.feed(callee.answer(invite, 180, headers=[("Require", "100rel"), ("RSeq", "78")]), CALLEE)
    (second,) = requests(rig.take(), "PRACK")
    assert second.headers.get("RAck") == f"78 {invite.cseq[0]} INVITE"
    rig.feed(callee.answer(invite, 200, body=sdp(43000)), CALLEE)
    (ack,) = requests(rig.take(), "ACK")
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert rig.engine.named("on_connect")[0][0] is leg


# --- DTMF INFO ---------------------------------------------------------------------------------


def test_info_dtmf_both_ways() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    rig.take()
    rig.feed(peer.request("INFO", body=b"Signal=5\r\nDuration=160\r\n",
                          ctype="application/dtmf-relay"))  # fmt: skip
    rig.feed(peer.request("INFO", body=b"#", ctype="application/dtmf"))
    rig.feed(peer.request("INFO", body=b"<x/>", ctype="application/media_control+xml"))
    rig.feed(peer.request("INFO", body=b"Signal=Z", ctype="application/dtmf-relay"))
    assert [r.status for r in responses(rig.take(), "INFO")] == [200, 200, 200, 400]
    assert rig.engine.named("on_digits") == [(leg, "5"), (leg, "#")]
    # Towards the phone: one INFO per digit, the next after the previous one's answer.
    assert leg.driver is not None
    leg.driver.send_digits("12*")
    (first,) = requests(rig.take(), "INFO")
    assert first.content_type() == "application/dtmf-relay"
    assert first.body == b"Signal=1\r\nDuration=160\r\n"
    rig.feed(peer.answer(first, 200))
    (second,) = requests(rig.take(), "INFO")
    assert second.body.startswith(b"Signal=2\r\n") and second.cseq[0] > first.cseq[0]
    rig.feed(peer.answer(second, 200))
    (third,) = requests(rig.take(), "INFO")
    assert third.body.startswith(b"Signal=*\r\n")
    rig.feed(peer.answer(third, 200))
    assert requests(rig.take(), "INFO") == []


def test_info_outside_dialog_is_481() -> None:
    rig, peer = Rig(), Peer(PHONE)
    rig.feed(peer.request("INFO", body=b"1", ctype="application/dtmf", to_tag=""))
    msgs = rig.take()
    assert [r.status for r in responses(msgs, "INFO")] == [481]
    assert not isinstance(msgs[0], SipRequest)


def test_core_offer_during_our_refresh_waits_for_it() -> None:
    rig, peer = Rig(session=SessionTimerSettings(120, 90)), Peer(PHONE)
    leg = call_in(rig, peer, [("Allow", "INVITE, ACK, BYE, CANCEL")])
    answer_in(rig, peer, leg)
    rig.take()
    rig.advance(60.5)
    (refresh,) = requests(rig.take(), "INVITE")
    assert leg.driver is not None
    leg.driver.update_media(media(7000))  # core offers while our refresh is in flight
    assert requests(rig.take(), "INVITE") == []
    assert rig.engine.named("on_media_answer") == []  # not refused: it waits
    rig.feed(peer.answer(refresh, 200, body=sdp()))
    msgs = rig.take()
    (ack,) = requests(msgs, "ACK")
    (offer,) = requests(msgs, "INVITE")
    assert b"m=audio 7000 " in offer.body and offer.cseq[0] > ack.cseq[0]
    methods = [m.method for m in msgs if isinstance(m, SipRequest)]
    assert methods.index("ACK") < methods.index("INVITE")
    rig.feed(peer.answer(offer, 200, body=sdp(41010)))
    (answer,) = rig.engine.named("on_media_answer")
    assert answer[0] is leg and answer[1].streams[0].port == 41010
