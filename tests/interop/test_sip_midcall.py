"""Mid-call SIP through a real ``offhook serve`` with SIPp and baresip.

Same plan as ``test_sip_calls`` (alice 1001, bob 1002, carol 1003, dave 1004):

* 100rel/PRACK both ways: carol (SIPp, ``uac_100rel.xml``) requires reliable
  provisionals; dave (SIPp, ``uas_100rel.xml``) rings reliably and expects
  offhook's PRACK;
* UPDATE mid-call: carol (``uac_update.xml``) offers new media by UPDATE and
  refreshes by UPDATE without SDP; dave (``uas_reinvite.xml``) gets the offer
  as a re-INVITE;
* session expiry: carol (``uac_session_timer.xml``) asks for a 90 s session
  timer she refreshes, then never does; offhook sends both phones BYE after
  60 s (RFC 4028 §10) and records cause 102;
* transfer with baresip: ``transfer`` (REFER) blind, and attended with a
  ``Replaces`` naming bob's consultation call (baresip 1.0 has no attended
  transfer command; the Replaces is built from the node's debug log); the
  transferee then talks to the target (RTP both ways on the wire).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.sipp import Sipp, describe
from interop.test_sip_calls import (
    DNS,
    PASSWORDS,
    PLAN,
    assert_answered_cdr,
    baresip_ua,
    cdr_for,
    dial_uri,
    established_call,
    register_sipp_uas,
)
from interop.test_sip_features import assert_rtp_both_ways, rtp_bpf, sip_heads
from support.capture import Capture
from support.ports import HOST
from support.server import OffhookServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, PLAN, log_level="debug")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sipp_dir(tmp_path: Path) -> Path:
    require_binary("sipp")
    d = tmp_path / "sipp"
    d.mkdir()
    return d


def carol_uac(server: OffhookServer, workdir: Path, scenario: str, timeout_s: int = 30) -> Sipp:
    return Sipp(
        workdir,
        scenario,
        f"uac-{scenario.removesuffix('.xml')}",
        target=f"{HOST}:{server.sip_port}",
        keys={"caller": "carol"},
        service=DNS["dave"],
        auth=("carol", PASSWORDS["carol"]),
        timeout_s=timeout_s,
        pause_ms=1000,
    )


def run_pair(server: OffhookServer, workdir: Path, uac: str, uas: str, timeout_s: int = 30) -> None:
    """dave registers from a SIPp UAS running ``uas``; carol calls him with ``uac``."""
    with Sipp(workdir, uas, "uas-dave", timeout_s=timeout_s) as dave:
        register_sipp_uas(server, workdir, dave)
        caller = carol_uac(server, workdir, uac, timeout_s).run()
        assert caller.ok, describe(caller)
        served = dave.wait(timeout=timeout_s + 10)
        assert served.ok, describe(served)


def test_sipp_100rel_prack_both_ways(server: OffhookServer, sipp_dir: Path) -> None:
    run_pair(server, sipp_dir, "uac_100rel.xml", "uas_100rel.xml")
    assert_answered_cdr(cdr_for(server, "carol", DNS["dave"]))
    heads = sip_heads(server.log())
    pracks_out = [h for h in heads if h.direction == "->" and h.first_line.startswith("PRACK ")]
    assert pracks_out and pracks_out[0].header("RAck")[0].startswith("1 "), pracks_out
    reliable = [
        h
        for h in heads
        if h.direction == "->" and h.first_line.startswith("SIP/2.0 180") and h.header("RSeq")
    ]
    assert reliable, "no reliable 180 to carol"


def test_sipp_update_mid_call(server: OffhookServer, sipp_dir: Path) -> None:
    run_pair(server, sipp_dir, "uac_update.xml", "uas_reinvite.xml")
    assert_answered_cdr(cdr_for(server, "carol", DNS["dave"]))


def test_sipp_session_expires_without_refresh(server: OffhookServer, sipp_dir: Path) -> None:
    """carol's refreshes never come: BYE to both phones after 60 s, cause 102."""
    run_pair(server, sipp_dir, "uac_session_timer.xml", "uas.xml", timeout_s=120)
    row = cdr_for(server, "carol", DNS["dave"])
    assert row["cause"] == "102", row
    assert row["answer"], row


# -- transfer with baresip ---------------------------------------------------------------


