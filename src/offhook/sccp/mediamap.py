"""SCCP media <-> core offer/answer.

A Skinny phone does no offer/answer: the call manager picks the codec from
the phone's capabilities (CapabilitiesRes), asks the phone to open a receive
channel for it (OpenReceiveChannel -> OpenReceiveChannelAck with the phone's
RTP address) and tells it where to send (StartMediaTransmission). This module
maps between that and core's ``MediaDescription``:

- the phone's payload capabilities <-> SDP-style codecs (G.711 mu-law/A-law,
  G.722, G.729 and its annexes, G.723.1);
- ``choose_codec``: the codec to open when answering an offer (the first one
  of the offer the phone supports, RFC 3264 §6.1 offerer preference);
- ``offer`` / ``answer``: descriptions built from an open receive channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from offhook.core.media import INACTIVE, SENDRECV, Codec, MediaDescription, MediaStream

# Cisco Media_PayloadType values (CapabilitiesRes, OpenReceiveChannel).
PAYLOAD_G711_ALAW = 2
PAYLOAD_G711_ULAW = 4
PAYLOAD_G722 = 6
PAYLOAD_G723 = 9
PAYLOAD_G729 = 11
PAYLOAD_G729_A = 12
PAYLOAD_G729_B = 15
PAYLOAD_G729_AB = 16

_CODECS: dict[int, Codec] = {
    PAYLOAD_G711_ULAW: Codec("PCMU", 8000, 0),
    PAYLOAD_G711_ALAW: Codec("PCMA", 8000, 8),
    PAYLOAD_G722: Codec("G722", 8000, 9),
    PAYLOAD_G723: Codec("G723", 8000, 4),
    PAYLOAD_G729: Codec("G729", 8000, 18, fmtp="annexb=no"),
    PAYLOAD_G729_A: Codec("G729", 8000, 18, fmtp="annexb=no"),
    PAYLOAD_G729_B: Codec("G729", 8000, 18),
    PAYLOAD_G729_AB: Codec("G729", 8000, 18),
}

# Offer order when the phone makes the offer: wideband first, then G.711, then
# the compressed codecs (CallManager's intra-region preference).
_OFFER_ORDER = (
    PAYLOAD_G722,
    PAYLOAD_G711_ULAW,
    PAYLOAD_G711_ALAW,
    PAYLOAD_G729_AB,
    PAYLOAD_G729_A,
    PAYLOAD_G729_B,
    PAYLOAD_G729,
    PAYLOAD_G723,
)

DEFAULT_CAPABILITIES = (PAYLOAD_G711_ULAW, PAYLOAD_G711_ALAW)
"""What a phone that has not reported its capabilities is assumed to do."""
DEFAULT_PTIME = 20


@dataclass(frozen=True, slots=True)
class Choice:
    """A codec to open: the phone's payload capability and the SDP codec it maps to."""

    payload: int
    codec: Codec
    ptime: int = DEFAULT_PTIME


def codec_for(payload: int) -> Codec | None:
    return _CODECS.get(payload)


def _same(a: Codec, b: Codec) -> bool:
    return a.name.upper() == b.name.upper() and a.clock_rate == b.clock_rate


def preferred(capabilities: tuple[int, ...]) -> list[Choice]:
    """The phone's usable codecs in offer order; never empty.

    A phone that names no codec we know (an empty or a crafted
    CapabilitiesRes) gets G.711, which every SCCP phone has.
    """
    caps = set(capabilities) & set(_OFFER_ORDER) or set(DEFAULT_CAPABILITIES)
    return [Choice(p, _CODECS[p]) for p in _OFFER_ORDER if p in caps]


def audio_stream(media: MediaDescription | None) -> tuple[int, MediaStream] | None:
    """The first active audio stream of ``media`` and its index."""
    if media is None:
        return None
    for index, stream in enumerate(media.streams):
        if stream.kind == "audio" and not stream.rejected:
            return index, stream
    return None


def choose_codec(offer: MediaDescription, capabilities: tuple[int, ...]) -> Choice | None:
    """The first codec of the offer's audio stream that the phone supports."""
    found = audio_stream(offer)
    if found is None:
        return None
    stream = found[1]
    mine = preferred(capabilities)
    for offered in stream.codecs:
        for choice in mine:
            if _same(offered, choice.codec):
                codec = Codec(
                    offered.name,
                    offered.clock_rate,
                    offered.payload_type,
                    offered.channels,
                    choice.codec.fmtp,
                )
                return Choice(choice.payload, codec, stream.ptime or DEFAULT_PTIME)
    return None


def offer(
    choices: list[Choice], address: str, port: int, direction: str = SENDRECV
) -> MediaDescription:
    """An offer of ``choices`` (first = the open receive channel's codec) at ``address``."""
    stream = MediaStream(
        "audio",
        address,
        port,
        tuple(c.codec for c in choices),
        direction,
        ptime=choices[0].ptime if choices else DEFAULT_PTIME,
    )
    return MediaDescription((stream,))


def answer(
    to: MediaDescription, choice: Choice | None, address: str, port: int, direction: str
) -> MediaDescription:
    """The answer to ``to``: the chosen codec on its audio stream, every other stream rejected."""
    found = audio_stream(to)
    streams: list[MediaStream] = []
    for index, stream in enumerate(to.streams):
        if found is not None and index == found[0] and choice is not None:
            streams.append(
                MediaStream("audio", address, port, (choice.codec,), direction, ptime=choice.ptime)
            )
        else:
            codecs = stream.codecs[:1] or (Codec("PCMU", 8000, 0),)
            streams.append(MediaStream(stream.kind, address, 0, codecs, INACTIVE))
    return MediaDescription(tuple(streams))


def answer_direction(offered: str) -> str:
    """RFC 3264 §6.1: the direction that answers ``offered``."""
    return {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}.get(
        offered, SENDRECV
    )
