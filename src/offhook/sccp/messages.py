"""SCCP (Skinny) message ids and typed messages (sans-IO).

The message ids and body layouts are those Wireshark's Skinny dissector
documents (wireshark/wireshark, epan/dissectors/packet-skinny.c, the
``message_id`` value table and one dissector per message); the code here is
our own. Each message is a frozen, slotted dataclass. Most bodies are a flat
run of little-endian fields, described by a ``LAYOUT`` (see ``fields.py``);
fields after ``REQUIRED`` are optional because older firmware and older call
managers send shorter bodies. A few messages with arrays (capabilities,
button and softkey templates, softkey sets, server list) have their own
codec. Messages whose layout changes with the protocol (header) version carry
a ``LAYOUT_V17`` used for header versions >= 0x11 (IPv4/IPv6 address unions).

Every message keeps the header version it arrived with (``version``) and any
bytes after the fields we know (``extra``), so that a decoded frame encodes
back to the same layout. Optional fields a peer left out decode to None (and
are left out again when encoding); built by us they default to 0 or "", so a
message we construct has the full layout CallManager 4.x sends (only fields
that later versions added default to None).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any, ClassVar

from offhook.common import ParseError
from offhook.sccp.fields import Layout, decode_fields, encode_fields

# Header version from which address fields are a 4-byte type + 16-byte union
# (packet-skinny.c: "ipv4or6" fields for protocol version >= 17).
V17 = 0x11


class MessageId(IntEnum):
    """SCCP message ids (packet-skinny.c ``message_id`` table)."""

    KEEP_ALIVE = 0x0000
    REGISTER = 0x0001
    IP_PORT = 0x0002
    KEYPAD_BUTTON = 0x0003
    ENBLOC_CALL = 0x0004
    STIMULUS = 0x0005
    OFF_HOOK = 0x0006
    ON_HOOK = 0x0007
    HOOK_FLASH = 0x0008
    FORWARD_STAT_REQ = 0x0009
    SPEED_DIAL_STAT_REQ = 0x000A
    LINE_STAT_REQ = 0x000B
    CONFIG_STAT_REQ = 0x000C
    TIME_DATE_REQ = 0x000D
    BUTTON_TEMPLATE_REQ = 0x000E
    VERSION_REQ = 0x000F
    SERVER_REQ = 0x0012
    ALARM = 0x0020
    OPEN_RECEIVE_CHANNEL_ACK = 0x0022
    SOFT_KEY_SET_REQ = 0x0025
    SOFT_KEY_EVENT = 0x0026
    UNREGISTER = 0x0027
    SOFT_KEY_TEMPLATE_REQ = 0x0028
    HEADSET_STATUS = 0x002B
    REGISTER_AVAILABLE_LINES = 0x002D
    SERVICE_URL_STAT_REQ = 0x0033
    FEATURE_STAT_REQ = 0x0034
    REGISTER_ACK = 0x0081
    START_TONE = 0x0082
    STOP_TONE = 0x0083
    SET_RINGER = 0x0085
    SET_LAMP = 0x0086
    SET_SPEAKER_MODE = 0x0088
    SET_MICRO_MODE = 0x0089
    START_MEDIA_TRANSMISSION = 0x008A
    STOP_MEDIA_TRANSMISSION = 0x008B
    CALL_INFO = 0x008F
    FORWARD_STAT = 0x0090
    SPEED_DIAL_STAT = 0x0091
    LINE_STAT = 0x0092
    CONFIG_STAT = 0x0093
    DEFINE_TIME_DATE = 0x0094
    VERSION_RES = 0x0098
    CAPABILITIES_REQ = 0x009B
    REGISTER_REJECT = 0x009D
    RESET = 0x009F
    KEEP_ALIVE_ACK = 0x0100
    OPEN_RECEIVE_CHANNEL = 0x0105
    CLOSE_RECEIVE_CHANNEL = 0x0106
    SELECT_SOFT_KEYS = 0x0110
    CALL_STATE = 0x0111
    DISPLAY_PROMPT_STATUS = 0x0112
    CLEAR_PROMPT_STATUS = 0x0113
    DISPLAY_NOTIFY = 0x0114
    CLEAR_NOTIFY = 0x0115
    ACTIVATE_CALL_PLANE = 0x0116
    DEACTIVATE_CALL_PLANE = 0x0117
    UNREGISTER_ACK = 0x0118
    BACK_SPACE_REQ = 0x0119
    DIALED_NUMBER = 0x011D
    FEATURE_STAT = 0x011F
    DISPLAY_PRI_NOTIFY = 0x0120
    CLEAR_PRI_NOTIFY = 0x0121
    SERVICE_URL_STAT = 0x012F
    # Known ids without a typed message here yet (they decode to Unknown).
    MULTICAST_MEDIA_RECEPTION_ACK = 0x0021
    CONNECTION_STATISTICS_RES = 0x0023
    OFF_HOOK_WITH_CGPN = 0x0024
    MEDIA_TRANSMISSION_FAILURE = 0x002A
    UPDATE_CAPABILITIES = 0x0030
    SET_HKF_DETECT = 0x0087
    START_MEDIA_RECEPTION = 0x008C
    STOP_MEDIA_RECEPTION = 0x008D
    DISPLAY_TEXT = 0x0099
    CLEAR_DISPLAY = 0x009A
    START_SESSION_TRANSMISSION = 0x0095
    STOP_SESSION_TRANSMISSION = 0x0096
    BUTTON_TEMPLATE = 0x0097
    SERVER_RES = 0x009E
    CONNECTION_STATISTICS_REQ = 0x0107
    SOFT_KEY_TEMPLATE_RES = 0x0108
    SOFT_KEY_SET_RES = 0x0109
    CAPABILITIES_RES = 0x0010
    START_MULTICAST_MEDIA_RECEPTION = 0x0101
    START_MULTICAST_MEDIA_TRANSMISSION = 0x0102
    STOP_MULTICAST_MEDIA_RECEPTION = 0x0103
    STOP_MULTICAST_MEDIA_TRANSMISSION = 0x0104
    REGISTER_TOKEN_REQ = 0x0029
    REGISTER_TOKEN_ACK = 0x011A
    REGISTER_TOKEN_REJECT = 0x011B


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every SCCP message: header version and unparsed trailing bytes."""

    ID: ClassVar[int]
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0
    LAYOUT_V17: ClassVar[Layout | None] = None

    version: int = field(default=0, kw_only=True)
    extra: bytes = field(default=b"", kw_only=True, repr=False)

    @property
    def msg_id(self) -> int:
        """The wire message id."""
        return self.ID

    @classmethod
    def _layout(cls, version: int) -> tuple[Layout, int]:
        if version >= V17 and cls.LAYOUT_V17 is not None:
            names = {name for name, _ in cls.LAYOUT[: cls.REQUIRED]}
            last = max(
                (i for i, (name, _) in enumerate(cls.LAYOUT_V17) if name in names), default=-1
            )
            return cls.LAYOUT_V17, last + 1
        return cls.LAYOUT, cls.REQUIRED

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """Decode a body (after the message id) of this message type."""
        layout, required = cls._layout(version)
        values, extra = decode_fields(layout, required, body, cls.__name__)
        return cls(**values, version=version, extra=extra)

    def encode_body(self, version: int) -> bytes:
        """Encode this message's body for header ``version``."""
        layout, _ = self._layout(version)
        values: dict[str, Any] = {
            name: getattr(self, name) for name, kind in layout if kind[0] != "p"
        }
        return encode_fields(layout, values, self.extra)


