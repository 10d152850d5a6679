"""The message-summary body (RFC 3842): strict, bounded parsing and a lossless builder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.message_summary import (
    CONTEXT_CLASSES,
    MAX_BODY,
    MessageCounts,
    MessageSummary,
    build_message_summary,
    parse_message_summary,
)

# RFC 3842 §6 examples.
RFC_EXAMPLE = (
    b"Messages-Waiting: yes\r\n"
    b"Message-Account: sip:alice@vmail.example.com\r\n"
    b"Voice-Message: 2/8 (0/2)\r\n"
)
RFC_EXAMPLE_WITH_HEADERS = (
    b"Messages-Waiting: yes\r\n"
    b"Message-Account: sip:alice@vmail.example.com\r\n"
    b"Voice-Message: 4/8 (1/2)\r\n"
    b"\r\n"
    b"To: <alice@atlanta.example.com>\r\n"
    b"From: <bob@biloxi.example.com>\r\n"
    b"Subject: carpool tomorrow?\r\n"
    b"Date: Sun, 09 May 2004 17:33:26 -0700\r\n"
    b"Priority: normal\r\n"
    b"Message-ID: 13784434989@vmail.example.com\r\n"
    b"\r\n"
    b"To: <alice@atlanta.example.com>\r\n"
    b"From: <carol@chicago.example.com>\r\n"
    b"Subject: Urgent: I'm not home\r\n"
)


def test_rfc3842_examples() -> None:
    m = parse_message_summary(RFC_EXAMPLE)
    assert m.waiting and m.account == "sip:alice@vmail.example.com"
    assert m.voice == MessageCounts("voice-message", 2, 8, 0, 2)
    m2 = parse_message_summary(RFC_EXAMPLE_WITH_HEADERS)
    assert m2.voice == MessageCounts("voice-message", 4, 8, 1, 2)


@pytest.mark.parametrize(
    "body",
    [
        b"Messages-Waiting: no\r\n",
        b"Messages-Waiting: no",  # no final CRLF
        b"messages-waiting:YES\nvoice-message: 0/0\n",  # case, LF only, no space
        b"Messages-Waiting : yes\r\nFax-Message: 1/0\r\nVoice-Message: 1 / 2 ( 0 / 0 )\r\n",
        b"Message-Account: sip:1002@pbx\r\nMessages-Waiting: yes\r\n",
        b"Messages-Waiting: yes\r\nX-Vendor: whatever\r\n",
        b"Messages-Waiting: yes\r\n\r\n",
    ],
)
def test_accepted(body: bytes) -> None:
    parse_message_summary(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Voice-Message: 1/0\r\n",  # no status line
        b"Messages-Waiting: maybe\r\n",
        b"Messages-Waiting: yes\r\nMessages-Waiting: no\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 1/0\r\nVoice-Message: 2/0\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 1\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: -1/0\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 1/0 (1)\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 1234567890/0\r\n",  # too many digits
        b"Messages-Waiting: yes\r\nMessage-Account: not a uri\r\n",
        b"Messages-Waiting: yes\r\nMessage-Account: sip:\r\n",
        b"Messages-Waiting: yes\r\nno colon here\r\n",
        b"Messages-Waiting: yes\r\n\r\nnot a header\r\n",
        b"Messages-Waiting: yes\x00\r\n",
        b"Messages-Waiting: \xff\r\n",
        b"Messages-Waiting: yes\r\n" + b"X: y\r\n" * 80,
        b"Messages-Waiting: yes\r\nX: " + b"y" * 2000 + b"\r\n",
    ],
)
def test_refused(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message_summary(body)


def test_too_large_is_413() -> None:
    with pytest.raises(ParseError) as err:
        parse_message_summary(b"Messages-Waiting: yes\r\n" + b" " * MAX_BODY)
    assert err.value.status_hint == 413


def test_builder_writes_rfc_capitalisation() -> None:
    body = build_message_summary(
        MessageSummary(True, "sip:1002@pbx", (MessageCounts("voice-message", 2, 8, 0, 2),))
    )
    assert body == RFC_EXAMPLE.replace(b"alice@vmail.example.com", b"1002@pbx")


COUNT = st.integers(0, 999_999_999)


@st.composite
def summaries(draw: st.DrawFn) -> MessageSummary:
    classes = draw(st.lists(st.sampled_from(CONTEXT_CLASSES), unique=True, max_size=6))
    counts = []
    for c in classes:
        urgent = draw(st.booleans())
        counts.append(
            MessageCounts(
                c,
                draw(COUNT),
                draw(COUNT),
                draw(COUNT) if urgent else None,
                draw(COUNT) if urgent else None,
            )
        )
    account = draw(st.sampled_from(["", "sip:1002@pbx.example.com", "sips:vm@[2001:db8::1]:5061"]))
    return MessageSummary(draw(st.booleans()), account, tuple(counts))


@settings(max_examples=300, deadline=None)
@given(summaries())
def test_build_then_parse_is_identity(summary: MessageSummary) -> None:
    assert parse_message_summary(build_message_summary(summary)) == summary


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        m = parse_message_summary(data)
    except ParseError:
        return
    assert parse_message_summary(build_message_summary(m)) == m


LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "Messages-Waiting: yes",
                "Messages-Waiting: no",
                "Message-Account: sip:a@b",
                "Voice-Message: 1/2",
                "Voice-Message: 1/2 (3/4)",
                "Fax-Message: 0/0",
                "",
                "Subject: x",
            ]
        ),
        st.text(alphabet="Mesag-Wtiny:/ ()0123456789yo\t", max_size=40),
    ),
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(LINES, st.sampled_from(["\r\n", "\n"]))
def test_near_miss_lines_parse_or_raise_parse_error(lines: list[str], eol: str) -> None:
    try:
        m = parse_message_summary(eol.join(lines).encode())
    except ParseError:
        return
    assert parse_message_summary(build_message_summary(m)) == m
