"""Transfer and conference by CTI, seen and heard: a real ``offhook serve``, baresip phones.

alice (1001), bob (1002) and carol (1003) are baresip 1.0, each sending its
own sine as microphone (``test_media_features.TONES``); what a phone hears
is judged from the RTP sent to its ports (a capture on ``lo``, G.711 decoded
here), music on hold is a 1 kHz tone. The commands are the node's control
ops an application's REST calls become (``cti_transfer``, ``cti_consult``,
``cti_complete_transfer``, ``cti_conference``), and what the application
sees is the node's CTI event stream (``ris.event_client.EventStream``,
``test_cti_event_stream.Watcher``), opened just before the first command.

In each test alice calls bob and they talk; then, for bob:

* blind transfer: ``cti_transfer`` to carol: carol rings with alice as the
  caller, answers, alice and carol hear each other and bob's call is
  cleared; the stream shows ``call.transferred`` (kind blind) for bob and for
  alice (role transferee), then
  bob's ``call.cleared``, and every event of the two calls carries the
  command's id. In the new call bob's device shows the call placed for alice
  (initiated, ringback, answered) and then cleared as she takes its place;
  once everyone hung up every line is idle (bob's line used to stay
  ``in-use`` after a blind transfer: ``transfer.retire``).
* consult transfer: ``cti_consult`` holds alice from the network (she hears
  the music, not bob) and rings bob's phone for the consultation call.
  baresip 1.0 does not answer by itself (it takes neither ``Call-Info:
  answer-after`` nor the talk event, see ``test_cti_remote``), so bob
  answers it over ctrl_tcp (``accept`` takes the new incoming call while the
  held one stays up); then carol is called, answers, and bob and carol talk
  while alice still hears the music. ``cti_complete_transfer``: alice and
  carol hear each other, both of bob's calls are cleared, ``call.transferred``
  (kind consult).
* conference: the same consultation, then ``cti_conference``: alice, bob
  and carol each hear the two others (mixed by the media server's bridge)
  and not themselves; ``call.conferenced``. When alice leaves, bob and carol
  still hear each other; when bob leaves too, carol (alone) is cleared.

What a phone hears counts only the RTP from this test's senders (the
phones' RTP ports, the media server's): on a machine shared with other test
sessions a stray stream from another session's phone has been seen landing
on a phone's ports (``Phones.heard``).

Every wait is bounded and waits for something (a phone's event, an event on
the stream); only the moment a capture starts after a media change is a
pause, as in the other audio tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interop.baresip import Baresip
from interop.peers import require_capture
from interop.test_cti_event_stream import Watcher
from interop.test_cti_phones import call_of
from interop.test_media_features import (
    MOH_HZ,
    TONES,
    assert_hears,
    moh_plan,
    phone,
    wait_media_server,
)
from interop.test_sip_calls import DNS, dial_uri, established_call
from offhook.media.rtp import RtpError, parse_rtp
from support.audio import decode_rtp_payloads, dominant_frequencies, has_tone
from support.capture import Capture
from support.mediaserver import RTP_PORTS
from support.ports import HOST
from support.server import OffhookServer

NAMES = ("alice", "bob", "carol")
SETTLE = 1.0  # after a phone's media moved (re-INVITE), before listening
WAIT = 15.0


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


@dataclass
class Phones:
    """alice, bob and carol, and what each hears."""

    alice: Baresip
    bob: Baresip
    carol: Baresip
    tmp_path: Path

    def __iter__(self) -> Iterator[Baresip]:
        return iter((self.alice, self.bob, self.carol))

    def heard(self, ua: Baresip, seconds: float) -> np.ndarray:
        """What ``ua`` receives for ``seconds`` from this test's senders, decoded.

        As ``test_media_features.heard``, but only the RTP that comes from one
        of the three phones' RTP ports or from the media server's: on a
        machine shared with other test sessions a stray stream (another
        session's phone still sending to a port that was its peer's) lands on
        a phone's ports too, and one at 440 Hz sounds like alice.
        """
        lo, hi = ua.rtp_ports
        sources = [p.rtp_ports for p in self] + [RTP_PORTS]
        src = " or ".join(f"src portrange {a}-{b}" for a, b in sources)
        pcap = self.tmp_path / f"heard-{ua.name}-{time.monotonic_ns()}.pcap"
        with Capture(pcap, f"udp and dst portrange {lo}-{hi} and ({src})") as cap:
            time.sleep(0.5)  # tshark reports "Capturing" a little before it does
            time.sleep(seconds)
            cap.stop()
            payloads = []
            for _, sport, _, dport, data in cap.udp_datagrams():
                if not lo <= dport <= hi or not any(a <= sport <= b for a, b in sources):
                    continue
                try:
                    packet = parse_rtp(data)
                except RtpError:
                    continue  # RTCP
                if packet.payload_type in (0, 8):
                    payloads.append((packet.payload_type, packet.payload))
        return decode_rtp_payloads(payloads)

    def hears_only(self, ua: Baresip, *talkers: str, seconds: float = 1.5) -> None:
        """``ua`` hears each of ``talkers`` (names, or "music"), and no other phone nor
        music."""
        freqs = {name: TONES[name] for name in NAMES} | {"music": MOH_HZ}
        samples = self.heard(ua, seconds)
        for talker in talkers:
            assert_hears(samples, freqs[talker])
        for other, freq in freqs.items():
            if other not in talkers:
                assert not has_tone(samples, freq), (
                    f"{ua.name} hears {other}",
                    dominant_frequencies(samples, count=4),
                )


@pytest.fixture
def phones(tmp_path: Path, server: OffhookServer) -> Iterator[Phones]:
    """alice, bob and carol registered; alice has called bob, who answered."""
    alice, bob, carol = (phone(tmp_path, server, name) for name in NAMES)
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()
        established_call(alice, bob, dial_uri(server, DNS["bob"]))
        yield Phones(alice, bob, carol, tmp_path)


# ---------------------------------------------------------------- the phones' events
def moved(ua: Baresip, since: int) -> None:
    """``ua`` was offered new media (a re-INVITE) since ``since``; let it settle."""
    ua.wait_event("CALL_REMOTE_SDP", timeout=WAIT, since=since)
    time.sleep(SETTLE)


def closed(ua: Baresip, since: int, count: int = 1) -> None:
    """``ua`` saw ``count`` of its calls end since ``since``."""
    deadline = time.monotonic() + WAIT
    while ua.event_types()[since:].count("CALL_CLOSED") < count:
        assert time.monotonic() < deadline, (ua.name, ua.event_types()[since:])
        time.sleep(0.1)


def answer_incoming(ua: Baresip, since: int) -> None:
    ua.wait_event("CALL_INCOMING", timeout=WAIT, since=since)
    ua.accept()
    ua.wait_event("CALL_ESTABLISHED", timeout=WAIT, since=since)


# ---------------------------------------------------------------- what is seen
def call_events(watcher: Watcher, *call_ids: str) -> list[dict[str, Any]]:
    return [e for e in list(watcher.events) if e.get("call_id") in call_ids]


def one(watcher: Watcher, kind: str, **fields: Any) -> dict[str, Any]:
    """The one event of type ``kind`` with these ``fields``, once it came."""

    def matching() -> list[dict[str, Any]]:
        return [
            e
            for e in list(watcher.events)
            if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
        ]

    watcher.wait(lambda: bool(matching()), f"{kind} {fields}")
    (event,) = matching()
    return event


def call_steps(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each device's event types, in order."""
    steps: dict[str, list[str]] = {}
    for e in events:
        if "device" in e:
            steps.setdefault(e["device"], []).append(e["type"])
    return steps


