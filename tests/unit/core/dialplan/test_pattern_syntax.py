"""The Cisco pattern language: every wildcard and class, quantifiers, '.', errors, counts."""

from __future__ import annotations

import pytest

from offhook.core.dialplan.pattern import Pattern, PatternError, compile_pattern


def m(text: str, digits: str) -> bool:
    return compile_pattern(text).matches(digits)


# -- single elements -------------------------------------------------------------


def test_literal_digits_star_hash() -> None:
    assert m("1000", "1000")
    assert not m("1000", "1001")
    assert not m("1000", "100")
    assert not m("1000", "10000")
    assert m("*67#", "*67#")
    assert not m("*67#", "#67*")


def test_x_is_any_digit_only() -> None:
    p = compile_pattern("1XXX")
    assert all(p.matches(f"1{d}00") for d in "0123456789")
    assert not p.matches("1*00")
    assert not p.matches("1#00")
    assert not p.matches("1+00")


def test_bang_is_one_or_more_digits() -> None:
    p = compile_pattern("9011!")
    assert not p.matches("9011")
    assert p.matches("90114")
    assert p.matches("9011" + "4" * 30)
    assert not p.matches("90114#")
    assert compile_pattern("9011!#").matches("901144#")


def test_class_digits_and_range() -> None:
    p = compile_pattern("[135]")
    assert [d for d in "0123456789" if p.matches(d)] == ["1", "3", "5"]
    p = compile_pattern("[1-5]")
    assert [d for d in "0123456789" if p.matches(d)] == ["1", "2", "3", "4", "5"]
    p = compile_pattern("[02-46]")
    assert [d for d in "0123456789" if p.matches(d)] == ["0", "2", "3", "4", "6"]
    p = compile_pattern("[*#]")
    assert p.matches("*") and p.matches("#") and not p.matches("1")


def test_negated_class_is_digits_except() -> None:
    p = compile_pattern("[^0]")
    assert [d for d in "0123456789" if p.matches(d)] == list("123456789")
    assert not p.matches("*")
    p = compile_pattern("[^1-8]")
    assert [d for d in "0123456789" if p.matches(d)] == ["0", "9"]


def test_question_is_zero_or_more_of_previous() -> None:
    p = compile_pattern("91?2")
    assert p.matches("92")
    assert p.matches("912")
    assert p.matches("91112")
    assert not p.matches("9122")


def test_plus_is_one_or_more_of_previous() -> None:
    p = compile_pattern("91+2")
    assert not p.matches("92")
    assert p.matches("912")
    assert p.matches("91112")


def test_quantifiers_after_classes_and_x() -> None:
    p = compile_pattern("8[2-9]?X")
    assert p.matches("81")
    assert p.matches("8231")
    assert not p.matches("8211")  # '1' is not in [2-9] before the final X
    p = compile_pattern("8[^0]+0")
    assert p.matches("810")
    assert p.matches("8123450")
    assert not p.matches("80")
    assert not p.matches("8100")  # [^0]+ cannot take the first 0
    p = compile_pattern("X+")
    assert p.matches("1") and p.matches("123456") and not p.matches("")


def test_escaped_plus_is_literal_e164() -> None:
    p = compile_pattern(r"\+1XXX")
    assert p.matches("+1555")
    assert not p.matches("1555")
    assert not p.matches("11555")
    p = compile_pattern(r"\+!")
    assert p.matches("+4930123")
    assert p.min_length == 2 and p.max_length is None


# -- discard point ---------------------------------------------------------------


def test_dot_consumes_nothing_and_splits() -> None:
    p = compile_pattern("9.1[2-9]XX[2-9]XXXXXX")
    assert p.matches("912125551212")
    assert p.discard_split("912125551212") == ("9", "12125551212")
    assert compile_pattern("9.011!").discard_split("9011441234") == ("9", "011441234")
    assert compile_pattern("1XXX").discard_split("1234") == ("", "1234")
    assert compile_pattern(".1XXX").discard_split("1234") == ("", "1234")
    assert compile_pattern("1XXX.").discard_split("1234") == ("1234", "")
    assert compile_pattern("\\+.1XXX").discard_split("+1234") == ("+", "1234")


def test_dot_with_variable_parts_takes_longest_pre_dot() -> None:
    p = compile_pattern("X+.X+")
    assert p.discard_split("1234") == ("123", "4")
    p = compile_pattern("1!.#")
    assert p.discard_split("1555#") == ("1555", "#")


def test_discard_split_on_non_matching_string_raises() -> None:
    with pytest.raises(ValueError):
        compile_pattern("9.1XXX").discard_split("81234")
    with pytest.raises(ValueError):
        compile_pattern("1XXX").discard_split("2234")


