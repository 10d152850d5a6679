"""The faster SDP paths (session 13) against the code they replaced.

``_split_lines`` now decodes the body once and splits the text; the old one
split the bytes and decoded each line. ``sdp_to_media`` now reads an m= line's
rtpmap table once instead of once per format. The reference copies below are
the old code, word for word; hypothesis feeds both the same bodies.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.addr import normalize_host
from offhook.common.errors import ParseError
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.sdp.codec import _split_lines, parse_sdp
from offhook.sdp.model import _MEDIA_ORDER, _SESSION_ORDER, _ordered
from offhook.sdp.offer_answer import format_codec
from offhook.sip.sdpmap import _MODELLED, sdp_to_media


def _fail(reason: str) -> ParseError:
    return ParseError(f"SDP: {reason}", 400)


def old_split_lines(data: bytes, max_lines: int) -> list[str]:
    if b"\x00" in data:
        raise _fail("NUL byte")
    raw = data.split(b"\n")
    if raw and raw[-1] in (b"", b"\r"):
        raw.pop()
    if len(raw) > max_lines:
        raise _fail("too many lines")
    lines: list[str] = []
    for chunk in raw:
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        if not chunk.strip():
            continue
        if b"\r" in chunk:
            raise _fail("bare CR inside a line")
        lines.append(chunk.decode("utf-8", "surrogateescape"))
    return lines


def old_ordered(lines: list[tuple[str, str]], order: str) -> list[tuple[str, str]]:
    rank = {t: i for i, t in enumerate(order)}
    rank["r"] = rank.get("t", len(order))
    return sorted(lines, key=lambda tv: rank.get(tv[0], len(order)))


def old_sdp_to_media(body: bytes) -> MediaDescription:
    sdp = parse_sdp(body)
    streams: list[MediaStream] = []
    for m in sdp.media:
        address = normalize_host(sdp.media_address(m) or "")
        fmtp = m.fmtp
        codecs: list[Codec] = []
        for fmt in m.formats:
            if not fmt.isdigit():
                continue
            rtp = format_codec(m, fmt)
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


def _outcome(fn: object, *args: object) -> object:
    try:
        return ("ok", fn(*args))  # type: ignore[operator]
    except ParseError as exc:
        return ("error", exc.reason, exc.status_hint)


# Pieces that matter to a line splitter: line ends, CRs in odd places, blanks,
# whitespace bytes, NUL, UTF-8 (good, truncated, with LF inside a bad sequence).
_PIECES = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b"\r\r\n", b" ", b"\t", b"\x0b", b"\x0c", b"\x00", b"a=x",
     b"v=0", b"m=audio 4 RTP/AVP 0", "é".encode(), b"\xc3", b"\xe2\x82", b"\xe2\n\x82",
     b"\xc2\xa0", b"\xff", b"\x85"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES | st.binary(max_size=6), max_size=30), st.integers(1, 12))
def test_split_lines_as_before(pieces: list[bytes], max_lines: int) -> None:
    data = b"".join(pieces)
    assert _outcome(_split_lines, data, max_lines) == _outcome(old_split_lines, data, max_lines)


_TYPES = st.sampled_from(list("vosiuepcbtrzkamx"))


@given(st.lists(st.tuples(_TYPES, st.text(max_size=3)), max_size=8))
def test_ordered_as_before(lines: list[tuple[str, str]]) -> None:
    for order in (_SESSION_ORDER, _MEDIA_ORDER, "abc"):
        assert _ordered(lines, order) == old_ordered(lines, order)


_SDP_LINES = st.sampled_from(
    [
        "c=IN IP4 10.0.0.2",
        "c=IN IP6 ::ffff:10.0.0.3",
        "c=IN IP4 0.0.0.0",
        "b=AS:64",
        "a=sendonly",
        "a=inactive",
        "a=recvonly",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:0 PCMA/8000",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtpmap:97 bad",
        "a=fmtp:101 0-15",
        "a=fmtp:96 useinbandfec=1",
        "a=fmtp:96 stereo=1",
        "a=ptime:20",
        "a=ptime:x",
        "a=rtcp:4001",
        "a=RTPMAP:8 PCMA/8000",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc",
        "m=audio 4000 RTP/AVP 0 8 96 101",
        "m=audio 4000 RTP/AVP 96 96 0",
        "m=video 0 RTP/AVP 31",
        "m=audio 70000 RTP/AVP 0",
        "m=image 4002 udptl t38",
        "i=x",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_SDP_LINES, max_size=14))
def test_sdp_to_media_as_before(lines: list[str]) -> None:
    body = "\r\n".join(["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", *lines, ""]).encode()
    assert _outcome(sdp_to_media, body) == _outcome(old_sdp_to_media, body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_sdp_to_media_raises_only_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        sdp_to_media(data)
