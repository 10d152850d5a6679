"""RFC 4028 session timers: header parsing and the UAS/UAC negotiation tables."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.message import Headers, SipRequest, SipResponse
from offhook.sip.session_timer import (
    MIN_SE_FLOOR,
    Agreement,
    SessionExpires,
    SessionTimerSettings,
    TooBrief,
    as_uac,
    as_uas,
    expiry_delay,
    parse_min_se,
    parse_session_expires,
    refresh_delay,
    request_headers,
    response_headers,
    retry_interval,
)

SETTINGS = SessionTimerSettings(session_expires=1800, min_se=90)


def req(**headers: str) -> SipRequest:
    items = [(k.replace("_", "-"), v) for k, v in headers.items()]
    return SipRequest(method="INVITE", uri="sip:1002@example.com", headers=Headers(items))


def resp(**headers: str) -> SipResponse:
    items = [(k.replace("_", "-"), v) for k, v in headers.items()]
    return SipResponse(status=200, headers=Headers(items))


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1800", SessionExpires(1800)),
        ("90;refresher=uac", SessionExpires(90, "uac")),
        ("90 ; refresher=UAS", SessionExpires(90, "uas")),
        ("4000;foo=bar;refresher=uas", SessionExpires(4000, "uas")),
        ("4294967295", SessionExpires(4294967295)),
    ],
)
def test_parse_session_expires(text: str, want: SessionExpires) -> None:
    assert parse_session_expires(text) == want


@pytest.mark.parametrize(
    "text", ["", "abc", "-5", "0", "4294967296", "90;refresher=both", "90;;", "1e3", "90;refresher"]
)
def test_parse_session_expires_bad(text: str) -> None:
    with pytest.raises(ParseError):
        parse_session_expires(text)


def test_parse_min_se() -> None:
    assert parse_min_se(" 90 ") == 90
    assert parse_min_se("120;x=y") == 120
    for bad in ("", "x", "99999999999"):
        with pytest.raises(ParseError):
            parse_min_se(bad)


@given(st.text(max_size=60))
def test_parsers_parse_or_raise_parse_error(text: str) -> None:
    for parser in (parse_session_expires, parse_min_se):
        with contextlib.suppress(ParseError):
            parser(text)


@given(st.integers(1, 2**32 - 1), st.sampled_from([None, "uac", "uas"]))
def test_session_expires_round_trip(delta: int, refresher: str | None) -> None:
    value = SessionExpires(delta, refresher)  # type: ignore[arg-type]
    assert parse_session_expires(str(value)) == value


# --- the UAS table (RFC 4028 §9) -------------------------------------------------

UAS_CASES = [
    # request headers -> outcome
    ({}, Agreement(1800, True, False)),  # no timer asked: ours, we refresh
    ({"Supported": "timer"}, Agreement(1800, True, True)),
    ({"Session_Expires": "600"}, Agreement(600, True, False)),  # UAC without timer: we refresh
    ({"Session_Expires": "600", "Supported": "timer"}, Agreement(600, False, True)),
    (
        {"Session_Expires": "600;refresher=uas", "Supported": "timer"},
        Agreement(600, True, True),
    ),
    (
        {"Session_Expires": "600;refresher=uac", "Supported": "timer"},
        Agreement(600, False, True),
    ),
    ({"Session_Expires": "7200", "Supported": "timer"}, Agreement(1800, False, True)),  # lowered
    (
        {"Session_Expires": "7200", "Min_SE": "3600", "Supported": "timer"},
        Agreement(3600, False, True),  # never below the request's Min-SE
    ),
    ({"Session_Expires": "60", "Supported": "timer"}, TooBrief(90)),
    ({"Session_Expires": "60"}, Agreement(90, True, False)),  # no 422 to a UAC without timer
    (
        {"Session_Expires": "90;refresher=uac", "Supported": "100rel, timer"},
        Agreement(90, False, True),
    ),
]


@pytest.mark.parametrize(("headers", "want"), UAS_CASES)
def test_as_uas(headers: dict[str, str], want: Agreement | TooBrief) -> None:
    assert as_uas(req(**headers), SETTINGS) == want


def test_as_uas_minimum_is_configurable() -> None:
    strict = SessionTimerSettings(session_expires=1800, min_se=300)
    assert as_uas(req(Session_Expires="200", Supported="timer"), strict) == TooBrief(300)
    assert as_uas(req(Session_Expires="300", Supported="timer"), strict) == Agreement(
        300, False, True
    )


def test_as_uas_bad_header_raises() -> None:
    with pytest.raises(ParseError):
        as_uas(req(Session_Expires="soon"), SETTINGS)


@given(
    st.integers(1, 100_000),
    st.one_of(st.none(), st.integers(1, 100_000)),
    st.booleans(),
    st.sampled_from(["", ";refresher=uac", ";refresher=uas"]),
)
def test_as_uas_invariants(se: int, min_se: int | None, timer: bool, refresher: str) -> None:
    headers = {"Session_Expires": f"{se}{refresher}"}
    if min_se is not None:
        headers["Min_SE"] = str(min_se)
    if timer:
        headers["Supported"] = "timer"
    out = as_uas(req(**headers), SETTINGS)
    if isinstance(out, TooBrief):
        assert timer and se < SETTINGS.min_se and out.min_se >= SETTINGS.min_se
        return
    assert out.interval >= MIN_SE_FLOOR
    if se >= SETTINGS.min_se:
        assert out.interval <= se  # §9: never raised
    if not timer:
        assert out.we_refresh  # a UAC without timer never refreshes


def test_response_headers() -> None:
    assert response_headers(Agreement(600, False, True)) == [
        ("Session-Expires", "600;refresher=uac"),
        ("Require", "timer"),
    ]
    assert response_headers(Agreement(1800, True, False)) == [
        ("Session-Expires", "1800;refresher=uas")
    ]


# --- the UAC side (RFC 4028 §7) -------------------------------------------------------


def test_request_headers() -> None:
    assert request_headers(SETTINGS, None) == [("Session-Expires", "1800"), ("Min-SE", "90")]
    assert request_headers(SETTINGS, Agreement(600, True, True)) == [
        ("Session-Expires", "600;refresher=uac"),
        ("Min-SE", "90"),
    ]
    assert request_headers(SETTINGS, Agreement(600, False, True), 900)[0] == (
        "Session-Expires",
        "900;refresher=uas",
    )


@pytest.mark.parametrize(
    ("headers", "want"),
    [
        ({}, Agreement(1800, True, False)),  # no timer at the far end: we refresh anyway
        ({"Session_Expires": "600;refresher=uac", "Require": "timer"}, Agreement(600, True, True)),
        ({"Session_Expires": "600;refresher=uas", "Require": "timer"}, Agreement(600, False, True)),
        ({"Session_Expires": "600"}, Agreement(600, True, True)),  # no refresher: the UAC
        ({"Session_Expires": "garbage"}, Agreement(1800, True, False)),
        ({"Session_Expires": "30;refresher=uas"}, Agreement(90, False, True)),  # floor
    ],
)
def test_as_uac(headers: dict[str, str], want: Agreement) -> None:
    assert as_uac(resp(**headers), 1800) == want


def test_retry_interval() -> None:
    assert retry_interval(resp(Min_SE="300"), 90) == 300
    assert retry_interval(resp(Min_SE="90"), 90) is None  # not larger: give up
    assert retry_interval(resp(), 90) is None
    assert retry_interval(resp(Min_SE="x"), 90) is None
    assert retry_interval(resp(Min_SE="999999"), 90) is None  # absurd


def test_deadlines() -> None:
    a = Agreement(90, True, True)
    assert refresh_delay(a) == 45
    assert expiry_delay(a) == 60  # 90 - min(32, 30)
    b = Agreement(1800, False, True)
    assert expiry_delay(b) == 1800 - 32
    assert refresh_delay(b) < expiry_delay(b)


def test_settings_bounds() -> None:
    with pytest.raises(ValueError):
        SessionTimerSettings(session_expires=1800, min_se=60)
    with pytest.raises(ValueError):
        SessionTimerSettings(session_expires=100, min_se=120)
