"""A salvaged request can always be answered (a finding of bench/soak.py).

``salvage_for_400`` used to accept any top Via starting with ``SIP`` and
holding a ``/``; the transport's ``stamp_via`` then failed on one without a
sent-by (``SIP/2.0/UDP`` alone, ``SIP/2.0/UDPhost``) and logged an ERROR with
a traceback for a peer's bytes. Now the top Via must parse, or the bytes are
dropped (counted), as DESIGN.md says for an unreadable Via.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.sip.aio import stamp_via
from offhook.sip.codec import salvage_for_400
from offhook.sip.message import make_response

SOURCE = ("192.0.2.9", 5070)


def broken(via: str) -> bytes:
    return (
        "INVITE sip:a@example.com SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n"
        "Call-ID: salvage-1\r\nCSeq: 1 INVITE\r\n"
        "\x01bad header: x\r\n\r\n"  # the parse error that sends it to salvage
    ).encode()


@pytest.mark.parametrize("via", ["SIP/2.0/UDP", "SIP/2.0/UDPhost", "SIP/2.0", "SIP/x/y/z h"])
def test_unreadable_top_via_is_dropped(via: str) -> None:
    assert salvage_for_400(broken(via)) is None


def test_readable_top_via_is_answered_with_received() -> None:
    salvaged = salvage_for_400(broken("SIP/2.0/UDP host.example.com;branch=z9hG4bK1"))
    assert salvaged is not None
    stamp_via(salvaged, SOURCE)
    resp = make_response(salvaged, 400)
    assert "received=192.0.2.9" in (resp.headers.get("Via") or "")


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="SIP/2.0UDTC \t;,:=[]abch.1z9", max_size=40),
    st.binary(max_size=200),
)
def test_whatever_salvage_returns_can_be_answered(via: str, tail: bytes) -> None:
    salvaged = salvage_for_400(broken(via) + tail)
    if salvaged is not None:
        stamp_via(salvaged, SOURCE)
        make_response(salvaged, 400).serialize()
