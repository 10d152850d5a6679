"""Diversion (RFC 5806) and History-Info (RFC 7044 / RFC 4458) out, Diversion in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.diversion import (
    CAUSE,
    DIVERSION_REASON,
    MAX_ENTRIES,
    Redirect,
    diversion_headers,
    history_info_headers,
    parse_diversions,
)
from offhook.sip.headers import parse_name_addr

HOST = "192.0.2.1:5060"
TWO = [Redirect("1002", "forward-all", "Bob"), Redirect("1003", "forward-busy")]


def test_diversion_headers_newest_first_with_reason_and_counter() -> None:
    assert diversion_headers(TWO, HOST) == [
        ("Diversion", "<sip:1003@192.0.2.1:5060>;reason=user-busy;counter=1"),
        ("Diversion", '"Bob" <sip:1002@192.0.2.1:5060>;reason=unconditional;counter=1'),
    ]


@pytest.mark.parametrize(
    ("reason", "wire", "cause"),
    [
        ("forward-all", "unconditional", 302),
        ("forward-busy", "user-busy", 486),
        ("forward-no-answer", "no-answer", 408),
        ("forward-unregistered", "unavailable", 480),
        ("dnd", "do-not-disturb", 486),
        ("deflection", "deflection", 487),
        ("hunt", "unknown", None),
        ("transfer", "unknown", None),
    ],
)
def test_reason_and_cause_tables(reason: str, wire: str, cause: int | None) -> None:
    assert DIVERSION_REASON.get(reason, "unknown") == wire
    assert CAUSE.get(reason) == cause


def test_history_info_chain_indexes_causes_and_reasons() -> None:
    assert history_info_headers(TWO, "8000", HOST) == [
        ("History-Info", "<sip:1002@192.0.2.1:5060?Reason=SIP%3Bcause%3D302>;index=1"),
        (
            "History-Info",
            "<sip:1003@192.0.2.1:5060;cause=302?Reason=SIP%3Bcause%3D486>;index=1.1;mp=1",
        ),
        ("History-Info", "<sip:8000@192.0.2.1:5060;cause=486>;index=1.1.1;mp=1.1"),
    ]
    assert history_info_headers([], "8000", HOST) == []


def test_history_info_entries_are_valid_name_addrs() -> None:
    for _, value in history_info_headers(TWO, "8000", HOST) + diversion_headers(TWO, HOST):
        na = parse_name_addr(value)
        assert na.uri.host == "192.0.2.1"


def test_numbers_with_hash_are_escaped() -> None:
    (_, value), *_ = diversion_headers([Redirect("*21#", "forward-all")], HOST)
    assert "sip:*21%23@" in value
    assert parse_diversions([value], 12) == [Redirect("*21#", "forward-all")]


def test_parse_diversions_oldest_first_names_and_reasons() -> None:
    values = [v for _, v in diversion_headers(TWO, HOST)]
    assert parse_diversions(values, 12) == TWO
    # one header line with both entries, comma-separated
    assert parse_diversions([", ".join(values)], 12) == TWO


@pytest.mark.parametrize(
    ("wire", "core"),
    [
        ("unconditional", "forward-all"),
        ("user-busy", "forward-busy"),
        ("no-answer", "forward-no-answer"),
        ("unavailable", "forward-unregistered"),
        ("out-of-service", "forward-unregistered"),
        ("do-not-disturb", "dnd"),
        ("deflection", "deflection"),
        ("time-of-day", "forward-all"),
        ('"no-answer"', "forward-no-answer"),
    ],
)
def test_incoming_reasons(wire: str, core: str) -> None:
    got = parse_diversions([f"<sip:1002@pbx>;reason={wire}"], 12)
    assert got == [Redirect("1002", core)]


def test_tel_uri_and_missing_reason() -> None:
    assert parse_diversions(["<tel:+15551234>"], 12) == [Redirect("+15551234", "forward-all")]


def test_counter_expands_and_the_limit_keeps_newest_and_oldest() -> None:
    assert (
        parse_diversions(["<sip:1002@pbx>;reason=user-busy;counter=3"], 12)
        == [Redirect("1002", "forward-busy")] * 3
    )
    values = [f"<sip:{2000 + i}@pbx>;reason=no-answer" for i in range(10)]  # newest first
    kept = parse_diversions(values, 4)
    assert [r.number for r in kept] == ["2009", "2002", "2001", "2000"]
    assert parse_diversions(values, 1) == [Redirect("2009", "forward-no-answer")]
    assert parse_diversions(values, 0) == []


@pytest.mark.parametrize(
    "values",
    [
        ["not a uri"],
        ["<sip:pbx>;reason=user-busy"],  # no number
        ["<sip:1002@pbx>;counter=abc"],
        ["<sip:1002@pbx>;counter=1000"],
        ["<sip:1002@pbx>;reason=a b"],
        ["<sip:1002@pbx>"] * (MAX_ENTRIES + 1),
    ],
)
def test_malformed_raise_parse_error(values: list[str]) -> None:
    with pytest.raises(ParseError):
        parse_diversions(values, 12)


NUMBERS = st.text(alphabet="0123456789*#+", min_size=1, max_size=12)
REASONS = st.sampled_from([*DIVERSION_REASON, "hunt", "pickup", "park", "transfer"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NUMBERS, REASONS, st.sampled_from(["", "Bob", 'A "q"'])), max_size=8))
def test_out_then_in(items: list[tuple[str, str, str]]) -> None:
    redirects = [Redirect(n, r, name) for n, r, name in items]
    back = parse_diversions([v for _, v in diversion_headers(redirects, HOST)], 20)
    assert [b.number for b in back] == [r.number for r in redirects]
    for b, r in zip(back, redirects, strict=True):
        expected = r.reason if r.reason in DIVERSION_REASON else "forward-all"
        assert b.reason == expected
    for _, value in history_info_headers(redirects, "8000", HOST):
        parse_name_addr(value)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=5), st.integers(0, 20))
def test_any_text_parses_or_raises_parse_error(values: list[str], limit: int) -> None:
    try:
        got = parse_diversions(values, limit)
    except ParseError:
        return
    assert len(got) <= max(0, limit)