def index_of(watcher: Watcher, event: dict[str, Any]) -> int:
    return next(i for i, e in enumerate(watcher.events) if e["id"] == event["id"])


def all_idle(server: OffhookServer) -> None:
    """No call left, and every line idle (busy lamps, CTI line state)."""
    snapshot = server.control("cti_snapshot")
    assert snapshot["calls"] == [], snapshot["calls"]
    assert {ln["dn"]: ln["state"] for ln in snapshot["lines"]} == {
        dn: "idle" for dn in DNS.values()
    }, snapshot["lines"]


def transferee(watcher: Watcher, call_id: str, new_call: str, kind: str) -> None:
    """alice, the transferee, is told that she moved, with her leg in the new call."""
    event = one(watcher, "call.transferred", call_id=call_id, role="transferee")
    assert (event["device"], event["kind"], event["new_call_id"]) == ("alice", kind, new_call)
    assert event["leg_id"] and event["called"] == DNS["carol"], event


def hang_up(caller: Baresip, callee: Baresip) -> None:
    mark = callee.mark()
    caller.hangup()
    callee.wait_event("CALL_CLOSED", timeout=WAIT, since=mark)


# ---------------------------------------------------------------- the tests
def test_blind_transfer_by_cti(server: OffhookServer, phones: Phones) -> None:
    alice, bob, carol = phones
    call_id = call_of(server, "bob")
    phones.hears_only(alice, "bob")
    with Watcher(server) as watcher:
        a_mark, b_mark = alice.mark(), bob.mark()
        answer = server.control("cti_transfer", device="bob", call_id=call_id, target=DNS["carol"])
        command = answer["command"]
        incoming = carol.wait_event("CALL_INCOMING", timeout=WAIT)
        assert DNS["alice"] in incoming.param, incoming.data  # the transferee calls
        carol.accept()
        carol.wait_event("CALL_ESTABLISHED", timeout=WAIT)
        closed(bob, b_mark)  # the transferrer's call is over once carol answered
        moved(alice, a_mark)  # alice's media goes to carol
        phones.hears_only(alice, "carol")
        phones.hears_only(carol, "alice")
        new_call = call_of(server, "carol")
        assert call_of(server, "alice") == new_call != call_id
        assert "CALL_CLOSED" not in alice.event_types(), alice.event_types()

        moved_event = one(watcher, "call.transferred", call_id=call_id, role="transferrer")
        assert (moved_event["device"], moved_event["kind"], moved_event["by"]) == (
            "bob",
            "blind",
            "cti",
        )
        assert (moved_event["target"], moved_event["new_call_id"]) == (DNS["carol"], new_call)
        transferee(watcher, call_id, new_call, "blind")
        cleared = one(watcher, "call.cleared", call_id=call_id, device="bob")
        assert cleared["cause"] == 16, cleared
        assert index_of(watcher, moved_event) < index_of(watcher, cleared)
        one(watcher, "call.ended", call_id=call_id)
        steps = call_steps(call_events(watcher, new_call))
        assert steps["carol"] == ["call.offered", "call.ringing", "call.answered"], steps
        # bob's transfer call (placed for alice) rang, was answered, and left to alice
        assert steps["bob"] == [
            "call.initiated",
            "call.ringing",
            "call.answered",
            "call.cleared",
        ], steps
        assert "alice" not in steps, steps  # she moved in: no new leg of hers

        hang_up(alice, carol)
        one(watcher, "call.ended", call_id=new_call)
        events = call_events(watcher, call_id, new_call)
        assert {e.get("command") for e in events} == {command}, events
    all_idle(server)


