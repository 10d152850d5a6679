"""SCCP messages a phone (station) sends: registration, keys, hook, media acks (sans-IO).

Flat little-endian layouts (see ``fields.py``); ids and layouts as Wireshark's
Skinny dissector documents them (wireshark/wireshark,
epan/dissectors/packet-skinny.c). Fields after ``REQUIRED`` may be absent on
the wire; they decode to None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from offhook.sccp.base import Message, MessageId
from offhook.sccp.fields import Layout


@dataclass(frozen=True, slots=True)
class KeepAlive(Message):
    """KeepAlive (0x0000)."""

    ID: ClassVar[MessageId] = MessageId.KEEP_ALIVE
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class Register(Message):
    """Register (0x0001)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER
    LAYOUT: ClassVar[Layout] = (
        ("device_name", "s16"),
        ("user_id", "I"),
        ("instance", "I"),
        ("ip", "ip"),
        ("device_type", "I"),
        ("max_streams", "I"),
        ("active_streams", "I"),
        ("protocol_version", "B"),
        ("unknown", "B"),
        ("phone_features", "H"),
    )
    REQUIRED: ClassVar[int] = 6

    device_name: str
    user_id: int
    instance: int
    ip: str
    device_type: int
    max_streams: int
    active_streams: int | None = 0
    protocol_version: int | None = 0
    unknown: int | None = 0
    phone_features: int | None = 0


@dataclass(frozen=True, slots=True)
class IpPort(Message):
    """IpPort (0x0002)."""

    ID: ClassVar[MessageId] = MessageId.IP_PORT
    LAYOUT: ClassVar[Layout] = (("port", "I"),)
    REQUIRED: ClassVar[int] = 1

    port: int


