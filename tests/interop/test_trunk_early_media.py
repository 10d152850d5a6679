"""What a caller over a SIP trunk hears before its call is answered: in-band progress.

A caller that arrives over a trunk (a plan ``trunks:`` entry; a request from
the trunk's host and port is a trunk call) hears only what comes in band, so
offhook answers it with early media (183 with SDP, RTP from its media
server): why its call failed (special information tone and "number not in
service", busy tone, reorder) before the failure is sent, and, with
``[features] inband_ringback``, ringback while the called phone rings, then
that phone once it answers (the caller is re-offered the phone's media).

The trunk's far end is a baresip with no registration whose SIP listener is
the trunk's host and port (its INVITEs come from there), sending its own
sine as microphone. What it hears is judged from the RTP sent to its RTP
ports (tshark on ``lo``, G.711 decoded here) 20 ms frame by frame, so the
order of what it hears is checked, not only which frequencies occur; the
SIP it gets is read from the same capture.

========  ======  ==================================================
device    DN      played by
========  ======  ==================================================
bob       1002    baresip, answers (or refuses) after ringing; 660 Hz
dave      1004    a SIPp UAS (busy, unavailable, or early media)
carrier   trunk   baresip at the trunk's address; 550 Hz
========  ======  ==================================================

The caller's dialog has one SDP answer (RFC 3261 §13.2.1): the first one,
ringback's when it rings first; a busy tone after ringback plays on the same
endpoint, and after the answer the caller is re-offered the phone's media.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.sipp import Sipp, describe
from interop.test_media_features import wait_media_server
from interop.test_sip_calls import ABANDON_CAUSES, PASSWORDS, register_sipp_uas
from offhook.media.rtp import RtpError, parse_rtp
from support.audio import decode_rtp_payloads, dominant_frequencies, has_tone, rms, tone_power
from support.capture import Capture
from support.ports import HOST
from support.rtp import PCMU, tone
from support.server import OffhookServer

CALLER_NUMBER = "2125550100"
CALLER_HZ = 550
BOB_HZ = 660
DAVE_EARLY_HZ = 1000  # what the SIPp UAS plays as its own early media
Tones = dict[str, tuple[float, ...]]
SIT: Tones = {"sit1": (913.8,), "sit2": (1370.6,), "sit3": (1776.7,)}
BUSY: Tones = {"busy": (480.0, 620.0)}  # busy and reorder differ only by cadence
RINGBACK: Tones = {"ringback": (440.0, 480.0)}
FRAME = 160  # 20 ms at 8 kHz
QUIET = 300.0  # rms below this is silence (the tones are at -13 dBm0, rms ~2000)
BUSY_ON = 25  # frames: 0.5 s
REORDER_ON = 12  # frames: 0.25 s (12.5)
ANNOUNCEMENT_FRAMES = 220  # "number not in service", SIT and speech: 4.4 s


def trunk_plan(carrier_port: int) -> dict[str, Any]:
    """Phones in ``internal``; the ``carrier`` trunk at 127.0.0.1:``carrier_port`` reaches them."""
    return {
        "partitions": ["internal"],
        "calling_search_spaces": [{"name": "inbound", "partitions": ["internal"]}],
        "devices": [
            {
                "name": name,
                "protocol": "sip",
                "password": PASSWORDS[name],
                "lines": [{"dn": dn, "display": name.title(), "partition": "internal"}],
            }
            for name, dn in (("bob", "1002"), ("dave", "1004"))
        ],
        "trunks": [
            {
                "name": "carrier",
                "protocol": "sip",
                "host": HOST,
                "port": carrier_port,
                "css": "inbound",
                "options_ping": 0,
            }
        ],
    }


@pytest.fixture
def caller(tmp_path: Path) -> Iterator[Baresip]:
    """The trunk's far end: no registration; its INVITEs come from its SIP listener."""
    require_binary("baresip")
    ua = Baresip(tmp_path, "carrier", regint=0, tone=CALLER_HZ)
    ua.aor = f"sip:{CALLER_NUMBER}@{HOST}:{ua.sip_port}"
    with ua:
        yield ua


