"""Fields declared once: layouts derived from ``Annotated`` wire formats, compiled codecs.

The derived ``LAYOUT``/``REQUIRED``/``LAYOUT_V17`` are checked against the
tables the messages used to spell out by hand, and the compiled
``FieldCodec`` against the field-by-field ``decode_fields``/``encode_fields``
on arbitrary bodies and values.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common import ParseError
from offhook.sccp import MESSAGE_TYPES, decode, encode
from offhook.sccp.base import V17, Message
from offhook.sccp.fields import (
    IPV4,
    IPV4OR6,
    U8,
    U16,
    U32,
    FieldCodec,
    Layout,
    Wire,
    chars,
    decode_fields,
    encode_fields,
    from_v17,
    kind_size,
    pad,
    raw,
)
from offhook.sccp.messages import (
    KeypadButton,
    OpenReceiveChannel,
    OpenReceiveChannelAck,
    Register,
    RegisterAck,
    StartMediaTransmission,
    StopTone,
)

FLAT = [cls for cls in MESSAGE_TYPES.values() if cls.LAYOUT]


def test_station_layouts_as_the_wire_tables() -> None:
    assert KeypadButton.LAYOUT == (("button", "I"), ("line_instance", "I"), ("call_reference", "I"))
    assert (KeypadButton.REQUIRED, KeypadButton.LAYOUT_V17) == (1, None)
    assert Register.LAYOUT == (
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
        ("max_conferences", "I"),
        ("active_conferences", "I"),
        ("mac_address", "b12"),
        ("ipv4_scope", "I"),
        ("max_lines", "I"),
        ("ipv6", "b16"),
        ("ipv6_scope", "I"),
        ("firmware_load", "s32"),
    )
    assert Register.REQUIRED == 6


def test_ipv4or6_from_v17() -> None:
    v0 = (("status", "I"), ("ip", "ip"), ("port", "I"), ("pass_thru_party_id", "I"))
    assert (*v0, ("call_reference", "I")) == OpenReceiveChannelAck.LAYOUT
    assert OpenReceiveChannelAck.REQUIRED == 4
    assert OpenReceiveChannelAck.LAYOUT_V17 == (
        ("status", "I"),
        ("_", "p4"),
        ("ip", "ip"),
        ("_", "p12"),
        ("port", "I"),
        ("pass_thru_party_id", "I"),
        ("call_reference", "I"),
    )
    assert OpenReceiveChannelAck._layout(0) == (OpenReceiveChannelAck.LAYOUT, 4)
    assert OpenReceiveChannelAck._layout(0x16) == (OpenReceiveChannelAck.LAYOUT_V17, 6)


def test_version_dependent_layouts() -> None:
    # a field only from 0x11 on; raw bytes that grow from 0x11 on; padding after a field
    assert StopTone.LAYOUT == (("line_instance", "I"), ("call_reference", "I"))
    assert (*StopTone.LAYOUT, ("tone", "I")) == StopTone.LAYOUT_V17
    assert StartMediaTransmission.LAYOUT[8:] == (
        ("max_frames_per_packet", "H"),
        ("_", "p2"),
        ("g723_bit_rate", "I"),
        ("call_reference", "I"),
        ("media_trailer", "b40"),
    )
    assert StartMediaTransmission.LAYOUT_V17 is not None
    assert StartMediaTransmission.LAYOUT_V17[-1] == ("media_trailer", "b72")
    assert StartMediaTransmission._layout(V17)[1] == 6
    assert OpenReceiveChannel._layout(V17)[0][-1] == ("media_trailer", "b100")
    assert RegisterAck.LAYOUT[:3] == (
        ("keep_alive_interval", "I"),
        ("date_template", "s6"),
        ("_", "p2"),
    )
    assert RegisterAck.REQUIRED == 2


@pytest.mark.parametrize("cls", list(MESSAGE_TYPES.values()), ids=lambda c: c.__name__)
def test_every_message_is_a_frozen_slotted_dataclass(cls: type[Message]) -> None:
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert "__slots__" in cls.__dict__
    if not cls.LAYOUT:
        return
    # the wire fields are the positional fields, in wire order; REQUIRED counts
    # up to the last one without a default
    positional = [f for f in dataclasses.fields(cls) if not f.kw_only]
    wire = [name for name, kind in (cls.LAYOUT_V17 or cls.LAYOUT) if kind[0] != "p"]
    assert [f.name for f in positional] == wire
    required = {f.name for f in positional if f.default is dataclasses.MISSING}
    assert required == {name for name, kind in cls.LAYOUT[: cls.REQUIRED] if kind[0] != "p"}
    if cls.REQUIRED:  # the required part ends on a value, not on padding
        assert cls.LAYOUT[cls.REQUIRED - 1][1][0] != "p"


def test_wire_markers() -> None:
    assert (Wire(("B",), ("B",)), Wire(("H",), ("H",)), Wire(("ip",), ("ip",))) == (U8, U16, IPV4)
    assert chars(24) == Wire(("s24",), ("s24",))
    assert raw(40, v17=72) == Wire(("b40",), ("b72",))
    assert raw(8) == Wire(("b8",), ("b8",))
    assert pad(2) == Wire(("p2",), ("p2",))
    assert from_v17(U32) == Wire((), ("I",))
    assert Wire(("ip",), ("p4", "ip", "p12")) == IPV4OR6


@dataclasses.dataclass(frozen=True, slots=True)
class _Extended(KeypadButton):
    """A message that adds a field to another's."""

    ID: ClassVar[int] = 0x7FFF

    flags: Annotated[int | None, U16] = 0


