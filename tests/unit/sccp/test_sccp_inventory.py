"""What an SCCP phone says it is: Register's newer fields, the Alarm's load, the model's name."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.sccp import decode_frame, encode
from offhook.sccp.inventory import StationInfo, alarm_load, station_model
from offhook.sccp.messages import Alarm, KeepAlive, Register


def register_7941_body() -> bytes:
    """A 7941 on SCCP41.9-0-3S registering (the layout Wireshark shows for protocol 19)."""
    return (
        b"SEP00192F0A0B0C\0"
        + struct.pack("<II", 0, 1)
        + bytes([192, 168, 6, 50])
        + struct.pack("<III", 115, 5, 0)
        + bytes([19, 0])
        + struct.pack("<H", 0x8572)
        + struct.pack("<II", 1, 0)
        + bytes.fromhex("00192f0a0b0c")
        + bytes(6)
        + struct.pack("<II", 3, 2)
        + bytes(16)
        + struct.pack("<I", 0)
        + b"SCCP41.9-0-3S".ljust(32, b"\0")
    )


def frame(msg_id: int, body: bytes, version: int = 0) -> bytes:
    return struct.pack("<III", len(body) + 4, version, msg_id) + body


def test_a_newer_register_carries_its_firmware_load() -> None:
    data = frame(0x0001, register_7941_body())
    assert len(data) - 8 == 128  # Wireshark's "Data length: 128"
    msg = decode_frame(data)
    assert isinstance(msg, Register)
    assert (msg.device_name, msg.device_type, msg.protocol_version) == ("SEP00192F0A0B0C", 115, 19)
    assert msg.firmware_load == "SCCP41.9-0-3S"
    assert msg.mac_address == bytes.fromhex("00192f0a0b0c")
    assert (msg.max_conferences, msg.max_lines, msg.ipv4_scope) == (1, 2, 3)
    assert msg.extra == b""
    assert encode(msg, 0) == data  # round trip, byte for byte
    info = StationInfo()
    info.learn(msg)
    assert (info.model, info.firmware) == ("Cisco 7941", "SCCP41.9-0-3S")


def test_an_older_register_has_no_load_and_encodes_as_before() -> None:
    msg = Register("SEP001122334455", 0, 1, "10.0.0.5", 7, 5, 0, 5)
    data = encode(msg, 0)
    assert len(data) == 8 + 4 + 44  # stops after phone_features: nothing new on the wire
    again = decode_frame(data)
    assert isinstance(again, Register) and again.firmware_load is None
    info = StationInfo()
    info.learn(again)
    assert (info.model, info.firmware) == ("Cisco 7960", "")


def test_an_older_phone_names_its_load_in_an_alarm() -> None:
    info = StationInfo()
    info.learn(Alarm(2, "Name=SEP003094C2D9D5 Load= P00308000500 Last=TCP-timeout", 0, 0))
    info.learn(Register("SEP003094C2D9D5", 0, 1, "10.0.0.5", 8, 5))
    assert (info.model, info.firmware) == ("Cisco 7940", "P00308000500")
    info.learn(Alarm(2, "Name=SEP003094C2D9D5 Load= OTHER Last=x", 0, 0))
    assert info.firmware == "P00308000500"  # the first word stands
    info.learn(KeepAlive())
    assert info.firmware == "P00308000500"


def test_model_names() -> None:
    assert station_model(7) == "Cisco 7960"
    assert station_model(30018) == "Cisco 7961"
    assert station_model(99999) == "SCCP type 99999"
    assert station_model(None) == ""
    assert alarm_load("no load here") == ""
    assert alarm_load("Load=X") == "X"


@settings(deadline=None)
@given(st.text(max_size=100))
def test_any_alarm_text_gives_a_short_printable_load_or_nothing(text: str) -> None:
    load = alarm_load(text)
    assert len(load) <= 32 and load.isprintable() and " " not in load


@settings(deadline=None)
@given(st.binary(max_size=32))
def test_any_load_bytes_are_kept_printable(raw: bytes) -> None:
    body = register_7941_body()[:-32] + raw.ljust(32, b"\0")
    msg = decode_frame(frame(0x0001, body))
    info = StationInfo()
    info.learn(msg)
    assert len(info.firmware) <= 32 and info.firmware.isprintable()