# -- prefixes --------------------------------------------------------------------


def test_could_extend_is_proper_prefix() -> None:
    p = compile_pattern("9.1[2-9]XX[2-9]XXXXXX")
    assert p.could_extend("")
    assert p.could_extend("9")
    assert p.could_extend("91212555121")
    assert not p.could_extend("912125551212")  # complete: nothing longer matches
    assert not p.could_extend("911")  # 1 is not in [2-9]
    assert not p.could_extend("8")
    b = compile_pattern("9011!")
    assert b.could_extend("9011")
    assert b.could_extend("901144")  # matches and could still grow
    assert b.matches("901144")
    assert not b.could_extend("90114#")


# -- lengths and counts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length", "count"),
    [
        ("1XXX", 4, 1000),
        ("1XXX", 3, 0),
        ("1XXX", 5, 0),
        ("1[2-5]XX", 4, 400),
        ("1000", 4, 1),
        ("[^0]XXX", 4, 9000),
        ("!", 1, 10),
        ("!", 3, 1000),
        ("!", 7, 10**7),
        ("!", 0, 0),
        ("9.011!", 6, 100),
        ("9.011!", 10, 10**6),
        ("91?2", 2, 1),
        ("91?2", 5, 1),
        ("[12]+", 3, 8),
        ("X?X?", 2, 100),  # distinct strings, not parses
        ("[12]?[23]?", 2, 8),  # 11 12 13 21 22 23 32 33
        ("\\+1XXX", 5, 1000),
        ("9.1[2-9]XX[2-9]XXXXXX", 12, 8 * 100 * 8 * 10**6),
    ],
)
def test_match_count(text: str, length: int, count: int) -> None:
    assert compile_pattern(text).match_count(length) == count


def test_min_max_length() -> None:
    assert (compile_pattern("9.1XXX").min_length, compile_pattern("9.1XXX").max_length) == (5, 5)
    assert compile_pattern("9.011!").min_length == 5
    assert compile_pattern("9.011!").max_length is None
    assert compile_pattern("91?2").min_length == 2
    assert compile_pattern("91?2").max_length is None
    assert compile_pattern("91+2").min_length == 3


def test_equality_by_text_and_direct_construction() -> None:
    assert Pattern("1XXX") == compile_pattern("1XXX")
    assert hash(Pattern("1XXX")) == hash(compile_pattern("1XXX"))
    assert Pattern("1XXX") != Pattern("1[0-9]XX")
    assert Pattern("1XXX").elements == Pattern("1[0-9]XX").elements  # same element keys
    with pytest.raises(PatternError):
        Pattern("1[")


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "empty"),
        ("91[2-9XX", 3, "unbalanced '['"),
        ("91]", 3, "']' without '['"),
        ("9[]1", 2, "empty class"),
        ("9[^]1", 2, "empty class"),
        ("[^0-9]", 1, "excludes every digit"),
        ("[5-2]", 2, "empty range"),
        ("[2-]", 3, "upper bound"),
        ("[-2]", 2, "lower bound"),
        ("[2-a]", 4, "not a digit"),
        ("[1a]", 3, "in a class"),
        ("?12", 1, "nothing to repeat"),
        ("+12", 1, "nothing to repeat"),
        ("1??", 3, "nothing to repeat"),
        ("1?+", 3, "nothing to repeat"),
        ("!?", 2, "nothing to repeat"),
        ("9.?1", 3, "nothing to repeat"),
        ("9.1.2", 4, "second '.'"),
        ("1X2a", 4, "unexpected character 'a'"),
        ("1 2", 2, "unexpected character ' '"),
        ("1x2", 2, "unexpected character 'x'"),
        ("9.@", 3, "'@'"),
        ("\\1", 1, "followed by '+'"),
        ("12\\", 3, "followed by '+'"),
        (".", 1, "no digits"),
        ("X" * 65, 65, "longer than 64"),
    ],
)
def test_errors_say_what_and_where(text: str, column: int, words: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(text)
    err = info.value
    assert err.column == column, str(err)
    assert words in err.reason, str(err)
    assert f"column {column}" in str(err)
    assert isinstance(err, ValueError)


def test_longest_allowed_pattern() -> None:
    p = compile_pattern("X" * 64)
    assert p.matches("1" * 64)
    assert p.match_count(64) == 10**64


def test_match_count_stays_fast_on_stacked_repeats() -> None:
    """Many stacked repeats blow up the subset automaton; counting falls back (fuzz find)."""
    from offhook.core.dialplan.pattern import compile_pattern

    p = compile_pattern("!!!0?0?!4XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX?")
    # Both answer in milliseconds; before the fallback this took minutes.
    assert p.match_count(p.min_length) > 0
    assert p.match_count(p.min_length + 1) > 0
