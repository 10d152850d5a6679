"""SCCP messages the call manager sends to a phone (sans-IO).

Flat little-endian bodies: each field carries its wire format, and its
variant from header version 0x11 on where that differs (see ``fields.py``);
ids and layouts as Wireshark's Skinny dissector documents them
(wireshark/wireshark, epan/dissectors/packet-skinny.c). When we build one,
optional fields default to 0 or "" so it has the full CallManager 4.x layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from offhook.sccp.base import Message, MessageId
from offhook.sccp.fields import IPV4OR6, U8, U16, U32, chars, from_v17, pad, raw


@dataclass(frozen=True, slots=True)
class RegisterAck(Message):
    """RegisterAck (0x0081)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER_ACK

    keep_alive_interval: Annotated[int, U32]
    date_template: Annotated[str, chars(6), pad(2)]
    secondary_keep_alive_interval: Annotated[int | None, U32] = 0
    protocol_version: Annotated[int | None, U8] = 0
    unknown1: Annotated[int | None, U8] = 0
    unknown2: Annotated[int | None, U8] = 0
    unknown3: Annotated[int | None, U8] = 0


@dataclass(frozen=True, slots=True)
class StartTone(Message):
    """StartTone (0x0082)."""

    ID: ClassVar[MessageId] = MessageId.START_TONE

    tone: Annotated[int, U32]
    tone_direction: Annotated[int | None, U32] = 0
    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class StopTone(Message):
    """StopTone (0x0083)."""

    ID: ClassVar[MessageId] = MessageId.STOP_TONE

    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0
    # CallManager 4.1 sends line and call reference only; Wireshark reads the
    # tone too from header version 0x11 on.
    tone: Annotated[int | None, from_v17(U32)] = 0


@dataclass(frozen=True, slots=True)
class SetRinger(Message):
    """SetRinger (0x0085)."""

    ID: ClassVar[MessageId] = MessageId.SET_RINGER

    ring_mode: Annotated[int, U32]
    ring_duration: Annotated[int | None, U32] = 0
    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class SetLamp(Message):
    """SetLamp (0x0086)."""

    ID: ClassVar[MessageId] = MessageId.SET_LAMP

    stimulus: Annotated[int, U32]
    stimulus_instance: Annotated[int, U32]
    lamp_mode: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class SetSpeakerMode(Message):
    """SetSpeakerMode (0x0088)."""

    ID: ClassVar[MessageId] = MessageId.SET_SPEAKER_MODE

    mode: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class SetMicroMode(Message):
    """SetMicroMode (0x0089)."""

    ID: ClassVar[MessageId] = MessageId.SET_MICRO_MODE

    mode: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class StartMediaTransmission(Message):
    """StartMediaTransmission (0x008A)."""

    ID: ClassVar[MessageId] = MessageId.START_MEDIA_TRANSMISSION

    conference_id: Annotated[int, U32]
    pass_thru_party_id: Annotated[int, U32]
    remote_ip: Annotated[str, IPV4OR6]
    remote_port: Annotated[int, U32]
    ms_packet_size: Annotated[int | None, U32] = 0
    payload_capability: Annotated[int | None, U32] = 0
    precedence: Annotated[int | None, U32] = 0
    silence_suppression: Annotated[int | None, U32] = 0
    max_frames_per_packet: Annotated[int | None, U16, pad(2)] = 0
    g723_bit_rate: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0
    # Key info and later extensions, zeros without SRTP: 40 bytes in header
    # version 0 (CallManager 4.1 sends exactly these), 72 from 0x11 on (the
    # layout Wireshark's dissector reads). Shorter values are zero-padded.
    media_trailer: Annotated[bytes | None, raw(40, v17=72)] = b""


