"""CTI route points and ports against a real ``offhook serve`` with baresip phones.

Plan: alice 1001 and bob 1002 (baresip, each sending its own sine as
microphone), route points ``ivr`` 3000 (no default, a long timeout: only the
application moves its calls), ``queue`` 3001 (1 s, then bob) and ``closed``
3002 (1 s, no default: busy), port ``port1`` 3100.

* A call to ``ivr`` is offered to the route point and rings there (the CTI
  event stream shows ``call.offered`` and ``call.ringing`` with device
  ``ivr``); the control op ``cti_redirect`` sends it to bob, who answers;
  the record says 3000 deflected it to 1002.
* A call to ``queue`` goes to bob when its timeout passes (forward no
  answer from 3001); one to ``closed`` gets busy (486).
* A call to ``port1`` rings it until ``cti_answer`` gives the RTP address
  of a UDP socket this test owns: the socket then receives alice's voice.
  ``cti_make_call`` with ``media`` places a call from the port: bob's voice
  arrives at the socket, and bob's call shows the port's DN.
"""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.test_cti_event_stream import Watcher, call_steps
from interop.test_media_features import TONES, phone
from interop.test_sip_calls import PLAN as PHONES
from interop.test_sip_calls import dial_uri
from offhook.media.rtp import RtpError, parse_rtp
from support.audio import decode_rtp_payloads, dominant_frequencies, has_tone
from support.ports import HOST
from support.server import OffhookServer