@dataclass(frozen=True, slots=True)
class KeypadButton(Message):
    """KeypadButton (0x0003)."""

    ID: ClassVar[MessageId] = MessageId.KEYPAD_BUTTON
    LAYOUT: ClassVar[Layout] = (
        ("button", "I"),
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    button: int
    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class EnblocCall(Message):
    """EnblocCall (0x0004)."""

    ID: ClassVar[MessageId] = MessageId.ENBLOC_CALL
    LAYOUT: ClassVar[Layout] = (
        ("called_party", "s24"),
        ("line_instance", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    called_party: str
    line_instance: int | None = 0


@dataclass(frozen=True, slots=True)
class Stimulus(Message):
    """Stimulus (0x0005)."""

    ID: ClassVar[MessageId] = MessageId.STIMULUS
    LAYOUT: ClassVar[Layout] = (
        ("stimulus", "I"),
        ("stimulus_instance", "I"),
        ("call_reference", "I"),
        ("stimulus_status", "I"),
    )
    REQUIRED: ClassVar[int] = 2

    stimulus: int
    stimulus_instance: int
    call_reference: int | None = 0
    stimulus_status: int | None = 0


@dataclass(frozen=True, slots=True)
class OffHook(Message):
    """OffHook (0x0006)."""

    ID: ClassVar[MessageId] = MessageId.OFF_HOOK
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 0

    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class OnHook(Message):
    """OnHook (0x0007)."""

    ID: ClassVar[MessageId] = MessageId.ON_HOOK
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 0

    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class HookFlash(Message):
    """HookFlash (0x0008)."""

    ID: ClassVar[MessageId] = MessageId.HOOK_FLASH
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 0

    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class ForwardStatReq(Message):
    """ForwardStatReq (0x0009)."""

    ID: ClassVar[MessageId] = MessageId.FORWARD_STAT_REQ
    LAYOUT: ClassVar[Layout] = (("line_number", "I"),)
    REQUIRED: ClassVar[int] = 1

    line_number: int


@dataclass(frozen=True, slots=True)
class SpeedDialStatReq(Message):
    """SpeedDialStatReq (0x000A)."""

    ID: ClassVar[MessageId] = MessageId.SPEED_DIAL_STAT_REQ
    LAYOUT: ClassVar[Layout] = (("speed_dial_number", "I"),)
    REQUIRED: ClassVar[int] = 1

    speed_dial_number: int


@dataclass(frozen=True, slots=True)
class LineStatReq(Message):
    """LineStatReq (0x000B)."""

    ID: ClassVar[MessageId] = MessageId.LINE_STAT_REQ
    LAYOUT: ClassVar[Layout] = (("line_number", "I"),)
    REQUIRED: ClassVar[int] = 1

    line_number: int


@dataclass(frozen=True, slots=True)
class ConfigStatReq(Message):
    """ConfigStatReq (0x000C)."""

    ID: ClassVar[MessageId] = MessageId.CONFIG_STAT_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class TimeDateReq(Message):
    """TimeDateReq (0x000D)."""

    ID: ClassVar[MessageId] = MessageId.TIME_DATE_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class ButtonTemplateReq(Message):
    """ButtonTemplateReq (0x000E)."""

    ID: ClassVar[MessageId] = MessageId.BUTTON_TEMPLATE_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class VersionReq(Message):
    """VersionReq (0x000F)."""

    ID: ClassVar[MessageId] = MessageId.VERSION_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class ServerReq(Message):
    """ServerReq (0x0012)."""

    ID: ClassVar[MessageId] = MessageId.SERVER_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class Alarm(Message):
    """Alarm (0x0020)."""

    ID: ClassVar[MessageId] = MessageId.ALARM
    LAYOUT: ClassVar[Layout] = (
        ("alarm_severity", "I"),
        ("text", "s80"),
        ("param1", "I"),
        ("param2", "I"),
    )
    REQUIRED: ClassVar[int] = 4

    alarm_severity: int
    text: str
    param1: int
    param2: int


@dataclass(frozen=True, slots=True)
class OpenReceiveChannelAck(Message):
    """OpenReceiveChannelAck (0x0022)."""

    ID: ClassVar[MessageId] = MessageId.OPEN_RECEIVE_CHANNEL_ACK
    LAYOUT: ClassVar[Layout] = (
        ("status", "I"),
        ("ip", "ip"),
        ("port", "I"),
        ("pass_thru_party_id", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 4
    LAYOUT_V17: ClassVar[Layout | None] = (
        ("status", "I"),
        ("_", "p4"),
        ("ip", "ip"),
        ("_", "p12"),
        ("port", "I"),
        ("pass_thru_party_id", "I"),
        ("call_reference", "I"),
    )

    status: int
    ip: str
    port: int
    pass_thru_party_id: int
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class SoftKeySetReq(Message):
    """SoftKeySetReq (0x0025)."""

    ID: ClassVar[MessageId] = MessageId.SOFT_KEY_SET_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class SoftKeyEvent(Message):
    """SoftKeyEvent (0x0026)."""

    ID: ClassVar[MessageId] = MessageId.SOFT_KEY_EVENT
    LAYOUT: ClassVar[Layout] = (
        ("soft_key_event", "I"),
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    soft_key_event: int
    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class Unregister(Message):
    """Unregister (0x0027)."""

    ID: ClassVar[MessageId] = MessageId.UNREGISTER
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class SoftKeyTemplateReq(Message):
    """SoftKeyTemplateReq (0x0028)."""

    ID: ClassVar[MessageId] = MessageId.SOFT_KEY_TEMPLATE_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class HeadsetStatus(Message):
    """HeadsetStatus (0x002B)."""

    ID: ClassVar[MessageId] = MessageId.HEADSET_STATUS
    LAYOUT: ClassVar[Layout] = (("mode", "I"),)
    REQUIRED: ClassVar[int] = 1

    mode: int


@dataclass(frozen=True, slots=True)
class RegisterAvailableLines(Message):
    """RegisterAvailableLines (0x002D)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER_AVAILABLE_LINES
    LAYOUT: ClassVar[Layout] = (("max_lines", "I"),)
    REQUIRED: ClassVar[int] = 1

    max_lines: int


@dataclass(frozen=True, slots=True)
class ServiceUrlStatReq(Message):
    """ServiceUrlStatReq (0x0033)."""

    ID: ClassVar[MessageId] = MessageId.SERVICE_URL_STAT_REQ
    LAYOUT: ClassVar[Layout] = (("service_url_index", "I"),)
    REQUIRED: ClassVar[int] = 1

    service_url_index: int


@dataclass(frozen=True, slots=True)
class FeatureStatReq(Message):
    """FeatureStatReq (0x0034)."""

    ID: ClassVar[MessageId] = MessageId.FEATURE_STAT_REQ
    LAYOUT: ClassVar[Layout] = (("feature_index", "I"),)
    REQUIRED: ClassVar[int] = 1

    feature_index: int
