"""decode/encode: layouts, optional trailing fields, versions, unknown ids, bounds."""

from __future__ import annotations

import struct

import pytest

from offhook.common import ParseError
from offhook.sccp import MESSAGE_TYPES, MessageId, Unknown, decode, decode_frame, encode
from offhook.sccp.messages import (
    ButtonTemplate,
    CallInfo,
    CapabilitiesRes,
    Capability,
    DisplayPromptStatus,
    KeypadButton,
    OpenReceiveChannelAck,
    RegisterAck,
    ServerRes,
    SoftKeySet,
    SoftKeySetRes,
    SoftKeyTemplateRes,
    StartMediaTransmission,
)


def test_every_type_in_the_id_table() -> None:
    for msg_id, cls in MESSAGE_TYPES.items():
        assert MessageId(msg_id) == cls.ID


def test_frame_layout() -> None:
    frame = encode(KeypadButton(5, 1, 7))
    assert frame == struct.pack("<IIIIII", 16, 0, 3, 5, 1, 7)


def test_short_keypad_button_roundtrips() -> None:
    # CM 3.x phones send only the button
    frame = struct.pack("<IIII", 8, 0, 3, 11)
    message = decode_frame(frame)
    assert message == KeypadButton(11, None, None)
    assert encode(KeypadButton(11)) == struct.pack("<IIIIII", 16, 0, 3, 11, 0, 0)
    assert encode(message) == frame


def test_unknown_id_is_kept() -> None:
    frame = struct.pack("<III", 7, 0x16, 0x7777) + b"abc"
    message = decode_frame(frame)
    assert message == Unknown(0x7777, b"abc", version=0x16)
    assert encode(message) == frame


def test_truncated_body_is_parse_error() -> None:
    with pytest.raises(ParseError):
        decode(0, MessageId.SET_LAMP, b"\0" * 8)
    with pytest.raises(ParseError):
        decode(0, MessageId.CALL_INFO, b"\0" * 100)


def test_strings_nul_padded() -> None:
    prompt = DisplayPromptStatus(10, "Enter Number", 1, 7)
    body = encode(prompt)[12:]
    assert body[4:36] == b"Enter Number".ljust(32, b"\0")
    assert decode_frame(encode(prompt)) == prompt


def test_call_info_full_roundtrip() -> None:
    info = CallInfo("Alice", "1001", "Bob", "1002", 1, 7, 1)
    frame = encode(info)
    assert len(frame) == 12 + 384  # the full CallManager 4.x layout
    assert decode_frame(frame) == info


def test_register_ack_layout() -> None:
    ack = RegisterAck(30, "M/D/YA", 60)
    frame = encode(ack)
    assert frame[12:] == struct.pack("<I", 30) + b"M/D/YA\0\0" + struct.pack("<II", 60, 0)
    assert decode_frame(frame) == ack


@pytest.mark.parametrize("version", [0x11, 0x12, 0x14, 0x16])
def test_v17_address_layout(version: int) -> None:
    smt = StartMediaTransmission(1, 2, "192.0.2.5", 20000, 20, 4, 0xB8, 0, 0, 0, 7, version=version)
    frame = encode(smt)
    body = frame[12:]
    assert body[8:12] == b"\0\0\0\0"  # address type IPv4
    assert body[12:16] == bytes((192, 0, 2, 5))
    assert struct.unpack_from("<I", body, 28)[0] == 20000
    assert decode_frame(frame) == smt
    v0 = encode(smt, version=0)
    assert (len(v0), len(frame)) == (12 + 84, 12 + 132)  # CM 4.1 layout; Wireshark layout
    ack_body = struct.pack("<II", 0, 0) + bytes((192, 0, 2, 9)) + bytes(12)
    ack_body += struct.pack("<III", 30000, 2, 7)
    ack = decode(version, MessageId.OPEN_RECEIVE_CHANNEL_ACK, ack_body)
    assert ack == OpenReceiveChannelAck(0, "192.0.2.9", 30000, 2, 7, version=version)


def test_capabilities_bounded_by_body() -> None:
    caps = CapabilitiesRes((Capability(4, 40), Capability(2, 40), Capability(15, 60)))
    assert decode_frame(encode(caps)) == caps
    huge = struct.pack("<I", 0xFFFFFFFF) + bytes(16)
    with pytest.raises(ParseError):
        decode(0, MessageId.CAPABILITIES_RES, huge)
    with pytest.raises(ParseError):
        decode(0, MessageId.CAPABILITIES_RES, struct.pack("<I", 3) + bytes(32))


def test_templates_roundtrip_and_bounds() -> None:
    buttons = ButtonTemplate(0, 3, ((1, 9), (2, 9), (1, 2)))
    frame = encode(buttons)
    assert frame[-2:] == b"\x00\xff"
    assert decode_frame(frame) == buttons
    keys = SoftKeyTemplateRes(0, 2, (("Redial", 1), ("NewCall", 2)))
    assert decode_frame(encode(keys)) == keys
    sets = SoftKeySetRes(0, 1, (SoftKeySet(tuple(range(16)), tuple(range(300, 316))),))
    assert decode_frame(encode(sets)) == sets
    for msg_id in (
        MessageId.BUTTON_TEMPLATE,
        MessageId.SOFT_KEY_TEMPLATE_RES,
        MessageId.SOFT_KEY_SET_RES,
    ):
        with pytest.raises(ParseError):
            decode(0, msg_id, struct.pack("<III", 0, 1000, 1000) + bytes(100))


def test_server_res() -> None:
    res = ServerRes((("cm1", 2000, "192.0.2.1"), ("cm2", 2000, "192.0.2.2")))
    assert decode_frame(encode(res)) == res
    with pytest.raises(ParseError):
        decode(0, MessageId.SERVER_RES, bytes(100))
