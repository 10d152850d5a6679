"""StreamFramer: messages that arrived complete before bad bytes are not lost.

Found by the RFC 4475 wire test (tests/security/test_rfc4475_wire.py): ``dblreq``
sent over TCP is a REGISTER, an INVITE and a few stray bytes in one segment;
the framer raised on the stray bytes and the two good requests went unanswered.
Now ``feed`` returns them with ``error`` set, and raises only when the bad
bytes completed nothing (and on every later call).
"""

from __future__ import annotations

import pytest

from offhook.common.errors import ParseError
from offhook.sip.codec import StreamFramer
from offhook.sip.message import SipRequest


def options(n: int) -> bytes:
    return (
        f"OPTIONS sip:a@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK{n}\r\n"
        "From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n"
        f"Call-ID: c{n}\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_good_messages_before_garbage_are_returned_then_the_stream_fails() -> None:
    framer = StreamFramer()
    got = framer.feed(options(1) + options(2) + b"GARBAGE\r\n\r\n")
    assert [m.call_id for m in got if isinstance(m, SipRequest)] == ["c1", "c2"]
    assert framer.error is not None
    assert framer.dead and framer.buffered == 0
    assert framer.rejected.startswith(b"GARBAGE")
    with pytest.raises(ParseError):
        framer.feed(options(3))


def test_garbage_alone_raises_at_once() -> None:
    framer = StreamFramer()
    with pytest.raises(ParseError) as info:
        framer.feed(b"GARBAGE\r\n\r\n")
    assert framer.error is info.value
    with pytest.raises(ParseError):
        framer.feed(options(1))


def test_a_clean_stream_has_no_error() -> None:
    framer = StreamFramer()
    data = options(1) + b"\r\n\r\n" + options(2)
    assert len([framer.feed(data[i : i + 7]) for i in range(0, len(data), 7)]) > 0
    assert framer.error is None and not framer.dead