@dataclass(frozen=True, slots=True)
class Unknown(Message):
    """A message id we have no type for; its body is kept as it came."""

    ID: ClassVar[int] = -1

    unknown_id: int = 0
    body: bytes = b""

    @property
    def msg_id(self) -> int:
        """The wire message id."""
        return self.unknown_id

    def encode_body(self, version: int) -> bytes:
        """The body as received."""
        return self.body


def _check_count(name: str, count: int, limit: int, have: int, each: int) -> None:
    # Never trust a peer's count: bounded by a fixed maximum and by the bytes present.
    if count > limit or count * each > have:
        raise ParseError(f"{name}: count {count} out of range", None)


@dataclass(frozen=True, slots=True)
class Capability:
    """One media capability of CapabilitiesRes (payload type, frames per packet)."""

    payload_capability: int
    max_frames_per_packet: int
    options: bytes = bytes(8)


@dataclass(frozen=True, slots=True)
class CapabilitiesRes(Message):
    """CapabilitiesRes (0x0010): the phone's codecs."""

    ID: ClassVar[int] = MessageId.CAPABILITIES_RES
    MAX: ClassVar[int] = 32

    capabilities: tuple[Capability, ...] = ()

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """count, then count x (payload u32, max frames u32, 8 option bytes)."""
        if len(body) < 4:
            raise ParseError("CapabilitiesRes: body truncated", None)
        (count,) = struct.unpack_from("<I", body)
        _check_count("CapabilitiesRes", count, cls.MAX, len(body) - 4, 16)
        caps = []
        for i in range(count):
            pos = 4 + 16 * i
            payload, frames = struct.unpack_from("<II", body, pos)
            caps.append(Capability(payload, frames, body[pos + 8 : pos + 16]))
        return cls(tuple(caps), version=version, extra=body[4 + 16 * count :])

    def encode_body(self, version: int) -> bytes:
        """Encode the capability list."""
        out = bytearray(struct.pack("<I", len(self.capabilities)))
        for cap in self.capabilities:
            out += struct.pack("<II", cap.payload_capability, cap.max_frames_per_packet)
            out += cap.options[:8].ljust(8, b"\0")
        return bytes(out) + self.extra


