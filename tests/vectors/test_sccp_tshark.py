"""tshark's Skinny dissector reads every message we encode without a malformed-packet error.

Two samples of every typed message, one with every field set and one built
from the required fields only (the defaults fill the rest), each in header
versions 0 and 0x11, are written
into a pcap as TCP port 2000 traffic (scapy writes the pcap), then tshark
dissects it; no frame may carry ``_ws.malformed`` or an expert error, and the
message id tshark reads must be ours.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from offhook.sccp import MESSAGE_TYPES, encode
from offhook.sccp.messages import (
    ButtonTemplate,
    CapabilitiesRes,
    Capability,
    Message,
    ServerRes,
    SoftKeySet,
    SoftKeySetRes,
    SoftKeyTemplateRes,
    Unknown,
)

scapy_all = pytest.importorskip("scapy.all")
TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")

# Wireshark (4.0) reads OpenReceiveChannel and StartMediaTransmission with the
# later fields (MKI, stream ids, RFC 2833 payload type...) even in header
# version 0, so it flags CallManager 4.1's own frames (cm_call_open_rx/148,
# cm_call_media/154) as malformed; we send that captured layout in version 0
# and Wireshark's full layout from 0x11 on. Checked below on the captures.
# LineStat likewise: CallManager 3.3's length field gives a 108-byte body
# (cm33_reg/line_stat), Wireshark wants lineDisplayOptions after it.
WIRESHARK_SHORT_V0 = {0x105, 0x8A, 0x92}
EXPERT_ERROR = 0x00800000  # PI_ERROR in Wireshark's expert.h
CUSTOM: dict[type[Message], Message] = {
    CapabilitiesRes: CapabilitiesRes((Capability(4, 40), Capability(2, 40))),
    ButtonTemplate: ButtonTemplate(0, 3, ((1, 9), (2, 9), (1, 2))),
    SoftKeyTemplateRes: SoftKeyTemplateRes(0, 2, (("Redial", 1), ("NewCall", 2))),
    SoftKeySetRes: SoftKeySetRes(0, 1, (SoftKeySet(tuple(range(16)), tuple(range(16))),)),
    ServerRes: ServerRes((("cm1", 2000, "192.0.2.1"),)),
}


def sample(cls: type[Message], minimal: bool = False) -> Message:
    """A message of ``cls`` with every field set, or only the required ones."""
    if cls in CUSTOM:
        return CUSTOM[cls]
    values: dict[str, Any] = {}
    layout = cls.LAYOUT[: cls.REQUIRED] if minimal else cls.LAYOUT
    for name, kind in layout:
        if kind[0] == "p":
            continue
        if kind == "ip":
            values[name] = "192.0.2.7"
        elif kind[0] == "b":
            values[name] = bytes(int(kind[1:]))
        elif kind[0] == "s":
            values[name] = "1001"
        else:
            values[name] = 1
    return cls(**values)


def _frames() -> list[tuple[int, bytes]]:
    frames = json.loads((Path(__file__).parent / "sccp" / "cucm_frames.json").read_text())
    out = [
        (0x105, bytes.fromhex(frames["cm_call_open_rx"]["148"])),
        (0x8A, bytes.fromhex(frames["cm_call_media"]["154"])),
    ]
    for cls in MESSAGE_TYPES.values():
        for minimal in (False, True):
            message = sample(cls, minimal)
            for version in (0, 0x11):
                out.append((message.msg_id, encode(message, version)))
    return out


def test_tshark_dissects_our_frames(tmp_path: Path) -> None:
    frames = _frames()
    packets = []
    seq = 1000
    for _, frame in frames:
        packets.append(
            scapy_all.Ether()
            / scapy_all.IP(src="127.0.0.1", dst="127.0.0.2")
            / scapy_all.TCP(sport=2000, dport=50000, flags="PA", seq=seq, ack=1)
            / scapy_all.Raw(frame)
        )
        seq += len(frame)
    pcap = tmp_path / "offhook_sccp.pcap"
    scapy_all.wrpcap(str(pcap), packets)
    assert TSHARK is not None
    result = subprocess.run(
        [
            TSHARK,
            "-r",
            str(pcap),
            "-d",
            "tcp.port==2000,skinny",
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
            "-o",
            "tcp.desegment_tcp_streams:TRUE",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) == len(frames)
    bad = []
    for (msg_id, frame), (number, ids, malformed, severity) in zip(frames, rows, strict=True):
        worst = max((int(x, 0) for x in severity.split(",") if x), default=0)
        if msg_id in WIRESHARK_SHORT_V0 and frame[4:8] == bytes(4):
            assert malformed, "Wireshark now reads the CM 4.1 layout: drop the exception"
            continue
        if malformed or ids != str(msg_id) or worst >= EXPERT_ERROR:
            bad.append((number, hex(msg_id), ids, malformed, severity, frame.hex()))
    assert not bad, bad


def test_unknown_is_not_sampled() -> None:
    assert Unknown not in MESSAGE_TYPES.values()