def wait_closed(ua: Baresip, since: int, timeout: float = 15.0) -> None:
    ua.wait_event("CALL_CLOSED", timeout=timeout, since=since)


def test_baresip_blind_transfer(server: OffhookServer, tmp_path: Path) -> None:
    """alice calls bob; bob transfers her to carol (REFER); alice and carol talk."""
    require_capture()
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    carol = baresip_ua(tmp_path, server, "carol")
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()
        established_call(alice, bob, dial_uri(server, DNS["bob"]))
        time.sleep(0.5)
        b_mark = bob.mark()
        bob.command("transfer", dial_uri(server, DNS["carol"]))
        carol.wait_event("CALL_INCOMING", timeout=15)
        carol.accept()
        carol.wait_event("CALL_ESTABLISHED", timeout=15)
        wait_closed(bob, b_mark)  # the transferor's call ends once the target answered
        time.sleep(1.0)  # alice and carol exchange media afresh (re-INVITE)
        with Capture(tmp_path / "rtp.pcap", rtp_bpf(alice, carol)) as cap:
            time.sleep(2.0)
            cap.stop()
            assert_rtp_both_ways(cap, alice, carol)
        assert "CALL_CLOSED" not in alice.event_types(), alice.event_types()
        c_mark = carol.mark()
        alice.hangup()
        wait_closed(carol, c_mark)
    heads = sip_heads(server.log())
    frags = [h for h in heads if h.direction == "->" and h.first_line.startswith("NOTIFY ")]
    assert len(frags) >= 2, [h.first_line for h in heads]
    states = [h.header("Subscription-State")[0] for h in frags]
    assert states[-1].startswith("terminated"), states
    assert "blind transfer to 1003" in server.log()
    assert_answered_cdr(cdr_for(server, "alice", DNS["bob"]))


def test_baresip_attended_transfer(server: OffhookServer, tmp_path: Path) -> None:
    """alice calls bob; bob calls carol (consultation), then REFERs alice's call with a
    Replaces naming the consultation: alice and carol talk, bob's two calls end."""
    require_capture()
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    carol = baresip_ua(tmp_path, server, "carol")
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()
        established_call(alice, bob, dial_uri(server, DNS["bob"]))
        b_mark = bob.mark()
        bob.dial(dial_uri(server, DNS["carol"]))
        carol.wait_event("CALL_INCOMING", timeout=15)
        carol.accept()
        carol.wait_event("CALL_ESTABLISHED", timeout=15)
        consult = bob.wait_event("CALL_ESTABLISHED", timeout=15, since=b_mark)
        call_id = str(consult.data.get("id", ""))
        assert call_id, consult.data
        # bob's view of the consultation: his tag (From of his INVITE), offhook's (To of the 200).
        invites = [
            h
            for h in sip_heads(server.log())
            if h.direction == "<-" and h.first_line.startswith("INVITE ")
            and call_id in h.header("Call-ID")
        ]  # fmt: skip
        answers = [
            h
            for h in sip_heads(server.log())
            if h.direction == "->" and h.first_line.startswith("SIP/2.0 200")
            and call_id in h.header("Call-ID") and "INVITE" in h.header("CSeq")[0]
        ]  # fmt: skip
        assert invites and answers, call_id
        from_tag = invites[-1].header("From")[0].split("tag=")[1].split(";")[0]
        to_tag = answers[-1].header("To")[0].split("tag=")[1].split(";")[0]
        replaces = f"{call_id};to-tag={to_tag};from-tag={from_tag}"
        escaped = replaces.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")
        bob.command("line", "1")  # the first call (with alice) is the one transferred
        bob.command("transfer", f"{dial_uri(server, DNS['carol'])}?Replaces={escaped}")
        closed = bob.wait_event("CALL_CLOSED", timeout=15, since=b_mark)
        bob.wait_event("CALL_CLOSED", timeout=15, since=bob.events.index(closed) + 1)
        assert "attended transfer with" in server.log(), server.log_tail(60)
        time.sleep(1.0)
        with Capture(tmp_path / "rtp.pcap", rtp_bpf(alice, carol)) as cap:
            time.sleep(2.0)
            cap.stop()
            assert_rtp_both_ways(cap, alice, carol)
        for ua in (alice, carol):
            assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())
        c_mark = carol.mark()
        alice.hangup()
        wait_closed(carol, c_mark)