@dataclass(frozen=True, slots=True)
class ButtonTemplate(Message):
    """ButtonTemplate (0x0097): (instance, definition) per button, 42 slots on the wire."""

    ID: ClassVar[int] = MessageId.BUTTON_TEMPLATE
    SLOTS: ClassVar[int] = 42

    button_offset: int = 0
    total_button_count: int = 0
    buttons: tuple[tuple[int, int], ...] = ()

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """offset, count, total, then 42 x (instance u8, definition u8)."""
        if len(body) < 12:
            raise ParseError("ButtonTemplate: body truncated", None)
        offset, count, total = struct.unpack_from("<III", body)
        _check_count("ButtonTemplate", count, cls.SLOTS, len(body) - 12, 2)
        buttons = tuple((body[12 + 2 * i], body[13 + 2 * i]) for i in range(count))
        end = min(len(body), 12 + 2 * cls.SLOTS)
        return cls(offset, total, buttons, version=version, extra=body[end:])

    def encode_body(self, version: int) -> bytes:
        """Unused slots are (0, 0xFF) (undefined), as CallManager sends them."""
        out = bytearray(
            struct.pack("<III", self.button_offset, len(self.buttons), self.total_button_count)
        )
        for instance, definition in self.buttons[: self.SLOTS]:
            out += bytes((instance, definition))
        out += b"\x00\xff" * (self.SLOTS - min(len(self.buttons), self.SLOTS))
        return bytes(out) + self.extra


@dataclass(frozen=True, slots=True)
class SoftKeyTemplateRes(Message):
    """SoftKeyTemplateRes (0x0108): (label, event) per softkey, 32 slots on the wire."""

    ID: ClassVar[int] = MessageId.SOFT_KEY_TEMPLATE_RES
    SLOTS: ClassVar[int] = 32

    soft_key_offset: int = 0
    total_soft_key_count: int = 0
    soft_keys: tuple[tuple[str, int], ...] = ()

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """offset, count, total, then 32 x (label[16], event u32)."""
        if len(body) < 12:
            raise ParseError("SoftKeyTemplateRes: body truncated", None)
        offset, count, total = struct.unpack_from("<III", body)
        _check_count("SoftKeyTemplateRes", count, cls.SLOTS, len(body) - 12, 20)
        keys = []
        for i in range(count):
            pos = 12 + 20 * i
            label = body[pos : pos + 16].split(b"\0", 1)[0].decode("latin-1")
            keys.append((label, struct.unpack_from("<I", body, pos + 16)[0]))
        end = min(len(body), 12 + 20 * cls.SLOTS)
        return cls(offset, total, tuple(keys), version=version, extra=body[end:])

    def encode_body(self, version: int) -> bytes:
        """Unused slots are zeros."""
        keys = self.soft_keys[: self.SLOTS]
        out = bytearray(
            struct.pack("<III", self.soft_key_offset, len(keys), self.total_soft_key_count)
        )
        for label, event in keys:
            out += label.encode("latin-1", "replace")[:16].ljust(16, b"\0")
            out += struct.pack("<I", event)
        out += bytes(20 * (self.SLOTS - len(keys)))
        return bytes(out) + self.extra


@dataclass(frozen=True, slots=True)
class SoftKeySet:
    """One softkey set: 16 template indexes (u8) and 16 info indexes (u16)."""

    template_index: tuple[int, ...]
    info_index: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SoftKeySetRes(Message):
    """SoftKeySetRes (0x0109): the softkey sets per call state, 16 slots on the wire."""

    ID: ClassVar[int] = MessageId.SOFT_KEY_SET_RES
    SLOTS: ClassVar[int] = 16

    soft_key_set_offset: int = 0
    total_soft_key_set_count: int = 0
    sets: tuple[SoftKeySet, ...] = ()

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """offset, count, total, then 16 x (16 x u8 template index, 16 x u16 info index)."""
        if len(body) < 12:
            raise ParseError("SoftKeySetRes: body truncated", None)
        offset, count, total = struct.unpack_from("<III", body)
        _check_count("SoftKeySetRes", count, cls.SLOTS, len(body) - 12, 48)
        sets = []
        for i in range(count):
            pos = 12 + 48 * i
            sets.append(
                SoftKeySet(tuple(body[pos : pos + 16]), struct.unpack_from("<16H", body, pos + 16))
            )
        end = min(len(body), 12 + 48 * cls.SLOTS)
        return cls(offset, total, tuple(sets), version=version, extra=body[end:])

    def encode_body(self, version: int) -> bytes:
        """Unused slots are zeros."""
        sets = self.sets[: self.SLOTS]
        out = bytearray(
            struct.pack("<III", self.soft_key_set_offset, len(sets), self.total_soft_key_set_count)
        )
        for s in sets:
            out += bytes(list(s.template_index[:16]) + [0] * (16 - len(s.template_index[:16])))
            info = list(s.info_index[:16]) + [0] * (16 - len(s.info_index[:16]))
            out += struct.pack("<16H", *info)
        out += bytes(48 * (self.SLOTS - len(sets)))
        return bytes(out) + self.extra


