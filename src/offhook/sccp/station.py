"""SCCP messages a phone (station) sends: registration, keys, hook, media acks (sans-IO).

Flat little-endian bodies: each field carries its wire format (see
``fields.py``); ids and layouts as Wireshark's Skinny dissector documents them
(wireshark/wireshark, epan/dissectors/packet-skinny.c). Fields with a default
may be absent on the wire (older firmware); they decode to None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from offhook.sccp.base import Message, MessageId
from offhook.sccp.fields import IPV4, IPV4OR6, U8, U16, U32, chars, raw


@dataclass(frozen=True, slots=True)
class KeepAlive(Message):
    """KeepAlive (0x0000)."""

    ID: ClassVar[MessageId] = MessageId.KEEP_ALIVE


@dataclass(frozen=True, slots=True)
class Register(Message):
    """Register (0x0001).

    Newer firmware (protocol 11 and up) goes on: conferences, its MAC address
    (6 bytes in a 12-byte field), address scopes, lines, an IPv6 address and
    the firmware load it runs (``firmware_load``, e.g. ``SCCP41.9-0-3S``);
    older phones stop earlier (the missing fields are None).
    """

    ID: ClassVar[MessageId] = MessageId.REGISTER

    device_name: Annotated[str, chars(16)]
    user_id: Annotated[int, U32]
    instance: Annotated[int, U32]
    ip: Annotated[str, IPV4]
    device_type: Annotated[int, U32]
    max_streams: Annotated[int, U32]
    active_streams: Annotated[int | None, U32] = 0
    protocol_version: Annotated[int | None, U8] = 0
    unknown: Annotated[int | None, U8] = 0
    phone_features: Annotated[int | None, U16] = 0
    max_conferences: Annotated[int | None, U32] = None
    active_conferences: Annotated[int | None, U32] = None
    mac_address: Annotated[bytes | None, raw(12)] = None
    ipv4_scope: Annotated[int | None, U32] = None
    max_lines: Annotated[int | None, U32] = None
    ipv6: Annotated[bytes | None, raw(16)] = None
    ipv6_scope: Annotated[int | None, U32] = None
    firmware_load: Annotated[str | None, chars(32)] = None


@dataclass(frozen=True, slots=True)
class IpPort(Message):
    """IpPort (0x0002)."""

    ID: ClassVar[MessageId] = MessageId.IP_PORT

    port: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class KeypadButton(Message):
    """KeypadButton (0x0003)."""

    ID: ClassVar[MessageId] = MessageId.KEYPAD_BUTTON

    button: Annotated[int, U32]
    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class EnblocCall(Message):
    """EnblocCall (0x0004)."""

    ID: ClassVar[MessageId] = MessageId.ENBLOC_CALL

    called_party: Annotated[str, chars(24)]
    line_instance: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class Stimulus(Message):
    """Stimulus (0x0005)."""

    ID: ClassVar[MessageId] = MessageId.STIMULUS

    stimulus: Annotated[int, U32]
    stimulus_instance: Annotated[int, U32]
    call_reference: Annotated[int | None, U32] = 0
    stimulus_status: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class OffHook(Message):
    """OffHook (0x0006)."""

    ID: ClassVar[MessageId] = MessageId.OFF_HOOK

    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class OnHook(Message):
    """OnHook (0x0007)."""

    ID: ClassVar[MessageId] = MessageId.ON_HOOK

    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class HookFlash(Message):
    """HookFlash (0x0008)."""

    ID: ClassVar[MessageId] = MessageId.HOOK_FLASH

    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class ForwardStatReq(Message):
    """ForwardStatReq (0x0009)."""

    ID: ClassVar[MessageId] = MessageId.FORWARD_STAT_REQ

    line_number: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class SpeedDialStatReq(Message):
    """SpeedDialStatReq (0x000A)."""

    ID: ClassVar[MessageId] = MessageId.SPEED_DIAL_STAT_REQ

    speed_dial_number: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class LineStatReq(Message):
    """LineStatReq (0x000B)."""

    ID: ClassVar[MessageId] = MessageId.LINE_STAT_REQ

    line_number: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class ConfigStatReq(Message):
    """ConfigStatReq (0x000C)."""

    ID: ClassVar[MessageId] = MessageId.CONFIG_STAT_REQ


@dataclass(frozen=True, slots=True)
class TimeDateReq(Message):
    """TimeDateReq (0x000D)."""

    ID: ClassVar[MessageId] = MessageId.TIME_DATE_REQ


@dataclass(frozen=True, slots=True)
class ButtonTemplateReq(Message):
    """ButtonTemplateReq (0x000E)."""

    ID: ClassVar[MessageId] = MessageId.BUTTON_TEMPLATE_REQ


@dataclass(frozen=True, slots=True)
class VersionReq(Message):
    """VersionReq (0x000F)."""

    ID: ClassVar[MessageId] = MessageId.VERSION_REQ


@dataclass(frozen=True, slots=True)
class ServerReq(Message):
    """ServerReq (0x0012)."""

    ID: ClassVar[MessageId] = MessageId.SERVER_REQ


@dataclass(frozen=True, slots=True)
class Alarm(Message):
    """Alarm (0x0020)."""

    ID: ClassVar[MessageId] = MessageId.ALARM

    alarm_severity: Annotated[int, U32]
    text: Annotated[str, chars(80)]
    param1: Annotated[int, U32]
    param2: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class OpenReceiveChannelAck(Message):
    """OpenReceiveChannelAck (0x0022)."""

    ID: ClassVar[MessageId] = MessageId.OPEN_RECEIVE_CHANNEL_ACK

    status: Annotated[int, U32]
    ip: Annotated[str, IPV4OR6]
    port: Annotated[int, U32]
    pass_thru_party_id: Annotated[int, U32]
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class SoftKeySetReq(Message):
    """SoftKeySetReq (0x0025)."""

    ID: ClassVar[MessageId] = MessageId.SOFT_KEY_SET_REQ


@dataclass(frozen=True, slots=True)
class SoftKeyEvent(Message):
    """SoftKeyEvent (0x0026)."""

    ID: ClassVar[MessageId] = MessageId.SOFT_KEY_EVENT

    soft_key_event: Annotated[int, U32]
    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class Unregister(Message):
    """Unregister (0x0027)."""

    ID: ClassVar[MessageId] = MessageId.UNREGISTER


@dataclass(frozen=True, slots=True)
class SoftKeyTemplateReq(Message):
    """SoftKeyTemplateReq (0x0028)."""

    ID: ClassVar[MessageId] = MessageId.SOFT_KEY_TEMPLATE_REQ


@dataclass(frozen=True, slots=True)
class HeadsetStatus(Message):
    """HeadsetStatus (0x002B)."""

    ID: ClassVar[MessageId] = MessageId.HEADSET_STATUS

    mode: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class RegisterAvailableLines(Message):
    """RegisterAvailableLines (0x002D)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER_AVAILABLE_LINES

    max_lines: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class ServiceUrlStatReq(Message):
    """ServiceUrlStatReq (0x0033)."""

    ID: ClassVar[MessageId] = MessageId.SERVICE_URL_STAT_REQ

    service_url_index: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class FeatureStatReq(Message):
    """FeatureStatReq (0x0034)."""

    ID: ClassVar[MessageId] = MessageId.FEATURE_STAT_REQ

    feature_index: Annotated[int, U32]