@pytest.fixture
def node(tmp_path: Path, caller: Baresip) -> Iterator[Callable[..., OffhookServer]]:
    """Start offhook (with the ``[features]`` keys given) once the trunk's far end is known."""
    require_capture()
    started: list[OffhookServer] = []

    def start(**features: Any) -> OffhookServer:
        extra: dict[str, dict[str, Any]] = {
            "media": {"listen": [HOST]},
            "features": {"inband_progress": True, **features},
        }
        srv = OffhookServer(tmp_path, trunk_plan(caller.sip_port), extra_config=extra)
        started.append(srv)
        srv.start()
        wait_media_server(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def bob(tmp_path: Path) -> Callable[[OffhookServer], Baresip]:
    def make(server: OffhookServer) -> Baresip:
        return Baresip(
            tmp_path,
            "bob",
            aor=f"sip:bob@{HOST}:{server.sip_port}",
            password=PASSWORDS["bob"],
            regint=120,
            tone=BOB_HZ,
        )

    return make


def dave(tmp_path: Path, server: OffhookServer, scenario: str) -> Sipp:
    """A SIPp UAS playing ``scenario``, started; register it as dave before calling."""
    require_binary("sipp")
    workdir = tmp_path / "sipp"
    workdir.mkdir(exist_ok=True)
    (workdir / "tone.pcmu").write_bytes(tone(PCMU, 8000, freq=DAVE_EARLY_HZ))  # 1 s, looped
    return Sipp(workdir, scenario, f"dave-{scenario.removesuffix('.xml')}", timeout_s=40).start()


def dial(caller: Baresip, server: OffhookServer, number: str) -> None:
    caller.dial(f"sip:{number}@{HOST}:{server.sip_port}")


# ---------------------------------------------------------------- the wire


def listen(tmp_path: Path, *uas: Baresip) -> Capture:
    """A running capture of the RTP to the ports of ``uas`` and the SIP to and from them."""
    ports = [f"dst portrange {lo}-{hi}" for lo, hi in (ua.rtp_ports for ua in uas)]
    ports += [f"port {ua.sip_port}" for ua in uas]
    cap = Capture(tmp_path / f"wire-{time.monotonic_ns()}.pcap", f"udp and ({' or '.join(ports)})")
    cap.start()
    time.sleep(0.5)  # tshark reports "Capturing" a little before it does
    return cap


@dataclass
class Stream:
    """The G.711 RTP from one source to a UA's ports, in arrival order."""

    source: tuple[str, int]
    indices: list[int] = field(default_factory=list)  # of its packets in the capture
    payloads: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.indices[0]

    @property
    def samples(self) -> NDArray[np.int16]:
        return decode_rtp_payloads(self.payloads)

    def from_ua(self, ua: Baresip) -> bool:
        lo, hi = ua.rtp_ports
        return lo <= self.source[1] <= hi


def streams_to(cap: Capture, ua: Baresip) -> list[Stream]:
    """The RTP streams ``ua`` was sent during ``cap``, by source, first heard first."""
    lo, hi = ua.rtp_ports
    by_source: dict[tuple[str, int], Stream] = {}
    for index, (src, sport, _, dport, data) in enumerate(cap.udp_datagrams()):
        if not lo <= dport <= hi:
            continue
        try:
            packet = parse_rtp(data)
        except RtpError:
            continue  # RTCP
        if packet.payload_type not in (0, 8):
            continue
        stream = by_source.setdefault((src, sport), Stream((src, sport)))
        stream.indices.append(index)
        stream.payloads.append((packet.payload_type, packet.payload))
    return sorted(by_source.values(), key=lambda s: s.first)


def summary(streams: list[Stream]) -> list[tuple[tuple[str, int], int, int]]:
    return [(s.source, s.first, len(s.payloads)) for s in streams]


@dataclass(frozen=True)
class SipSeen:
    """A SIP message sent to a UA: its first line, CSeq and body."""

    first_line: str
    cseq: str
    body: bytes


def sip_to(cap: Capture, ua: Baresip) -> list[SipSeen]:
    seen = []
    for _, _, _, dport, data in cap.udp_datagrams():
        if dport != ua.sip_port or not data.strip():
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        cseq = next(
            (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("cseq:")), ""
        )
        seen.append(SipSeen(lines[0], cseq, body))
    return seen


# ---------------------------------------------------------------- the audio


def frame_label(frame: NDArray[np.int16], tones: Tones) -> str:
    """``"-"`` for silence, the name of the tone holding most of the power (each of
    its frequencies a fair share), else ``"?"`` (speech, another tone)."""
    if rms(frame) < QUIET:
        return "-"
    for name, freqs in tones.items():
        powers = [tone_power(frame, f) for f in freqs]
        if min(powers) >= 0.6 / len(freqs) and sum(powers) >= 0.6:
            return name
    return "?"


def labelled(samples: NDArray[np.int16], tones: Tones) -> list[str]:
    """One label per 20 ms frame (see ``frame_label``)."""
    return [
        frame_label(samples[i : i + FRAME], tones)
        for i in range(0, len(samples) - FRAME + 1, FRAME)
    ]


def runs(labels: list[str]) -> list[tuple[str, int]]:
    """Consecutive equal labels collapsed: [(label, how many frames)]."""
    out: list[tuple[str, int]] = []
    for label in labels:
        if out and out[-1][0] == label:
            out[-1] = (label, out[-1][1] + 1)
        else:
            out.append((label, 1))
    return out


def shown(labels: list[str]) -> str:
    return " ".join(f"{label}x{n}" for label, n in runs(labels))


def tone_bursts(labels: list[str], name: str) -> list[int]:
    """Lengths (frames) of the whole bursts of tone ``name``: a stray frame inside
    one (a ramp) does not split it, and a whole burst has silence on both sides
    (ramp frames aside). One already sounding when the stream starts, or cut off
    by the call's end, is left out."""
    bursts: list[int] = []
    start: int | None = None
    for i, label in enumerate(labels):
        inside = label == name or (
            label == "?" and start is not None and i + 1 < len(labels) and labels[i + 1] == name
        )
        if inside:
            if start is None:
                start = i
        elif start is not None:
            if _silent_around(labels, start, i):
                bursts.append(i - start)
            start = None
    return bursts


def _silent_around(labels: list[str], start: int, end: int) -> bool:
    """Whether silence comes before ``labels[start]`` and from ``labels[end]`` on,
    past any ramp (``"?"``) frames."""
    before = start - 1
    while before >= 0 and labels[before] == "?":
        before -= 1
    after = end
    while after < len(labels) and labels[after] == "?":
        after += 1
    return before >= 0 and labels[before] == "-" and after < len(labels) and labels[after] == "-"


def cdr_of(server: OffhookServer, called: str) -> dict[str, str]:
    rows = server.wait_cdr(lambda r: r.get("called") == called)
    return rows[-1]


def failed_call(
    caller: Baresip, server: OffhookServer, number: str, tmp_path: Path
) -> tuple[Stream, str]:
    """Dial ``number``: the one stream the caller heard before its call failed, and why."""
    cap = listen(tmp_path, caller)
    try:
        dial(caller, server, number)
        progress = caller.wait_event("CALL_PROGRESS", "CALL_CLOSED", timeout=10)
        assert progress.type == "CALL_PROGRESS", progress.data  # early media came first
        closed = caller.wait_event("CALL_CLOSED", timeout=30)
    finally:
        cap.stop()
    streams = streams_to(cap, caller)
    assert len(streams) == 1, summary(streams)
    return streams[0], closed.param


def wait_no_streams(server: OffhookServer, timeout: float = 10.0) -> None:
    """The media server holds no stream any more (bounded wait)."""
    deadline = time.monotonic() + timeout
    media: dict[str, Any] = {}
    while time.monotonic() < deadline:
        media = server.status().get("media_server") or {}
        if media.get("connected") and media.get("streams") == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"media server streams left: {media}")