@dataclass(frozen=True, slots=True)
class StopMediaTransmission(Message):
    """StopMediaTransmission (0x008B)."""

    ID: ClassVar[MessageId] = MessageId.STOP_MEDIA_TRANSMISSION

    conference_id: Annotated[int, U32]
    pass_thru_party_id: Annotated[int | None, U32] = 0
    conference_id1: Annotated[int | None, U32] = 0
    port_handling_flag: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class CallInfo(Message):
    """CallInfo (0x008F)."""

    ID: ClassVar[MessageId] = MessageId.CALL_INFO

    calling_party_name: Annotated[str, chars(40)]
    calling_party: Annotated[str, chars(24)]
    called_party_name: Annotated[str, chars(40)]
    called_party: Annotated[str, chars(24)]
    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0
    call_type: Annotated[int | None, U32] = 0
    original_called_party_name: Annotated[str | None, chars(40)] = ""
    original_called_party: Annotated[str | None, chars(24)] = ""
    last_redirecting_party_name: Annotated[str | None, chars(40)] = ""
    last_redirecting_party: Annotated[str | None, chars(24)] = ""
    original_cdpn_redirect_reason: Annotated[int | None, U32] = 0
    last_redirecting_reason: Annotated[int | None, U32] = 0
    cgpn_voice_mailbox: Annotated[str | None, chars(24)] = ""
    cdpn_voice_mailbox: Annotated[str | None, chars(24)] = ""
    original_cdpn_voice_mailbox: Annotated[str | None, chars(24)] = ""
    last_redirecting_voice_mailbox: Annotated[str | None, chars(24)] = ""
    call_instance: Annotated[int | None, U32] = 0
    call_security_status: Annotated[int | None, U32] = 0
    party_pi_restriction_bits: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class ForwardStat(Message):
    """ForwardStat (0x0090)."""

    ID: ClassVar[MessageId] = MessageId.FORWARD_STAT

    active_forward: Annotated[int, U32]
    line_number: Annotated[int, U32]
    forward_all_active: Annotated[int, U32]
    forward_all_number: Annotated[str, chars(24)]
    forward_busy_active: Annotated[int, U32]
    forward_busy_number: Annotated[str, chars(24)]
    forward_no_answer_active: Annotated[int, U32]
    forward_no_answer_number: Annotated[str, chars(24)]


@dataclass(frozen=True, slots=True)
class SpeedDialStat(Message):
    """SpeedDialStat (0x0091)."""

    ID: ClassVar[MessageId] = MessageId.SPEED_DIAL_STAT

    speed_dial_number: Annotated[int, U32]
    speed_dial_dir_number: Annotated[str, chars(24)]
    speed_dial_display_name: Annotated[str, chars(40)]


@dataclass(frozen=True, slots=True)
class LineStat(Message):
    """LineStat (0x0092)."""

    ID: ClassVar[MessageId] = MessageId.LINE_STAT

    line_number: Annotated[int, U32]
    line_dir_number: Annotated[str, chars(24)]
    line_display_name: Annotated[str | None, chars(40)] = ""
    line_text_label: Annotated[str | None, chars(40)] = ""
    # CallManager 3.3 sends no display options (cm33_reg/line_stat); from header
    # version 0x11 on they follow (Wireshark's layout).
    line_display_options: Annotated[int | None, from_v17(U32)] = 0


@dataclass(frozen=True, slots=True)
class ConfigStat(Message):
    """ConfigStat (0x0093)."""

    ID: ClassVar[MessageId] = MessageId.CONFIG_STAT

    device_name: Annotated[str, chars(16)]
    user_id: Annotated[int, U32]
    instance: Annotated[int, U32]
    user_name: Annotated[str, chars(40)]
    server_name: Annotated[str, chars(40)]
    number_lines: Annotated[int, U32]
    number_speed_dials: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class DefineTimeDate(Message):
    """DefineTimeDate (0x0094)."""

    ID: ClassVar[MessageId] = MessageId.DEFINE_TIME_DATE

    year: Annotated[int, U32]
    month: Annotated[int, U32]
    day_of_week: Annotated[int, U32]
    day: Annotated[int, U32]
    hour: Annotated[int, U32]
    minute: Annotated[int, U32]
    second: Annotated[int, U32]
    millisecond: Annotated[int, U32]
    system_time: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class VersionRes(Message):
    """VersionRes (0x0098)."""

    ID: ClassVar[MessageId] = MessageId.VERSION_RES

    version_text: Annotated[str, chars(16)]


@dataclass(frozen=True, slots=True)
class CapabilitiesReq(Message):
    """CapabilitiesReq (0x009B)."""

    ID: ClassVar[MessageId] = MessageId.CAPABILITIES_REQ


@dataclass(frozen=True, slots=True)
class RegisterReject(Message):
    """RegisterReject (0x009D)."""

    ID: ClassVar[MessageId] = MessageId.REGISTER_REJECT

    text: Annotated[str, chars(33)]


@dataclass(frozen=True, slots=True)
class Reset(Message):
    """Reset (0x009F)."""

    ID: ClassVar[MessageId] = MessageId.RESET

    reset_type: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class KeepAliveAck(Message):
    """KeepAliveAck (0x0100)."""

    ID: ClassVar[MessageId] = MessageId.KEEP_ALIVE_ACK


@dataclass(frozen=True, slots=True)
class OpenReceiveChannel(Message):
    """OpenReceiveChannel (0x0105)."""

    ID: ClassVar[MessageId] = MessageId.OPEN_RECEIVE_CHANNEL

    conference_id: Annotated[int, U32]
    pass_thru_party_id: Annotated[int, U32]
    ms_packet_size: Annotated[int, U32]
    payload_capability: Annotated[int, U32]
    echo_cancel_type: Annotated[int, U32]
    g723_bit_rate: Annotated[int, U32]
    call_reference: Annotated[int | None, U32] = 0
    # Key info and later extensions, zeros without SRTP: 40 bytes in header
    # version 0 (as CallManager 4.1 sends it), 100 from 0x11 on (Wireshark's layout).
    media_trailer: Annotated[bytes | None, raw(40, v17=100)] = b""


