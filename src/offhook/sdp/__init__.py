"""offhook.sdp: Session Description Protocol bodies, for every protocol that carries SDP.

``codec`` parses and serialises SDP (RFC 8866/4566) into the frozen values of
``model``, with bounded sizes (total bytes, lines, media sections) and only
``ParseError`` for bad input; ``offer_answer`` implements the RFC 3264
offer/answer rules (codec intersection, direction and hold, version bumps).
The package is sans-IO and imports nothing but ``offhook.common``: SIP uses
it today, MGCP will use it later, and the core never sees SDP, only its own
neutral media description.
"""

from offhook.sdp.codec import DEFAULT_MAX_LINES, DEFAULT_MAX_MEDIA, DEFAULT_MAX_SIZE, parse_sdp
from offhook.sdp.model import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaSection,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
    parse_rtpmap,
)
from offhook.sdp.offer_answer import (
    STATIC_PAYLOADS,
    Codec,
    bump_version,
    format_codec,
    is_hold,
    is_stream_held,
    make_answer,
    make_offer,
    media_codecs,
    with_direction,
)

__all__ = [
    "DEFAULT_MAX_LINES",
    "DEFAULT_MAX_MEDIA",
    "DEFAULT_MAX_SIZE",
    "STATIC_PAYLOADS",
    "Attribute",
    "Bandwidth",
    "Codec",
    "Connection",
    "Direction",
    "MediaSection",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "Timing",
    "bump_version",
    "format_codec",
    "is_hold",
    "is_stream_held",
    "make_answer",
    "make_offer",
    "media_codecs",
    "parse_rtpmap",
    "parse_sdp",
    "with_direction",
]