# ---------------------------------------------------------------- failures


def test_unknown_number_sit_and_announcement_then_404(
    node: Callable[..., OffhookServer], caller: Baresip, tmp_path: Path
) -> None:
    server = node()
    stream, why = failed_call(caller, server, "5555", tmp_path)
    assert "404" in why, why
    labels = labelled(stream.samples, SIT)
    # The three tones in turn (330 ms: most of 16 frames each), then speech.
    long_runs = [label for label, n in runs(labels) if n >= 10]
    assert long_runs[:3] == ["sit1", "sit2", "sit3"], shown(labels)
    last_sit = max(i for i, label in enumerate(labels) if label.startswith("sit"))
    after = labels[last_sit + 1 :]
    assert after.count("?") >= 50, shown(labels)  # at least a second of speech
    assert not any(label.startswith("sit") for label in after), shown(labels)
    row = cdr_of(server, "5555")
    assert row["cause"] == "1" and not row["answer"], row
    assert row["calling_device"] == "carrier" and row["calling"] == CALLER_NUMBER, row


def test_caller_cancelling_the_announcement_stops_it(
    node: Callable[..., OffhookServer], caller: Baresip, tmp_path: Path
) -> None:
    server = node()
    cap = listen(tmp_path, caller)
    try:
        dial(caller, server, "5555")
        caller.wait_event("CALL_PROGRESS", timeout=10)
        time.sleep(0.5)  # within the SIT
        caller.hangup()
        caller.wait_event("CALL_CLOSED", timeout=10)
        wait_no_streams(server)
    finally:
        cap.stop()
    finals = [m.first_line for m in sip_to(cap, caller) if m.cseq.endswith("INVITE")]
    assert any(line.startswith("SIP/2.0 487") for line in finals), finals
    streams = streams_to(cap, caller)
    assert len(streams) == 1, summary(streams)
    labels = labelled(streams[0].samples, SIT)
    # Cut short: the SIT began, the whole announcement (4.4 s) was not sent.
    assert "sit1" in labels and len(labels) < ANNOUNCEMENT_FRAMES, shown(labels)
    row = cdr_of(server, "5555")
    assert row["cause"] in {"1"} | ABANDON_CAUSES and not row["answer"], row


