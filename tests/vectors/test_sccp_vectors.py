"""SCCP codec against frames captured from real CallManagers (tests/vectors/sccp/).

``cucm_frames.json`` holds CallManager 3.x/4.1 frames as hex (MIT, see
LICENSE.pyskinny). Some were stored shorter than their length field says (the
CM 3.1/3.3 registration frames lack their last u32; two softkey frames were
cut at 536 bytes): those are decoded from the bytes present, and a framer
must wait for the rest. ``cm2_register_payloads.json`` is the TCP payload of
every packet of ``cm2_register.pcapng`` per stream and direction (extracted
with ``tshark -T fields -e tcp.stream -e tcp.srcport -e tcp.payload``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from offhook.common import ParseError
from offhook.sccp import SccpFramer, decode, decode_frame, encode
from offhook.sccp.messages import (
    ActivateCallPlane,
    CallState,
    CapabilitiesRes,
    DisplayPriNotify,
    DisplayPromptStatus,
    Message,
    OpenReceiveChannel,
    Register,
    SelectSoftKeys,
    SetLamp,
    SetRinger,
    SetSpeakerMode,
    SoftKeySetRes,
    SoftKeyTemplateRes,
    StartMediaTransmission,
    StartTone,
    StopTone,
    Unknown,
)

HERE = Path(__file__).parent / "sccp"
FRAMES: dict[str, dict[str, str]] = json.loads((HERE / "cucm_frames.json").read_text())
CASES = [
    (f"{scenario}/{name}", bytes.fromhex(h))
    for scenario, frames in FRAMES.items()
    for name, h in frames.items()
]
WHOLE = [(n, f) for n, f in CASES if len(f) == 8 + struct.unpack_from("<I", f)[0]]
# A few captured frames keep garbage after the NUL of a string field (CallManager's
# uninitialised buffers); we write zeros there, so only the fields can match.
GARBAGE_PADDING = {"cm_cap_assets/50"}


@pytest.mark.parametrize(("name", "frame"), CASES, ids=[n for n, _ in CASES])
def test_every_captured_frame_decodes(name: str, frame: bytes) -> None:
    _, version, msg_id = struct.unpack_from("<III", frame)
    if name == "cm_cap_assets/43":  # cut at 536 of 792 bytes: the sets do not fit
        with pytest.raises(ParseError):
            decode(version, msg_id, frame[12:])
        return
    message = decode(version, msg_id, frame[12:])
    assert not isinstance(message, Unknown)
    assert message.msg_id == msg_id


@pytest.mark.parametrize(("name", "frame"), WHOLE, ids=[n for n, _ in WHOLE])
def test_server_messages_encode_back_byte_for_byte(name: str, frame: bytes) -> None:
    message = decode_frame(frame)
    again = encode(message)
    if name in GARBAGE_PADDING:
        assert len(again) == len(frame)
        assert decode_frame(again) == message
    else:
        assert again == frame


def test_short_frames_wait_for_the_rest() -> None:
    for name, frame in CASES:
        if (name, frame) in WHOLE:
            continue
        framer = SccpFramer()
        assert framer.feed(frame) == [], name
        assert framer.buffered == len(frame)


def test_known_field_values() -> None:
    frames = dict(CASES)
    state = decode_frame(frames["cm_cap_new_call/83"])
    assert state == CallState(1, 1, 0x0100001A, 0, 4, 0)
    smt = decode_frame(frames["cm_call_media/154"])
    assert isinstance(smt, StartMediaTransmission)
    assert (smt.remote_ip, smt.remote_port, smt.ms_packet_size, smt.payload_capability) == (
        "10.102.219.27",
        60186,
        20,
        4,
    )
    assert smt.call_reference == 0x0100001F
    keys = decode(0, 0x108, frames["cm33_reg/softkey_template"][12:])
    assert isinstance(keys, SoftKeyTemplateRes)
    assert keys.soft_keys[:3] == (("Redial", 1), ("NewCall", 2), ("Hold", 3))


def test_softkey_sets_roundtrip() -> None:
    frame = dict(CASES)["cm_cap_assets/43"]
    body = frame[12:]
    count = 10  # the first 10 sets fit in the 524 bytes present
    head = struct.pack("<III", 0, count, 11)
    msg = SoftKeySetRes.decode_body(head + body[12 : 12 + 48 * count], 0)
    assert isinstance(msg, SoftKeySetRes)
    assert len(msg.sets) == count
    assert decode_frame(encode(msg)) == msg


def test_registration_pcap_every_frame_decodes() -> None:
    streams: dict[str, list[str]] = json.loads((HERE / "cm2_register_payloads.json").read_text())
    seen: set[type] = set()
    total = 0
    for payloads in streams.values():
        framer = SccpFramer()
        for hexdata in payloads:
            for message in framer.feed(bytes.fromhex(hexdata)):
                seen.add(type(message))
                total += 1
        assert framer.buffered == 0
    assert total > 1000
    assert {Register, CapabilitiesRes} <= seen


BUILT: list[tuple[str, Message]] = [
    ("cm_cap_new_call/80", SetRinger(1, 1, 0, 0)),
    ("cm_cap_new_call/81", SetSpeakerMode(1)),
    ("cm_cap_new_call/82", SetLamp(9, 1, 2)),
    ("cm_cap_new_call/83", CallState(1, 1, 0x0100001A, 0, 4)),
    ("cm_cap_new_call/84", SelectSoftKeys(1, 0x0100001A, 4, 0xFFFFFFFF)),
    # "\x80\x20" is a CallManager prompt code the phone shows in its own language
    ("cm_cap_new_call/85", DisplayPromptStatus(0, "\x80\x20", 1, 0x0100001A)),
    ("cm_cap_new_call/86", ActivateCallPlane(1)),
    ("cm_cap_new_call/87", StartTone(0x21, 0, 1, 0x0100001A)),
    ("cm_call_ring/135", DisplayPriNotify(10, 5, "\x80\x171003")),
    ("cm_call_answer/147", StopTone(1, 0x0100001F)),
    ("cm_call_open_rx/148", OpenReceiveChannel(0x0100001F, 0x01000101, 20, 4, 0, 0, 0x0100001F)),
    (
        "cm_call_media/154",
        StartMediaTransmission(
            0x0100001F, 0x01000101, "10.102.219.27", 60186, 20, 4, 0xB8, 0, 0, 0, 0x0100001F
        ),
    ),
]


@pytest.mark.parametrize(("name", "message"), BUILT, ids=[n for n, _ in BUILT])
def test_messages_we_build_match_callmanager_layout(name: str, message: Message) -> None:
    assert encode(message) == dict(CASES)[name]
