"""atheris fuzz target for Diversion headers (RFC 5806) of calls from trunks.

Parser: ``offhook.sip.diversion.parse_diversions`` over one or more header
lines, with a redirection limit; and the builders (Diversion, History-Info)
fed what it returns.

Invariant (DESIGN.md "Errors"): any input either parses or raises
``offhook.common.ParseError``; anything else is a crash. Besides: never
more redirections than the limit; every number is non-empty; what was
parsed builds back into Diversion lines that parse to the same numbers and
History-Info entries that are valid name-addrs.

The first byte is the limit, the rest header lines separated by newlines::

    python fuzz/fuzz_diversion.py -max_total_time=20 fuzz/corpus/fuzz_diversion

Seeds in fuzz/corpus/fuzz_diversion: the forms carriers and voicemail
systems send. A crash writes ``crash-<sha1>``; replay it with
``python fuzz/fuzz_diversion.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.diversion import (
        diversion_headers,
        history_info_headers,
        parse_diversions,
    )
    from offhook.sip.headers import parse_name_addr


def test_one_input(data: bytes) -> None:
    if not data:
        return
    limit = data[0] % 16
    values = data[1:].decode("utf-8", "replace").split("\n")
    try:
        got = parse_diversions(values, limit)
    except ParseError:
        return
    if len(got) > limit:
        raise AssertionError("more redirections than the limit")
    if any(not r.number for r in got):
        raise AssertionError("a redirection without a number")
    again = parse_diversions([v for _, v in diversion_headers(got, "192.0.2.1:5060")], 16)
    if [r.number for r in again] != [r.number for r in got]:
        raise AssertionError("Diversion round trip")
    for _, value in history_info_headers(got, "1002", "192.0.2.1"):
        parse_name_addr(value)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