WAIT = 30.0
PLAN: dict[str, Any] = {
    **copy.deepcopy(PHONES),
    "cti_route_points": [
        {"name": "ivr", "dn": "3000", "timeout": 60},
        {"name": "queue", "dn": "3001", "timeout": 1, "default": "1002"},
        {"name": "closed", "dn": "3002", "timeout": 1},
    ],
    "cti_ports": [{"name": "port1", "dn": "3100"}],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, PLAN)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def rtp_socket() -> Iterator[socket.socket]:
    """A UDP socket of this test: where the application receives RTP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(WAIT)
    try:
        yield sock
    finally:
        sock.close()


def received_audio(sock: socket.socket, packets: int = 75) -> tuple[Any, set[tuple[str, int]]]:
    """``packets`` G.711 RTP packets read from ``sock`` (1.5 s at 20 ms), decoded,
    and the sources they came from."""
    payloads: list[tuple[int, bytes]] = []
    sources: set[tuple[str, int]] = set()
    while len(payloads) < packets:
        data, source = sock.recvfrom(4096)
        try:
            packet = parse_rtp(data)
        except RtpError:
            continue  # RTCP
        if packet.payload_type in (0, 8):
            payloads.append((packet.payload_type, packet.payload))
            sources.add(source)
    return decode_rtp_payloads(payloads), sources


def media_of(sock: socket.socket) -> dict[str, Any]:
    host, port = sock.getsockname()
    return {"address": host, "port": port, "codec": "PCMU"}


def call_at(server: OffhookServer, device: str) -> str:
    """The id of the one call ``device`` has a leg in (``offhook status``), once it has."""
    deadline = time.monotonic() + WAIT
    while True:
        calls: list[dict[str, Any]] = server.status()["calls"]["calls"]
        ids = [c["call_id"] for c in calls if any(leg["device"] == device for leg in c["legs"])]
        if ids:
            assert len(ids) == 1, calls
            return str(ids[0])
        assert time.monotonic() < deadline, f"no call at {device}: {calls}"
        time.sleep(0.1)


def registered(ua: Baresip) -> Baresip:
    ua.wait_registered()
    return ua


def test_a_route_point_call_waits_for_the_application_to_redirect_it(
    server: OffhookServer, tmp_path: Path
) -> None:
    snapshot = server.control("cti_snapshot")
    devices = {d["device"]: (d["protocol"], d["registered"]) for d in snapshot["devices"]}
    assert devices["ivr"] == ("cti", True) and devices["port1"] == ("cti", True)
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob, Watcher(server) as watcher:
        registered(alice), registered(bob)
        alice.dial(dial_uri(server, "3000"))
        alice.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
        watcher.wait(
            lambda: any(
                e["type"] == "call.ringing" and e.get("device") == "ivr" for e in watcher.events
            ),
            "the route point ringing",
        )
        call_id = call_at(server, "ivr")
        assert "CALL_INCOMING" not in bob.event_types()  # it waits for the application
        answer = server.control("cti_redirect", call_id=call_id, target="1002", device="ivr")
        assert answer["command"], answer
        bob.wait_event("CALL_INCOMING", timeout=10)
        bob.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        bob.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = bob.mark()
        alice.hangup()
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
        watcher.wait(lambda: call_id in watcher.calls_ended(), "the call's end")
        steps = call_steps(watcher.events, call_id)
    assert steps["ivr"] == [
        ("call.offered", "offered"),
        ("call.ringing", "ringing"),
        ("call.cleared", "cleared"),
    ]
    assert [t for t, _ in steps["bob"]][:3] == ["call.offered", "call.ringing", "call.answered"]
    (row,) = server.wait_cdr(lambda r: r["call_id"] == call_id)
    assert (row["called"], row["original_called"], row["called_device"]) == (
        "1002",
        "3000",
        "bob",
    ), row
    assert (row["last_redirecting"], row["redirect_reason"]) == ("3000", "deflection"), row


def test_a_route_point_sends_a_call_to_its_default_or_busy_at_its_timeout(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob:
        registered(alice), registered(bob)
        alice.dial(dial_uri(server, "3001"))
        bob.wait_event("CALL_INCOMING", timeout=10)  # after the route point's second
        bob.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = alice.mark()
        bob.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)

        mark = alice.mark()
        alice.dial(dial_uri(server, "3002"))
        closed = alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
        assert "486" in str(closed.data) or "Busy" in str(closed.data), closed.data
    (to_bob,) = server.wait_cdr(lambda r: r["original_called"] == "3001")
    assert (to_bob["called"], to_bob["called_device"]) == ("1002", "bob"), to_bob
    assert (to_bob["last_redirecting"], to_bob["redirect_reason"]) == (
        "3001",
        "forward-no-answer",
    ), to_bob
    (busy,) = server.wait_cdr(lambda r: r["called"] == "3002")
    assert (busy["cause"], busy["called_device"]) == ("17", "closed"), busy


def test_a_port_answered_with_an_address_receives_the_caller(
    server: OffhookServer, tmp_path: Path, rtp_socket: socket.socket
) -> None:
    alice = phone(tmp_path, server, "alice")
    with alice:
        registered(alice)
        alice.dial(dial_uri(server, "3100"))
        alice.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
        call_id = call_at(server, "port1")
        server.control("cti_answer", device="port1", call_id=call_id, media=media_of(rtp_socket))
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        samples, sources = received_audio(rtp_socket)
        assert has_tone(samples, TONES["alice"]), dominant_frequencies(samples, count=3)
        assert {host for host, _ in sources} == {HOST}
        mark = alice.mark()
        server.control("cti_hangup", device="port1", call_id=call_id)
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
    (row,) = server.wait_cdr(lambda r: r["call_id"] == call_id)
    assert (row["called"], row["called_device"], row["cause"]) == ("3100", "port1", "16"), row


def test_a_port_places_a_call_with_the_application_address(
    server: OffhookServer, tmp_path: Path, rtp_socket: socket.socket
) -> None:
    bob = phone(tmp_path, server, "bob")
    with bob:
        registered(bob)
        answer = server.control(
            "cti_make_call", device="port1", number="1002", media=media_of(rtp_socket)
        )
        call_id = answer["call_id"]
        incoming = bob.wait_event("CALL_INCOMING", timeout=10)
        assert "3100" in str(incoming.data), incoming.data  # the port's DN calls
        bob.accept()
        bob.wait_event("CALL_ESTABLISHED", timeout=10)
        samples, _ = received_audio(rtp_socket)
        assert has_tone(samples, TONES["bob"]), dominant_frequencies(samples, count=3)
        mark = bob.mark()
        server.control("cti_hangup", device="port1", call_id=call_id)
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
    (row,) = server.wait_cdr(lambda r: r["call_id"] == call_id)
    assert (row["calling"], row["calling_device"], row["called_device"]) == (
        "3100",
        "port1",
        "bob",
    ), row


def cti_devices(server: OffhookServer) -> dict[str, bool]:
    snapshot = server.control("cti_snapshot")
    return {d["device"]: d["registered"] for d in snapshot["devices"] if d["protocol"] == "cti"}


def test_a_plan_change_reaches_the_running_node(server: OffhookServer, tmp_path: Path) -> None:
    """A new route point is bound and callable without a restart; a port removed is gone."""
    assert cti_devices(server) == {"ivr": True, "queue": True, "closed": True, "port1": True}
    # They never expire: status gives no countdown for them (not a century of seconds).
    bound = {r["device"]: r for r in server.status()["registrations"] if r["protocol"] == "cti"}
    assert set(bound) == {"ivr", "queue", "closed", "port1"}
    assert all(r["expires_in"] is None for r in bound.values()), bound
    changed = copy.deepcopy(PLAN)
    changed["cti_route_points"].append({"name": "late", "dn": "3003", "timeout": 60})
    del changed["cti_ports"]
    server.load(changed)
    deadline = time.monotonic() + WAIT
    while "late" not in cti_devices(server):
        assert time.monotonic() < deadline, cti_devices(server)
        time.sleep(0.2)
    assert cti_devices(server) == {"ivr": True, "queue": True, "closed": True, "late": True}
    bob = phone(tmp_path, server, "bob")
    with bob:
        registered(bob)
        bob.dial(dial_uri(server, "3003"))
        bob.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
        ringing = call_at(server, "late")
        mark = bob.mark()
        bob.hangup()
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
    (row,) = server.wait_cdr(lambda r: r["call_id"] == ringing)
    assert (row["called"], row["called_device"]) == ("3003", "late"), row
