"""SCCP framing and the decode/encode entry points (sans-IO).

Wire format (little-endian)::

    u32 length | u32 header version | u32 message id | body

``length`` counts the message id and the body, so a frame is ``8 + length``
bytes. Header version 0 is what CallManager 3.x/4.x phones send; later
firmware sends 0x11 and above (e.g. 0x11, 0x12, 0x14, 0x16), which changes a
few layouts (the fields marked ``IPV4OR6``, ``raw(n, v17=m)`` or ``from_v17``,
see ``fields.py``; a class's ``LAYOUT_V17``). Each decoded message keeps its
version; replies are encoded with the version of the phone.

``SccpFramer`` checks the length field against its maximum *before* keeping
any bytes of the frame (Cisco's CSCee00118 was a phone-supplied length that
made CallManager allocate it): a bad length raises ParseError and the framer
stays dead, and the adapter closes that connection.
"""

from __future__ import annotations

import struct

from offhook.common import ParseError
from offhook.sccp.messages import MESSAGE_TYPES, Message, Unknown

_HEADER = struct.Struct("<III")
HEADER_SIZE = 8
"""Bytes before the message id: length and header version."""
MIN_LENGTH = 4
"""The length field counts at least the message id."""
DEFAULT_MAX_SIZE = 4096
"""Largest length field accepted by default (CallManager messages are < 3 kB)."""


def decode(version: int, msg_id: int, body: bytes) -> Message:
    """Decode one message body; unknown ids give ``Unknown``, short bodies ParseError."""
    cls = MESSAGE_TYPES.get(msg_id)
    if cls is None:
        return Unknown(msg_id, bytes(body), version=version)
    return cls.decode_body(bytes(body), version)


def encode(message: Message, version: int | None = None) -> bytes:
    """Encode a whole frame; ``version`` defaults to the message's own."""
    ver = message.version if version is None else version
    body = message.encode_body(ver)
    return _HEADER.pack(4 + len(body), ver, message.msg_id) + body


def decode_frame(frame: bytes) -> Message:
    """Decode exactly one whole frame (tests, captures)."""
    if len(frame) < 12:
        raise ParseError("SCCP frame shorter than its header", None)
    length, version, msg_id = _HEADER.unpack_from(frame)
    if length < MIN_LENGTH or len(frame) != HEADER_SIZE + length:
        raise ParseError("SCCP length field does not match the frame", None)
    return decode(version, msg_id, frame[12:])


class SccpFramer:
    """Splits a TCP byte stream into SCCP messages.

    ``feed(data)`` returns every message completed by ``data`` (frames may be
    split anywhere, several may arrive in one chunk). A length field below 4
    or above ``max_size`` raises ParseError before the frame is buffered; so
    does a truncated body; after that the framer is dead and every later
    ``feed`` raises too.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._dead: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame (never more than one frame)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes from the peer; return the messages they complete."""
        if self._dead is not None:
            raise ParseError(self._dead, None)
        out: list[Message] = []
        view = memoryview(data)
        try:
            while view:
                if len(self._buf) < HEADER_SIZE:
                    need = HEADER_SIZE - len(self._buf)
                    self._buf += view[:need]
                    view = view[need:]
                    if len(self._buf) < HEADER_SIZE:
                        break
                    (length,) = struct.unpack_from("<I", self._buf)
                    if length < MIN_LENGTH or length > self.max_size:
                        raise ParseError(f"SCCP length {length} out of range", None)
                (length,) = struct.unpack_from("<I", self._buf)
                need = HEADER_SIZE + length - len(self._buf)
                self._buf += view[:need]
                view = view[need:]
                if len(self._buf) < HEADER_SIZE + length:
                    break
                frame = bytes(self._buf)
                self._buf.clear()
                version, msg_id = struct.unpack_from("<II", frame, 4)
                out.append(decode(version, msg_id, frame[12:]))
        except ParseError as exc:
            self._dead = exc.reason
            self._buf.clear()
            raise
        return out