@dataclass(frozen=True, slots=True)
class ServerRes(Message):
    """ServerRes (0x009E): up to 5 call manager names, ports and addresses."""

    ID: ClassVar[int] = MessageId.SERVER_RES
    SLOTS: ClassVar[int] = 5

    servers: tuple[tuple[str, int, str], ...] = ()

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """5 x name[48], then 5 x port u32, then 5 x IPv4 address."""
        if len(body) < 5 * 56:
            raise ParseError("ServerRes: body truncated", None)
        servers = []
        for i in range(cls.SLOTS):
            name = body[48 * i : 48 * i + 48].split(b"\0", 1)[0].decode("latin-1")
            (port,) = struct.unpack_from("<I", body, 240 + 4 * i)
            ip = ".".join(str(b) for b in body[260 + 4 * i : 264 + 4 * i])
            if name or port or ip != "0.0.0.0":
                servers.append((name, port, ip))
        return cls(tuple(servers), version=version, extra=body[280:])

    def encode_body(self, version: int) -> bytes:
        """Unused slots are zeros."""
        rows = list(self.servers[: self.SLOTS])
        rows += [("", 0, "0.0.0.0")] * (self.SLOTS - len(rows))
        names = b"".join(n.encode("latin-1", "replace")[:48].ljust(48, b"\0") for n, _, _ in rows)
        ports = b"".join(struct.pack("<I", p) for _, p, _ in rows)
        ips = b"".join(bytes(int(x) for x in ip.split(".")) for _, _, ip in rows)
        return names + ports + ips + self.extra


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


