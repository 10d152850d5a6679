"""RtpEndpoint's source filter and symmetric RTP latch (packets fed as the socket would)."""

from __future__ import annotations

from offhook.media.endpoint import RtpEndpoint


def endpoint() -> tuple[RtpEndpoint, list[bytes]]:
    got: list[bytes] = []
    return RtpEndpoint(lambda ep, data: got.append(data)), got


def test_latches_once_to_the_first_packet() -> None:
    ep, got = endpoint()
    ep.connect("127.0.0.1", 40000)
    assert ep.target == ("127.0.0.1", 40000)
    ep.rtp_received(b"a", ("127.0.0.1", 40010))  # the phone sends from another port
    assert ep.target == ("127.0.0.1", 40010) and ep.latched == 1
    ep.rtp_received(b"b", ("127.0.0.1", 50000))  # a stranger on the same host, later
    assert ep.target == ("127.0.0.1", 40010)
    ep.rtp_received(b"c", ("127.0.0.2", 40010))  # another host: dropped
    assert got == [b"a", b"b"] and ep.dropped_source == 1
    ep.connect("127.0.0.1", 40020)  # a new far end (re-INVITE): latch again
    ep.rtp_received(b"d", ("127.0.0.1", 40030))
    assert ep.target == ("127.0.0.1", 40030)


def test_a_far_end_that_only_listens_cannot_redirect_the_stream() -> None:
    ep, got = endpoint()
    ep.connect("127.0.0.1", 40000, receives=False)  # music on hold to a held phone
    ep.rtp_received(b"x", ("127.0.0.1", 50000))
    assert ep.target == ("127.0.0.1", 40000)
    assert got == [] and ep.dropped_source == 1
