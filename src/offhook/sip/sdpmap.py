"""SDP <-> the core's neutral media description, for the SIP endpoint.

The B2BUA passes media between its legs in the core's vocabulary
(``MediaDescription``), so a SIP phone can later meet an SCCP phone. Each
SIP leg then writes its own SDP: one origin (``o=``) per leg whose version
goes up only when what it sends changes (RFC 3264 §8). Attributes the core
does not model (rtcp, telephone-event fmtp already in codecs, crypto, ...)
travel in ``MediaStream.extra`` and are written back unchanged.
"""

from __future__ import annotations

import secrets

from offhook.common.addr import normalize_host
from offhook.common.errors import ParseError
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.sdp.codec import parse_sdp
from offhook.sdp.offer_answer import STATIC_PAYLOADS

_MODELLED = frozenset({"rtpmap", "fmtp", "sendrecv", "sendonly", "recvonly", "inactive", "ptime"})


def sdp_to_media(body: bytes) -> MediaDescription:
    """Parse an SDP body into the neutral form; raises ParseError (-> 400/488)."""
    sdp = parse_sdp(body)
    streams: list[MediaStream] = []
    for m in sdp.media:
        # One form inside the node: compressed IPv6, IPv4-mapped as IPv4 (RFC 5118 §4.9).
        address = normalize_host(sdp.media_address(m) or "")
        # The rtpmap and fmtp tables once per m= line, not once per format.
        rtpmap = m.rtpmap
        fmtp = m.fmtp
        codecs: list[Codec] = []
        for fmt in m.formats:
            if not fmt.isdigit():
                continue
            rtp = rtpmap.get(fmt) or STATIC_PAYLOADS.get(fmt)  # as format_codec
            if rtp is None:
                continue
            codecs.append(
                Codec(rtp.encoding, rtp.clock_rate, int(fmt), rtp.channels, fmtp.get(fmt, ""))
            )
        extra = tuple((n, v) for n, v in m.attributes if n.lower() not in _MODELLED)
        try:
            streams.append(
                MediaStream(
                    kind=m.kind,
                    address=address,
                    port=m.port,
                    codecs=tuple(codecs),
                    direction=str(sdp.media_direction(m)),
                    ptime=m.ptime,
                    extra=extra,
                    profile=m.proto,
                )
            )
        except ValueError as exc:
            raise ParseError(f"bad media: {exc}", 488) from exc
    if not streams:
        raise ParseError("SDP without media", 488)
    return MediaDescription(tuple(streams))


class SdpWriter:
    """Writes one leg's SDP: a stable origin, version bumped on change."""

    __slots__ = ("_last", "_sess_id", "_version", "host")

    def __init__(self, host: str) -> None:
        self.host = host
        self._sess_id = secrets.randbelow(2**31)
        self._version = self._sess_id
        self._last: MediaDescription | None = None

    def write(self, media: MediaDescription) -> bytes:
        if self._last is not None and media != self._last:
            self._version += 1
        self._last = media
        first = (media.streams[0].address if media.streams else "") or self.host
        lines = [
            "v=0",
            f"o=offhook {self._sess_id} {self._version} IN {_addrtype(first)} {first}",
            "s=offhook",
            "t=0 0",
        ]
        # RFC 8866 §5 order within each media description: m, c, a.
        for s in media.streams:
            formats = " ".join(str(c.payload_type) for c in s.codecs) or "0"
            address = s.address or "0.0.0.0"
            lines.append(f"m={s.kind} {s.port} {s.profile} {formats}")
            lines.append(f"c=IN {_addrtype(address)} {address}")
            for c in s.codecs:
                chan = f"/{c.channels}" if c.channels != 1 else ""
                lines.append(f"a=rtpmap:{c.payload_type} {c.name}/{c.clock_rate}{chan}")
                if c.fmtp:
                    lines.append(f"a=fmtp:{c.payload_type} {c.fmtp}")
            if s.ptime:
                lines.append(f"a=ptime:{s.ptime}")
            lines.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in s.extra)
            lines.append(f"a={s.direction}")
        lines.append("")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape")


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"
