"""RFC 3262 100rel: RAck/RSeq parsing, the UAS's reliable provisionals, the UAC's tracker."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.message import Headers, SipRequest, SipResponse
from offhook.sip.prack import (
    PrackTracker,
    RAck,
    ReliableProvisionals,
    is_reliable_provisional,
    parse_rack,
    parse_rseq,
    wants_100rel,
)

T1 = 0.5


def provisional(status: int = 183, **headers: str) -> SipResponse:
    return SipResponse(status=status, headers=Headers(list(headers.items())))


def test_parse_rack() -> None:
    assert parse_rack("776656 1 INVITE") == RAck(776656, 1, "INVITE")
    assert parse_rack("  1   2   INVITE ") == RAck(1, 2, "INVITE")
    assert str(RAck(5, 3, "INVITE")) == "5 3 INVITE"


@pytest.mark.parametrize(
    "text",
    ["", "1 2", "1 2 INVITE extra", "0 1 INVITE", "x 1 INVITE", "1 -1 INVITE", "1 1 IN@VITE"],
)
def test_parse_rack_bad(text: str) -> None:
    with pytest.raises(ParseError):
        parse_rack(text)


def test_parse_rseq() -> None:
    assert parse_rseq(" 4294967295 ") == 4294967295
    for bad in ("0", "4294967296", "", "1.5"):
        with pytest.raises(ParseError):
            parse_rseq(bad)


@given(st.text(max_size=40))
def test_parsers_parse_or_raise_parse_error(text: str) -> None:
    for parser in (parse_rack, parse_rseq):
        with contextlib.suppress(ParseError):
            parser(text)


@given(st.integers(1, 2**32 - 1), st.integers(0, 2**31 - 1))
def test_rack_round_trip(rseq: int, cseq: int) -> None:
    rack = RAck(rseq, cseq, "INVITE")
    assert parse_rack(str(rack)) == rack


def test_is_reliable_provisional() -> None:
    assert is_reliable_provisional(provisional(180, Require="100rel", RSeq="7")) == 7
    assert is_reliable_provisional(provisional(180, RSeq="7")) is None  # no Require
    assert is_reliable_provisional(provisional(180, Require="100rel")) is None  # no RSeq
    assert is_reliable_provisional(provisional(100, Require="100rel", RSeq="7")) is None  # §4
    assert is_reliable_provisional(provisional(180, Require="100rel", RSeq="x")) is None
    ok = SipResponse(status=200, headers=Headers([("Require", "100rel"), ("RSeq", "1")]))
    assert is_reliable_provisional(ok) is None


def test_wants_100rel() -> None:
    def invite(**h: str) -> SipRequest:
        return SipRequest(method="INVITE", headers=Headers(list(h.items())))

    assert wants_100rel(invite(Require="100rel")) == (True, True)
    assert wants_100rel(invite(Supported="timer, 100rel")) == (False, True)
    assert wants_100rel(invite(Supported="timer")) == (False, False)
    assert wants_100rel(invite()) == (False, False)


# --- UAS: one unacknowledged at a time, retransmission, PRACK matching ----------------


def test_reliable_provisionals_numbering_and_queue() -> None:
    rel = ReliableProvisionals(100, T1)
    first, second = provisional(180), provisional(183)
    assert rel.offer(first, with_sdp=False)  # send now
    assert first.headers.get("RSeq") == "100"
    assert first.headers.get("Require") == "100rel"
    assert not rel.offer(second, with_sdp=True)  # waits: the first is unacknowledged
    assert second.headers.get("RSeq") is None  # numbered when it goes out
    assert rel.holds_answer  # the waiting one has SDP
    # A PRACK for the wrong RSeq, CSeq or method matches nothing.
    assert rel.prack(RAck(101, 1, "INVITE"), 1) == (False, None)
    assert rel.prack(RAck(100, 2, "INVITE"), 1) == (False, None)
    assert rel.prack(RAck(100, 1, "BYE"), 1) == (False, None)
    matched, nxt = rel.prack(RAck(100, 1, "INVITE"), 1)
    assert matched and nxt is second
    assert rel.unacked is second and second.headers.get("RSeq") == "101"
    assert rel.prack(RAck(100, 1, "INVITE"), 1) == (False, None)  # already acknowledged
    assert rel.prack(RAck(101, 1, "INVITE"), 1) == (True, None)
    assert not rel.holds_answer and not rel.busy


def test_retransmission_doubles_until_64_t1() -> None:
    rel = ReliableProvisionals(1, T1)
    resp = provisional()
    rel.offer(resp, with_sdp=True)
    intervals = [rel.interval]
    sent = 0
    while (again := rel.on_timer()) is not None:
        assert again is resp
        sent += 1
        intervals.append(rel.interval)
    assert intervals[:4] == [T1, 2 * T1, 4 * T1, 8 * T1]
    # Resent at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s; given up at 64*T1 = 32 s.
    assert sent == 6
    assert rel.elapsed == pytest.approx(64 * T1)


def test_drop_waiting_keeps_the_sent_one_matchable() -> None:
    rel = ReliableProvisionals(10, T1)
    rel.offer(provisional(180), with_sdp=False)
    rel.offer(provisional(183), with_sdp=True)
    rel.drop_waiting()
    assert not rel.holds_answer  # the 183 with SDP will never be sent
    assert rel.prack(RAck(10, 1, "INVITE"), 1) == (True, None)


def test_first_rseq_range() -> None:
    with pytest.raises(ValueError):
        ReliableProvisionals(0, T1)
    with pytest.raises(ValueError):
        ReliableProvisionals(2**31, T1)


@given(st.lists(st.booleans(), min_size=1, max_size=20))
def test_rseq_goes_up_by_one_without_gaps(sdps: list[bool]) -> None:
    rel = ReliableProvisionals(1000, T1)
    responses = [provisional() for _ in sdps]
    for resp, sdp in zip(responses, sdps, strict=True):
        rel.offer(resp, sdp)
    # The first goes out at once; of those that pile up behind it, the last four wait.
    sent = [responses[0], *responses[1:][-4:]]
    for i, resp in enumerate(sent):
        assert rel.unacked is resp
        assert resp.headers.get("RSeq") == str(1000 + i)
        matched, nxt = rel.prack(RAck(1000 + i, 1, "INVITE"), 1)
        assert matched
        assert nxt is (sent[i + 1] if i + 1 < len(sent) else None)
    assert not rel.busy
    assert all(r.headers.get("RSeq") is None for r in responses if r not in sent)


# --- UAC ---------------------------------------------------------------------------------


def test_tracker_in_order_per_early_dialog() -> None:
    t = PrackTracker()
    assert t.take("a", 5)  # the first: any RSeq
    assert not t.take("a", 5)  # a retransmission: neither PRACKed nor processed
    assert not t.take("a", 7)  # out of order
    assert t.take("a", 6)
    assert t.take("b", 100)  # another fork, its own numbering
    assert not t.take("b", 99)


def test_tracker_is_bounded() -> None:
    t = PrackTracker()
    for i in range(16):
        assert t.take(f"fork{i}", 1)
    assert not t.take("one-too-many", 1)
