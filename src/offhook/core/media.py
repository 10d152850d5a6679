"""Neutral media descriptions: what call control forwards between two legs.

Call control is signalling only by default: RTP flows phone to phone and core
never inspects it. Each adapter maps its wire format (SIP SDP, SCCP
OpenReceiveChannel/StartMediaTransmission, MGCP CRCX/MDCX, H.245) to and from
these types, and core forwards them unchanged between the two legs of a call.

A stream with ``port == 0`` is a rejected (or disabled) stream (RFC 3264 §6).
``extra`` keeps attributes core does not model (rtcp, rtcp-mux, crypto,
telephone-event's fmtp, ...) as ``(name, value-or-None)`` pairs, so that a
back-to-back user agent can reproduce them on the other side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SENDRECV = "sendrecv"
SENDONLY = "sendonly"
RECVONLY = "recvonly"
INACTIVE = "inactive"
DIRECTIONS = frozenset({SENDRECV, SENDONLY, RECVONLY, INACTIVE})


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload format (RFC 4566 a=rtpmap / a=fmtp)."""

    name: str
    clock_rate: int
    payload_type: int
    channels: int = 1
    fmtp: str = ""


@dataclass(frozen=True, slots=True)
class MediaStream:
    """One media stream (an SDP m= line): where to send it and in which formats."""

    kind: str
    address: str
    port: int
    codecs: tuple[Codec, ...]
    direction: str = SENDRECV
    ptime: int | None = None
    extra: tuple[tuple[str, str | None], ...] = ()
    profile: str = "RTP/AVP"  # transport profile (RTP/AVP, RTP/SAVP, ...)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"invalid media direction {self.direction!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"invalid media port {self.port}")

    @property
    def rejected(self) -> bool:
        """RFC 3264 §6: a zero port rejects (or disables) the stream."""
        return self.port == 0

    def is_hold(self) -> bool:
        """The stream does not ask to receive media (sendonly/inactive or 0.0.0.0)."""
        # RFC 3264 §8.4: hold is sendonly (or inactive); RFC 2543 used c=0.0.0.0.
        return self.direction in (SENDONLY, INACTIVE) or self.address == "0.0.0.0"

    def with_direction(self, direction: str) -> MediaStream:
        return replace(self, direction=direction)


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """A whole offer or answer: the streams in order (order is significant, RFC 3264 §6)."""

    streams: tuple[MediaStream, ...]

    def active_streams(self) -> tuple[MediaStream, ...]:
        return tuple(s for s in self.streams if not s.rejected)

    def is_hold(self) -> bool:
        """True when every active stream is on hold (and there is at least one)."""
        active = self.active_streams()
        return bool(active) and all(s.is_hold() for s in active)

    def with_direction(self, direction: str) -> MediaDescription:
        """The same description with ``direction`` on every active stream."""
        return MediaDescription(
            tuple(s if s.rejected else s.with_direction(direction) for s in self.streams)
        )
