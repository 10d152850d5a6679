"""``aio._via_param_span`` by one regular expression gives the spans the character walk
it replaced (session 13) gave, for every ASCII Via value; so ``stamp_via`` and
``response_destination`` answer as before. The old walk is kept here as the reference.

(The walk searched ``via.lower()`` and used the positions in ``via``: for the few
non-ASCII characters whose lower case is longer, e.g. U+0130, it was off. Via is ASCII
on the wire, RFC 3261 §25.1; the regular expression reads ``via`` itself.)
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.sip import aio
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest, make_response


def old_via_param_span(via: str, key: str) -> tuple[int, int] | None:
    low = via.lower()
    pos = 0
    while True:
        i = low.find(";", pos)
        if i < 0:
            return None
        j = i + 1
        while j < len(via) and via[j] in " \t":
            j += 1
        if low.startswith(key, j):
            k = j + len(key)
            while k < len(via) and via[k] in " \t":
                k += 1
            if k == len(via) or via[k] in ";=,":
                end = k
                if end < len(via) and via[end] == "=":
                    end += 1
                    while end < len(via) and via[end] not in ";,":
                        end += 1
                return i, end
        pos = i + 1


_PIECES = st.sampled_from(
    ["SIP/2.0/UDP h:5060", ";", " ", "\t", "=", ",", "rport", "RPort", "received", "RECEIVED",
     "receive", "rports", "1.2.3.4", "5060", "branch=z9hG4bK1", '"', "x"]
)  # fmt: skip
_VIA = st.lists(_PIECES | st.text(st.characters(max_codepoint=127), max_size=4), max_size=14).map(
    "".join
)


@settings(max_examples=1000)
@given(_VIA)
def test_span_as_the_walk(via: str) -> None:
    for key in ("rport", "received"):
        assert aio._via_param_span(via, key) == old_via_param_span(via, key)


def _request(via_lines: list[str]) -> SipRequest:
    vias = "".join(f"Via: {v}\r\n" for v in via_lines)
    msg = parse_message(
        (
            f"OPTIONS sip:a@b SIP/2.0\r\n{vias}From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n"
            "Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, SipRequest)
    return msg


_SENT_BY = st.sampled_from(["SIP/2.0/UDP 10.0.0.1:5060", "SIP/2.0/UDP [::1]", "SIP/2.0/TCP h"])
_PARAMS = st.lists(
    st.sampled_from([";rport", ";RPORT=9", ";received=10.9.9.9", ";branch=z9hG4bK7", " ; rport"]),
    max_size=3,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_SENT_BY, _PARAMS).map("".join), min_size=1, max_size=3),
    st.sampled_from([("10.0.0.1", 5060), ("10.0.0.2", 4000), ("::1", 5070)]),
    st.booleans(),
)
def test_stamp_and_destination_as_with_the_walk(
    vias: list[str], source: tuple[str, int], one_line: bool
) -> None:
    lines = [", ".join(vias)] if one_line else vias
    req = _request(lines)
    new = copy.deepcopy(req)
    aio.stamp_via(new, source)
    new_dest = aio.response_destination(make_response(new, 200), ("192.0.2.9", 1))
    saved = aio._via_param_span
    aio._via_param_span = old_via_param_span
    try:
        old = copy.deepcopy(req)
        aio.stamp_via(old, source)
        old_dest = aio.response_destination(make_response(old, 200), ("192.0.2.9", 1))
    finally:
        aio._via_param_span = saved
    assert list(new.headers) == list(old.headers)
    assert new_dest == old_dest
