"""SCCP messages with arrays: capabilities, button/softkey templates, softkey sets, servers.

Each has its own codec. A count from the peer is checked against a fixed
maximum and against the bytes present before anything is built from it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from offhook.common import ParseError
from offhook.sccp.base import Message, MessageId


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