def consult_carol(
    server: OffhookServer,
    watcher: Watcher,
    phones: Phones,
    call_id: str,
) -> tuple[str, str]:
    """bob consults carol by CTI (alice held, hearing music); bob and carol talk.
    The consultation call's id and the command's."""
    alice, bob, carol = phones
    a_mark, b_mark = alice.mark(), bob.mark()
    answer = server.control("cti_consult", device="bob", call_id=call_id, number=DNS["carol"])
    consult, command = answer["call_id"], answer["command"]
    assert consult != call_id
    moved(alice, a_mark)  # to the music
    phones.hears_only(alice, "music")
    held = one(watcher, "call.held", call_id=call_id)
    assert (held["device"], held["held_device"], held["by"]) == ("bob", "alice", "cti"), held
    # bob's phone rings for the consultation call (baresip cannot answer by itself)
    incoming = bob.wait_event("CALL_INCOMING", timeout=WAIT, since=b_mark)
    assert DNS["carol"] in incoming.param, incoming.data  # the number to be called
    assert "CALL_INCOMING" not in carol.event_types()  # carol waits for bob
    bob.accept()
    bob.wait_event("CALL_ESTABLISHED", timeout=WAIT, since=b_mark)
    answer_incoming(carol, 0)
    assert call_of(server, "carol") == consult
    time.sleep(SETTLE)
    phones.hears_only(bob, "carol")
    phones.hears_only(carol, "bob")
    phones.hears_only(alice, "music")  # still held: neither bob nor carol
    one(watcher, "call.answered", call_id=consult, device="carol")
    return consult, command


