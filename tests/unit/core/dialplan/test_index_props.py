"""Property: the indexed analysis agrees with a brute-force scan of every entry."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.core.dialplan.index import Analysis, IndexEntry, PatternIndex
from offhook.core.dialplan.pattern import compile_pattern

_ATOMS = ["1", "2", "3", "*", "#", "X", "[12]", "[^1]", "[1-3]", "[2*]", "\\+"]
_PARTITIONS = ["", "a", "b", "c"]
_KINDS = ["dn", "route", "translation"]
_ALPHABET = "0123*#+"


@st.composite
def pattern_texts(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 4))
    parts: list[str] = []
    for _ in range(n):
        if draw(st.integers(0, 7)) == 0:
            parts.append("!")
        else:
            quant = draw(st.sampled_from(["", "", "", "?", "+"]))
            parts.append(draw(st.sampled_from(_ATOMS)) + quant)
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), ".")
    return "".join(parts)


@st.composite
def entries(draw: st.DrawFn) -> IndexEntry:
    text = draw(pattern_texts())
    return IndexEntry(
        compile_pattern(text),
        draw(st.sampled_from(_PARTITIONS)),
        draw(st.sampled_from(_KINDS)),
        object(),
        draw(st.booleans()),
    )


def brute_force(plan: Sequence[IndexEntry], digits: str, css: Sequence[str]) -> Analysis:
    """The reference: scan every entry, apply Cisco's selection rules."""
    visible: list[str] = []
    for name in [*css, ""]:
        if name not in visible:
            visible.append(name)
    best: tuple[int, int, int, int] | None = None
    match: IndexEntry | None = None
    candidates = 0
    more = False
    for order, e in enumerate(plan):
        if e.partition not in visible:
            continue
        if e.pattern.could_extend(digits):
            more = True
        if e.pattern.matches(digits):
            candidates += 1
            key = (
                e.pattern.match_count(len(digits)),
                visible.index(e.partition),
                0 if e.kind == "dn" else 1,
                order,
            )
            if best is None or key < best:
                best, match = key, e
    return Analysis(match, more, candidates)


css_lists = st.lists(st.sampled_from(["a", "b", "c", "d", ""]), max_size=4, unique=True)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(entries(), max_size=14),
    st.lists(st.tuples(st.text(alphabet=_ALPHABET, max_size=7), css_lists), min_size=1, max_size=6),
)
def test_index_agrees_with_brute_force(
    plan: list[IndexEntry], queries: list[tuple[str, list[str]]]
) -> None:
    ix = PatternIndex(plan)
    assert len(ix) == len(plan)
    for digits, css in queries:
        got = ix.analyze(digits, css)
        want = brute_force(plan, digits, css)
        assert got.match is want.match, (digits, css, got, want)
        assert got == want, (digits, css)


@settings(max_examples=200, deadline=None)
@given(st.lists(entries(), min_size=1, max_size=14), st.data())
def test_index_agrees_on_prefixes_of_matching_strings(
    plan: list[IndexEntry], data: st.DataObject
) -> None:
    # Random strings rarely hit long patterns: walk a string the plan matches.
    ix = PatternIndex(plan)
    css = data.draw(css_lists)
    target = data.draw(st.sampled_from(plan))
    digits = ""
    for _ in range(8):
        if not target.pattern.could_extend(digits):
            break
        options = [c for c in _ALPHABET if _ok(target, digits + c)]
        if not options:
            break
        digits += data.draw(st.sampled_from(options))
    for k in range(len(digits) + 1):
        assert ix.analyze(digits[:k], css) == brute_force(plan, digits[:k], css)


def _ok(e: IndexEntry, s: str) -> bool:
    return e.pattern.matches(s) or e.pattern.could_extend(s)


@settings(max_examples=200, deadline=None)
@given(st.lists(pattern_texts(), min_size=1, max_size=3), st.data())
def test_index_agrees_on_crowded_plans(bases: list[str], data: st.DataObject) -> None:
    # Few distinct patterns repeated over partitions and kinds: many full
    # matches per string, so the tie rules (CSS order, DN first, first added)
    # and entries sharing one trie node are exercised.
    plan = [
        IndexEntry(
            compile_pattern(data.draw(st.sampled_from(bases))),
            data.draw(st.sampled_from(_PARTITIONS)),
            data.draw(st.sampled_from(_KINDS)),
            object(),
            data.draw(st.booleans()),
        )
        for _ in range(data.draw(st.integers(2, 12)))
    ]
    ix = PatternIndex(plan)
    for _ in range(3):
        css = data.draw(css_lists)
        target = data.draw(st.sampled_from(plan))
        digits = ""
        for _ in range(6):
            options = [c for c in _ALPHABET if _ok(target, digits + c)]
            if not options or not target.pattern.could_extend(digits):
                break
            digits += data.draw(st.sampled_from(options))
        for k in range(len(digits) + 1):
            assert ix.analyze(digits[:k], css) == brute_force(plan, digits[:k], css)