def test_busy_phone_busy_tone_then_486(
    node: Callable[..., OffhookServer], caller: Baresip, tmp_path: Path
) -> None:
    server = node()
    uas = dave(tmp_path, server, "uas_busy.xml")
    try:
        register_sipp_uas(server, uas.workdir, uas, "dave")
        stream, why = failed_call(caller, server, "1004", tmp_path)
        result = uas.wait(timeout=20)
    finally:
        uas.stop()
    assert result.ok, describe(result)
    assert "486" in why, why
    labels = labelled(stream.samples, BUSY)
    bursts = tone_bursts(labels, "busy")
    # Busy is 0.5 s on: longer than any reorder burst. Nothing but the tone.
    assert bursts and max(bursts) >= BUSY_ON - 5, shown(labels)
    assert labels.count("?") <= 2, shown(labels)  # a ramp at a burst's edge
    row = cdr_of(server, "1004")
    assert row["cause"] == "17" and not row["answer"], row
    assert row["called_device"] == "dave", row


def test_unavailable_phone_reorder_then_503(
    node: Callable[..., OffhookServer], caller: Baresip, tmp_path: Path
) -> None:
    server = node()
    uas = dave(tmp_path, server, "uas_unavailable.xml")
    try:
        register_sipp_uas(server, uas.workdir, uas, "dave")
        stream, why = failed_call(caller, server, "1004", tmp_path)
        result = uas.wait(timeout=20)
    finally:
        uas.stop()
    assert result.ok, describe(result)
    assert "503" in why, why
    labels = labelled(stream.samples, BUSY)
    bursts = tone_bursts(labels, "busy")
    # Reorder: 480 + 620 Hz as busy, but 0.25 s bursts.
    assert bursts and all(REORDER_ON - 4 <= n <= REORDER_ON + 3 for n in bursts), shown(labels)
    assert labels.count("?") <= 2 * len(bursts), shown(labels)  # a frame at each edge
    row = cdr_of(server, "1004")
    assert row["cause"] == "41" and not row["answer"], row  # 503: temporary failure


