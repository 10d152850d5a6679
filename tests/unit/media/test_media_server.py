"""The media server, driven over its real control socket, heard through real RTP sockets.

Every test starts a ``MediaServer`` with its control listener on the running
loop (``support.mediaserver``), sends commands over the Unix socket, and
judges what arrives at test phones (UDP sockets on 127.0.0.1) by decoding
it: frequencies (FFT, Goertzel), RTP headers, RFC 4733 payloads, counters.
"""

from __future__ import annotations

import asyncio
import itertools
import tracemalloc
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from offhook.media import dtmf, g711
from offhook.media.rtp import RtpStream
from offhook.net.guard import ListenerLimits
from support.audio import dominant_frequencies, rms, sine, tone_power
from support.mediaserver import HOST, ControlPeer, Phone, Received, media_server


def run(coro: Coroutine[Any, Any, None], timeout: float = 90.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def until(check: Any, timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true (polling; the bound only stops a stuck test)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


async def endpoint(peer: ControlPeer, handle: str, phone: Phone, **connect: Any) -> int:
    """Open ``handle``, connect it to ``phone``; the endpoint's RTP port."""
    opened = await peer.ok("open", handle=handle, family=4)
    await peer.ok("connect", handle=handle, address=HOST, port=phone.port, **connect)
    return int(opened["port"])


def audio_of(packets: list[Received]) -> np.ndarray[Any, Any]:
    return np.concatenate([g711.decode("PCMU", r.packet.payload) for r in packets])


def test_moh_from_a_16khz_wav_is_heard_as_1khz(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    soundfile.write(wav, sine(1000, 2.0, rate=16000), 16000, subtype="PCM_16")

    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            hello = await peer.ok("hello", version=1)
            assert hello["version"] == 1 and hello["max_streams"] == 1000
            loaded = await peer.ok("sources", sources=[{"name": "tone", "path": str(wav)}])
            assert loaded["loaded"] == ["tone"] and loaded["errors"] == {}
            phone = await Phone.open()
            opened = await peer.ok("open", handle="h1", family=4)
            assert opened["address"] == HOST and opened["port"] % 2 == 0
            await peer.ok("connect", handle="h1", address=HOST, port=phone.port)
            await peer.ok("play", handle="h1", source="moh:tone")
            await phone.wait_packets(50)
            got = phone.received[:50]
            assert {r.source for r in got} == {(HOST, opened["port"])}
            packets = [r.packet for r in got]
            assert {p.payload_type for p in packets} == {0}
            assert {len(p.payload) for p in packets} == {160}  # 20 ms of PCMU
            assert len({p.ssrc for p in packets}) == 1
            assert all(
                (b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets)
            )
            assert all(
                (b.timestamp - a.timestamp) % 2**32 == 160 for a, b in itertools.pairwise(packets)
            )
            audio = audio_of(got)
            assert dominant_frequencies(audio, count=1) == [pytest.approx(1000, abs=3)]
            assert tone_power(audio, 1000) > 0.9
            phone.close()
            await peer.close()

    run(main())


def test_two_listeners_of_one_source_hear_the_same_frame_at_the_same_time(
    tmp_path: Path,
) -> None:
    noise = np.random.default_rng(7).integers(-8000, 8000, 8000 * 5).astype(np.int16)
    wav = tmp_path / "noise.wav"
    soundfile.write(wav, noise, 8000, subtype="PCM_16")

    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            await peer.ok("sources", sources=[{"name": "noise", "path": str(wav)}])
            a, b = await Phone.open(), await Phone.open()
            await endpoint(peer, "a", a)
            await endpoint(peer, "b", b, codec="PCMA", pt=8)
            await peer.ok("play", handle="a", source="moh:noise")
            await a.wait_packets(15)
            await peer.ok("play", handle="b", source="moh:noise")
            await b.wait_packets(30)
            # b joined the broadcast late: it hears a's stream from where a was then.
            a_audio = [g711.decode("PCMU", r.packet.payload) for r in a.received]
            b_first = g711.decode("PCMA", b.received[0].packet.payload)
            offsets = [i for i, f in enumerate(a_audio) if _close(f, b_first)]
            assert len(offsets) == 1
            k = offsets[0]
            before = sum(1 for r in a.received if r.at < b.received[0].at)
            assert abs(k - before) <= 1  # the same tick, not just the same music
            for i, r in enumerate(b.received[:25]):
                assert _close(a_audio[k + i], g711.decode("PCMA", r.packet.payload))
            a.close()
            b.close()

    run(main())


def _close(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bool:
    """The same frame through mu-law and A-law (each within its quantisation step)."""
    return bool(np.all(np.abs(x.astype(np.int32) - y.astype(np.int32)) <= 8 + np.abs(x) // 16))


def test_tones(tmp_path: Path) -> None:
    expect = {"dial": (350, 440), "ringback": (440, 480), "busy": (480, 620), "reorder": (480, 620)}

    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phones = {}
            for name in expect:
                phones[name] = phone = await Phone.open()
                await endpoint(peer, name, phone)
                await peer.ok("play", handle=name, source=f"tone:{name}")
            for phone in phones.values():
                await phone.wait_packets(50)
            for name, freqs in expect.items():
                got = phones[name].received[:50]
                on = audio_of(got[1:11])  # every tone starts with 200 ms on
                assert dominant_frequencies(on, count=2) == [
                    pytest.approx(f, abs=4) for f in freqs
                ], name
            # busy: 0.5 s on, 0.5 s off; reorder: 0.25 s on, 0.25 s off.
            assert rms(audio_of(phones["busy"].received[27:49])) < 50
            assert rms(audio_of(phones["reorder"].received[14:24])) < 50
            assert rms(audio_of(phones["reorder"].received[26:36])) > 1000
            assert rms(audio_of(phones["dial"].received[:50])) > 1000
            await peer.ok("stop", handle="dial")
            stopped = len(phones["dial"].received)
            await peer.ok("play", handle="busy", source="tone:sit", loop=False)
            done = await peer.event()
            assert done == {"event": "play-done", "handle": "busy", "source": "tone:sit"}
            await asyncio.sleep(0.1)
            assert len(phones["dial"].received) <= stopped + 1

    run(main())


FREQS = [500, 900, 1300, 1700, 2100]


@pytest.mark.parametrize("parties", [3, 5])
def test_bridge_each_hears_all_others_and_not_itself(tmp_path: Path, parties: int) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phones = []
            for n in range(parties):
                phone = await Phone.open()
                port = await endpoint(peer, f"p{n}", phone)
                joined = await peer.ok("join", handle=f"p{n}", bridge="conf")
                assert joined["parties"] == n + 1
                phone.start_sine(FREQS[n], (HOST, port))
                phones.append(phone)
            loop = asyncio.get_running_loop()
            since = loop.time() + 0.3  # past the jitter buffers' fill
            for phone in phones:
                await phone.wait_packets(50, since=since)
            for n, phone in enumerate(phones):
                audio = audio_of([r for r in phone.received if r.at >= since][:50])
                for m, freq in enumerate(FREQS[:parties]):
                    power = tone_power(audio, freq)
                    if m == n:
                        assert power < 0.01, (n, freq, power)
                    else:
                        assert power > 0.5 / (parties - 1), (n, freq, power)
            stats = await peer.ok("stats")
            assert stats["bridges"] == 1 and stats["counters"]["tick_errors"] == 0
            for phone in phones:
                phone.close()

    run(main())


def test_a_party_that_stops_sending_stalls_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phones = []
            for n in range(3):
                phone = await Phone.open()
                port = await endpoint(peer, f"p{n}", phone)
                await peer.ok("join", handle=f"p{n}", bridge="conf")
                phone.start_sine(FREQS[n], (HOST, port))
                phones.append(phone)
            loop = asyncio.get_running_loop()
            await phones[0].wait_packets(30)
            await phones[2].stop_sending()
            since = loop.time() + 0.2
            for phone in phones:
                await phone.wait_packets(50, since=since)
            heard = [audio_of([r for r in p.received if r.at >= since][:50]) for p in phones]
            assert tone_power(heard[0], FREQS[1]) > 0.5 and tone_power(heard[0], FREQS[2]) < 0.01
            assert tone_power(heard[1], FREQS[0]) > 0.5 and tone_power(heard[1], FREQS[2]) < 0.01
            assert tone_power(heard[2], FREQS[0]) > 0.2 and tone_power(heard[2], FREQS[1]) > 0.2
            counters = (await peer.ok("stats"))["counters"]
            assert counters["tick_errors"] == 0 and counters["jitter_underruns"] >= 1
            for phone in phones:
                phone.close()

    run(main())


def test_rfc4733_events_in_give_one_dtmf_event_per_digit(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open()
            port = await endpoint(peer, "h", phone, dtmf_pt=101)
            stream = RtpStream(0)
            sent = 0
            for digit in "1#9D":
                start = stream.timestamp
                for payload, marker in dtmf.dtmf_packets(digit, 120):
                    phone.sendto(stream.packet_at(payload, start, marker, 101), (HOST, port))
                    stream.skip(160)
                    sent += 1
                    await asyncio.sleep(0.005)
                for _ in range(3):  # audio between the digits
                    phone.sendto(stream.packet(g711.silence("PCMU")), (HOST, port))
                    sent += 1
            events = [await peer.event() for _ in range(4)]
            assert [e["digit"] for e in events] == list("1#9D")
            assert {e["event"] for e in events} == {"dtmf"} and {e["handle"] for e in events} == {
                "h"
            }
            await until(lambda: media.server.stats()["counters"]["rx_packets"] == sent)
            assert media.server.stats()["counters"]["dtmf_in"] == 4
            assert peer.events.empty()  # the repeated end packets gave no second event

    run(main())


def test_dtmf_command_sends_rfc4733_packets_in_the_audio_stream(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open()
            await endpoint(peer, "h", phone, dtmf_pt=101)
            await peer.ok("play", handle="h", source="tone:dial")
            await phone.wait_packets(5)
            await peer.ok("dtmf", handle="h", digits="5#")
            await until(lambda: sum(r.packet.payload_type == 101 for r in phone.received) >= 14)
            await phone.wait_packets(len(phone.received) + 5)
            packets = [r.packet for r in phone.received]
            assert all(
                (b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets)
            )
            assert len({p.ssrc for p in packets}) == 1
            events = [p for p in packets if p.payload_type == 101]
            by_start: dict[int, list[Any]] = {}
            for p in events:
                by_start.setdefault(p.timestamp, []).append(p)
            assert len(by_start) == 2
            digits = []
            for start, group in by_start.items():
                parsed = [dtmf.parse_event(p.payload) for p in group]
                digits.append(dtmf.digit_for(parsed[0].event))
                assert [p.marker for p in group] == [True] + [False] * (len(group) - 1)
                assert [e.end for e in parsed][-3:] == [True] * 3 and not parsed[0].end
                durations = [e.duration for e in parsed]
                assert durations == sorted(durations) and durations[-1] >= 800  # 100 ms
                # The event starts where the audio stream was: 160 samples after the
                # packet before it.
                before = packets[packets.index(group[0]) - 1]
                assert start == (before.timestamp + 160) % 2**32
            assert digits == ["5", "#"]
            assert media.server.stats()["counters"]["dtmf_out"] == 2
            reply = await peer.request("dtmf", handle="h", digits="1" * 64)
            assert reply["ok"]
            reply = await peer.request("dtmf", handle="h", digits="1" * 64 + "1" * 64 + "1")
            assert not reply["ok"]  # more than 64 digits in one request
            reply = await peer.request("dtmf", handle="h", digits="2" * 64)
            assert reply["ok"]
            # A digit leaves the backlog when its first packet goes out, so a few
            # may have left by now; 64 more never fit.
            reply = await peer.request("dtmf", handle="h", digits="3" * 64)
            assert not reply["ok"] and "queued" in reply["error"]

    run(main())


def test_a_wrong_source_is_dropped_and_counted(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open()
            intruder = await Phone.open(host="127.0.0.2")
            port = await endpoint(peer, "h", phone)
            await peer.ok("join", handle="h", bridge="b")
            stream = RtpStream(0)
            for _ in range(100):
                intruder.sendto(stream.packet(g711.encode("PCMU", sine(700, 0.02))), (HOST, port))
                await asyncio.sleep(0)
            await until(lambda: media.server.stats()["counters"]["dropped_source"] == 100)
            counters = media.server.stats()["counters"]
            assert counters["rx_packets"] == 0 and counters["latched"] == 0
            await peer.ok("play", handle="h", source="tone:dial")
            await phone.wait_packets(5)
            assert intruder.received == []
            phone.close()
            intruder.close()

    run(main())


def test_symmetric_rtp_answers_where_the_far_end_sends_from(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            signalled = await Phone.open()  # the port the signalling named
            actual = await Phone.open()  # the port the phone really sends from
            port = await endpoint(peer, "h", signalled)
            await peer.ok("play", handle="h", source="tone:dial")
            await signalled.wait_packets(3)
            stream = RtpStream(0)
            actual.sendto(stream.packet(g711.silence("PCMU")), (HOST, port))
            await actual.wait_packets(10)
            counters = media.server.stats()["counters"]
            assert counters["latched"] == 1 and counters["rx_packets"] == 1
            count = len(signalled.received)
            await actual.wait_packets(len(actual.received) + 10)
            assert len(signalled.received) <= count + 1  # nothing more to the old port
            signalled.close()
            actual.close()

    run(main())


def test_a_flood_keeps_memory_flat_and_counts_right(tmp_path: Path) -> None:
    good, bad = 6000, 6000

    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open()
            intruder = await Phone.open(host="127.0.0.2")
            port = await endpoint(peer, "h", phone)
            await peer.ok("join", handle="h", bridge="b")
            stream, other = RtpStream(0), RtpStream(0)
            payload = g711.encode("PCMU", sine(700, 0.02))
            tracemalloc.start()
            try:
                for n in range(good):
                    phone.sendto(stream.packet(payload), (HOST, port))
                    intruder.sendto(other.packet(payload), (HOST, port))
                    if n == 1000:  # warmed up: the jitter buffer is as full as it gets
                        base, _ = tracemalloc.get_traced_memory()
                    # asyncio reads a socket once per loop pass: two passes for two
                    # datagrams, so that the kernel's buffer never overflows (the
                    # counters are then exact).
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                await until(
                    lambda: (
                        media.server.stats()["counters"]["rx_packets"] == good
                        and media.server.stats()["counters"]["dropped_source"] == bad
                    )
                )
                now, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert now - base < 200_000, now - base
            stream_state = next(iter(media.server._active))
            assert stream_state.party is not None
            assert len(stream_state.party.jitter) <= stream_state.party.jitter.capacity
            counters = media.server.stats()["counters"]
            assert counters["jitter_overflow"] + counters["jitter_resyncs"] > 0, counters
            assert counters["tick_errors"] == 0
            assert (await peer.ok("ping"))["ok"]
            phone.close()
            intruder.close()

    run(main())


def test_max_streams_refuses_open(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path, max_streams=2) as media:
            peer = await ControlPeer.connect(media.address)
            await peer.ok("open", handle="a")
            await peer.ok("open", handle="b")
            refused = await peer.request("open", handle="c")
            assert not refused["ok"] and "max_streams (2)" in refused["error"]
            again = await peer.request("open", handle="a")
            assert not again["ok"] and "already open" in again["error"]
            await peer.ok("release", handle="a")
            await peer.ok("release", handle="nobody")  # unknown: not an error
            await peer.ok("open", handle="c")
            assert media.server.stats()["counters"]["open_refused"] == 1

    run(main())


def test_control_abuse_is_answered_or_closed_and_the_server_goes_on(tmp_path: Path) -> None:
    limits = ListenerLimits(max_message=65536, handshake_timeout=0.3, idle_timeout=60.0)

    async def main() -> None:
        async with media_server(tmp_path, limits=limits) as media:
            peer = await ControlPeer.connect(media.address)
            unknown = await peer.request("reboot")
            assert not unknown["ok"] and "unknown cmd" in unknown["error"]
            bad = await peer.request("open", handle="no spaces allowed")
            assert not bad["ok"] and "handle" in bad["error"]
            missing = await peer.request("play", handle="ghost", source="tone:busy")
            assert not missing["ok"] and "unknown handle" in missing["error"]
            await peer.ok("open", handle="kept")
            assert media.server.streams == 1
            peer.send_raw(b"{not json}\n")
            await asyncio.wait_for(peer.closed, 5)
            await until(lambda: media.server.streams == 0)  # its endpoints went with it

            long = await ControlPeer.connect(media.address)
            long.send_raw(b'{"id": 1, "cmd": "ping", "pad": "' + b"x" * 70000)
            await asyncio.wait_for(long.closed, 5)

            idle = await ControlPeer.connect(media.address)
            await asyncio.wait_for(idle.closed, 5)  # said nothing within the handshake time

            fresh = await ControlPeer.connect(media.address)
            assert (await fresh.ok("ping"))["ok"]
            counters = (await fresh.ok("stats"))["counters"]
            assert counters["control_malformed"] == 1
            assert counters["control_too_large"] == 1
            assert counters["control_handshake_timeout"] == 1
            assert counters["control_bad_request"] == 2  # unknown cmd, bad handle

    run(main())


def test_rtp_timeout_event(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path, rtp_timeout=1.0) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open()
            await endpoint(peer, "quiet", phone)
            event = await peer.event(timeout=10)
            assert event == {"event": "rtp-timeout", "handle": "quiet"}
            assert media.server.stats()["counters"]["rtp_timeouts"] == 1

    run(main())


def test_ipv6_endpoint(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path, listen=("127.0.0.1", "::1")) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open(host="::1")
            opened = await peer.ok("open", handle="v6", family=6)
            assert opened["address"] == "::1"
            wrong = await peer.request("connect", handle="v6", address=HOST, port=phone.port)
            assert not wrong["ok"] and "not IPv6" in wrong["error"]
            await peer.ok("connect", handle="v6", address="::1", port=phone.port)
            await peer.ok("play", handle="v6", source="tone:busy")
            await phone.wait_packets(10)
            assert phone.received[0].source[0] == "::1"

    run(main())


def test_announcement_once_then_play_done(tmp_path: Path) -> None:
    async def main() -> None:
        async with media_server(tmp_path) as media:
            peer = await ControlPeer.connect(media.address)
            phone = await Phone.open()
            await endpoint(peer, "h", phone, codec="PCMA", pt=8)
            unknown = await peer.request("play", handle="h", source="announce:nope")
            assert not unknown["ok"] and "no such source" in unknown["error"]
            await peer.ok("play", handle="h", source="announce:not-in-service", loop=False)
            done = await peer.event(timeout=30)
            assert done == {
                "event": "play-done",
                "handle": "h",
                "source": "announce:not-in-service",
            }
            packets = [r.packet for r in phone.received]
            assert {p.payload_type for p in packets} == {8}
            audio = np.concatenate([g711.decode("PCMA", p.payload) for p in packets])
            # It opens with the special information tone: 913.8 Hz for 330 ms.
            assert dominant_frequencies(audio[400:2400], count=1) == [pytest.approx(914, abs=5)]
            assert len(audio) >= 8000  # a spoken sentence follows (seconds of it)
            await asyncio.sleep(0.1)
            assert len(phone.received) == len(packets)  # and then nothing

    run(main())
