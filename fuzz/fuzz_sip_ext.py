"""atheris fuzz target for the SIP extension parsers of mid-call work.

Parsers: ``Session-Expires`` / ``Min-SE`` and the RFC 4028 negotiation on a
request and a response carrying them (``offhook.sip.session_timer``),
``RAck`` / ``RSeq`` (``offhook.sip.prack``), DTMF INFO bodies
(``offhook.sip.dtmf_info``), ``Refer-To`` and ``Replaces``
(``offhook.sip.refer``, ``offhook.sip.replaces``).

Invariant (DESIGN.md "Errors"): any input either parses or raises
``offhook.common.ParseError``; anything else is a crash. Besides: a parsed
Session-Expires or RAck prints back to an equal value; a negotiated interval
is never below 90 s; a DTMF digit is one of ``0-9 * # A-D`` and its relay body
parses back to it; a Refer-To's Replaces parses again from its fields.

The first byte picks the parser, the rest is its text::

    python fuzz/fuzz_sip_ext.py -max_total_time=20 fuzz/corpus/fuzz_sip_ext

Seeds in fuzz/corpus/fuzz_sip_ext: one or two values per parser, as phones
send them. A crash writes ``crash-<sha1>``; replay it with
``python fuzz/fuzz_sip_ext.py crash-<sha1>``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.dtmf_info import DTMF, DTMF_RELAY, parse_info_digit, relay_body
    from offhook.sip.message import Headers, SipRequest, SipResponse
    from offhook.sip.prack import is_reliable_provisional, parse_rack, parse_rseq
    from offhook.sip.refer import parse_refer_to
    from offhook.sip.replaces import parse_replaces
    from offhook.sip.session_timer import (
        MIN_SE_FLOOR,
        SessionTimerSettings,
        TooBrief,
        as_uac,
        as_uas,
        parse_min_se,
        parse_session_expires,
    )

_SETTINGS = SessionTimerSettings(session_expires=1800, min_se=120)
_DIGITS = "0123456789*#ABCD"


def _session_timer(text: str) -> None:
    se_text, _, min_text = text.partition("\n")
    try:
        se = parse_session_expires(se_text)
        if parse_session_expires(str(se)) != se:
            raise AssertionError("Session-Expires round trip")
    except ParseError:
        pass
    with contextlib.suppress(ParseError):
        parse_min_se(min_text)
    headers = Headers([("Session-Expires", se_text), ("Min-SE", min_text), ("Supported", "timer")])
    try:
        out = as_uas(SipRequest(method="UPDATE", headers=headers), _SETTINGS)
    except ParseError:
        pass
    else:
        if not isinstance(out, TooBrief) and out.interval < MIN_SE_FLOOR:
            raise AssertionError("interval below 90 s")
    agreed = as_uac(SipResponse(status=200, headers=headers), 1800)
    if agreed.interval < MIN_SE_FLOOR:
        raise AssertionError("interval below 90 s")


def _prack(text: str) -> None:
    try:
        rack = parse_rack(text)
        if parse_rack(str(rack)) != rack:
            raise AssertionError("RAck round trip")
    except ParseError:
        pass
    with contextlib.suppress(ParseError):
        parse_rseq(text)
    resp = SipResponse(status=183, headers=Headers([("Require", text), ("RSeq", text)]))
    is_reliable_provisional(resp)


def _dtmf(data: bytes) -> None:
    for ctype in (DTMF_RELAY, DTMF):
        try:
            digit = parse_info_digit(ctype, data)
        except ParseError:
            continue
        if digit is None:
            continue
        if digit not in _DIGITS or parse_info_digit(DTMF_RELAY, relay_body(digit)) != digit:
            raise AssertionError("bad DTMF digit")


def _refer(text: str) -> None:
    try:
        target = parse_refer_to(text)
    except ParseError:
        return
    r = target.replaces
    if r is not None:
        again = parse_replaces(f"{r.call_id};to-tag={r.to_tag};from-tag={r.from_tag}")
        if (again.call_id, again.to_tag, again.from_tag) != (r.call_id, r.to_tag, r.from_tag):
            raise AssertionError("Replaces round trip")


def _replaces(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_replaces(text)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    which, rest = data[0] % 5, data[1:]
    text = rest.decode("utf-8", "replace")
    if which == 0:
        _session_timer(text)
    elif which == 1:
        _prack(text)
    elif which == 2:
        _dtmf(rest)
    elif which == 3:
        _refer(text)
    else:
        _replaces(text)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