def commands_in_order(watcher: Watcher, call_ids: tuple[str, str], first: str, second: str) -> None:
    """Every event of the two calls carries the first command, then the second."""
    commands = [e.get("command") for e in call_events(watcher, *call_ids)]
    split = commands.index(second)
    assert split > 0 and commands == [first] * split + [second] * (len(commands) - split), commands


def test_consult_transfer_by_cti(server: OffhookServer, phones: Phones) -> None:
    alice, bob, carol = phones
    call_id = call_of(server, "bob")
    with Watcher(server) as watcher:
        consult, consulting = consult_carol(server, watcher, phones, call_id)
        a_mark, b_mark = alice.mark(), bob.mark()
        answer = server.control(
            "cti_complete_transfer", device="bob", call_id=call_id, other_call_id=consult
        )
        completing = answer["command"]
        closed(bob, b_mark, count=2)  # both of bob's calls
        moved(alice, a_mark)  # from the music to carol
        phones.hears_only(alice, "carol")
        phones.hears_only(carol, "alice")
        assert call_of(server, "alice") == consult
        for ua in (alice, carol):
            assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())

        moved_event = one(watcher, "call.transferred", call_id=call_id, role="transferrer")
        assert (moved_event["device"], moved_event["kind"], moved_event["by"]) == (
            "bob",
            "consult",
            "cti",
        )
        assert (moved_event["target"], moved_event["new_call_id"]) == (DNS["carol"], consult)
        transferee(watcher, call_id, consult, "consult")
        assert moved_event["command"] == completing
        one(watcher, "call.cleared", call_id=call_id, device="bob")
        one(watcher, "call.cleared", call_id=consult, device="bob")
        one(watcher, "call.ended", call_id=call_id)

        hang_up(alice, carol)
        one(watcher, "call.ended", call_id=consult)
        commands_in_order(watcher, (call_id, consult), consulting, completing)
    all_idle(server)


def test_conference_by_cti(server: OffhookServer, phones: Phones) -> None:
    alice, bob, carol = phones
    call_id = call_of(server, "bob")
    with Watcher(server) as watcher:
        consult, consulting = consult_carol(server, watcher, phones, call_id)
        marks = {ua.name: ua.mark() for ua in phones}
        answer = server.control(
            "cti_conference", device="bob", call_id=call_id, other_call_id=consult
        )
        conferencing = answer["command"]
        closed(bob, marks["bob"])  # the consultation leg; bob stays in the first call
        for ua in phones:
            moved(ua, marks[ua.name])  # each to its port of the bridge
        for ua in phones:
            others = [name for name in NAMES if name != ua.name]
            phones.hears_only(ua, *others, seconds=2.0)
        for ua in (alice, carol):
            assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())

        joined = one(watcher, "call.conferenced", call_id=call_id)
        assert (joined["device"], joined["other_call_id"], joined["by"]) == (
            "bob",
            consult,
            "cti",
        )
        assert joined["bridge"] == f"adhoc-{call_id}", joined
        assert joined["command"] == conferencing
        one(watcher, "call.cleared", call_id=consult, device="bob")

        # alice leaves: bob and carol go on; bob leaves: carol, alone, is cleared.
        b_mark, c_mark = bob.mark(), carol.mark()
        alice.hangup()
        one(watcher, "call.cleared", call_id=call_id, device="alice")
        phones.hears_only(bob, "carol")
        phones.hears_only(carol, "bob")
        assert "CALL_CLOSED" not in bob.event_types()[b_mark:] + carol.event_types()[c_mark:]
        bob.hangup()
        carol.wait_event("CALL_CLOSED", timeout=WAIT, since=c_mark)
        one(watcher, "call.ended", call_id=call_id)
        one(watcher, "call.ended", call_id=consult)
        commands_in_order(watcher, (call_id, consult), consulting, conferencing)
    all_idle(server)
