"""RFC 3264 offer/answer helpers for a B2BUA or a media endpoint.

- ``is_hold`` / ``is_stream_held``: an offer that puts the call on hold
  (RFC 3264 §8.4: sendonly or inactive; the RFC 2543 ``c=0.0.0.0`` form too).
- ``make_offer``: a fresh offer for local codecs.
- ``make_answer``: the answer to an offer (RFC 3264 §6): one m-line per offered
  m-line in the same order, unusable streams rejected with port 0, codecs the
  intersection of offer and local capabilities in the *offer's* order and with
  the offer's payload type numbers, direction inverted (sendonly <-> recvonly)
  and limited by the local direction.
- ``bump_version`` (RFC 3264 §8: a changed description increments
  ``o=`` sess-version) and ``with_direction`` (build a hold/resume re-offer).

Pure functions over immutable ``SessionDescription`` values; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from offhook.sdp.model import (
    Attribute,
    Connection,
    Direction,
    MediaSection,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
)

# RFC 3551 §6 Table 4/5: static payload types (encoding, clock rate, channels).
STATIC_PAYLOADS: dict[str, RtpMap] = {
    "0": RtpMap("PCMU", 8000),
    "3": RtpMap("GSM", 8000),
    "4": RtpMap("G723", 8000),
    "5": RtpMap("DVI4", 8000),
    "6": RtpMap("DVI4", 16000),
    "7": RtpMap("LPC", 8000),
    "8": RtpMap("PCMA", 8000),
    "9": RtpMap("G722", 8000),
    "10": RtpMap("L16", 44100, 2),
    "11": RtpMap("L16", 44100),
    "12": RtpMap("QCELP", 8000),
    "13": RtpMap("CN", 8000),
    "14": RtpMap("MPA", 90000),
    "15": RtpMap("G728", 8000),
    "16": RtpMap("DVI4", 11025),
    "17": RtpMap("DVI4", 22050),
    "18": RtpMap("G729", 8000),
    "25": RtpMap("CelB", 90000),
    "26": RtpMap("JPEG", 90000),
    "28": RtpMap("nv", 90000),
    "31": RtpMap("H261", 90000),
    "32": RtpMap("MPV", 90000),
    "33": RtpMap("MP2T", 90000),
    "34": RtpMap("H263", 90000),
}

RTP_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"})


@dataclass(frozen=True, slots=True)
class Codec:
    """A local media capability.

    ``payload_type`` is used in offers (``None``: the RFC 3551 static number
    for static codecs, else a dynamic number from 96 up); answers always reuse
    the offer's numbers (RFC 3264 §6.1). ``fmtp`` is sent in ``a=fmtp``; when
    None an answer echoes the offer's fmtp for that format.
    """

    encoding: str
    clock_rate: int
    channels: int = 1
    kind: str = "audio"
    payload_type: int | None = None
    fmtp: str | None = None

    def matches(self, rtpmap: RtpMap) -> bool:
        return (
            self.encoding.lower() == rtpmap.encoding.lower()
            and self.clock_rate == rtpmap.clock_rate
            and self.channels == rtpmap.channels
        )

    @property
    def rtpmap_value(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.encoding}/{self.clock_rate}{suffix}"


def format_codec(media: MediaSection, fmt: str) -> RtpMap | None:
    """What a format in an m-line means: its ``a=rtpmap``, else the static table."""
    return media.rtpmap.get(fmt) or STATIC_PAYLOADS.get(fmt)


def is_stream_held(sdp: SessionDescription, media: MediaSection) -> bool:
    """True if this (active) stream is on hold: sendonly/inactive or c=0.0.0.0."""
    if media.port == 0:
        return False
    conn = sdp.media_connection(media)
    if conn is not None and conn.is_unspecified:
        return True  # RFC 3264 §8.4: the RFC 2543 way, still sent by old phones
    return sdp.media_direction(media) in (Direction.SENDONLY, Direction.INACTIVE)


def is_hold(sdp: SessionDescription) -> bool:
    """True if the description has active streams and every one of them is held."""
    active = [m for m in sdp.media if m.port != 0]
    return bool(active) and all(is_stream_held(sdp, m) for m in active)


def bump_version(sdp: SessionDescription) -> SessionDescription:
    """The same description with ``o=`` sess-version incremented (RFC 3264 §8)."""
    origin = replace(sdp.origin, sess_version=sdp.origin.sess_version + 1)
    return replace(sdp, origin=origin)


def with_direction(sdp: SessionDescription, direction: Direction) -> SessionDescription:
    """Set ``direction`` on every active stream (e.g. a hold re-offer, §8.4).

    Direction attributes are removed from the session level and from every
    media section; active streams get the new one. The version is not bumped.
    """
    names = {d.value for d in Direction}

    def strip(attrs: tuple[Attribute, ...]) -> tuple[Attribute, ...]:
        return tuple(a for a in attrs if not (a[1] is None and a[0] in names))

    media = tuple(
        replace(
            m,
            attributes=strip(m.attributes) + (((direction.value, None),) if m.port != 0 else ()),
        )
        for m in sdp.media
    )
    return replace(sdp, attributes=strip(sdp.attributes), media=media)


def _assign_payload_types(codecs: Sequence[Codec]) -> list[tuple[str, Codec]]:
    used = {c.payload_type for c in codecs if c.payload_type is not None}
    static = {(v.encoding.lower(), v.clock_rate, v.channels): k for k, v in STATIC_PAYLOADS.items()}
    out: list[tuple[str, Codec]] = []
    next_dynamic = 96
    for codec in codecs:
        pt = codec.payload_type
        if pt is None:
            key = (codec.encoding.lower(), codec.clock_rate, codec.channels)
            if key in static:
                pt = int(static[key])
            else:
                while next_dynamic in used:
                    next_dynamic += 1
                if next_dynamic > 127:
                    raise ValueError("more than 32 dynamic payload types")
                pt = next_dynamic
                used.add(pt)
        out.append((str(pt), codec))
    return out


def _ports(local_port: int | Mapping[str, int], codecs: Sequence[Codec]) -> dict[str, int]:
    kinds = list(dict.fromkeys(c.kind for c in codecs))
    if isinstance(local_port, int):
        if len(kinds) > 1:
            raise ValueError("codecs of several media kinds need a port per kind")
        return {k: local_port for k in kinds}
    return dict(local_port)


def _session(
    local_addr: str, sess_id: int, sess_version: int, username: str, session_name: str
) -> SessionDescription:
    conn = Connection.for_address(local_addr)
    origin = Origin(username, sess_id, sess_version, "IN", conn.addrtype, local_addr)
    return SessionDescription(
        origin=origin, session_name=session_name, connection=conn, times=(Timing(),)
    )


def _media_attrs(
    entries: Sequence[tuple[str, Codec, str | None]], direction: Direction, ptime: int | None
) -> tuple[Attribute, ...]:
    attrs: list[Attribute] = []
    for pt, codec, fmtp in entries:
        attrs.append(("rtpmap", f"{pt} {codec.rtpmap_value}"))
        if fmtp:
            attrs.append(("fmtp", f"{pt} {fmtp}"))
    if ptime is not None:
        attrs.append(("ptime", str(ptime)))
    attrs.append((direction.value, None))
    return tuple(attrs)


def make_offer(
    local_codecs: Sequence[Codec],
    local_addr: str,
    local_port: int | Mapping[str, int],
    *,
    direction: Direction = Direction.SENDRECV,
    sess_id: int = 0,
    sess_version: int = 0,
    username: str = "-",
    session_name: str = "-",
    ptime: int | None = None,
    proto: str = "RTP/AVP",
) -> SessionDescription:
    """An offer with one m-line per media kind of ``local_codecs`` (RFC 3264 §5)."""
    ports = _ports(local_port, local_codecs)
    base = _session(local_addr, sess_id, sess_version, username, session_name)
    assigned = _assign_payload_types(local_codecs)
    media: list[MediaSection] = []
    for kind, port in ports.items():
        entries = [(pt, c, c.fmtp) for pt, c in assigned if c.kind == kind]
        if not entries:
            continue
        media.append(
            MediaSection(
                kind=kind,
                port=port,
                proto=proto,
                formats=tuple(pt for pt, _, _ in entries),
                attributes=_media_attrs(entries, direction, ptime if kind == "audio" else None),
            )
        )
    return replace(base, media=tuple(media))


def _rejected(offered: MediaSection) -> MediaSection:
    # RFC 3264 §6: a rejected stream keeps its m-line with port zero; its
    # formats are ignored but at least one must be present, so echo the offer's.
    return MediaSection(
        kind=offered.kind, port=0, proto=offered.proto, formats=offered.formats or ("0",)
    )


def make_answer(
    offer: SessionDescription,
    local_codecs: Sequence[Codec],
    local_addr: str,
    local_port: int | Mapping[str, int],
    *,
    direction: Direction = Direction.SENDRECV,
    sess_id: int = 0,
    sess_version: int = 0,
    username: str = "-",
    session_name: str = "-",
    ptime: int | None = None,
) -> SessionDescription:
    """Answer ``offer`` with ``local_codecs`` at ``local_addr``/``local_port`` (RFC 3264 §6).

    ``local_port`` is one port when all codecs share a kind, else a mapping
    kind -> port. The first acceptable stream of each kind is accepted; later
    ones of the same kind, streams of other kinds or non-RTP protocols, streams
    with no common codec, and streams the offer disabled (port 0) are
    rejected with port 0. ``direction`` is what the local side is willing to
    do; the answer's direction is that intersected with the offer's inverse.
    ``ptime`` is added to accepted audio streams when given.
    """
    ports = _ports(local_port, local_codecs)
    base = _session(local_addr, sess_id, sess_version, username, session_name)
    taken: set[str] = set()
    media: list[MediaSection] = []
    for offered in offer.media:
        if (
            offered.port == 0
            or offered.kind in taken
            or offered.kind not in ports
            or offered.proto.upper() not in RTP_PROTOS
        ):
            media.append(_rejected(offered))
            continue
        offered_fmtp = offered.fmtp
        entries: list[tuple[str, Codec, str | None]] = []
        for fmt in offered.formats:  # RFC 3264 §6.1: keep the offer's order and numbers
            meaning = format_codec(offered, fmt)
            if meaning is None:
                continue
            for codec in local_codecs:
                if codec.kind == offered.kind and codec.matches(meaning):
                    fmtp = codec.fmtp if codec.fmtp is not None else offered_fmtp.get(fmt)
                    entries.append((fmt, replace(codec, encoding=meaning.encoding), fmtp))
                    break
        if not entries:
            media.append(_rejected(offered))
            continue
        taken.add(offered.kind)
        # RFC 3264 §6.1: sendonly <-> recvonly, inactive stays inactive.
        theirs = offer.media_direction(offered).inverted()
        answer_dir = Direction.from_flags(
            send=theirs.sends and direction.sends, recv=theirs.receives and direction.receives
        )
        media.append(
            MediaSection(
                kind=offered.kind,
                port=ports[offered.kind],
                proto=offered.proto,
                formats=tuple(fmt for fmt, _, _ in entries),
                attributes=_media_attrs(
                    entries, answer_dir, ptime if offered.kind == "audio" else None
                ),
            )
        )
    return replace(base, media=tuple(media))


def media_codecs(media: MediaSection) -> list[tuple[str, RtpMap]]:
    """The formats of an m-line with their meaning, in order (unknown formats skipped)."""
    out: list[tuple[str, RtpMap]] = []
    for fmt in media.formats:
        meaning = format_codec(media, fmt)
        if meaning is not None:
            out.append((fmt, meaning))
    return out