def test_busy_tone_is_heard_as_a_cadence(
    node: Callable[..., OffhookServer], caller: Baresip, tmp_path: Path
) -> None:
    server = node()
    uas = dave(tmp_path, server, "uas_busy.xml")
    try:
        register_sipp_uas(server, uas.workdir, uas, "dave")
        stream, why = failed_call(caller, server, "1004", tmp_path)
    finally:
        uas.stop()
    assert "486" in why, why
    labels = labelled(stream.samples, BUSY)
    bursts = tone_bursts(labels, "busy")
    assert len([n for n in bursts if n >= BUSY_ON - 5]) >= 2, shown(labels)


# ---------------------------------------------------------------- inband ringback


def ring_then(
    caller: Baresip,
    callee: Baresip,
    server: OffhookServer,
    tmp_path: Path,
    then: Callable[[], None],
) -> Capture:
    """Call ``callee`` (1002), let it ring 2 s after the caller hears early media, then
    ``then()``; the capture of it all, stopped."""
    cap = listen(tmp_path, caller)
    try:
        dial(caller, server, "1002")
        callee.wait_event("CALL_INCOMING", timeout=10)
        caller.wait_event("CALL_PROGRESS", timeout=10)
        time.sleep(2.0)  # the phone rings; the caller hears ringback meanwhile
        then()
    finally:
        cap.stop()
    return cap


def test_inband_ringback_then_the_answering_phone(
    node: Callable[..., OffhookServer],
    caller: Baresip,
    bob: Callable[[OffhookServer], Baresip],
    tmp_path: Path,
) -> None:
    server = node(inband_ringback=True)
    with bob(server) as phone:
        phone.wait_registered()
        mark = caller.mark()

        def answer() -> None:
            phone.accept()
            established = caller.wait_event("CALL_ESTABLISHED", timeout=10, since=mark)
            phone.wait_event("CALL_ESTABLISHED", timeout=10)
            # offhook re-offers the caller the phone's media (a re-INVITE)
            after = caller.events.index(established) + 1
            caller.wait_event("CALL_REMOTE_SDP", timeout=10, since=after)
            time.sleep(0.5)

        cap = ring_then(caller, phone, server, tmp_path, answer)
        streams = streams_to(cap, caller)
        ringback = [s for s in streams if not s.from_ua(phone)]
        assert len(ringback) == 1, summary(streams)
        labels = labelled(ringback[0].samples, RINGBACK)
        assert labels.count("ringback") >= 25, shown(labels)  # ringback, most of the 2 s
        assert labels.count("?") <= 2, shown(labels)
        answered = [s for s in streams if s.from_ua(phone)]
        assert answered and answered[0].first > ringback[0].first, summary(streams)
        reinvites = [
            m for m in sip_to(cap, caller) if m.first_line.startswith("INVITE ") and m.body
        ]
        assert reinvites, sip_to(cap, caller)

        # Answered: each hears the other, and nothing of the media server any more.
        cap = listen(tmp_path, caller, phone)
        try:
            time.sleep(1.5)
        finally:
            cap.stop()
        for ua, other, freq in ((caller, phone, BOB_HZ), (phone, caller, CALLER_HZ)):
            to_ua = streams_to(cap, ua)
            assert to_ua and all(s.from_ua(other) for s in to_ua), (ua.name, summary(to_ua))
            heard = np.concatenate([s.samples for s in to_ua])
            assert len(heard) >= 4000, (ua.name, len(heard))
            assert has_tone(heard, freq), (ua.name, dominant_frequencies(heard, count=3))
            for rb in RINGBACK["ringback"]:
                assert not has_tone(heard, rb), (ua.name, dominant_frequencies(heard, count=3))
        for ua in (caller, phone):
            assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())
        mark = phone.mark()
        caller.hangup()
        phone.wait_event("CALL_CLOSED", timeout=10, since=mark)
    wait_no_streams(server)
    row = cdr_of(server, "1002")
    assert row["cause"] == "16" and row["answer"] and row["called_device"] == "bob", row