@dataclass(frozen=True, slots=True)
class RegisterAck(Message):
    """RegisterAck (0x0081)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER_ACK
    LAYOUT: ClassVar[Layout] = (
        ("keep_alive_interval", "I"),
        ("date_template", "s6"),
        ("_", "p2"),
        ("secondary_keep_alive_interval", "I"),
        ("protocol_version", "B"),
        ("unknown1", "B"),
        ("unknown2", "B"),
        ("unknown3", "B"),
    )
    REQUIRED: ClassVar[int] = 2

    keep_alive_interval: int
    date_template: str
    secondary_keep_alive_interval: int | None = 0
    protocol_version: int | None = 0
    unknown1: int | None = 0
    unknown2: int | None = 0
    unknown3: int | None = 0


@dataclass(frozen=True, slots=True)
class StartTone(Message):
    """StartTone (0x0082)."""

    ID: ClassVar[MessageId] = MessageId.START_TONE
    LAYOUT: ClassVar[Layout] = (
        ("tone", "I"),
        ("tone_direction", "I"),
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    tone: int
    tone_direction: int | None = 0
    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class StopTone(Message):
    """StopTone (0x0083)."""

    ID: ClassVar[MessageId] = MessageId.STOP_TONE
    # CallManager 4.1 sends line and call reference only; Wireshark reads the
    # tone too from header version 0x11 on.
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 0
    LAYOUT_V17: ClassVar[Layout | None] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
        ("tone", "I"),
    )

    line_instance: int | None = 0
    call_reference: int | None = 0
    tone: int | None = 0


@dataclass(frozen=True, slots=True)
class SetRinger(Message):
    """SetRinger (0x0085)."""

    ID: ClassVar[MessageId] = MessageId.SET_RINGER
    LAYOUT: ClassVar[Layout] = (
        ("ring_mode", "I"),
        ("ring_duration", "I"),
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    ring_mode: int
    ring_duration: int | None = 0
    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class SetLamp(Message):
    """SetLamp (0x0086)."""

    ID: ClassVar[MessageId] = MessageId.SET_LAMP
    LAYOUT: ClassVar[Layout] = (
        ("stimulus", "I"),
        ("stimulus_instance", "I"),
        ("lamp_mode", "I"),
    )
    REQUIRED: ClassVar[int] = 3

    stimulus: int
    stimulus_instance: int
    lamp_mode: int


@dataclass(frozen=True, slots=True)
class SetSpeakerMode(Message):
    """SetSpeakerMode (0x0088)."""

    ID: ClassVar[MessageId] = MessageId.SET_SPEAKER_MODE
    LAYOUT: ClassVar[Layout] = (("mode", "I"),)
    REQUIRED: ClassVar[int] = 1

    mode: int


@dataclass(frozen=True, slots=True)
class SetMicroMode(Message):
    """SetMicroMode (0x0089)."""

    ID: ClassVar[MessageId] = MessageId.SET_MICRO_MODE
    LAYOUT: ClassVar[Layout] = (("mode", "I"),)
    REQUIRED: ClassVar[int] = 1

    mode: int


@dataclass(frozen=True, slots=True)
class StartMediaTransmission(Message):
    """StartMediaTransmission (0x008A)."""

    ID: ClassVar[MessageId] = MessageId.START_MEDIA_TRANSMISSION
    LAYOUT: ClassVar[Layout] = (
        ("conference_id", "I"),
        ("pass_thru_party_id", "I"),
        ("remote_ip", "ip"),
        ("remote_port", "I"),
        ("ms_packet_size", "I"),
        ("payload_capability", "I"),
        ("precedence", "I"),
        ("silence_suppression", "I"),
        ("max_frames_per_packet", "H"),
        ("_", "p2"),
        ("g723_bit_rate", "I"),
        ("call_reference", "I"),
        ("media_trailer", "b40"),
    )
    REQUIRED: ClassVar[int] = 4
    LAYOUT_V17: ClassVar[Layout | None] = (
        ("conference_id", "I"),
        ("pass_thru_party_id", "I"),
        ("_", "p4"),
        ("remote_ip", "ip"),
        ("_", "p12"),
        ("remote_port", "I"),
        ("ms_packet_size", "I"),
        ("payload_capability", "I"),
        ("precedence", "I"),
        ("silence_suppression", "I"),
        ("max_frames_per_packet", "H"),
        ("_", "p2"),
        ("g723_bit_rate", "I"),
        ("call_reference", "I"),
        ("media_trailer", "b72"),
    )

    conference_id: int
    pass_thru_party_id: int
    remote_ip: str
    remote_port: int
    ms_packet_size: int | None = 0
    payload_capability: int | None = 0
    precedence: int | None = 0
    silence_suppression: int | None = 0
    max_frames_per_packet: int | None = 0
    g723_bit_rate: int | None = 0
    call_reference: int | None = 0
    # Key info and later extensions, zeros without SRTP: 40 bytes in header
    # version 0 (CallManager 4.1 sends exactly these), 72 from 0x11 on (the
    # layout Wireshark's dissector reads). Shorter values are zero-padded.
    media_trailer: bytes | None = b""


@dataclass(frozen=True, slots=True)
class StopMediaTransmission(Message):
    """StopMediaTransmission (0x008B)."""

    ID: ClassVar[MessageId] = MessageId.STOP_MEDIA_TRANSMISSION
    LAYOUT: ClassVar[Layout] = (
        ("conference_id", "I"),
        ("pass_thru_party_id", "I"),
        ("conference_id1", "I"),
        ("port_handling_flag", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    conference_id: int
    pass_thru_party_id: int | None = 0
    conference_id1: int | None = 0
    port_handling_flag: int | None = 0


@dataclass(frozen=True, slots=True)
class CallInfo(Message):
    """CallInfo (0x008F)."""

    ID: ClassVar[MessageId] = MessageId.CALL_INFO
    LAYOUT: ClassVar[Layout] = (
        ("calling_party_name", "s40"),
        ("calling_party", "s24"),
        ("called_party_name", "s40"),
        ("called_party", "s24"),
        ("line_instance", "I"),
        ("call_reference", "I"),
        ("call_type", "I"),
        ("original_called_party_name", "s40"),
        ("original_called_party", "s24"),
        ("last_redirecting_party_name", "s40"),
        ("last_redirecting_party", "s24"),
        ("original_cdpn_redirect_reason", "I"),
        ("last_redirecting_reason", "I"),
        ("cgpn_voice_mailbox", "s24"),
        ("cdpn_voice_mailbox", "s24"),
        ("original_cdpn_voice_mailbox", "s24"),
        ("last_redirecting_voice_mailbox", "s24"),
        ("call_instance", "I"),
        ("call_security_status", "I"),
        ("party_pi_restriction_bits", "I"),
    )
    REQUIRED: ClassVar[int] = 4

    calling_party_name: str
    calling_party: str
    called_party_name: str
    called_party: str
    line_instance: int | None = 0
    call_reference: int | None = 0
    call_type: int | None = 0
    original_called_party_name: str | None = ""
    original_called_party: str | None = ""
    last_redirecting_party_name: str | None = ""
    last_redirecting_party: str | None = ""
    original_cdpn_redirect_reason: int | None = 0
    last_redirecting_reason: int | None = 0
    cgpn_voice_mailbox: str | None = ""
    cdpn_voice_mailbox: str | None = ""
    original_cdpn_voice_mailbox: str | None = ""
    last_redirecting_voice_mailbox: str | None = ""
    call_instance: int | None = 0
    call_security_status: int | None = 0
    party_pi_restriction_bits: int | None = 0


@dataclass(frozen=True, slots=True)
class ForwardStat(Message):
    """ForwardStat (0x0090)."""

    ID: ClassVar[MessageId] = MessageId.FORWARD_STAT
    LAYOUT: ClassVar[Layout] = (
        ("active_forward", "I"),
        ("line_number", "I"),
        ("forward_all_active", "I"),
        ("forward_all_number", "s24"),
        ("forward_busy_active", "I"),
        ("forward_busy_number", "s24"),
        ("forward_no_answer_active", "I"),
        ("forward_no_answer_number", "s24"),
    )
    REQUIRED: ClassVar[int] = 8

    active_forward: int
    line_number: int
    forward_all_active: int
    forward_all_number: str
    forward_busy_active: int
    forward_busy_number: str
    forward_no_answer_active: int
    forward_no_answer_number: str


@dataclass(frozen=True, slots=True)
class SpeedDialStat(Message):
    """SpeedDialStat (0x0091)."""

    ID: ClassVar[MessageId] = MessageId.SPEED_DIAL_STAT
    LAYOUT: ClassVar[Layout] = (
        ("speed_dial_number", "I"),
        ("speed_dial_dir_number", "s24"),
        ("speed_dial_display_name", "s40"),
    )
    REQUIRED: ClassVar[int] = 3

    speed_dial_number: int
    speed_dial_dir_number: str
    speed_dial_display_name: str


@dataclass(frozen=True, slots=True)
class LineStat(Message):
    """LineStat (0x0092)."""

    ID: ClassVar[MessageId] = MessageId.LINE_STAT
    # CallManager 3.3 sends no display options (cm33_reg/line_stat); from header
    # version 0x11 on they follow (Wireshark's layout).
    LAYOUT: ClassVar[Layout] = (
        ("line_number", "I"),
        ("line_dir_number", "s24"),
        ("line_display_name", "s40"),
        ("line_text_label", "s40"),
    )
    REQUIRED: ClassVar[int] = 2
    LAYOUT_V17: ClassVar[Layout | None] = (
        ("line_number", "I"),
        ("line_dir_number", "s24"),
        ("line_display_name", "s40"),
        ("line_text_label", "s40"),
        ("line_display_options", "I"),
    )

    line_number: int
    line_dir_number: str
    line_display_name: str | None = ""
    line_text_label: str | None = ""
    line_display_options: int | None = 0


@dataclass(frozen=True, slots=True)
class ConfigStat(Message):
    """ConfigStat (0x0093)."""

    ID: ClassVar[MessageId] = MessageId.CONFIG_STAT
    LAYOUT: ClassVar[Layout] = (
        ("device_name", "s16"),
        ("user_id", "I"),
        ("instance", "I"),
        ("user_name", "s40"),
        ("server_name", "s40"),
        ("number_lines", "I"),
        ("number_speed_dials", "I"),
    )
    REQUIRED: ClassVar[int] = 6

    device_name: str
    user_id: int
    instance: int
    user_name: str
    server_name: str
    number_lines: int
    number_speed_dials: int | None = 0


@dataclass(frozen=True, slots=True)
class DefineTimeDate(Message):
    """DefineTimeDate (0x0094)."""

    ID: ClassVar[MessageId] = MessageId.DEFINE_TIME_DATE
    LAYOUT: ClassVar[Layout] = (
        ("year", "I"),
        ("month", "I"),
        ("day_of_week", "I"),
        ("day", "I"),
        ("hour", "I"),
        ("minute", "I"),
        ("second", "I"),
        ("millisecond", "I"),
        ("system_time", "I"),
    )
    REQUIRED: ClassVar[int] = 8

    year: int
    month: int
    day_of_week: int
    day: int
    hour: int
    minute: int
    second: int
    millisecond: int
    system_time: int | None = 0


@dataclass(frozen=True, slots=True)
class VersionRes(Message):
    """VersionRes (0x0098)."""

    ID: ClassVar[MessageId] = MessageId.VERSION_RES
    LAYOUT: ClassVar[Layout] = (("version_text", "s16"),)
    REQUIRED: ClassVar[int] = 1

    version_text: str


@dataclass(frozen=True, slots=True)
class CapabilitiesReq(Message):
    """CapabilitiesReq (0x009B)."""

    ID: ClassVar[MessageId] = MessageId.CAPABILITIES_REQ
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class RegisterReject(Message):
    """RegisterReject (0x009D)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER_REJECT
    LAYOUT: ClassVar[Layout] = (("text", "s33"),)
    REQUIRED: ClassVar[int] = 1

    text: str


