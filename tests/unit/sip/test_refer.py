"""REFER and Replaces: Refer-To parsing, the refer subscription's NOTIFYs, RFC 3891's table,
and the stateless answers to out-of-dialog requests."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.message import Headers, SipRequest
from offhook.sip.refer import ReferSubscription, ReferTarget, parse_refer_to
from offhook.sip.refusals import out_of_dialog_answer
from offhook.sip.replaces import VERDICTS, Found, Replaces, dialog_ids, parse_replaces, verdict

# --- Replaces (RFC 3891 §6.1) ----------------------------------------------------------


def test_parse_replaces() -> None:
    assert parse_replaces("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff") == Replaces(
        "98732@sip.example.com", "ff87ff", "r33th4x0r"
    )
    assert parse_replaces("abc ; to-tag=1;from-tag=2;early-only").early_only


@pytest.mark.parametrize(
    "text",
    ["", "abc", "abc;to-tag=1", "abc;from-tag=2", ";to-tag=1;from-tag=2", "a b;to-tag=1;from-tag=2",
     "abc;to-tag=;from-tag=2", "abc;to-tag=1;from-tag=2;;"],
)  # fmt: skip
def test_parse_replaces_bad(text: str) -> None:
    with pytest.raises(ParseError):
        parse_replaces(text)


def test_dialog_ids_both_ways() -> None:
    ours, theirs = dialog_ids(Replaces("c@h", "T", "F"))
    assert ours == ("c@h", "T", "F")  # to-tag is ours (the recipient's), RFC 3891 §3
    assert theirs == ("c@h", "F", "T")


def test_verdict_table_is_complete() -> None:
    assert set(VERDICTS) == {(f, e) for f in Found for e in (False, True)}
    assert verdict(Found.NONE, False) == 481
    assert verdict(Found.TERMINATED, False) == 603
    assert verdict(Found.CONFIRMED, False) is None
    assert verdict(Found.CONFIRMED, True) == 486
    assert verdict(Found.EARLY_OURS, True) is None
    assert verdict(Found.EARLY_THEIRS, False) == 481


# --- Refer-To (RFC 3515 §2.1) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("<sip:1003@10.0.0.1>", ReferTarget("sip:1003@10.0.0.1", "1003")),
        ('"Carol" <sip:1003@h;user=phone>', ReferTarget("sip:1003@h;user=phone", "1003")),
        ("sip:1003@10.0.0.1:5060", ReferTarget("sip:1003@10.0.0.1:5060", "1003")),
        ("<tel:+15551234>", ReferTarget("tel:+15551234", "+15551234")),
        ("<sip:%31003@h>", ReferTarget("sip:%31003@h", "1003")),
        ("<sip:h.example.com>", ReferTarget("sip:h.example.com", "")),
        (
            "<sip:1003@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            ReferTarget("sip:1003@h", "1003", Replaces("abc@h", "1", "2")),
        ),
        (
            "sip:1003@h?replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2%3Bearly-only",
            ReferTarget("sip:1003@h", "1003", Replaces("abc", "1", "2", True)),
        ),
    ],
)  # fmt: skip
def test_parse_refer_to(text: str, want: ReferTarget) -> None:
    assert parse_refer_to(text) == want


@pytest.mark.parametrize(
    "text",
    ["", "<>", "<mailto:a@b>", "<http://x/>", "<sip:1003@h?Replaces=garbage>",
     "<sip:1@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>",
     "<sip:" + "1" * 65 + "@h>", "<sip:1003@h"],
)  # fmt: skip
def test_parse_refer_to_bad(text: str) -> None:
    with pytest.raises(ParseError):
        parse_refer_to(text)


@given(st.text(max_size=120))
def test_parse_or_raise_parse_error(text: str) -> None:
    for parser in (parse_refer_to, parse_replaces):
        with contextlib.suppress(ParseError):
            parser(text)


@given(
    st.from_regex(r"[A-Za-z0-9]{1,20}(@[a-z]{1,10})?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9\-]{1,12}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9\-]{1,12}", fullmatch=True),
)
def test_replaces_in_refer_to_round_trip(call_id: str, to_tag: str, from_tag: str) -> None:
    escaped = f"{call_id};to-tag={to_tag};from-tag={from_tag}"
    escaped = escaped.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")
    target = parse_refer_to(f"<sip:1003@h?Replaces={escaped}>")
    assert target.replaces == Replaces(call_id, to_tag, from_tag)


# --- the refer subscription's NOTIFYs (RFC 3515 §2.4.4) -----------------------------------


def test_subscription_sequence() -> None:
    sub = ReferSubscription()
    trying = sub.notify("trying")
    assert trying is not None and (trying.status, trying.terminated) == (100, False)
    assert trying.body() == b"SIP/2.0 100 Trying\r\n"
    assert trying.headers(None) == [
        ("Event", "refer"),
        ("Subscription-State", "active;expires=120"),
    ]
    assert sub.notify("trying") is None  # nothing new
    ringing = sub.notify("ringing")
    assert ringing is not None and ringing.status == 180
    assert sub.notify("trying") is None  # no going back
    done = sub.notify("done")
    assert done is not None and done.terminated and done.body() == b"SIP/2.0 200 OK\r\n"
    assert done.headers("7") == [
        ("Event", "refer;id=7"),
        ("Subscription-State", "terminated;reason=noresource"),
    ]
    assert sub.notify("failed", (486, "Busy Here")) is None  # terminated: nothing more
    assert sub.notify("ringing") is None


def test_subscription_failure() -> None:
    sub = ReferSubscription()
    sub.notify("trying")
    failed = sub.notify("failed", (404, "Not Found"))
    assert failed is not None and failed.terminated
    assert failed.body() == b"SIP/2.0 404 Not Found\r\n"
    odd = ReferSubscription().notify("failed", (200, "OK"))  # a failure is never a 2xx
    assert odd is not None and odd.status == 503
    assert ReferSubscription().notify("unknown-state") is None


# --- out-of-dialog answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status"),
    [("OPTIONS", 200), ("BYE", 481), ("INFO", 481), ("PRACK", 481), ("REFER", 403),
     ("SUBSCRIBE", 489), ("MESSAGE", 405), ("UPDATE", 405), ("FOO", 501)],
)  # fmt: skip
def test_out_of_dialog_answer(method: str, status: int) -> None:
    req = SipRequest(
        method=method,
        uri="sip:offhook@h",
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
                ("From", "<sip:a@h>;tag=1"),
                ("To", "<sip:b@h>"),
                ("Call-ID", "c"),
                ("CSeq", f"1 {method}"),
            ]
        ),
    )
    resp = out_of_dialog_answer(req)
    assert resp.status == status
    assert resp.to_tag
    if status in (200, 405):
        allow = {m.strip() for m in (resp.headers.get("Allow") or "").split(",")}
        assert {"UPDATE", "PRACK", "REFER", "INFO"} <= allow
    if status == 200:
        assert resp.headers.get("Supported") == "100rel, timer, replaces"
