"""Digit analysis over the index: closest match, ties, CSS visibility, urgent, prefixes."""

from __future__ import annotations

import pytest

from offhook.core.dialplan.index import MAX_DIALED_LENGTH, Analysis, IndexEntry, PatternIndex
from offhook.core.dialplan.model import DirectoryNumber, RoutePattern, TranslationPattern
from offhook.core.dialplan.pattern import compile_pattern


def dn(number: str, partition: str = "internal") -> IndexEntry:
    return IndexEntry(
        compile_pattern(number), partition, "dn", DirectoryNumber(number, partition, ("d",))
    )


def route(pattern: str, partition: str = "pstn", urgent: bool = False) -> IndexEntry:
    payload = RoutePattern(pattern, partition, route_list="out", urgent=urgent)
    return IndexEntry(compile_pattern(pattern), partition, "route", payload, urgent)


def xlate(pattern: str, partition: str = "internal") -> IndexEntry:
    payload = TranslationPattern(pattern, partition, css="staff")
    return IndexEntry(compile_pattern(pattern), partition, "translation", payload)


STAFF = ["internal", "pstn"]


def test_exact_dn_and_unknown() -> None:
    a = dn("1001")
    ix = PatternIndex([a, dn("1002")])
    assert len(ix) == 2
    got = ix.analyze("1001", STAFF)
    assert got == Analysis(a, False, 1)
    assert got.route_now
    assert ix.analyze("1003", STAFF) == Analysis(None, False, 0)
    assert ix.analyze("10011", STAFF) == Analysis(None, False, 0)


def test_closest_match_fewest_strings_wins() -> None:
    wide = route("1XXX")
    narrow = route("1[2-5]XX")
    narrower = route("13XX")
    ix = PatternIndex([wide, narrow, narrower])
    assert ix.analyze("1999", STAFF).match is wide
    assert ix.analyze("1299", STAFF).match is narrow
    r = ix.analyze("1399", STAFF)
    assert r.match is narrower
    assert r.candidates == 3


def test_closest_match_with_variable_length_patterns() -> None:
    bang = route("9.!")
    intl = route("9.011!")
    ld = route("9.1[2-9]XX[2-9]XXXXXX")
    ix = PatternIndex([bang, intl, ld])
    r = ix.analyze("912125551212", STAFF)
    assert r.match is ld  # 6.4e9 strings of length 12 against 1e11 for 9.!
    assert r.candidates == 2
    assert not r.more_possible or r.match is ld
    r = ix.analyze("9011441234", STAFF)
    assert r.match is intl
    assert r.more_possible  # ! can always take another digit
    assert not r.route_now


def test_dn_beats_pattern_on_equal_count_same_partition() -> None:
    pat = route("1000", "internal")
    line = dn("1000", "internal")
    ix = PatternIndex([pat, line])
    r = ix.analyze("1000", STAFF)
    assert r.match is line
    assert r.candidates == 2


def test_tie_goes_to_first_partition_in_css() -> None:
    a = route("2XXX", "pstn")
    b = route("2XXX", "internal")
    ix = PatternIndex([a, b])
    assert ix.analyze("2000", ["internal", "pstn"]).match is b
    assert ix.analyze("2000", ["pstn", "internal"]).match is a
    # CSS order decides before "a DN beats a pattern".
    line = dn("3000", "pstn")
    pat = route("3000", "internal")
    ix = PatternIndex([line, pat])
    assert ix.analyze("3000", ["internal", "pstn"]).match is pat


def test_tie_remaining_goes_to_first_added() -> None:
    first = route("4XXX", "pstn")
    second = xlate("4XXX", "pstn")
    ix = PatternIndex([first, second])
    assert ix.analyze("4000", STAFF).match is first
    ix = PatternIndex([second, first])
    assert ix.analyze("4000", STAFF).match is second


def test_equivalent_spellings_share_a_node_and_count() -> None:
    a = route("1[0-9]XX", "pstn")
    b = route("1X[0-9]X", "internal")
    ix = PatternIndex([a, b])
    r = ix.analyze("1234", ["internal", "pstn"])
    assert r.match is b
    assert r.candidates == 2


def test_closeness_beats_css_order() -> None:
    wide = route("5XXX", "internal")
    exact = dn("5000", "pstn")
    ix = PatternIndex([wide, exact])
    assert ix.analyze("5000", ["internal", "pstn"]).match is exact


