"""SCCP messages the call manager sends to a phone (sans-IO).

Flat little-endian layouts (see ``fields.py``); ids and layouts as Wireshark's
Skinny dissector documents them (wireshark/wireshark,
epan/dissectors/packet-skinny.c). When we build one, optional fields default
to 0 or "" so it has the full CallManager 4.x layout; ``LAYOUT_V17`` is used
from header version 0x11 on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from offhook.sccp.base import Message, MessageId
from offhook.sccp.fields import Layout


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
