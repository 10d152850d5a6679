"""Table-driven little-endian field codec for SCCP message bodies (sans-IO).

A message layout is a tuple of ``(name, kind)`` pairs. Kinds: ``"I"`` u32,
``"H"`` u16, ``"B"`` u8, ``"ip"`` an IPv4 address (4 bytes, network order, a
dotted string in Python), ``"sN"`` a NUL-padded string of N bytes (latin-1),
``"pN"`` N bytes of padding (skipped when read, zeros when written), ``"bN"``
N raw bytes (trailing zeros dropped when read, zero-padded when written).
Fields after ``required`` may be missing on the wire (older firmware sends
shorter bodies): they decode to None and encoding stops at the first None, so
a short body round-trips. Bytes after the last known field are kept as
``extra`` and written back unchanged.
"""

from __future__ import annotations

import struct
from typing import Any

from offhook.common import ParseError

Layout = tuple[tuple[str, str], ...]

_INTS = {"I": struct.Struct("<I"), "H": struct.Struct("<H"), "B": struct.Struct("<B")}


def kind_size(kind: str) -> int:
    """Wire size in bytes of one field kind."""
    if kind in _INTS:
        return _INTS[kind].size
    if kind == "ip":
        return 4
    if kind[0] in "spb":
        return int(kind[1:])
    raise ValueError(f"unknown field kind {kind!r}")


def decode_fields(
    layout: Layout, required: int, body: bytes, name: str
) -> tuple[dict[str, Any], bytes]:
    """Decode ``body`` by ``layout``; return the field values and trailing bytes."""
    values: dict[str, Any] = {}
    pos = 0
    for index, (field, kind) in enumerate(layout):
        size = kind_size(kind)
        if pos + size > len(body):
            if index < required:
                raise ParseError(f"{name}: body truncated at {field}", None)
            for rest, rest_kind in layout[index:]:
                if rest_kind[0] != "p":
                    values[rest] = None
            break
        if kind[0] == "p":
            pass
        elif kind in _INTS:
            values[field] = _INTS[kind].unpack_from(body, pos)[0]
        elif kind == "ip":
            values[field] = ".".join(str(b) for b in body[pos : pos + 4])
        elif kind[0] == "b":
            values[field] = bytes(body[pos : pos + size]).rstrip(b"\0")
        else:
            raw = body[pos : pos + size]
            values[field] = raw.split(b"\0", 1)[0].decode("latin-1")
        pos += size
    return values, body[pos:]


def encode_ip(value: str) -> bytes:
    """Dotted IPv4 string -> 4 bytes (network order)."""
    parts = value.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {value!r}")
    return bytes(int(p) for p in parts)


def encode_fields(layout: Layout, values: dict[str, Any], extra: bytes) -> bytes:
    """Encode field values by ``layout``; stops at the first None (a short body)."""
    out = bytearray()
    for field, kind in layout:
        if kind[0] == "p":
            out += bytes(kind_size(kind))
            continue
        value = values[field]
        if value is None:
            break
        if kind in _INTS:
            out += _INTS[kind].pack(value)
        elif kind == "ip":
            out += encode_ip(value)
        elif kind[0] == "b":
            out += bytes(value)[: kind_size(kind)].ljust(kind_size(kind), b"\0")
        else:
            size = kind_size(kind)
            raw = str(value).encode("latin-1", "replace")[:size]
            out += raw.ljust(size, b"\0")
    out += extra
    return bytes(out)
