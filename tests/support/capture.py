"""Loopback packet capture with tshark, for checking that RTP really flowed.

``Capture`` starts ``tshark -i lo`` with a capture filter, waits until it
captures, and on ``stop()`` ends it (SIGINT, then SIGTERM) and reads the
pcap back with the RTP heuristic dissector on, so media between two UAs
can be counted per direction without trusting either UA.
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

    def rtp_packets(self) -> list[RtpPacket]:
        """Every RTP packet in the capture (heuristic RTP-over-UDP decoding)."""
        if not self.pcap.exists():
            raise CaptureError(f"no capture file {self.pcap}")
        out = subprocess.run(
            [
                "tshark", "-n", "-r", str(self.pcap),
                "--enable-heuristic", "rtp_udp",
                "-Y", "rtp && rtp.version == 2",
                "-T", "fields",
                "-e", "udp.srcport", "-e", "udp.dstport", "-e", "rtp.ssrc", "-e", "rtp.p_type",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise CaptureError(f"tshark -r failed: {out.stderr}")
        packets = []
        for line in out.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) < 4 or not parts[0]:
                continue
            packets.append(RtpPacket(int(parts[0]), int(parts[1]), parts[2], int(parts[3] or -1)))
        return packets

    def rtp_flows(self) -> Counter[tuple[int, int]]:
        """Packet count per (source port, destination port)."""
        return Counter((p.src_port, p.dst_port) for p in self.rtp_packets())


def count_between(
    flows: Counter[tuple[int, int]], src: tuple[int, int], dst: tuple[int, int]
) -> int:
    """Packets from a port in ``src`` (inclusive range) to a port in ``dst``."""
    return sum(
        n for (sp, dp), n in flows.items() if src[0] <= sp <= src[1] and dst[0] <= dp <= dst[1]
    )
