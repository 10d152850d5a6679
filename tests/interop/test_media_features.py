"""Hold with music, transfer and conference through a real ``offhook serve`` and its media server.

Independent SIP phones (baresip, each sending its own sine as microphone)
call each other through offhook; what a phone hears is judged from the RTP
sent to its RTP ports (a tshark capture on ``lo``, G.711 decoded here), not
from the phone's recorder. Music on hold is a WAV file of the plan (a 1 kHz
tone at 16 kHz, so the media server's conversion to 8 kHz is exercised too).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.test_sip_calls import PASSWORDS, PLAN, dial_uri, established_call
from offhook.media.rtp import RtpError, parse_rtp
from support.audio import decode_rtp_payloads, dominant_frequencies, has_tone, sine
from support.capture import Capture
from support.ports import HOST
from support.server import OffhookServer

MOH_HZ = 1000
TONES = {"alice": 440, "bob": 660, "carol": 880, "dave": 550}


def moh_plan(tmp_path: Path) -> dict[str, Any]:
    wav = tmp_path / "moh-1k.wav"
    soundfile.write(str(wav), sine(MOH_HZ, 3.0, rate=16000, amplitude=8000), 16000)
    plan = copy.deepcopy(PLAN)
    plan["moh_sources"] = [{"name": "default", "file": str(wav)}]
    plan["meetme"] = [{"number": "5000"}]
    return plan


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    require_capture()
    srv = OffhookServer(tmp_path, moh_plan(tmp_path), extra_config={"media": {"listen": [HOST]}})
    srv.start()
    try:
        wait_media_server(srv)
        yield srv
    finally:
        srv.stop()


def wait_media_server(srv: OffhookServer, timeout: float = 20.0) -> None:
    """The embedded media server starts beside the node: wait until the node reaches it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        media = srv.status().get("media_server") or {}
        if media.get("connected"):
            return
        time.sleep(0.2)
    raise AssertionError(f"media server not connected within {timeout} s")


def phone(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=PASSWORDS[name],
        regint=120,
        tone=TONES[name],
    )


def heard(tmp_path: Path, ua: Baresip, seconds: float = 1.5) -> np.ndarray:
    """What ``ua`` receives for ``seconds``: the G.711 RTP sent to its ports, decoded."""
    lo, hi = ua.rtp_ports
    pcap = tmp_path / f"heard-{ua.name}-{time.monotonic_ns()}.pcap"
    with Capture(pcap, f"udp and dst portrange {lo}-{hi}") as cap:
        time.sleep(0.5)  # tshark reports "Capturing" a little before it does
        time.sleep(seconds)
        cap.stop()
        payloads = []
        for _, _, _, dport, data in cap.udp_datagrams():
            if not lo <= dport <= hi:
                continue
            try:
                packet = parse_rtp(data)
            except RtpError:
                continue  # RTCP
            if packet.payload_type in (0, 8):
                payloads.append((packet.payload_type, packet.payload))
    return decode_rtp_payloads(payloads)


def assert_hears(samples: np.ndarray, freq: int, not_: tuple[int, ...] = ()) -> None:
    assert len(samples) >= 4000, f"only {len(samples)} samples received"
    assert has_tone(samples, freq), (freq, dominant_frequencies(samples, count=3))
    for other in not_:
        assert not has_tone(samples, other), (other, dominant_frequencies(samples, count=3))


def test_held_party_hears_music_then_the_holder_again(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        established_call(alice, bob, dial_uri(server, "1002"))
        assert_hears(heard(tmp_path, alice), TONES["bob"])
        mark = alice.mark()
        bob.hold()
        alice.wait_event("CALL_REMOTE_SDP", timeout=10, since=mark)
        time.sleep(0.3)
        assert_hears(heard(tmp_path, alice), MOH_HZ, not_=(TONES["bob"],))
        mark = alice.mark()
        bob.resume()
        alice.wait_event("CALL_REMOTE_SDP", timeout=10, since=mark)
        time.sleep(0.3)
        assert_hears(heard(tmp_path, alice), TONES["bob"], not_=(MOH_HZ,))
        assert_hears(heard(tmp_path, bob), TONES["alice"])
        for ua in (alice, bob):
            assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())
        mark = bob.mark()
        alice.hangup()
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
    status = server.status()
    assert status["media_server"]["connected"] is True


def test_meetme_three_parties_hear_each_other(server: OffhookServer, tmp_path: Path) -> None:
    names = ("alice", "bob", "carol")
    uas = [phone(tmp_path, server, n) for n in names]
    for ua in uas:
        ua.start()
    try:
        for ua in uas:
            ua.wait_registered()
        for ua in uas:
            ua.dial(dial_uri(server, "5000"))
            ua.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(0.5)
        for ua in uas:
            others = tuple(TONES[n] for n in names if n != ua.name)
            samples = heard(tmp_path, ua, 2.0)
            for freq in others:
                assert_hears(samples, freq)
            assert not has_tone(samples, TONES[ua.name]), (
                ua.name,
                dominant_frequencies(samples, count=4),
            )
    finally:
        for ua in uas:
            ua.stop()
    rows = server.wait_cdr(lambda r: r["called"] == "5000", count=3)
    assert all(r["called_device"] == "conference" for r in rows), rows


def test_sip_phone_builds_a_conference_by_refer_to_the_bridge(
    server: OffhookServer, tmp_path: Path
) -> None:
    """How a SIP phone makes an ad hoc conference: bob transfers alice to the meet-me
    number (REFER), then calls it himself, and carol joins: all three hear the others."""
    alice, bob, carol = (phone(tmp_path, server, n) for n in ("alice", "bob", "carol"))
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()
        established_call(alice, bob, dial_uri(server, "1002"))
        mark = bob.mark()
        bob.command("transfer", dial_uri(server, "5000"))
        bob.wait_event("CALL_CLOSED", timeout=15, since=mark)  # alice went to the bridge
        for ua in (bob, carol):
            ua.dial(dial_uri(server, "5000"))
            ua.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(0.5)
        for ua in (alice, bob, carol):
            samples = heard(tmp_path, ua, 2.0)
            for other in ("alice", "bob", "carol"):
                if other != ua.name:
                    assert_hears(samples, TONES[other])
            assert not has_tone(samples, TONES[ua.name]), (
                ua.name,
                dominant_frequencies(samples, count=4),
            )
        assert "CALL_CLOSED" not in alice.event_types()[-3:], alice.event_types()
    rows = server.wait_cdr(lambda r: bool(r.get("extra")) and "transfer_of" in r["extra"])
    assert rows and rows[0]["called_device"] == "conference", rows
