"""media.dtmf: RFC 4733 event payloads, the detector and the sender."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.media.dtmf import (
    EVENTS,
    DtmfDetector,
    DtmfError,
    DtmfEvent,
    DtmfSender,
    digit_for,
    dtmf_packets,
    event_for,
    pack_event,
    parse_event,
)
from offhook.media.rtp import RtpPacket, RtpStream, parse_rtp


def test_payload_layout() -> None:
    # RFC 4733 §2.3: event 5, E=1, R=0, volume 10, duration 800.
    assert pack_event(DtmfEvent(5, True, 10, 800)) == bytes([5, 0x8A, 0x03, 0x20])
    assert parse_event(bytes([11, 0x0A, 0x00, 0xA0])) == DtmfEvent(11, False, 10, 160)
    # The reserved bit is ignored on receipt.
    assert parse_event(bytes([1, 0xC0 | 7, 0, 1])) == DtmfEvent(1, True, 7, 1)


@pytest.mark.parametrize("payload", [b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_parse_refuses_wrong_size(payload: bytes) -> None:
    with pytest.raises(DtmfError):
        parse_event(payload)


@pytest.mark.parametrize(
    "ev",
    [DtmfEvent(256, False, 0, 0), DtmfEvent(1, False, 64, 0), DtmfEvent(1, True, 0, 1 << 16)],
)
def test_pack_refuses_out_of_range(ev: DtmfEvent) -> None:
    with pytest.raises(DtmfError):
        pack_event(ev)


def test_digits() -> None:
    assert [event_for(d) for d in EVENTS] == list(range(16))
    assert [digit_for(e) for e in range(16)] == list(EVENTS)
    assert digit_for(16) is None and digit_for(-1) is None
    assert event_for("*") == 10 and event_for("#") == 11 and event_for("d") == 15
    for bad in ("", "E", "12", " "):
        with pytest.raises(DtmfError):
            event_for(bad)


def test_packets_of_one_event() -> None:
    packets = dtmf_packets("7", duration_ms=100, volume=10)
    events = [parse_event(p) for p, _ in packets]
    assert [m for _, m in packets] == [True] + [False] * 6
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {7} and {e.volume for e in events} == {10}
    assert packets[-1] == packets[-2] == (packets[-3][0], False)
    short = dtmf_packets("#", duration_ms=10)
    assert [parse_event(p) for p, _ in short] == [DtmfEvent(11, True, 10, 160)] * 3
    assert [m for _, m in short] == [True, False, False]
    for bad in (0, -5, 9000):
        with pytest.raises(DtmfError):
            dtmf_packets("1", duration_ms=bad)
    with pytest.raises(DtmfError):
        dtmf_packets("1", volume=64)


def _rtp(payload: bytes, ts: int, seq: int, pt: int = 101) -> RtpPacket:
    return RtpPacket(pt, seq, ts, 1234, payload)


def _event_packets(digit: str, ts: int, seq: int = 0) -> list[RtpPacket]:
    return [_rtp(p, ts, seq + i) for i, (p, _) in enumerate(dtmf_packets(digit))]


def test_detector_reports_each_event_once() -> None:
    d = DtmfDetector(payload_type=101)
    got = [d.feed(p) for p in _event_packets("1", 1000)]
    assert got == ["1"] + [None] * 6
    # The same digit again is a new event: new timestamp.
    got = [d.feed(p) for p in _event_packets("1", 2000, 10)]
    assert got == ["1"] + [None] * 6
    # A straggler of the first event (its last end packet, late) is not a new digit.
    assert d.feed(_event_packets("1", 1000)[-1]) is None
    # Audio packets are not events.
    assert d.feed(_rtp(b"\xff" * 160, 3000, 30, pt=0)) is None
    assert d.reported == 2


def test_detector_reports_when_only_end_packets_arrive() -> None:
    d = DtmfDetector()
    packets = _event_packets("9", 5000)
    assert [d.feed(p) for p in packets[-2:]] == ["9", None]


def test_detector_ignores_other_events_and_garbage() -> None:
    d = DtmfDetector()
    assert d.feed(_rtp(pack_event(DtmfEvent(16, False, 0, 160)), 1, 1)) is None  # flash
    assert d.feed(_rtp(b"\x01\x02", 2, 2)) is None
    assert d.ignored == 2
    assert d.feed(_rtp(pack_event(DtmfEvent(0, False, 0, 160)), 3, 3)) == "0"


def test_detector_long_event_segments() -> None:
    # RFC 4733 §2.5.1.3: an event longer than 0xFFFF samples continues at a new timestamp.
    d = DtmfDetector()
    start = (1 << 32) - 100
    assert d.feed(_rtp(pack_event(DtmfEvent(4, False, 10, 160)), start, 1)) == "4"
    assert d.feed(_rtp(pack_event(DtmfEvent(4, False, 10, 0xFFFF)), start, 2)) is None
    nxt = (start + 0xFFFF) % (1 << 32)
    assert d.feed(_rtp(pack_event(DtmfEvent(4, False, 10, 160)), nxt, 3)) is None
    assert d.feed(_rtp(pack_event(DtmfEvent(4, True, 10, 320)), nxt, 4)) is None
    # After the end, a new timestamp is a new press even for the same key.
    after = (nxt + 320) % (1 << 32)
    assert d.feed(_rtp(pack_event(DtmfEvent(4, False, 10, 160)), after, 5)) == "4"


def test_sender_interleaves_with_audio() -> None:
    stream = RtpStream(0, ssrc=9, seq=100, timestamp=8000)
    sender = DtmfSender(stream, payload_type=101)
    sender.queue("1#")
    with pytest.raises(DtmfError):
        sender.queue("12X")
    assert sender.busy
    sent: list[RtpPacket] = []
    for _ in range(40):
        data = sender.tick()
        if data is None:
            data = stream.packet(b"\xff" * 160)
        sent.append(parse_rtp(data))
    assert not sender.busy
    events = [p for p in sent if p.payload_type == 101]
    assert len(events) == 14
    assert [p.timestamp for p in events] == [8000] * 7 + [8000 + 10 * 160] * 7
    assert [p.marker for p in events] == ([True] + [False] * 6) * 2
    # One sequence space, and every slot (event or audio) advanced the timestamp by 160.
    assert [p.sequence for p in sent] == list(range(100, 140))
    audio = [p for p in sent if p.payload_type == 0]
    assert audio[0].timestamp == 8000 + 7 * 160
    assert audio[-1].timestamp == 8000 + 39 * 160
    detector = DtmfDetector(101)
    assert [d for p in sent if (d := detector.feed(p))] == ["1", "#"]


events = st.builds(
    DtmfEvent,
    event=st.integers(0, 255),
    end=st.booleans(),
    volume=st.integers(0, 63),
    duration=st.integers(0, 0xFFFF),
)


@given(events)
def test_event_round_trip(ev: DtmfEvent) -> None:
    assert parse_event(pack_event(ev)) == ev


@given(st.lists(st.tuples(st.integers(0, 5), st.binary(min_size=0, max_size=6)), max_size=60))
def test_detector_never_raises(feed: list[tuple[int, bytes]]) -> None:
    d = DtmfDetector()
    reported = [d.feed(_rtp(payload, ts, i)) for i, (ts, payload) in enumerate(feed)]
    digits = [r for r in reported if r is not None]
    assert all(r in EVENTS for r in digits)
    # At most one report per distinct timestamp.
    assert len(digits) <= len({ts for ts, _ in feed})
