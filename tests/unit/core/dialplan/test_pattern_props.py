"""Property tests: the pattern matcher against an independent regex oracle and enumeration."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.core.dialplan.pattern import MAX_PATTERN_LENGTH, PatternError, compile_pattern

# Patterns drawn from a grammar that never tells 0 from 4-9 apart, so that the
# alphabet "0123*#+" (with '0' weighing 7 digits) represents every dialed string.
_ATOMS = ["1", "2", "3", "*", "#", "X", "[12]", "[^1]", "[1-3]", "[2*]", "\\+"]
REP_ALPHABET = "0123*#+"
WEIGHT = {"0": 7, "1": 1, "2": 1, "3": 1, "*": 1, "#": 1, "+": 1}


@st.composite
def patterns(draw: st.DrawFn, max_elements: int = 4) -> str:
    n = draw(st.integers(1, max_elements))
    parts: list[str] = []
    for _ in range(n):
        if draw(st.integers(0, 6)) == 0:
            parts.append("!")
        else:
            parts.append(draw(st.sampled_from(_ATOMS)) + draw(st.sampled_from(["", "", "?", "+"])))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), ".")
    return "".join(parts)


def to_regex(text: str) -> str:
    """An independent translation of a (grammar) pattern into a Python regex."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in "0123456789":
            out.append(c)
        elif c in "*#":
            out.append(re.escape(c))
        elif c == "X":
            out.append("[0-9]")
        elif c == "!":
            out.append("[0-9]+")
        elif c == "\\":
            out.append(r"\+")
            i += 1
        elif c == "[":
            j = text.index("]", i)
            body = text[i + 1 : j]
            if body.startswith("^"):
                out.append(f"(?:(?![{body[1:]}])[0-9])")
            else:
                out.append(f"[{re.escape(body).replace(chr(92) + '-', '-')}]")
            i = j
        elif c == "?":
            out.append("*")
        elif c == "+":
            out.append("+")
        elif c == ".":
            pass
        i += 1
    return "".join(out)


digit_strings = st.text(alphabet=REP_ALPHABET, max_size=7)


@settings(max_examples=300, deadline=None)
@given(patterns(max_elements=6), st.lists(digit_strings, min_size=1, max_size=8))
def test_matches_agrees_with_regex(text: str, strings: list[str]) -> None:
    p = compile_pattern(text)
    rx = re.compile(to_regex(text))
    for s in strings:
        assert p.matches(s) == bool(rx.fullmatch(s)), (text, s)


@settings(max_examples=150, deadline=None)
@given(patterns(max_elements=3), st.lists(st.text(alphabet=REP_ALPHABET, max_size=4), max_size=4))
def test_could_extend_agrees_with_enumeration(text: str, strings: list[str]) -> None:
    # With at most 3 elements, a completion (if any) needs at most 3 more symbols.
    p = compile_pattern(text)
    rx = re.compile(to_regex(text))
    for s in strings:
        expect = any(
            rx.fullmatch(s + "".join(tail))
            for k in range(1, 4)
            for tail in itertools.product(REP_ALPHABET, repeat=k)
        )
        assert p.could_extend(s) == expect, (text, s)


@settings(max_examples=200, deadline=None)
@given(patterns(max_elements=5), st.integers(0, 4))
def test_match_count_agrees_with_enumeration(text: str, length: int) -> None:
    p = compile_pattern(text)
    rx = re.compile(to_regex(text))
    expect = 0
    for tup in itertools.product(REP_ALPHABET, repeat=length):
        if rx.fullmatch("".join(tup)):
            w = 1
            for c in tup:
                w *= WEIGHT[c]
            expect += w
    assert p.match_count(length) == expect, (text, length)


@settings(max_examples=200, deadline=None)
@given(patterns(max_elements=5), st.text(alphabet=REP_ALPHABET, max_size=8))
def test_discard_split_reassembles(text: str, s: str) -> None:
    p = compile_pattern(text)
    if not p.matches(s):
        return
    pre, post = p.discard_split(s)
    assert pre + post == s
    if p.dot < 0:
        assert pre == ""
    else:
        head, _, tail = text.partition(".")
        assert re.fullmatch(to_regex(head), pre) if head else pre == ""
        assert re.fullmatch(to_regex(tail), post) if tail else post == ""


@settings(max_examples=200, deadline=None)
@given(patterns(max_elements=6))
def test_min_max_length_bound_matches(text: str) -> None:
    p = compile_pattern(text)
    rx = re.compile(to_regex(text))
    for n in range(0, 8):
        any_match = any(rx.fullmatch("".join(t)) for t in itertools.product("0*+", repeat=n))
        if any_match:
            assert n >= p.min_length
            assert p.max_length is None or n <= p.max_length
    assert p.match_count(p.min_length) > 0


_PATTERNISH = "0123456789*#+X!?[]^-.\\@x ab"


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(alphabet=_PATTERNISH, max_size=80), st.text(max_size=80)))
def test_compile_returns_or_raises_pattern_error(text: str) -> None:
    try:
        p = compile_pattern(text)
    except PatternError as err:
        assert 1 <= err.column <= max(1, min(len(text), MAX_PATTERN_LENGTH + 1))
        return
    assert p.text == text
    assert len(text) <= MAX_PATTERN_LENGTH
    assert p.min_length >= 0
    p.matches("1234")
    p.could_extend("12")
    p.match_count(p.min_length)
