"""A tiny RTP endpoint for tests: sends a real G.711 stream, counts what arrives.

``RtpEndpoint`` binds a UDP socket on loopback (port 0: any free port, or a
given one), counts every RTP packet it receives (per source, per payload
type, per SSRC; anything that is not RTP version 2 is counted apart), and
sends a stream of ``count`` packets of ``ptime`` ms of a 1 kHz tone encoded
as G.711 mu-law (payload type 0) or A-law (8), RFC 3550 headers with
increasing sequence numbers and timestamps, paced in real time. The tone's
frequency is ``tone_hz`` (1 kHz unless told), so that in a test with several
phones each one's voice can be told apart in what the others hear; with
``keep`` > 0 the last ``keep`` received (payload type, payload) pairs are kept
(``kept``, bounded) for a test to decode what the endpoint heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import struct
from collections import Counter, deque
from typing import Any

HOST = "127.0.0.1"
PCMU = 0
PCMA = 8
_RATE = 8000


def _ulaw(sample: int) -> int:
    # ITU-T G.711 mu-law on the 14-bit sample: bias 33, segment, 4-bit mantissa, inverted.
    value = sample >> 2
    mask = 0xFF
    if value < 0:
        value = -value
        mask = 0x7F
    value = min(value, 8159) + 0x21
    segment = max(0, value.bit_length() - 6)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def _alaw(sample: int) -> int:
    # ITU-T G.711 A-law on the 13-bit sample: segment, 4-bit mantissa, even bits inverted.
    value = sample >> 3
    mask = 0xD5
    if value < 0:
        mask = 0x55
        value = -value - 1
    segment = max(0, value.bit_length() - 5)
    if segment >= 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    code = (segment << 4) | ((value >> shift) & 0x0F)
    return code ^ mask


def tone(payload_type: int, samples: int, start: int = 0, freq: float = 1000.0) -> bytes:
    """``samples`` of a sine tone as G.711 (``PCMU`` or ``PCMA``)."""
    enc = _alaw if payload_type == PCMA else _ulaw
    return bytes(
        enc(int(8000 * math.sin(2 * math.pi * freq * (start + i) / _RATE))) for i in range(samples)
    )


def rtp_packet(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    """An RFC 3550 §5.1 packet: V=2, no padding/extension/CSRC, marker on the first."""
    marker = 0x80 if seq == 0 else 0
    header = struct.pack(
        "!BBHII", 0x80, marker | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    return header + payload


def _payload(data: bytes) -> bytes:
    """An RTP packet's payload: after the CSRC list and any extension, before padding."""
    start = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= start + 4:
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    end = len(data)
    if data[0] & 0x20 and end > start:
        end -= data[-1]
    return data[start:end] if start < end else b""


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpEndpoint) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._received(data, (addr[0], addr[1]))


class RtpEndpoint:
    """One RTP port: ``await RtpEndpoint.open()``, ``start_stream(dest)``, ``received``."""

    def __init__(
        self,
        *,
        tone_hz: float = 1000.0,
        keep: int = 0,
        kept: deque[tuple[int, bytes]] | None = None,
    ) -> None:
        self.tone_hz = tone_hz
        self.kept: deque[tuple[int, bytes]] = kept if kept is not None else deque(maxlen=keep)
        """The last (payload type, payload) pairs received (bounded; may be a shared deque)."""
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.received = 0
        self.not_rtp = 0
        self.sent = 0
        self.sources: Counter[tuple[str, int]] = Counter()
        self.payload_types: Counter[int] = Counter()
        self.ssrcs: Counter[int] = Counter()
        self.ssrc = random.getrandbits(32)
        self._stream: asyncio.Task[int] | None = None
        self._got_packet = asyncio.Event()

    @classmethod
    async def open(
        cls,
        host: str = HOST,
        port: int = 0,
        *,
        tone_hz: float = 1000.0,
        keep: int = 0,
        kept: deque[tuple[int, bytes]] | None = None,
    ) -> RtpEndpoint:
        self = cls(tone_hz=tone_hz, keep=keep, kept=kept)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self), local_addr=(host, port)
        )
        self.transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        return self

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            self.not_rtp += 1
            return
        self.received += 1
        self.sources[addr] += 1
        self.payload_types[data[1] & 0x7F] += 1
        self.ssrcs[struct.unpack_from("!I", data, 8)[0]] += 1
        if self.kept.maxlen:
            self.kept.append((data[1] & 0x7F, _payload(data)))
        self._got_packet.set()

    async def send_stream(
        self,
        dest: tuple[str, int],
        count: int = 50,
        ptime: int = 20,
        payload_type: int = PCMU,
    ) -> int:
        """Send ``count`` packets of ``ptime`` ms to ``dest``, paced; returns packets sent."""
        loop = asyncio.get_running_loop()
        samples = _RATE * ptime // 1000
        start = loop.time()
        for seq in range(count):
            if self.transport is None or self.transport.is_closing():
                break
            payload = tone(payload_type, samples, seq * samples, self.tone_hz)
            self.transport.sendto(
                rtp_packet(payload_type, seq, seq * samples, self.ssrc, payload), dest
            )
            self.sent += 1
            await asyncio.sleep(max(0.0, start + (seq + 1) * ptime / 1000 - loop.time()))
        return self.sent

    def start_stream(
        self, dest: tuple[str, int], count: int = 50, ptime: int = 20, payload_type: int = PCMU
    ) -> asyncio.Task[int]:
        """``send_stream`` in a task (the previous stream is stopped first)."""
        self.stop_stream()
        self._stream = asyncio.ensure_future(self.send_stream(dest, count, ptime, payload_type))
        return self._stream

    def stop_stream(self) -> None:
        if self._stream is not None and not self._stream.done():
            self._stream.cancel()
        self._stream = None

    async def wait_received(self, count: int = 1, timeout: float = 5.0) -> int:
        """Wait until ``count`` RTP packets arrived; returns how many did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.received < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._got_packet.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._got_packet.wait(), remaining)
        return self.received

    def close(self) -> None:
        self.stop_stream()
        if self.transport is not None:
            self.transport.close()