@dataclass(frozen=True, slots=True)
class Reset(Message):
    """Reset (0x009F)."""

    ID: ClassVar[MessageId] = MessageId.RESET
    LAYOUT: ClassVar[Layout] = (("reset_type", "I"),)
    REQUIRED: ClassVar[int] = 1

    reset_type: int


@dataclass(frozen=True, slots=True)
class KeepAliveAck(Message):
    """KeepAliveAck (0x0100)."""

    ID: ClassVar[MessageId] = MessageId.KEEP_ALIVE_ACK
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class OpenReceiveChannel(Message):
    """OpenReceiveChannel (0x0105)."""

    ID: ClassVar[MessageId] = MessageId.OPEN_RECEIVE_CHANNEL
    LAYOUT: ClassVar[Layout] = (
        ("conference_id", "I"),
        ("pass_thru_party_id", "I"),
        ("ms_packet_size", "I"),
        ("payload_capability", "I"),
        ("echo_cancel_type", "I"),
        ("g723_bit_rate", "I"),
        ("call_reference", "I"),
        ("media_trailer", "b40"),
    )
    REQUIRED: ClassVar[int] = 6
    LAYOUT_V17: ClassVar[Layout | None] = (
        ("conference_id", "I"),
        ("pass_thru_party_id", "I"),
        ("ms_packet_size", "I"),
        ("payload_capability", "I"),
        ("echo_cancel_type", "I"),
        ("g723_bit_rate", "I"),
        ("call_reference", "I"),
        ("media_trailer", "b100"),
    )

    conference_id: int
    pass_thru_party_id: int
    ms_packet_size: int
    payload_capability: int
    echo_cancel_type: int
    g723_bit_rate: int
    call_reference: int | None = 0
    # Key info and later extensions, zeros without SRTP: 40 bytes in header
    # version 0 (as CallManager 4.1 sends it), 100 from 0x11 on (Wireshark's layout).
    media_trailer: bytes | None = b""


