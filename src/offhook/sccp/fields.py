"""Table-driven little-endian field codec for SCCP message bodies (sans-IO).

A message field says how it sits on the wire next to its type,
``button: Annotated[int, U32]``; ``base.Message`` collects these ``Wire``
markers into a layout when the class is created. A layout is a tuple of
``(name, kind)`` pairs. Kinds: ``"I"`` u32, ``"H"`` u16, ``"B"`` u8, ``"ip"``
an IPv4 address (4 bytes, network order, a dotted string in Python), ``"sN"``
a NUL-padded string of N bytes (latin-1), ``"pN"`` N bytes of padding (named
``"_"``: skipped when read, zeros when written), ``"bN"`` N raw bytes
(trailing zeros dropped when read, zero-padded when written).

Fields after ``required`` may be missing on the wire (older firmware sends
shorter bodies): they decode to None and encoding stops at the first None, so
a short body round-trips. Bytes after the last known field are kept as
``extra`` and written back unchanged. ``FieldCodec`` is one layout compiled
once: a whole body is one ``struct`` call; short bodies and None values take
the field-by-field path (``decode_fields``/``encode_fields``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from offhook.common import ParseError

Layout = tuple[tuple[str, str], ...]

_INTS = {"I": struct.Struct("<I"), "H": struct.Struct("<H"), "B": struct.Struct("<B")}


@dataclass(frozen=True, slots=True)
class Wire:
    """Where one field sits: its kinds before header version 0x11 and from it on.

    Of each tuple, the one kind not starting with ``"p"`` holds the value (no
    such kind: the field is not on the wire in that version); ``"pN"`` kinds
    are padding around it. Several markers on one field are laid end to end,
    ``Annotated[str, chars(6), pad(2)]``.
    """

    kinds: tuple[str, ...]
    kinds_v17: tuple[str, ...]


U8 = Wire(("B",), ("B",))
U16 = Wire(("H",), ("H",))
U32 = Wire(("I",), ("I",))
IPV4 = Wire(("ip",), ("ip",))
IPV4OR6 = Wire(("ip",), ("p4", "ip", "p12"))
"""An IPv4 address; from 0x11 on a u32 address type (0, IPv4) and a 16-byte
union holding it (packet-skinny.c "ipv4or6" fields)."""


def chars(size: int) -> Wire:
    """A NUL-padded latin-1 string of ``size`` bytes."""
    return Wire((f"s{size}",), (f"s{size}",))


def raw(size: int, v17: int | None = None) -> Wire:
    """``size`` raw bytes (``v17`` bytes from header version 0x11 on, if given)."""
    return Wire((f"b{size}",), (f"b{size if v17 is None else v17}",))


def pad(size: int) -> Wire:
    """``size`` bytes of padding."""
    return Wire((f"p{size}",), (f"p{size}",))


def from_v17(wire: Wire) -> Wire:
    """``wire``, but only on the wire from header version 0x11 on."""
    return Wire((), wire.kinds_v17)


def kind_size(kind: str) -> int:
    """Wire size in bytes of one field kind."""
    if kind in _INTS:
        return _INTS[kind].size
    if kind == "ip":
        return 4
    if kind[0] in "spb":
        return int(kind[1:])
    raise ValueError(f"unknown field kind {kind!r}")


def layout_of(
    fields: tuple[tuple[str, tuple[Wire, ...], bool], ...], v17: bool
) -> tuple[Layout, int]:
    """The layout of ``(name, wires, required)`` fields in one version, and its required count.

    The required count runs to the value of the last required field (padding
    after it may be missing).
    """
    layout: list[tuple[str, str]] = []
    required = 0
    for name, wires, needed in fields:
        kinds = [kind for wire in wires for kind in (wire.kinds_v17 if v17 else wire.kinds)]
        values = [kind for kind in kinds if kind[0] != "p"]
        if len(values) > 1:
            raise TypeError(f"field {name} has more than one value kind: {kinds}")
        if needed and not values:
            raise TypeError(f"field {name} is required but not on the wire in every version")
        for kind in kinds:
            kind_size(kind)
            layout.append((name if kind[0] != "p" else "_", kind))
            if needed and kind[0] != "p":
                required = len(layout)
    return tuple(layout), required


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


def _struct_code(kind: str) -> str:
    if kind in _INTS:
        return kind
    if kind == "ip":
        return "4s"
    return kind[1:] + ("x" if kind[0] == "p" else "s")


class FieldCodec:
    """One layout compiled: the whole body in one ``struct`` call when it is all there.

    Gives the same results as ``decode_fields``/``encode_fields`` with the same
    layout; bodies shorter than the layout and values that are None go to them.
    """

    __slots__ = (
        "_convert",
        "_get",
        "_ips",
        "_raws",
        "_struct",
        "_texts",
        "layout",
        "names",
        "required",
    )

    def __init__(self, layout: Layout, required: int) -> None:
        self.layout = layout
        self.required = required
        self.names = tuple(name for name, kind in layout if kind[0] != "p")
        self._struct = struct.Struct("<" + "".join(_struct_code(kind) for _, kind in layout))
        kinds = [kind for _, kind in layout if kind[0] != "p"]
        self._texts = tuple(i for i, kind in enumerate(kinds) if kind[0] == "s")
        self._ips = tuple(i for i, kind in enumerate(kinds) if kind == "ip")
        self._raws = tuple(i for i, kind in enumerate(kinds) if kind[0] == "b")
        self._convert = bool(self._texts or self._ips or self._raws)
        self._get: Callable[[object], tuple[Any, ...]]
        if len(self.names) > 1:
            self._get = attrgetter(*self.names)
        elif self.names:
            one = attrgetter(self.names[0])
            self._get = lambda message: (one(message),)
        else:
            self._get = lambda message: ()

    @property
    def size(self) -> int:
        """Bytes of a full body (without extra)."""
        return self._struct.size

    def decode(self, body: bytes, name: str) -> tuple[dict[str, Any], bytes]:
        """Field values and trailing bytes of ``body``; ParseError if a required field is cut."""
        size = self._struct.size
        if len(body) < size:
            return decode_fields(self.layout, self.required, body, name)
        values: Any = self._struct.unpack_from(body)
        if self._convert:
            values = list(values)
            for i in self._texts:
                values[i] = values[i].split(b"\0", 1)[0].decode("latin-1")
            for i in self._ips:
                values[i] = ".".join(map(str, values[i]))
            for i in self._raws:
                values[i] = values[i].rstrip(b"\0")
        return dict(zip(self.names, values, strict=False)), body[size:]

    def values(self, message: object) -> tuple[Any, ...]:
        """The field values of ``message`` in layout order."""
        return self._get(message)

    def encode(self, message: object, extra: bytes) -> bytes:
        """The body of ``message`` followed by ``extra``."""
        values = self._get(message)
        if None in values:
            return encode_fields(self.layout, dict(zip(self.names, values, strict=True)), extra)
        if self._convert:
            out = list(values)
            for i in self._texts:
                out[i] = str(out[i]).encode("latin-1", "replace")
            for i in self._ips:
                out[i] = encode_ip(out[i])
            for i in self._raws:
                out[i] = bytes(out[i])
            return self._struct.pack(*out) + extra
        return self._struct.pack(*values) + extra