def test_partition_outside_css_is_invisible() -> None:
    secret = dn("1001", "executive")
    ix = PatternIndex([secret, dn("1002")])
    assert ix.analyze("1001", ["internal"]) == Analysis(None, False, 0)
    assert ix.analyze("100", ["internal"]).more_possible  # 1002 is visible
    assert ix.analyze("1001", ["internal", "executive"]).match is secret
    # Invisible patterns do not make more digits possible either.
    ix = PatternIndex([route("9.011!", "pstn")])
    assert ix.analyze("90", ["internal"]) == Analysis(None, False, 0)
    assert ix.analyze("90", ["pstn"]).more_possible
    # Unknown partitions in a CSS are harmless.
    assert ix.analyze("90", ["nope", "pstn"]).more_possible


def test_null_partition_visible_to_all_and_searched_last() -> None:
    none_part = route("7XXX", "")
    internal = route("7XXX", "internal")
    ix = PatternIndex([none_part, internal])
    assert ix.analyze("7000", []).match is none_part
    assert ix.analyze("7000", ["lobby"]).match is none_part
    assert ix.analyze("7000", ["internal"]).match is internal
    # Named explicitly, the null partition takes its place in the CSS.
    assert ix.analyze("7000", ["", "internal"]).match is none_part
    assert "" in ix.partitions


def test_urgent_routes_now_despite_longer_patterns() -> None:
    emergency = route("911", urgent=True)
    other = route("911X")
    ix = PatternIndex([emergency, other])
    r = ix.analyze("911", STAFF)
    assert r.match is emergency
    assert r.more_possible
    assert r.route_now
    plain = PatternIndex([route("911"), other])
    r = plain.analyze("911", STAFF)
    assert r.match is not None and r.more_possible and not r.route_now


def test_en_bloc_prefix_is_more_possible_484() -> None:
    ix = PatternIndex([dn("1001"), route("9.1[2-9]XX[2-9]XXXXXX")])
    r = ix.analyze("100", STAFF)
    assert r.match is None and r.more_possible  # en bloc: 484 Address Incomplete
    r = ix.analyze("91212", STAFF)
    assert r.match is None and r.more_possible
    r = ix.analyze("911", STAFF)
    assert r == Analysis(None, False, 0)  # 1 then 1: [2-9] cannot follow: unallocated


def test_overlap_digit_by_digit() -> None:
    line = dn("2001")
    op = xlate("0", "internal")
    ld = route("9.1[2-9]XX[2-9]XXXXXX")
    ix = PatternIndex([line, op, ld])
    steps = [ix.analyze("912125551212"[:k], STAFF) for k in range(13)]
    assert all(s.match is None and s.more_possible for s in steps[:12])
    assert steps[12].match is ld and steps[12].route_now
    assert ix.analyze("0", STAFF).route_now
    assert ix.analyze("", STAFF) == Analysis(None, True, 0)


def test_optional_and_repeat_elements_in_the_index() -> None:
    opt = route("8[2-5]?0")
    rep = route("7#+")
    star = route("*6X?")
    ix = PatternIndex([opt, rep, star])
    assert ix.analyze("80", STAFF).match is opt
    assert ix.analyze("80", STAFF).more_possible is False
    assert ix.analyze("8", STAFF).more_possible
    assert ix.analyze("8230", STAFF).match is opt
    assert ix.analyze("82", STAFF) == Analysis(None, True, 0)
    assert ix.analyze("7", STAFF) == Analysis(None, True, 0)
    r = ix.analyze("7###", STAFF)
    assert r.match is rep and r.more_possible
    assert ix.analyze("*6", STAFF).match is star
    assert ix.analyze("*6123", STAFF).match is star


def test_e164_plus() -> None:
    e164 = route("\\+1XXX", "pstn")
    ix = PatternIndex([e164, dn("1555")])
    assert ix.analyze("+1555", STAFF).match is e164
    assert ix.analyze("1555", STAFF).match is not e164
    assert ix.analyze("+", STAFF).more_possible


def test_bad_input_matches_nothing() -> None:
    ix = PatternIndex([route("!")])
    assert ix.analyze("12a4", STAFF) == Analysis(None, False, 0)
    assert ix.analyze("1" * MAX_DIALED_LENGTH, STAFF).match is not None
    assert ix.analyze("1" * (MAX_DIALED_LENGTH + 1), STAFF) == Analysis(None, False, 0)


def test_empty_index_and_memory() -> None:
    ix = PatternIndex([])
    assert len(ix) == 0
    assert ix.analyze("1", ["x"]) == Analysis(None, False, 0)
    small = PatternIndex([dn("1001")]).memory_estimate()
    big = PatternIndex([dn(f"{n}") for n in range(1000, 2000)]).memory_estimate()
    assert 0 < small < big


def test_css_must_be_a_sequence_of_names() -> None:
    ix = PatternIndex([dn("1001")])
    with pytest.raises(TypeError):
        ix.analyze("1001", "internal")
    assert ix.analyze("1001", ("internal",)).match is not None