@dataclass(frozen=True, slots=True)
class CloseReceiveChannel(Message):
    """CloseReceiveChannel (0x0106)."""

    ID: ClassVar[MessageId] = MessageId.CLOSE_RECEIVE_CHANNEL

    conference_id: Annotated[int, U32]
    pass_thru_party_id: Annotated[int | None, U32] = 0
    conference_id1: Annotated[int | None, U32] = 0
    port_handling_flag: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class SelectSoftKeys(Message):
    """SelectSoftKeys (0x0110)."""

    ID: ClassVar[MessageId] = MessageId.SELECT_SOFT_KEYS

    line_instance: Annotated[int, U32]
    call_reference: Annotated[int, U32]
    soft_key_set_index: Annotated[int, U32]
    valid_key_mask: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class CallState(Message):
    """CallState (0x0111)."""

    ID: ClassVar[MessageId] = MessageId.CALL_STATE

    call_state: Annotated[int, U32]
    line_instance: Annotated[int, U32]
    call_reference: Annotated[int, U32]
    privacy: Annotated[int | None, U32] = 0
    precedence_level: Annotated[int | None, U32] = 0
    precedence_domain: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class DisplayPromptStatus(Message):
    """DisplayPromptStatus (0x0112)."""

    ID: ClassVar[MessageId] = MessageId.DISPLAY_PROMPT_STATUS

    timeout: Annotated[int, U32]
    text: Annotated[str, chars(32)]
    line_instance: Annotated[int, U32]
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class ClearPromptStatus(Message):
    """ClearPromptStatus (0x0113)."""

    ID: ClassVar[MessageId] = MessageId.CLEAR_PROMPT_STATUS

    line_instance: Annotated[int, U32]
    call_reference: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class DisplayNotify(Message):
    """DisplayNotify (0x0114)."""

    ID: ClassVar[MessageId] = MessageId.DISPLAY_NOTIFY

    timeout: Annotated[int, U32]
    text: Annotated[str, chars(32)]


@dataclass(frozen=True, slots=True)
class ClearNotify(Message):
    """ClearNotify (0x0115)."""

    ID: ClassVar[MessageId] = MessageId.CLEAR_NOTIFY


@dataclass(frozen=True, slots=True)
class ActivateCallPlane(Message):
    """ActivateCallPlane (0x0116)."""

    ID: ClassVar[MessageId] = MessageId.ACTIVATE_CALL_PLANE

    line_instance: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class DeactivateCallPlane(Message):
    """DeactivateCallPlane (0x0117)."""

    ID: ClassVar[MessageId] = MessageId.DEACTIVATE_CALL_PLANE


@dataclass(frozen=True, slots=True)
class UnregisterAck(Message):
    """UnregisterAck (0x0118)."""

    ID: ClassVar[MessageId] = MessageId.UNREGISTER_ACK

    status: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class BackSpaceReq(Message):
    """BackSpaceReq (0x0119)."""

    ID: ClassVar[MessageId] = MessageId.BACK_SPACE_REQ

    line_instance: Annotated[int, U32]
    call_reference: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class DialedNumber(Message):
    """DialedNumber (0x011D)."""

    ID: ClassVar[MessageId] = MessageId.DIALED_NUMBER

    called_party: Annotated[str, chars(24)]
    line_instance: Annotated[int | None, U32] = 0
    call_reference: Annotated[int | None, U32] = 0


@dataclass(frozen=True, slots=True)
class FeatureStat(Message):
    """FeatureStat (0x011F)."""

    ID: ClassVar[MessageId] = MessageId.FEATURE_STAT

    feature_index: Annotated[int, U32]
    feature_id: Annotated[int, U32]
    feature_text_label: Annotated[str, chars(40)]
    feature_status: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class DisplayPriNotify(Message):
    """DisplayPriNotify (0x0120)."""

    ID: ClassVar[MessageId] = MessageId.DISPLAY_PRI_NOTIFY

    timeout: Annotated[int, U32]
    priority: Annotated[int, U32]
    text: Annotated[str, chars(32)]


@dataclass(frozen=True, slots=True)
class ClearPriNotify(Message):
    """ClearPriNotify (0x0121)."""

    ID: ClassVar[MessageId] = MessageId.CLEAR_PRI_NOTIFY

    priority: Annotated[int, U32]


@dataclass(frozen=True, slots=True)
class ServiceUrlStat(Message):
    """ServiceUrlStat (0x012F)."""

    ID: ClassVar[MessageId] = MessageId.SERVICE_URL_STAT

    service_url_index: Annotated[int, U32]
    service_url: Annotated[str, chars(256)]
    service_display_name: Annotated[str, chars(40)]