@dataclass(frozen=True, slots=True)
class CloseReceiveChannel(Message):
    """CloseReceiveChannel (0x0106)."""

    ID: ClassVar[MessageId] = MessageId.CLOSE_RECEIVE_CHANNEL
    LAYOUT: ClassVar[Layout] = (
        ("conference_id", "I"),
        ("pass_thru_party_id", "I"),
        ("conference_id1", "I"),
        ("port_handling_flag", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    conference_id: int
    pass_thru_party_id: int | None = 0
    conference_id1: int | None = 0
    port_handling_flag: int | None = 0


@dataclass(frozen=True, slots=True)
class SelectSoftKeys(Message):
    """SelectSoftKeys (0x0110)."""

    ID: ClassVar[MessageId] = MessageId.SELECT_SOFT_KEYS
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
        ("soft_key_set_index", "I"),
        ("valid_key_mask", "I"),
    )
    REQUIRED: ClassVar[int] = 3

    line_instance: int
    call_reference: int
    soft_key_set_index: int
    valid_key_mask: int | None = 0


@dataclass(frozen=True, slots=True)
class CallState(Message):
    """CallState (0x0111)."""

    ID: ClassVar[MessageId] = MessageId.CALL_STATE
    LAYOUT: ClassVar[Layout] = (
        ("call_state", "I"),
        ("line_instance", "I"),
        ("call_reference", "I"),
        ("privacy", "I"),
        ("precedence_level", "I"),
        ("precedence_domain", "I"),
    )
    REQUIRED: ClassVar[int] = 3

    call_state: int
    line_instance: int
    call_reference: int
    privacy: int | None = 0
    precedence_level: int | None = 0
    precedence_domain: int | None = 0


@dataclass(frozen=True, slots=True)
class DisplayPromptStatus(Message):
    """DisplayPromptStatus (0x0112)."""

    ID: ClassVar[MessageId] = MessageId.DISPLAY_PROMPT_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("timeout", "I"),
        ("text", "s32"),
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 3

    timeout: int
    text: str
    line_instance: int
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class ClearPromptStatus(Message):
    """ClearPromptStatus (0x0113)."""

    ID: ClassVar[MessageId] = MessageId.CLEAR_PROMPT_STATUS
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 2

    line_instance: int
    call_reference: int


@dataclass(frozen=True, slots=True)
class DisplayNotify(Message):
    """DisplayNotify (0x0114)."""

    ID: ClassVar[MessageId] = MessageId.DISPLAY_NOTIFY
    LAYOUT: ClassVar[Layout] = (
        ("timeout", "I"),
        ("text", "s32"),
    )
    REQUIRED: ClassVar[int] = 2

    timeout: int
    text: str


@dataclass(frozen=True, slots=True)
class ClearNotify(Message):
    """ClearNotify (0x0115)."""

    ID: ClassVar[MessageId] = MessageId.CLEAR_NOTIFY
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class ActivateCallPlane(Message):
    """ActivateCallPlane (0x0116)."""

    ID: ClassVar[MessageId] = MessageId.ACTIVATE_CALL_PLANE
    LAYOUT: ClassVar[Layout] = (("line_instance", "I"),)
    REQUIRED: ClassVar[int] = 0

    line_instance: int | None = 0


@dataclass(frozen=True, slots=True)
class DeactivateCallPlane(Message):
    """DeactivateCallPlane (0x0117)."""

    ID: ClassVar[MessageId] = MessageId.DEACTIVATE_CALL_PLANE
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0


@dataclass(frozen=True, slots=True)
class UnregisterAck(Message):
    """UnregisterAck (0x0118)."""

    ID: ClassVar[MessageId] = MessageId.UNREGISTER_ACK
    LAYOUT: ClassVar[Layout] = (("status", "I"),)
    REQUIRED: ClassVar[int] = 1

    status: int


@dataclass(frozen=True, slots=True)
class BackSpaceReq(Message):
    """BackSpaceReq (0x0119)."""

    ID: ClassVar[MessageId] = MessageId.BACK_SPACE_REQ
    LAYOUT: ClassVar[Layout] = (
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 2

    line_instance: int
    call_reference: int


@dataclass(frozen=True, slots=True)
class DialedNumber(Message):
    """DialedNumber (0x011D)."""

    ID: ClassVar[MessageId] = MessageId.DIALED_NUMBER
    LAYOUT: ClassVar[Layout] = (
        ("called_party", "s24"),
        ("line_instance", "I"),
        ("call_reference", "I"),
    )
    REQUIRED: ClassVar[int] = 1

    called_party: str
    line_instance: int | None = 0
    call_reference: int | None = 0


@dataclass(frozen=True, slots=True)
class FeatureStat(Message):
    """FeatureStat (0x011F)."""

    ID: ClassVar[MessageId] = MessageId.FEATURE_STAT
    LAYOUT: ClassVar[Layout] = (
        ("feature_index", "I"),
        ("feature_id", "I"),
        ("feature_text_label", "s40"),
        ("feature_status", "I"),
    )
    REQUIRED: ClassVar[int] = 4

    feature_index: int
    feature_id: int
    feature_text_label: str
    feature_status: int


@dataclass(frozen=True, slots=True)
class DisplayPriNotify(Message):
    """DisplayPriNotify (0x0120)."""

    ID: ClassVar[MessageId] = MessageId.DISPLAY_PRI_NOTIFY
    LAYOUT: ClassVar[Layout] = (
        ("timeout", "I"),
        ("priority", "I"),
        ("text", "s32"),
    )
    REQUIRED: ClassVar[int] = 3

    timeout: int
    priority: int
    text: str


@dataclass(frozen=True, slots=True)
class ClearPriNotify(Message):
    """ClearPriNotify (0x0121)."""

    ID: ClassVar[MessageId] = MessageId.CLEAR_PRI_NOTIFY
    LAYOUT: ClassVar[Layout] = (("priority", "I"),)
    REQUIRED: ClassVar[int] = 1

    priority: int


@dataclass(frozen=True, slots=True)
class ServiceUrlStat(Message):
    """ServiceUrlStat (0x012F)."""

    ID: ClassVar[MessageId] = MessageId.SERVICE_URL_STAT
    LAYOUT: ClassVar[Layout] = (
        ("service_url_index", "I"),
        ("service_url", "s256"),
        ("service_display_name", "s40"),
    )
    REQUIRED: ClassVar[int] = 3

    service_url_index: int
    service_url: str
    service_display_name: str


def _registry() -> dict[int, type[Message]]:
    table: dict[int, type[Message]] = {}
    for cls in list(globals().values()):
        if isinstance(cls, type) and issubclass(cls, Message) and cls not in (Message, Unknown):
            table[int(cls.ID)] = cls
    return table


MESSAGE_TYPES: Mapping[int, type[Message]] = MappingProxyType(_registry())
"""Message id -> message class (read-only by convention)."""
