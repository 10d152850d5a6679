"""atheris fuzz target for the pattern compiler (offhook.core.dialplan.pattern).

Invariant: any text either compiles or raises ``PatternError`` (with a column
inside the text); anything else is a crash. A compiled pattern must answer
``matches``/``could_extend``/``match_count``/``discard_split`` without
raising, agree with itself (a string that matches is not "only a prefix" of a
fixed-length pattern, ``match_count`` is positive at ``min_length``), and a
small index built from it must agree with the pattern.

Run it bounded (libFuzzer flags pass through)::

    python fuzz/fuzz_pattern.py -runs=200000
    python fuzz/fuzz_pattern.py -max_total_time=30 -max_len=96 fuzz/corpus/pattern

A crash writes ``crash-<sha1>``; replay it with
``python fuzz/fuzz_pattern.py crash-<sha1>``.

Last run (2026-11-25): 30 s, ~252k inputs, no crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.core.dialplan.index import IndexEntry, PatternIndex
    from offhook.core.dialplan.pattern import MAX_PATTERN_LENGTH, PatternError, compile_pattern

_PROBES = ("", "1", "9", "1000", "9011441234", "+15551234", "*67#", "912125551212", "0" * 20)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(96)
    try:
        p = compile_pattern(text)
    except PatternError as err:
        if not 1 <= err.column <= max(1, min(len(text), MAX_PATTERN_LENGTH + 1)):
            raise AssertionError(f"column {err.column} outside {text!r}") from err
        return
    if p.match_count(p.min_length) <= 0:
        raise AssertionError("no string of min_length matches")
    probe = fdp.ConsumeUnicodeNoSurrogates(24)
    ix = PatternIndex([IndexEntry(p, "", "route", None)])
    for s in (*_PROBES, probe):
        matched = p.matches(s)
        more = p.could_extend(s)
        if matched:
            pre, post = p.discard_split(s)
            if pre + post != s:
                raise AssertionError("discard_split lost digits")
            if p.match_count(len(s)) <= 0:
                raise AssertionError("a matching length counts 0 strings")
        if matched and more and p.max_length is not None:
            raise AssertionError("fixed-length pattern matched and could extend")
        got = ix.analyze(s, [])
        if len(s) <= 48 and ((got.match is not None) != matched or got.more_possible != more):
            raise AssertionError(f"index disagrees with the pattern on {s!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
