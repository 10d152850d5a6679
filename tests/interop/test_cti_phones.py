"""CTI commands on real phones: a running ``offhook serve``, its media server, baresip.

The commands go to the node's control endpoint (the ``cti_*`` ops the web's
``/api/v1/cti`` uses). What a phone hears is judged from the RTP sent to its
RTP ports (G.711 decoded here), as in ``test_media_features``: each baresip
sends its own sine as microphone, music on hold is a 1 kHz tone.

* click-to-dial: ``cti_make_call`` rings alice's phone first (bob not yet),
  shows her the number; when she answers bob is called from her line, she
  hears ringback (440 + 480 Hz from the media server) while bob rings, then
  the two hear each other; the call record is alice's line calling bob.
* network-side hold: baresip cannot be asked to hold (SIP has no such
  request), so ``cti_hold`` holds from the network: the held party hears the
  music and not the holder; ``cti_resume`` joins them again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.test_media_features import (
    MOH_HZ,
    TONES,
    assert_hears,
    heard,
    moh_plan,
    phone,
    wait_media_server,
)
from interop.test_sip_calls import DNS, assert_answered_cdr, dial_uri, established_call
from support.ports import HOST
from support.server import OffhookServer

RINGBACK_HZ = (440, 480)
RINGBACK_PERIOD = 6.0  # 2 s on, 4 s off: a capture this long holds a ring


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, moh_plan(tmp_path), extra_config={"media": {"listen": [HOST]}})
    srv.start()
    try:
        wait_media_server(srv)
        yield srv
    finally:
        srv.stop()


def call_of(server: OffhookServer, device: str) -> str:
    """The id of the one call ``device`` is in now (``offhook status``)."""
    calls: list[dict[str, Any]] = server.status()["calls"]["calls"]
    ids = [c["call_id"] for c in calls if any(leg["device"] == device for leg in c["legs"])]
    assert len(ids) == 1, calls
    return str(ids[0])


def test_click_to_dial_rings_the_user_first_then_connects(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        answer = server.control("cti_make_call", device="alice", number=DNS["bob"])
        call_id = answer["call_id"]
        assert answer["command"], answer
        incoming = alice.wait_event("CALL_INCOMING", timeout=10)
        assert DNS["bob"] in str(incoming.data), incoming.data  # the number to be called
        assert "CALL_INCOMING" not in bob.event_types()  # bob waits for alice
        alice.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        bob.wait_event("CALL_INCOMING", timeout=10)
        # bob rings: alice hears ringback from the media server, not bob
        ringing = heard(tmp_path, alice, seconds=RINGBACK_PERIOD)
        for freq in RINGBACK_HZ:
            assert_hears(ringing, freq, not_=(TONES["bob"], MOH_HZ))
        bob.accept()
        bob.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(1.0)  # alice's media moves from the ringback to bob (re-INVITE)
        assert_hears(heard(tmp_path, alice), TONES["bob"], not_=RINGBACK_HZ[1:])
        assert_hears(heard(tmp_path, bob), TONES["alice"])
        assert call_of(server, "bob") == call_id
        for ua in (alice, bob):
            assert ua.event_types().count("CALL_CLOSED") == 0, (ua.name, ua.event_types())
        mark = alice.mark()
        bob.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
    (row,) = server.wait_cdr(lambda r: r["call_id"] == call_id)
    assert (row["calling"], row["called"]) == (DNS["alice"], DNS["bob"]), row
    assert (row["calling_device"], row["called_device"]) == ("alice", "bob"), row
    assert_answered_cdr(row)


def test_network_hold_plays_music_to_the_held_party(server: OffhookServer, tmp_path: Path) -> None:
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        established_call(alice, bob, dial_uri(server, DNS["bob"]))
        call_id = call_of(server, "bob")
        assert_hears(heard(tmp_path, alice), TONES["bob"])
        mark = alice.mark()
        server.control("cti_hold", device="bob", call_id=call_id)
        alice.wait_event("CALL_REMOTE_SDP", timeout=10, since=mark)  # moved to the music
        time.sleep(0.3)
        assert_hears(heard(tmp_path, alice), MOH_HZ, not_=(TONES["bob"],))
        mark = alice.mark()
        server.control("cti_resume", device="bob", call_id=call_id)
        alice.wait_event("CALL_REMOTE_SDP", timeout=10, since=mark)  # back to bob
        time.sleep(0.5)
        assert_hears(heard(tmp_path, alice), TONES["bob"], not_=(MOH_HZ,))
        assert_hears(heard(tmp_path, bob), TONES["alice"])
        for ua in (alice, bob):
            assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())
        mark = bob.mark()
        alice.hangup()
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
