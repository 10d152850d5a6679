"""Feed SCCP frames to tshark's Skinny dissector and report what it flags.

``tshark_problems(streams)`` writes each stream of frames (as one phone's
connection received them) into a pcap as TCP traffic from port 2000, one
frame per segment with consecutive sequence numbers (scapy writes the pcap,
as ``tests/vectors/test_sccp_tshark.py`` does), runs ``tshark -r`` with the
Skinny dissector on that port, and returns a description of every frame
that carries ``_ws.malformed``, an expert error, or a message id other than
the one we wrote. None of the frames may be lost either.

Known Wireshark 4.0 differences (see tests/vectors/test_sccp_tshark.py):
in header version 0 it reads OpenReceiveChannel, StartMediaTransmission and
LineStat with later fields that CallManager 3.x/4.x never sent, so it flags
CallManager's own frames as malformed. Those (id, version 0) frames are not
reported; from header version 0x11 on every frame must pass.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

WIRESHARK_SHORT_V0 = {0x105, 0x8A, 0x92}
EXPERT_ERROR = 0x00800000  # PI_ERROR in Wireshark's expert.h
TSHARK = shutil.which("tshark")


def tshark_problems(streams: Sequence[Sequence[bytes]], pcap: Path) -> list[str]:
    """Problems tshark reports in ``streams`` (each a list of whole SCCP frames)."""
    from scapy.all import IP, TCP, Ether, Raw, wrpcap

    assert TSHARK is not None, "tshark not installed"
    packets = []
    frames: list[bytes] = []
    for index, stream in enumerate(streams):
        seq = 1000
        for frame in stream:
            packets.append(
                Ether()
                / IP(src="127.0.0.1", dst="127.0.0.2")
                / TCP(sport=2000, dport=50000 + index, flags="PA", seq=seq, ack=1)
                / Raw(frame)
            )
            frames.append(frame)
            seq += len(frame)
    wrpcap(str(pcap), packets)
    result = subprocess.run(
        [
            TSHARK,
            "-r",
            str(pcap),
            "-d",
            "tcp.port==2000,skinny",
            "-o",
            "tcp.desegment_tcp_streams:TRUE",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "skinny.messageId",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert.severity",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    if len(rows) != len(frames):
        return [f"tshark read {len(rows)} frames of {len(frames)}"]
    problems = []
    for frame, (number, ids, malformed, severity) in zip(frames, rows, strict=True):
        msg_id, version = struct.unpack_from("<I", frame, 8)[0], frame[4:8]
        worst = max((int(x, 0) for x in severity.split(",") if x), default=0)
        if msg_id in WIRESHARK_SHORT_V0 and version == bytes(4):
            continue
        if malformed or ids != str(msg_id) or worst >= EXPERT_ERROR:
            problems.append(
                f"frame {number}: id {msg_id:#x} read as {ids!r}, malformed={malformed!r}, "
                f"expert={severity!r}: {frame.hex()}"
            )
    return problems
