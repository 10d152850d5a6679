"""Loopback packet capture with tshark, for checking that RTP really flowed.

``Capture`` starts ``tshark -i lo`` with a capture filter, waits until it
captures, and on ``stop()`` ends it (SIGINT, then SIGTERM) and reads the
pcap back, so media between two UAs can be counted per direction without
trusting either UA.

RTP is recognised from each UDP payload here (:func:`rtp_header`: version 2,
not RTCP), not by tshark's RTP heuristic: that one only runs on ports no
other dissector claims, and a phone's RTP port may be a registered one
(UDP 19132 is decoded as RakNet, and its RTP was not counted).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


class CaptureError(RuntimeError):
    """tshark could not start or its capture could not be read."""


@dataclass(frozen=True)
class RtpPacket:
    src_port: int
    dst_port: int
    ssrc: str
    payload_type: int


def tshark_can_capture() -> str | None:
    """None if tshark can capture on lo here, else the reason it cannot."""
    if shutil.which("tshark") is None:
        return "tshark not installed"
    if os.geteuid() != 0:
        probe = subprocess.run(
            ["tshark", "-D"], capture_output=True, text=True, timeout=20, check=False
        )
        if "lo" not in probe.stdout:
            return "tshark cannot capture on lo as this user"
    return None


class Capture:
    """``with Capture(path, 'udp portrange 30000-30020') as cap: ...``."""

    def __init__(self, pcap: Path, bpf: str, iface: str = "lo") -> None:
        self.pcap = Path(pcap)
        self.bpf = bpf
        self.iface = iface
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = self.pcap.with_suffix(".stderr")

    def start(self, timeout: float = 20.0) -> Capture:
        self._err = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["tshark", "-q", "-n", "-i", self.iface, "-f", self.bpf, "-w", str(self.pcap)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CaptureError(f"tshark exited: {self.stderr_path.read_text()}")
            if "Capturing on" in self.stderr_path.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        self.stop()
        raise CaptureError("tshark did not start capturing in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            time.sleep(0.3)  # let the last packets in flight be written
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        with contextlib.suppress(AttributeError):
            self._err.close()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def udp_datagrams(self) -> list[tuple[str, int, str, int, bytes]]:
        """Every UDP datagram in the capture: (source, port, destination, port, payload).

        Addresses as tshark writes them (IPv4 or IPv6); ICMP errors quoting
        a UDP header are left out.
        """
        if not self.pcap.exists():
            raise CaptureError(f"no capture file {self.pcap}")
        out = subprocess.run(
            [
                "tshark", "-n", "-r", str(self.pcap),
                "-Y", "udp && !icmp && !icmpv6",
                "-T", "fields", "-E", "separator=|",
                "-e", "ip.src", "-e", "ipv6.src", "-e", "udp.srcport",
                "-e", "ip.dst", "-e", "ipv6.dst", "-e", "udp.dstport", "-e", "udp.payload",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise CaptureError(f"tshark -r failed: {out.stderr}")
        datagrams = []
        for line in out.stdout.splitlines():
            f = line.split("|")
            if len(f) < 7 or not f[2] or not f[5]:
                continue
            payload = bytes.fromhex(f[6].replace(":", ""))
            datagrams.append((f[0] or f[1], int(f[2]), f[3] or f[4], int(f[5]), payload))
        return datagrams

    def rtp_packets(self) -> list[RtpPacket]:
        """Every RTP packet in the capture (each UDP payload read by :func:`rtp_header`)."""
        packets = []
        for _, sport, _, dport, payload in self.udp_datagrams():
            header = rtp_header(payload)
            if header is not None:
                ssrc, payload_type = header
                packets.append(RtpPacket(sport, dport, f"0x{ssrc:08x}", payload_type))
        return packets

    def rtp_flows(self) -> Counter[tuple[int, int]]:
        """Packet count per (source port, destination port)."""
        return Counter((p.src_port, p.dst_port) for p in self.rtp_packets())


def rtp_header(payload: bytes) -> tuple[int, int] | None:
    """(SSRC, payload type) of an RTP packet (RFC 3550 §5.1), None for anything else.

    Version 2 and a full fixed header; RTCP (packet types 200-204, which
    share RTP's first bits, RFC 5761 §4) is not RTP.
    """
    if len(payload) < 12 or payload[0] >> 6 != 2 or 200 <= payload[1] <= 204:
        return None
    return int.from_bytes(payload[8:12], "big"), payload[1] & 0x7F


def count_between(
    flows: Counter[tuple[int, int]], src: tuple[int, int], dst: tuple[int, int]
) -> int:
    """Packets from a port in ``src`` (inclusive range) to a port in ``dst``."""
    return sum(
        n for (sp, dp), n in flows.items() if src[0] <= sp <= src[1] and dst[0] <= dp <= dst[1]
    )
