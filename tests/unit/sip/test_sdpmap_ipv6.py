"""SDP <-> core media for IPv6 (RFC 5118 §4.6, §4.8, §4.9): parsed, relayed, rewritten."""

from __future__ import annotations

from offhook.sip.sdpmap import SdpWriter, sdp_to_media


def body(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def test_ip6_connection_is_parsed_and_written_back_compressed() -> None:
    media = sdp_to_media(
        body(
            "v=0",
            "o=bob 280744730 28977631 IN IP6 2001:DB8::1",
            "s=-",
            "c=IN IP6 2001:0db8:0:0:0:0:0:20",
            "t=0 0",
            "m=audio 6000 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
        )
    )
    assert media.streams[0].address == "2001:db8::20"
    out = SdpWriter("::1").write(media).decode()
    assert "c=IN IP6 2001:db8::20\r\n" in out
    assert "o=offhook " in out and " IN IP6 2001:db8::20\r\n" in out


def test_mixed_families_per_media_and_mapped_addresses() -> None:
    media = sdp_to_media(
        body(
            "v=0",
            "o=bob 1 1 IN IP6 ::ffff:192.0.2.2",
            "s=-",
            "t=0 0",
            "m=audio 6000 RTP/AVP 0",
            "c=IN IP6 ::ffff:192.0.2.2",  # RFC 5118 §4.9: an IPv4 host, written as IPv4
            "m=video 6024 RTP/AVP 31",
            "c=IN IP6 2001:db8::1",
        )
    )
    audio, video = media.streams
    assert audio.address == "192.0.2.2" and video.address == "2001:db8::1"
    out = SdpWriter("192.0.2.100").write(media).decode()
    assert "c=IN IP4 192.0.2.2\r\n" in out and "c=IN IP6 2001:db8::1\r\n" in out
