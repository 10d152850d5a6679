"""SDP parser and serialiser: round trips, real-world bodies, bounds, and the fuzz invariant."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdp_samples import BARESIP, CISCO_PHONE_HOLD, CUCM

from offhook.common import ParseError
from offhook.sdp import (
    Bandwidth,
    Connection,
    Direction,
    RtpMap,
    parse_sdp,
)

RFC4475_SDP01 = Path(__file__).parents[2] / "vectors" / "sip" / "rfc4475" / "sdp01.dat"


@pytest.mark.parametrize("body", [BARESIP, CUCM, CISCO_PHONE_HOLD])
def test_real_world_round_trip_is_byte_exact(body: bytes) -> None:
    assert parse_sdp(body).serialize() == body


def test_baresip_views() -> None:
    sdp = parse_sdp(BARESIP)
    assert sdp.origin.sess_id == 2790227588
    assert sdp.origin.sess_version == 1983203283
    assert sdp.connection == Connection("IN", "IP4", "192.168.1.10")
    assert sdp.attribute("tool") == "baresip 3.10.1"
    (audio,) = sdp.media
    assert audio.kind == "audio" and audio.port == 10680 and audio.proto == "RTP/AVP"
    assert audio.formats == ("96", "0", "8", "101")
    assert audio.bandwidths == (Bandwidth("AS", 102),)
    assert audio.rtpmap["96"] == RtpMap("opus", 48000, 2)
    assert audio.rtpmap["101"] == RtpMap("telephone-event", 8000, 1)
    assert audio.fmtp == {"96": "stereo=1;sprop-stereo=1", "101": "0-15"}
    assert audio.ptime == 20
    assert audio.direction is Direction.SENDRECV
    assert sdp.media_address(audio) == "192.168.1.10"
    assert audio.has_attribute("rtcp-rsize") and audio.attribute("rtcp-rsize") is None


def test_cucm_session_bandwidths_and_media_level_connection() -> None:
    sdp = parse_sdp(CUCM)
    assert [b.bwtype for b in sdp.bandwidths] == ["TIAS", "AS"]
    phone = parse_sdp(CISCO_PHONE_HOLD)
    assert phone.connection is None
    assert phone.media_address(phone.media[0]) == "0.0.0.0"


def test_rfc4475_sdp01_body() -> None:
    raw = RFC4475_SDP01.read_bytes()
    body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]
    sdp = parse_sdp(body)
    assert [m.kind for m in sdp.media] == ["audio", "video"]
    audio, video = sdp.media
    assert audio.formats == ("0", "12")
    assert video.port == 3227
    # "a=rtpmap:31 LPC" has no clock rate: malformed, so absent from the view but kept raw.
    assert "31" not in video.rtpmap
    assert video.attributes == (("rtpmap", "31 LPC"),)
    assert parse_sdp(sdp.serialize()) == sdp


def test_lf_only_line_endings_and_missing_final_newline() -> None:
    lf = CUCM.replace(b"\r\n", b"\n").rstrip(b"\n")
    assert parse_sdp(lf) == parse_sdp(CUCM)
    assert parse_sdp(lf).serialize() == CUCM


def test_unknown_lines_kept_in_place() -> None:
    body = (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\ni=info\r\nu=http://x\r\n"
        b"e=a@b\r\np=+1 555\r\nt=1 2\r\nr=7d 1h 0 25h\r\nt=3 4\r\nz=0 -1h\r\nk=prompt\r\n"
        b"a=recvonly\r\ny=unknown\r\n"
        b"m=video 5000/2 RTP/AVP 31\r\ni=media info\r\nc=IN IP6 ff15::101/3\r\nk=clear:x\r\n"
        b"a=rtpmap:31 H261/90000\r\nq=also unknown\r\n"
    )
    sdp = parse_sdp(body)
    assert sdp.serialize() == body
    assert sdp.times[0].repeats == ("7d 1h 0 25h",)
    assert len(sdp.times) == 2
    assert sdp.direction is Direction.RECVONLY
    m = sdp.media[0]
    assert m.port_count == 2
    assert m.connection is not None and m.connection.host == "ff15::101"
    assert ("q", "also unknown") in m.other_lines
    assert sdp.media_direction(m) is Direction.RECVONLY


def test_media_direction_overrides_session() -> None:
    body = CUCM.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n") + b"a=inactive\r\n"
    sdp = parse_sdp(body)
    assert sdp.direction is Direction.SENDONLY
    assert sdp.media_direction(sdp.media[0]) is Direction.INACTIVE


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n\r\n",
        b"o=- 1 1 IN IP4 1.2.3.4\r\n",  # v= not first
        b"v=0\r\ns=-\r\n",  # no o=
        b"v=0\r\no=- 1 1 IN IP4\r\n",  # short o=
        b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio \xd9\xa3 RTP/AVP 0\r\n",  # Arabic digit
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1_000 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 a\r\nc=IN IP4 b\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nb=AS\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\na=\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\na=bad name:x\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nr=1 2 3\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nnot a line\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=a\rb\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\x00\r\n",
        b"v=0\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
    ],
)
def test_malformed_raises_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sdp(body)


def test_bounds() -> None:
    with pytest.raises(ParseError) as info:
        parse_sdp(CUCM, max_size=len(CUCM) - 1)
    assert info.value.status_hint == 413
    with pytest.raises(ParseError):
        parse_sdp(CUCM, max_lines=5)
    many = CUCM.split(b"m=")[0] + b"m=audio 0 RTP/AVP 0\r\n" * 4
    assert len(parse_sdp(many, max_media=4).media) == 4
    with pytest.raises(ParseError):
        parse_sdp(many, max_media=3)
    big = b"v=0\r\n" + b"a=x\r\n" * 5000
    with pytest.raises(ParseError):
        parse_sdp(big, max_size=1 << 20)


def test_non_utf8_text_survives() -> None:
    body = CUCM.replace(b"s=SIP Call", b"s=caf\xe9")
    sdp = parse_sdp(body)
    assert sdp.serialize() == body


_LINES = st.sampled_from(
    [
        b"v=0",
        b"o=- 1 2 IN IP4 10.0.0.1",
        b"s=-",
        b"c=IN IP4 10.0.0.2",
        b"t=0 0",
        b"r=1 2",
        b"b=AS:64",
        b"a=sendonly",
        b"a=rtpmap:0 PCMU/8000",
        b"a=rtpmap:96 opus/48000/2",
        b"a=fmtp:101 0-15",
        b"a=ptime:20",
        b"m=audio 4000 RTP/AVP 0 96",
        b"m=video 0 RTP/AVP 31",
        b"i=x",
        b"x=y",
        b"",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES | st.binary(max_size=24), max_size=24), st.sampled_from([b"\r\n", b"\n"]))
def test_any_bytes_parse_or_raise_parse_error(chunks: list[bytes], eol: bytes) -> None:
    data = b"v=0" + eol + b"o=- 1 1 IN IP4 h" + eol + eol.join(chunks)
    try:
        sdp = parse_sdp(data)
    except ParseError:
        return
    # The serialised form parses back to the same model (idempotent round trip).
    again = parse_sdp(sdp.serialize(), max_size=1 << 20)
    assert again == sdp
    assert again.serialize() == sdp.serialize()
    for m in sdp.media:
        _ = (m.rtpmap, m.fmtp, m.ptime, m.direction, sdp.media_direction(m))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_raw_bytes_never_raise_anything_else(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_sdp(data)


def test_misplaced_lines_round_trip_idempotently() -> None:
    # Found by fuzz/fuzz_sdp.py: session-only letters inside a media section
    # must come back in the same order after a serialise/parse cycle.
    body = b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\ns=-\r\nt=0 0\r\ni=x\r\n"
    sdp = parse_sdp(body)
    assert parse_sdp(sdp.serialize()) == sdp
