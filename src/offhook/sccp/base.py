"""SCCP message base class, id table and header-version constants (sans-IO).

The message ids are those of Wireshark's Skinny dissector (wireshark/wireshark,
epan/dissectors/packet-skinny.c, the ``message_id`` value table); the code is
our own. ``Message`` is the frozen, slotted base every message derives from:
it keeps the header version a message arrived with (``version``) and any bytes
after the fields we know (``extra``), so that a decoded frame encodes back to
the same layout. A flat message declares each field once with its wire format
(``Annotated[int, U32]``, see ``fields.py``); ``Message`` derives ``LAYOUT``,
``REQUIRED`` and ``LAYOUT_V17`` (the layout from header version 0x11 on, where
layouts differ) from those when the class is created.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, Field, dataclass, field
from enum import IntEnum
from typing import Annotated, ClassVar, get_origin, get_type_hints

from offhook.sccp.fields import FieldCodec, Layout, Wire, layout_of

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
    """Base of every SCCP message: header version and unparsed trailing bytes.

    A subclass declares each wire field once, ``button: Annotated[int, U32]``
    (see ``fields.py``); when the class is created its ``LAYOUT``,
    ``REQUIRED`` (the layout entries up to the last field without a default:
    what a body must hold) and ``LAYOUT_V17`` (None when no field differs from
    0x11 on) are derived from those, and compiled into the codecs
    ``decode_body``/``encode_body`` use. A class with no wire fields has an
    empty layout (the array messages bring their own codec).
    """

    ID: ClassVar[int]
    LAYOUT: ClassVar[Layout] = ()
    REQUIRED: ClassVar[int] = 0
    LAYOUT_V17: ClassVar[Layout | None] = None
    _FIELDS: ClassVar[tuple[tuple[str, tuple[Wire, ...], bool], ...]] = ()
    _CODECS: ClassVar[tuple[FieldCodec, FieldCodec]] = (FieldCodec((), 0), FieldCodec((), 0))

    version: int = field(default=0, kw_only=True)
    extra: bytes = field(default=b"", kw_only=True, repr=False)

    def __init_subclass__(cls) -> None:
        # Runs twice per message class: for the class body, then for the copy
        # dataclass(slots=True) builds from it (which carries the first's results).
        if "_CODECS" not in cls.__dict__:
            _describe(cls)

    @property
    def msg_id(self) -> int:
        """The wire message id."""
        return self.ID

    @classmethod
    def _layout(cls, version: int) -> tuple[Layout, int]:
        codec = cls._CODECS[version >= V17]
        return codec.layout, codec.required

    @classmethod
    def decode_body(cls, body: bytes, version: int) -> Message:
        """Decode a body (after the message id) of this message type."""
        values, extra = cls._CODECS[version >= V17].decode(body, cls.__name__)
        return cls(**values, version=version, extra=extra)

    def encode_body(self, version: int) -> bytes:
        """Encode this message's body for header ``version``."""
        return self._CODECS[version >= V17].encode(self, self.extra)


def _wires(hint: object) -> tuple[Wire, ...]:
    if get_origin(hint) is not Annotated:
        return ()
    return tuple(m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Wire))


def _has_default(cls: type[Message], name: str) -> bool:
    value = cls.__dict__.get(name, MISSING)
    if isinstance(value, Field):
        return value.default is not MISSING or value.default_factory is not MISSING
    return value is not MISSING


def _describe(cls: type[Message]) -> None:
    """Derive the layouts and codecs of ``cls`` from its annotated fields."""
    spelled = {"LAYOUT", "REQUIRED", "LAYOUT_V17"} & set(cls.__dict__)
    if spelled:
        raise TypeError(f"{cls.__name__}: {sorted(spelled)} come from the fields, not by hand")
    hints = get_type_hints(cls, include_extras=True)
    own: list[tuple[str, tuple[Wire, ...], bool]] = []
    plain: list[str] = []
    for name in inspect.get_annotations(cls):
        hint = hints[name]
        if hint is ClassVar or get_origin(hint) is ClassVar:
            continue
        wires = _wires(hint)
        if wires:
            own.append((name, wires, not _has_default(cls, name)))
        else:
            plain.append(name)
    if own and plain:
        raise TypeError(f"{cls.__name__}: fields {plain} say nothing of their wire format")
    fields = cls._FIELDS + tuple(own)
    layout, required = layout_of(fields, v17=False)
    layout_v17, required_v17 = layout_of(fields, v17=True)
    cls._FIELDS = fields
    cls.LAYOUT = layout
    cls.REQUIRED = required
    cls.LAYOUT_V17 = layout_v17 if layout_v17 != layout else None
    cls._CODECS = (FieldCodec(layout, required), FieldCodec(layout_v17, required_v17))


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
