"""atheris fuzz target for the message waiting and event package parsers.

Parsers: the RFC 3842 message-summary body (``offhook.sip.message_summary``),
the ``Event`` header and ``Accept`` check of RFC 6665 subscriptions
(``offhook.sip.event_packages``), and a whole unsolicited message-summary
NOTIFY as a voicemail trunk sends it (``offhook.sip.mwi_in``).

Invariant (DESIGN.md "Errors"): any input either parses or raises
``offhook.common.ParseError``; anything else is a crash. Besides: a parsed
summary builds back to a body that parses equal; counts are never negative
nor above the digit bound; an unsolicited NOTIFY always gets one final
answer (200, 400, 403, 404, 413, 415 or 489), and MWI is set only on a 200.

The first byte picks the parser, the rest is its text::

    python fuzz/fuzz_message_summary.py -max_total_time=20 fuzz/corpus/fuzz_message_summary

Seeds in fuzz/corpus/fuzz_message_summary: RFC 3842's examples, Asterisk's
and a bare body, Event headers. A crash writes ``crash-<sha1>``; replay it
with ``python fuzz/fuzz_message_summary.py crash-<sha1>``.
"""

from __future__ import annotations

import contextlib
import sys
from collections import Counter

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.event_packages import accepts, parse_event
    from offhook.sip.message import Headers, SipRequest
    from offhook.sip.message_summary import (
        MAX_DIGITS,
        MessageSummary,
        build_message_summary,
        parse_message_summary,
    )
    from offhook.sip.mwi_in import unsolicited_notify

_LIMIT = 10**MAX_DIGITS
_ANSWERS = {200, 400, 403, 404, 413, 415, 489}


def _summary(data: bytes) -> None:
    try:
        summary = parse_message_summary(data)
    except ParseError:
        return
    for c in summary.counts:
        for n in (c.new, c.old, c.new_urgent or 0, c.old_urgent or 0):
            if not 0 <= n < _LIMIT:
                raise AssertionError(f"count out of bounds: {n}")
    if parse_message_summary(build_message_summary(summary)) != summary:
        raise AssertionError("message-summary round trip")


def _event(text: str) -> None:
    event_text, _, accept = text.partition("\n")
    with contextlib.suppress(ParseError):
        event = parse_event(event_text)
        if not event.package or event.package != event.package.lower():
            raise AssertionError("event package not lower case")
    accepts([accept], "application/dialog-info+xml")


class _Policy:
    def __init__(self) -> None:
        self.set: list[str] = []

    def set_mwi(self, user: str, summary: MessageSummary) -> bool:
        self.set.append(user)
        return user == "1002"


def _notify(data: bytes) -> None:
    flags, rest = (data[0], data[1:]) if data else (0, b"")
    head, _, body = rest.partition(b"\n\n")
    user, _, event = head.decode("utf-8", "replace").partition("\n")
    event, _, ctype = event.partition("\n")
    items = [
        ("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKfuzz"),
        ("From", "<sip:vm@192.0.2.9>;tag=1"),
        ("To", "<sip:x@192.0.2.1>"),
        ("Call-ID", "fuzz@vm"),
        ("CSeq", "1 NOTIFY"),
        ("Event", event),
        ("Content-Type", ctype),
    ]
    req = SipRequest(headers=Headers(items), body=body, method="NOTIFY", uri=f"sip:{user}@h")
    policy = _Policy()
    resp = unsolicited_notify(req, bool(flags & 1), policy, Counter())  # type: ignore[arg-type]
    if resp.status not in _ANSWERS:
        raise AssertionError(f"unexpected answer {resp.status}")
    if (resp.status == 200) != (policy.set == ["1002"]):
        raise AssertionError("MWI set without a 200, or a 200 without MWI")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind, rest = data[0] % 3, data[1:]
    if kind == 0:
        _summary(rest)
    elif kind == 1:
        _event(rest.decode("utf-8", "replace"))
    else:
        _notify(rest)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
