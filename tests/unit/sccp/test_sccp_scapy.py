"""scapy's Skinny layer (scapy.contrib.skinny) reads our call-flow messages the same way."""

from __future__ import annotations

import os
from typing import Any

import pytest

from offhook.sccp import encode
from offhook.sccp.messages import (
    CallInfo,
    CallState,
    DialedNumber,
    DisplayPromptStatus,
    KeypadButton,
    Message,
    OpenReceiveChannel,
    OpenReceiveChannelAck,
    SetLamp,
    SetRinger,
    SoftKeyEvent,
    StartMediaTransmission,
    StartTone,
)

try:
    import scapy.contrib.skinny as skinny
except ImportError:  # pragma: no cover - scapy comes with the test extra
    if os.environ.get("CI") == "true":
        raise
    skinny = pytest.importorskip("scapy.contrib.skinny")

CASES: list[tuple[Message, dict[str, Any]]] = [
    (CallState(1, 2, 0x0100001A, 0, 4, 0), {"state": 1, "instance": 2, "callid": 0x0100001A}),
    (SetLamp(9, 1, 2), {"stimulus": 9, "instance": 1, "mode": 2}),
    (StartTone(0x21, 0, 1, 7), {"tone": 0x21, "instance": 1, "callid": 7}),
    (SetRinger(2, 1, 1, 7), {"ring": 2}),
    (KeypadButton(5, 1, 7), {"key": 5, "instance": 1, "callid": 7}),
    (SoftKeyEvent(9, 1, 7), {"key": 9, "instance": 1, "callid": 7}),
    (DialedNumber("1002", 1, 7), {"number": b"1002", "instance": 1, "callid": 7}),
    (
        DisplayPromptStatus(10, "Ring Out", 1, 7),
        {"timeout": 10, "text": b"Ring Out", "instance": 1, "callid": 7},
    ),
    (
        # the full CallInfo (a CallManager sends every field; scapy needs them all)
        CallInfo("Alice", "1001", "Bob", "1002", 1, 7, 2, *[""] * 4, 0, 0, *[""] * 4, 0, 0, 0),
        {
            "callername": b"Alice",
            "callernum": b"1001",
            "calledname": b"Bob",
            "callednum": b"1002",
            "lineinstance": 1,
            "callid": 7,
        },
    ),
    (
        OpenReceiveChannel(0x1F, 0x101, 20, 4, 0, 0, 7),
        {"conference": 0x1F, "passthru": 0x101, "rate": 20, "codec": 4, "callid": 7},
    ),
    (
        OpenReceiveChannelAck(0, "192.0.2.9", 30000, 0x101, 7),
        {"status": 0, "remote": "192.0.2.9", "port": 30000, "passthru": 0x101, "callid": 7},
    ),
    (
        StartMediaTransmission(0x1F, 0x101, "192.0.2.5", 20000, 20, 4, 0xB8, 0, 0, 0, 7),
        {
            "conference": 0x1F,
            "passthru": 0x101,
            "remote": "192.0.2.5",
            "port": 20000,
            "rate": 20,
            "codec": 4,
            "precedence": 0xB8,
            "silence": 0,
            "callid": 7,
        },
    ),
]


@pytest.mark.parametrize(("message", "expected"), CASES, ids=[type(m).__name__ for m, _ in CASES])
def test_scapy_reads_our_frames(message: Message, expected: dict[str, Any]) -> None:
    pkt = skinny.Skinny(encode(message))
    assert pkt.msg == message.msg_id
    layer = pkt.payload
    assert type(layer).__name__ != "Raw"
    for name, value in expected.items():
        got = layer.getfieldval(name)
        if isinstance(value, bytes):
            got = bytes(got).rstrip(b"\0")
        assert got == value, name
