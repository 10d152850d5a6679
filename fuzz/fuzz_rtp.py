"""atheris fuzz target for the media plane's packet parsers and stream state.

Each input goes to all of:

- ``offhook.media.rtp.parse_rtp``: parses or raises ``RtpError``; a parsed
  packet packs and parses back equal, and its payload fits in the input;
- ``offhook.media.rtcp.parse_rtcp``: parses or raises ``RtcpError``; the
  parts pack and parse back equal;
- ``offhook.media.dtmf.parse_event`` on the first four bytes: parses or
  raises ``DtmfError``; packs and parses back equal;
- a ``JitterBuffer`` and a ``DtmfDetector`` driven by the input read as
  operations (push a packet with a fuzzed sequence number and payload, pop
  some slots): neither raises; the buffer never holds more than its
  capacity, plays forward within a run (mod 2^16), and its counters add up
  to no more than the packets pushed; the detector reports only DTMF digits.

Run it bounded::

    python fuzz/fuzz_rtp.py -max_total_time=30 -max_len=2048 fuzz/corpus/fuzz_rtp

Seeds (``fuzz/corpus/fuzz_rtp``): RTP packets (plain, CSRCs, extension,
padding), RTCP compound packets (SR+SDES+BYE, RR, APP), RFC 4733 events,
operation strings for the jitter buffer.

Last run: 300 s, 565,283 inputs, cov 208 -> 251, no crash (after fixing the
one it found in its first seconds: a resync overfilled a buffer of capacity 1).
"""

from __future__ import annotations

import struct
import sys

import atheris

with atheris.instrument_imports():
    from offhook.media.dtmf import EVENTS, DtmfDetector, DtmfError, pack_event, parse_event
    from offhook.media.jitter import JitterBuffer
    from offhook.media.rtcp import RtcpError, pack_rtcp, parse_rtcp
    from offhook.media.rtp import RtpError, RtpPacket, is_rtcp, pack_rtp, parse_rtp


def _rtp(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    if len(packet.payload) > len(data) - 12:
        raise AssertionError("payload larger than the datagram")
    if parse_rtp(pack_rtp(packet)) != packet:
        raise AssertionError("RTP round trip changed the packet")


def _rtcp(data: bytes) -> None:
    is_rtcp(data)
    try:
        parts = parse_rtcp(data)
    except RtcpError:
        return
    if parse_rtcp(b"".join(pack_rtcp(p) for p in parts)) != parts:
        raise AssertionError("RTCP round trip changed the packets")


def _event(data: bytes) -> None:
    try:
        ev = parse_event(data[:4])
    except DtmfError:
        return
    if parse_event(pack_event(ev)) != ev:
        raise AssertionError("telephone-event round trip changed the event")


def _streams(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    depth = fdp.ConsumeIntInRange(1, 6)
    jb = JitterBuffer(depth, depth + fdp.ConsumeIntInRange(0, 30))
    event_pt = fdp.ConsumeIntInRange(96, 127)
    detector = DtmfDetector(event_pt)
    pushed = 0
    last: int | None = None
    resyncs = 0
    while fdp.remaining_bytes() > 0:
        if fdp.ConsumeIntInRange(0, 2):
            seq = fdp.ConsumeIntInRange(0, 0xFFFF)
            ts = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
            payload = struct.pack("!H", seq) + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 6))
            jb.push(seq, ts, payload)
            pushed += 1
            digit = detector.feed(RtpPacket(event_pt, seq, ts, 1, payload[2:]))
            if digit is not None and digit not in EVENTS:
                raise AssertionError(f"detector reported {digit!r}")
        else:
            for _ in range(fdp.ConsumeIntInRange(1, 4)):
                out = jb.pop()
                if jb.resyncs != resyncs:
                    resyncs, last = jb.resyncs, None
                if out is None:
                    continue
                (seq,) = struct.unpack_from("!H", out)
                if last is not None and not 0 < (seq - last) % 65536 < 32768:
                    raise AssertionError(f"played {seq} after {last}")
                last = seq
        if len(jb) > jb.capacity:
            raise AssertionError("jitter buffer beyond its capacity")
    dropped = jb.late + jb.duplicate + jb.overflow + jb.strays
    if jb.played + dropped + len(jb) > pushed:
        raise AssertionError("jitter buffer counters exceed the packets pushed")


def test_one_input(data: bytes) -> None:
    _rtp(data)
    _rtcp(data)
    _event(data)
    _streams(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