def test_a_subclass_adds_to_the_parent_fields() -> None:
    assert (*KeypadButton.LAYOUT, ("flags", "H")) == _Extended.LAYOUT
    assert _Extended.REQUIRED == 1
    message = _Extended(5, 1, 7, 3, version=0x11)
    assert _Extended.decode_body(message.encode_body(0x11), 0x11) == message


def test_a_field_without_wire_format_is_refused() -> None:
    with pytest.raises(TypeError, match="say nothing of their wire format"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Bad(Message):
            ID: ClassVar[int] = 0x7FFE
            a: Annotated[int, U32]
            b: int = 0


def test_a_required_field_must_be_on_the_wire_in_every_version() -> None:
    with pytest.raises(TypeError, match="not on the wire in every version"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Bad(Message):
            ID: ClassVar[int] = 0x7FFE
            a: Annotated[int, from_v17(U32)]


def test_one_value_per_field() -> None:
    with pytest.raises(TypeError, match="more than one value kind"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Bad(Message):
            ID: ClassVar[int] = 0x7FFE
            a: Annotated[int, U32, U16]


def test_layout_given_twice_is_refused() -> None:
    with pytest.raises(TypeError, match=r"\['LAYOUT'\] come from the fields"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Bad(Message):
            ID: ClassVar[int] = 0x7FFE
            LAYOUT: ClassVar[Layout] = (("a", "I"),)
            a: Annotated[int, U32]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown field kind"):

        @dataclasses.dataclass(frozen=True, slots=True)
        class Bad(Message):
            ID: ClassVar[int] = 0x7FFE
            a: Annotated[int, Wire(("q",), ("q",))]


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind in ("I", "H", "B"):
        return st.integers(0, (1 << (8 * kind_size(kind))) - 1)
    if kind == "ip":
        octets = st.lists(st.integers(0, 255), min_size=4, max_size=4)
        return octets.map(lambda o: ".".join(map(str, o)))
    size = kind_size(kind)
    if kind[0] == "s":
        return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=size)
    return st.binary(max_size=size).map(lambda b: b.rstrip(b"\0"))


def _codec(cls: type[Message], version: int) -> tuple[Layout, int, FieldCodec]:
    layout, required = cls._layout(version)
    return layout, required, cls._CODECS[version >= V17]


VERSIONS = st.sampled_from([0, 0x11, 0x16])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FLAT), VERSIONS, st.data())
def test_round_trip_full_and_short(cls: type[Message], version: int, data: st.DataObject) -> None:
    layout, required, _ = _codec(cls, version)
    names = [name for name, kind in layout if kind[0] != "p"]
    needed = len([name for name, kind in layout[:required] if kind[0] != "p"])
    cut = data.draw(st.integers(needed, len(names)))
    values = {
        name: data.draw(_value(kind)) if names.index(name) < cut else None
        for name, kind in layout
        if kind[0] != "p"
    }
    message = cls(**values, version=version)
    frame = encode(message)
    assert decode(version, cls.ID, frame[12:]) == message


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FLAT), VERSIONS, st.data())
def test_compiled_decode_is_the_field_by_field_decode(
    cls: type[Message], version: int, data: st.DataObject
) -> None:
    layout, required, codec = _codec(cls, version)
    body = data.draw(st.binary(min_size=max(0, codec.size - 8), max_size=codec.size + 8))
    try:
        expected: object = decode_fields(layout, required, body, cls.__name__)
    except ParseError as exc:
        expected = exc.reason
    try:
        got: object = codec.decode(body, cls.__name__)
    except ParseError as exc:
        got = exc.reason
    assert got == expected


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FLAT), VERSIONS, st.data())
def test_compiled_encode_is_the_field_by_field_encode(
    cls: type[Message], version: int, data: st.DataObject
) -> None:
    layout, _, codec = _codec(cls, version)
    # any text (NUL, beyond latin-1), bytes longer than the field, None anywhere
    values = {
        name: data.draw(
            st.one_of(
                st.none(),
                _value(kind)
                if kind[0] not in "sb"
                else (st.text(max_size=kind_size(kind) + 4) if kind[0] == "s" else st.binary()),
            )
        )
        for name, kind in layout
        if kind[0] != "p"
    }
    extra = data.draw(st.binary(max_size=8))
    message = cls(**values, version=version, extra=extra)
    assert codec.encode(message, extra) == encode_fields(layout, values, extra)
    assert message.encode_body(version) == encode_fields(layout, values, extra)


def test_empty_layout() -> None:
    codec = FieldCodec((), 0)
    assert codec.size == 0
    assert codec.decode(b"abc", "X") == ({}, b"abc")
    assert codec.values(object()) == ()
