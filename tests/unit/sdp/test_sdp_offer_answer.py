"""RFC 3264 offer/answer helpers: hold detection, answers, offers, version bumps."""

from __future__ import annotations

import pytest
from sdp_samples import BARESIP, CISCO_PHONE_HOLD, CUCM

from offhook.sdp import (
    Codec,
    Direction,
    RtpMap,
    bump_version,
    is_hold,
    make_answer,
    make_offer,
    media_codecs,
    parse_sdp,
    with_direction,
)

PCMU = Codec("PCMU", 8000)
PCMA = Codec("PCMA", 8000)
G729 = Codec("G729", 8000)
DTMF = Codec("telephone-event", 8000, fmtp="0-16")
H264 = Codec("H264", 90000, kind="video")


def _offer(extra: bytes = b"", media: bytes = b"") -> bytes:
    return (
        b"v=0\r\no=alice 10 20 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        + extra
        + (media or b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
    )


def test_hold_detection() -> None:
    assert not is_hold(parse_sdp(BARESIP))
    assert not is_hold(parse_sdp(CUCM))
    assert is_hold(parse_sdp(CISCO_PHONE_HOLD))  # sendonly and c=0.0.0.0
    assert is_hold(parse_sdp(_offer(b"a=inactive\r\n")))
    assert is_hold(parse_sdp(_offer(b"a=sendonly\r\n")))
    assert not is_hold(parse_sdp(_offer(b"a=recvonly\r\n")))
    zero = _offer().replace(b"c=IN IP4 192.0.2.1", b"c=IN IP4 0.0.0.0")
    assert is_hold(parse_sdp(zero))
    # media-level sendrecv overrides a session-level sendonly
    assert not is_hold(parse_sdp(_offer(b"a=sendonly\r\n") + b"a=sendrecv\r\n"))
    # no active streams: not a hold
    assert not is_hold(parse_sdp(_offer(media=b"m=audio 0 RTP/AVP 0\r\n")))


def test_answer_intersects_in_offer_order_with_offer_numbers() -> None:
    offer = parse_sdp(_offer())
    answer = make_answer(offer, [PCMU, PCMA, DTMF], "198.51.100.7", 30000, sess_id=5)
    (m,) = answer.media
    assert m.port == 30000
    assert m.formats == ("8", "0", "101")
    assert m.rtpmap == {
        "8": RtpMap("PCMA", 8000),
        "0": RtpMap("PCMU", 8000),
        "101": RtpMap("telephone-event", 8000),
    }
    assert m.fmtp == {"101": "0-16"}
    assert m.direction is Direction.SENDRECV
    assert answer.connection is not None and answer.connection.host == "198.51.100.7"
    assert answer.origin.sess_id == 5 and answer.origin.address == "198.51.100.7"
    assert parse_sdp(answer.serialize()) == answer


def test_answer_dynamic_payload_numbers_follow_the_offer() -> None:
    offer = parse_sdp(
        _offer(
            media=b"m=audio 4000 RTP/AVP 0 100\r\na=rtpmap:100 TELEPHONE-EVENT/8000\r\n"
            b"a=fmtp:100 0-15\r\n"
        )
    )
    answer = make_answer(offer, [PCMU, Codec("telephone-event", 8000)], "10.0.0.1", 1)
    m = answer.media[0]
    assert m.formats == ("0", "100")
    assert m.fmtp == {"100": "0-15"}  # echoed when the local codec has no fmtp


@pytest.mark.parametrize(
    ("offered", "local", "expected"),
    [
        (Direction.SENDRECV, Direction.SENDRECV, Direction.SENDRECV),
        (Direction.SENDONLY, Direction.SENDRECV, Direction.RECVONLY),
        (Direction.RECVONLY, Direction.SENDRECV, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.SENDRECV, Direction.INACTIVE),
        (Direction.SENDRECV, Direction.SENDONLY, Direction.SENDONLY),
        (Direction.SENDONLY, Direction.SENDONLY, Direction.INACTIVE),
        (Direction.SENDRECV, Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_answer_direction(offered: Direction, local: Direction, expected: Direction) -> None:
    offer = parse_sdp(_offer() + f"a={offered.value}\r\n".encode())
    answer = make_answer(offer, [PCMU], "10.0.0.1", 2000, direction=local)
    assert answer.media_direction(answer.media[0]) is expected


def test_rejected_streams_keep_position_with_port_zero() -> None:
    media = (
        b"m=video 5000 RTP/AVP 31\r\n"  # no local video codec -> reject
        b"m=audio 4000 RTP/AVP 18\r\n"  # G729 only, not local -> reject
        b"m=audio 0 RTP/AVP 0\r\n"  # disabled by the offerer -> reject
        b"m=audio 4002 RTP/SAVP 0\r\n"  # first acceptable audio
        b"m=audio 4004 RTP/AVP 0\r\n"  # second audio -> reject
        b"m=image 4006 udptl t38\r\n"  # not RTP -> reject
    )
    offer = parse_sdp(_offer(media=media))
    answer = make_answer(offer, [PCMU], "10.0.0.1", 7000)
    assert [m.kind for m in answer.media] == [m.kind for m in offer.media]
    assert [m.port for m in answer.media] == [0, 0, 0, 7000, 0, 0]
    assert [m.proto for m in answer.media] == [m.proto for m in offer.media]
    assert all(m.formats for m in answer.media)
    assert answer.media[0].attributes == ()


def test_answer_with_video_and_port_map() -> None:
    media = (
        b"m=audio 4000 RTP/AVP 0\r\n"
        b"m=video 5000 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n"
        b"a=fmtp:99 profile-level-id=42e01f\r\n"
    )
    offer = parse_sdp(_offer(media=media))
    with pytest.raises(ValueError):
        make_answer(offer, [PCMU, H264], "10.0.0.1", 7000)
    answer = make_answer(offer, [PCMU, H264], "10.0.0.1", {"audio": 7000, "video": 7002})
    assert [m.port for m in answer.media] == [7000, 7002]
    assert answer.media[1].fmtp == {"99": "profile-level-id=42e01f"}


def test_answer_to_real_offers() -> None:
    for body in (BARESIP, CUCM, CISCO_PHONE_HOLD):
        offer = parse_sdp(body)
        answer = make_answer(offer, [G729, PCMA, PCMU, DTMF], "10.1.1.1", 16384, ptime=20)
        assert len(answer.media) == len(offer.media)
        m = answer.media[0]
        assert m.port == 16384 and m.ptime == 20
        assert [f for f in m.formats] == [f for f in offer.media[0].formats if f != "96"]
    held = make_answer(parse_sdp(CISCO_PHONE_HOLD), [PCMU], "10.1.1.1", 16384)
    assert held.media_direction(held.media[0]) is Direction.RECVONLY


def test_make_offer_and_hold_reoffer() -> None:
    offer = make_offer([PCMU, PCMA, Codec("opus", 48000, 2), DTMF], "2001:db8::1", 9000, sess_id=7)
    assert offer.connection is not None and offer.connection.addrtype == "IP6"
    (m,) = offer.media
    assert m.formats == ("0", "8", "96", "97")
    assert [c.encoding for _, c in media_codecs(m)] == ["PCMU", "PCMA", "opus", "telephone-event"]
    assert m.rtpmap["96"] == RtpMap("opus", 48000, 2)
    held = bump_version(with_direction(offer, Direction.SENDONLY))
    assert is_hold(held) and not is_hold(offer)
    assert held.origin.sess_version == offer.origin.sess_version + 1
    resumed = bump_version(with_direction(held, Direction.SENDRECV))
    assert not is_hold(resumed) and resumed.origin.sess_version == 2
    assert parse_sdp(resumed.serialize()) == resumed


def test_bump_version_changes_only_the_version() -> None:
    sdp = parse_sdp(BARESIP)
    bumped = bump_version(sdp)
    assert bumped.origin.sess_version == 1983203284
    assert bumped.serialize() == BARESIP.replace(b"1983203283", b"1983203284")