def test_inband_ringback_then_busy_when_the_phone_refuses(
    node: Callable[..., OffhookServer],
    caller: Baresip,
    bob: Callable[[OffhookServer], Baresip],
    tmp_path: Path,
) -> None:
    server = node(inband_ringback=True)
    with bob(server) as phone:
        phone.wait_registered()

        def refuse() -> None:
            phone.hangup()  # an incoming call refused: 486
            caller.wait_event("CALL_CLOSED", timeout=20)

        cap = ring_then(caller, phone, server, tmp_path, refuse)
    closed = caller.wait_event("CALL_CLOSED")
    assert "486" in closed.param, closed.data
    streams = streams_to(cap, caller)
    assert streams and not any(s.from_ua(phone) for s in streams), summary(streams)
    labels: list[str] = []
    for s in streams:  # in the order first heard
        labels += labelled(s.samples, RINGBACK | BUSY)
    heard = [label for label, n in runs(labels) if label != "-" and n >= 10]
    assert heard[:1] == ["ringback"] and heard[-1:] == ["busy"], shown(labels)
    assert "ringback" not in labels[labels.index("busy") :], shown(labels)
    wait_no_streams(server)
    row = cdr_of(server, "1002")
    assert row["cause"] == "17" and not row["answer"], row


def test_phone_early_media_replaces_the_ringback(
    node: Callable[..., OffhookServer], caller: Baresip, tmp_path: Path
) -> None:
    server = node(inband_ringback=True)
    uas = dave(tmp_path, server, "uas_early_media.xml")
    try:
        register_sipp_uas(server, uas.workdir, uas, "dave")
        cap = listen(tmp_path, caller)
        try:
            dial(caller, server, "1004")  # 180, 1.5 s, 183 with SDP and RTP, 2 s, 200
            caller.wait_event("CALL_ESTABLISHED", timeout=15)
            caller.hangup()
            caller.wait_event("CALL_CLOSED", timeout=10)
        finally:
            cap.stop()
        result = uas.wait(timeout=20)
    finally:
        uas.stop()
    assert result.ok, describe(result)
    streams = streams_to(cap, caller)
    phone = [s for s in streams if s.source[1] == uas.media_port]
    others = [s for s in streams if s.source[1] != uas.media_port]
    assert phone and len(others) == 1, summary(streams)
    labels = labelled(others[0].samples, RINGBACK)
    assert labels.count("ringback") >= 25, shown(labels)  # ringback first
    assert has_tone(phone[0].samples, DAVE_EARLY_HZ), dominant_frequencies(phone[0].samples)
    # Once the phone's own early media arrives, the ringback stops (a few in flight).
    overlap = [i for i in others[0].indices if i > phone[0].first]
    assert len(overlap) <= 5, (len(overlap), summary(streams))


@pytest.mark.parametrize("outcome", ["refused", "answered"])
def test_the_early_answer_is_the_only_answer(
    node: Callable[..., OffhookServer],
    caller: Baresip,
    bob: Callable[[OffhookServer], Baresip],
    tmp_path: Path,
    outcome: str,
) -> None:
    server = node(inband_ringback=True)
    with bob(server) as phone:
        phone.wait_registered()

        def end() -> None:
            if outcome == "refused":
                phone.hangup()
                caller.wait_event("CALL_CLOSED", timeout=20)
                return
            phone.accept()
            caller.wait_event("CALL_ESTABLISHED", timeout=10)
            time.sleep(1.0)
            caller.hangup()
            phone.wait_event("CALL_CLOSED", timeout=10)

        cap = ring_then(caller, phone, server, tmp_path, end)
    seen = sip_to(cap, caller)
    invite_cseq = next((m.cseq for m in seen if m.first_line.startswith("SIP/2.0")), "")
    answers = {
        m.body
        for m in seen
        if m.first_line.startswith("SIP/2.0") and m.cseq == invite_cseq and m.body
    }
    assert invite_cseq.endswith("INVITE") and answers, [m.first_line for m in seen]
    assert len(answers) == 1, [a.decode(errors="replace") for a in answers]
