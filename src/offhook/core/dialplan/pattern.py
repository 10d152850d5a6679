"""Cisco CallManager pattern language: parse a pattern once, match dialed digits.

Syntax (what CallManager accepts, minus the ``@`` NANP macro):

==========  ==============================================================
``0-9*#``   that symbol
``X``       any digit 0-9
``!``       one or more digits
``[1-5]``   a class: digits, ranges of digits, ``*`` and ``#``
``[^0]``    any digit 0-9 except those listed
``?``       zero or more of the previous element (digit, ``X``, class)
``+``       one or more of the previous element
``\\+``     a literal plus sign (E.164: ``\\+1XXX``)
``.``       the discard point: consumes nothing, at most one
==========  ==============================================================

Theory of operation. A pattern compiles to a sequence of *elements*; each is
a set of dialed symbols (a 13-bit mask over ``0-9 * # +``) with a repetition
kind: once, zero-or-more (``?``) or one-or-more (``+`` and ``!``). An element
is stored as one character ``chr(mask | kind << 13)``, so a pattern's body is
a compact ``str`` and equal elements (``[5]`` and ``5``, ``[0-9]`` and ``X``)
are equal keys; :mod:`offhook.core.dialplan.index` builds its trie on them.

Matching is a bit-parallel NFA simulation: state ``j`` means "the first ``j``
elements are satisfied"; consuming a symbol in element ``j`` leads to
``j + 1`` and, for repeatable elements, back to ``j``; a ``?`` element is
also skipped without consuming (epsilon closure). ``match_count`` (the
closest-match metric: how many strings of a length the pattern matches)
is a closed form when at most one element repeats, and otherwise counts
paths of the subset automaton (distinct strings, not parses).

Pure and sans-IO: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "MAX_PATTERN_LENGTH",
    "SYMBOLS",
    "Pattern",
    "PatternError",
    "compile_pattern",
    "element_key",
    "symbol_bit",
]

MAX_PATTERN_LENGTH = 64
SYMBOLS = "0123456789*#+"
"""The dialed alphabet, in bit order: bit ``i`` of an element mask is ``SYMBOLS[i]``."""

_BIT: dict[str, int] = {c: 1 << i for i, c in enumerate(SYMBOLS)}
_DIGITS = 0x3FF  # X, !, and the universe of [^...]
ONCE, STAR, PLUS = 0, 1, 2  # element kinds: exactly once, '?' (zero or more), '+'/'!' (one or more)
_KIND_SHIFT = 13
_MASK = (1 << _KIND_SHIFT) - 1


def symbol_bit(symbol: str) -> int:
    """The mask bit of a dialed symbol, or 0 if it is not a dialable symbol."""
    return _BIT.get(symbol, 0)


def element_key(mask: int, kind: int) -> str:
    """The one-character encoding of an element (see the module docstring)."""
    return chr(mask | kind << _KIND_SHIFT)


def _decode(key: str) -> tuple[int, int]:
    code = ord(key)
    return code & _MASK, code >> _KIND_SHIFT


class PatternError(ValueError):
    """A malformed pattern; ``column`` is 1-based in ``text``."""

    def __init__(self, reason: str, column: int, text: str) -> None:
        super().__init__(f"{reason} at column {column} in pattern {text!r}")
        self.reason = reason
        self.column = column
        self.text = text


_MAX_SUBSETS = 4096  # subset-automaton states before match_count falls back


@dataclass(frozen=True, slots=True)
class _Nfa:
    """Bit-parallel matcher over element positions 0..m (m = accepting)."""

    by_symbol: dict[str, int]  # symbol -> positions whose element contains it
    loops: int  # positions whose element repeats
    optional: int  # positions whose element may be skipped
    start: int
    accept: int

    def close(self, states: int) -> int:
        opt = self.optional
        while True:
            more = states | ((states & opt) << 1)
            if more == states:
                return states
            states = more

    def step(self, states: int, symbol: str) -> int:
        hit = states & self.by_symbol.get(symbol, 0)
        if not hit:
            return 0
        return self.close((hit << 1) | (hit & self.loops))

    def run(self, digits: str) -> int:
        states = self.start
        for c in digits:
            states = self.step(states, c)
            if not states:
                return 0
        return states


def _build_nfa(elems: str) -> _Nfa:
    by_symbol = dict.fromkeys(SYMBOLS, 0)
    loops = optional = 0
    for j, key in enumerate(elems):
        mask, kind = _decode(key)
        for i, c in enumerate(SYMBOLS):
            if mask >> i & 1:
                by_symbol[c] |= 1 << j
        if kind != ONCE:
            loops |= 1 << j
        if kind == STAR:
            optional |= 1 << j
    nfa = _Nfa(by_symbol, loops, optional, 1, 1 << len(elems))
    return _Nfa(by_symbol, loops, optional, nfa.close(1), 1 << len(elems))


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern. ``Pattern(text)`` parses (raises :class:`PatternError`).

    Equality and hashing are by ``text``.
    """

    text: str
    elements: str = field(init=False, repr=False, compare=False)
    dot: int = field(init=False, repr=False, compare=False)  # element index of '.', -1 if none
    _min: int = field(init=False, repr=False, compare=False)
    _max: int | None = field(init=False, repr=False, compare=False)
    _fixed_count: int = field(init=False, repr=False, compare=False)
    _cache: dict[object, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        elems, dot = _parse(self.text)
        set_ = object.__setattr__
        set_(self, "elements", elems)
        set_(self, "dot", dot)
        lo, hi, fixed = 0, 0, 1
        bounded = True
        for key in elems:
            mask, kind = _decode(key)
            if kind == ONCE:
                lo += 1
                hi += 1
                fixed *= mask.bit_count()
            else:
                bounded = False
                lo += kind == PLUS
        set_(self, "_min", lo)
        set_(self, "_max", hi if bounded else None)
        set_(self, "_fixed_count", fixed)
        set_(self, "_cache", {})

    # -- shape ---------------------------------------------------------------

    @property
    def min_length(self) -> int:
        """The fewest symbols a matching string has."""
        return self._min

    @property
    def max_length(self) -> int | None:
        """The most symbols a matching string has; None when ``!``/``?``/``+`` make it unbounded."""
        return self._max

    @property
    def fixed_length(self) -> bool:
        return self._max is not None

    # -- matching ------------------------------------------------------------

    def _nfa(self) -> _Nfa:
        nfa = self._cache.get("nfa")
        if nfa is None:
            nfa = _build_nfa(self.elements)
            self._cache["nfa"] = nfa
        assert isinstance(nfa, _Nfa)
        return nfa

    def matches(self, digits: str) -> bool:
        """True if the pattern matches the whole of ``digits``."""
        if self._max is not None and len(digits) != self._max:
            return False
        nfa = self._nfa()
        return bool(nfa.run(digits) & nfa.accept)

    def could_extend(self, digits: str) -> bool:
        """True if ``digits`` is a proper prefix of some string the pattern matches."""
        if self._max is not None and len(digits) >= self._max:
            return False
        nfa = self._nfa()
        # Every element matches at least one symbol, so any live non-final
        # position can still consume a symbol and reach the end.
        return bool(nfa.run(digits) & (nfa.accept - 1))

    def match_count(self, length: int) -> int:
        """How many distinct strings of ``length`` symbols the pattern matches (0 if none).

        The closest-match metric: of the patterns matching a dialed string, the
        one with the smallest count for its length wins.
        """
        if length < self._min:
            return 0
        if self._max is not None:
            return self._fixed_count if length == self._max else 0
        key = ("count", length)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._count(length)
            self._cache[key] = cached
        assert isinstance(cached, int)
        return cached

    def _count(self, length: int) -> int:
        repeat = [_decode(k) for k in self.elements if _decode(k)[1] != ONCE]
        if len(repeat) == 1:
            # One repeating element: its number of symbols follows from the
            # length, so every string has exactly one parse.
            mask, _ = repeat[0]
            extra = length - (len(self.elements) - 1)
            return self._fixed_count * int(mask.bit_count() ** extra)
        # Several repeating elements: count paths in the subset automaton
        # (determinised NFA), so strings with several parses count once.
        nfa = self._nfa()
        groups: dict[int, tuple[str, int]] = {}
        for c in SYMBOLS:
            col = nfa.by_symbol[c]
            if col:
                rep, n = groups.get(col, (c, 0))
                groups[col] = (rep, n + 1)
        counts: dict[int, int] = {nfa.start: 1}
        for _ in range(length):
            nxt: dict[int, int] = {}
            for states, n in counts.items():
                for rep, width in groups.values():
                    after = nfa.step(states, rep)
                    if after:
                        nxt[after] = nxt.get(after, 0) + n * width
            counts = nxt
            if not counts:
                return 0
            if len(counts) > _MAX_SUBSETS:
                # Pathological patterns (many stacked repeats) make the subset
                # automaton explode; count parses instead (polynomial, an
                # upper bound: a string with several parses counts several times).
                return self._count_parses(nfa, groups, length)
        return sum(n for states, n in counts.items() if states & nfa.accept)

    @staticmethod
    def _count_parses(nfa: _Nfa, groups: dict[int, tuple[str, int]], length: int) -> int:
        counts: dict[int, int] = {}
        for j in range(nfa.accept.bit_length()):
            if nfa.start >> j & 1:
                counts[1 << j] = 1
        for _ in range(length):
            nxt: dict[int, int] = {}
            for bit, n in counts.items():
                for rep, width in groups.values():
                    after = nfa.step(bit, rep)
                    while after:
                        low = after & -after
                        nxt[low] = nxt.get(low, 0) + n * width
                        after ^= low
            counts = nxt
            if not counts:
                return 0
        return sum(n for bit, n in counts.items() if bit & nfa.accept)

    def discard_split(self, digits: str) -> tuple[str, str]:
        """``(before the '.', after the '.')`` for a string the pattern matches.

        ``('', digits)`` when the pattern has no dot. When several splits are
        possible (``X?.X?``) the longest pre-dot part is taken. Raises
        ValueError if the pattern does not match ``digits``.
        """
        if self.dot < 0:
            if not self.matches(digits):
                raise ValueError(f"{digits!r} does not match pattern {self.text!r}")
            return "", digits
        pre = _build_nfa(self.elements[: self.dot])
        post = _build_nfa(self.elements[self.dot :])
        reach = [pre.start]
        states = pre.start
        for c in digits:
            states = pre.step(states, c)
            reach.append(states)
        for i in range(len(digits), -1, -1):
            if reach[i] & pre.accept and post.run(digits[i:]) & post.accept:
                return digits[:i], digits[i:]
        raise ValueError(f"{digits!r} does not match pattern {self.text!r}")


def compile_pattern(text: str) -> Pattern:
    """Parse a Cisco pattern; raises :class:`PatternError` saying what and where."""
    return Pattern(text)


def _parse(text: str) -> tuple[str, int]:
    """Return (elements, dot index) for ``text`` or raise PatternError."""
    if not isinstance(text, str):
        raise PatternError("pattern is not a string", 1, repr(text))
    if not text:
        raise PatternError("empty pattern", 1, text)
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"pattern longer than {MAX_PATTERN_LENGTH} characters", MAX_PATTERN_LENGTH + 1, text
        )
    out: list[str] = []
    dot = -1
    # Whether the last thing parsed can take '?' or '+': a single element
    # (digit, X, class, \+) with no repetition yet. '!' already repeats.
    can_repeat = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        col = i + 1
        if c in "0123456789*#":
            out.append(element_key(_BIT[c], ONCE))
            can_repeat = True
        elif c == "X":
            out.append(element_key(_DIGITS, ONCE))
            can_repeat = True
        elif c == "!":
            out.append(element_key(_DIGITS, PLUS))
            can_repeat = False
        elif c == "[":
            mask, i = _parse_class(text, i)
            out.append(element_key(mask, ONCE))
            can_repeat = True
        elif c in "?+":
            if not can_repeat:
                what = "at the start" if not out and dot < 0 else "here"
                raise PatternError(
                    f"{c!r} must follow a digit, 'X' or a class (nothing to repeat {what})",
                    col,
                    text,
                )
            mask, _ = _decode(out[-1])
            out[-1] = element_key(mask, STAR if c == "?" else PLUS)
            can_repeat = False
        elif c == "\\":
            if i + 1 < n and text[i + 1] == "+":
                out.append(element_key(_BIT["+"], ONCE))
                can_repeat = True
                i += 1
            else:
                raise PatternError("'\\' must be followed by '+' (a literal plus)", col, text)
        elif c == ".":
            if dot >= 0:
                raise PatternError("second '.' (at most one discard point)", col, text)
            dot = len(out)
            can_repeat = False
        elif c == "@":
            raise PatternError("the '@' (NANP) macro is not supported", col, text)
        elif c == "]":
            raise PatternError("']' without '['", col, text)
        else:
            raise PatternError(f"unexpected character {c!r}", col, text)
        i += 1
    if not out:
        raise PatternError("pattern matches no digits (only '.')", 1, text)
    return "".join(out), dot


def _parse_class(text: str, start: int) -> tuple[int, int]:
    """Parse ``[...]`` starting at ``text[start] == '['``; return (mask, index of ']')."""
    end = text.find("]", start + 1)
    if end < 0:
        raise PatternError("unbalanced '[' (no closing ']')", start + 1, text)
    i = start + 1
    negate = i < end and text[i] == "^"
    if negate:
        i += 1
    if i == end:
        raise PatternError("empty class '[]'", start + 1, text)
    mask = 0
    while i < end:
        c = text[i]
        col = i + 1
        if c in "0123456789":
            if i + 1 < end and text[i + 1] == "-":
                if i + 2 >= end:
                    raise PatternError("range without an upper bound", i + 2, text)
                hi = text[i + 2]
                if hi not in "0123456789":
                    raise PatternError(f"range bound {hi!r} is not a digit", i + 3, text)
                if hi < c:
                    raise PatternError(f"empty range '{c}-{hi}'", col, text)
                for d in range(int(c), int(hi) + 1):
                    mask |= 1 << d
                i += 3
                continue
            mask |= _BIT[c]
        elif c in "*#":
            if negate:
                raise PatternError(f"{c!r} in a negated class (it excludes digits only)", col, text)
            mask |= _BIT[c]
        elif c == "-":
            raise PatternError("'-' without a lower bound", col, text)
        elif c == "[":
            raise PatternError("'[' inside a class", col, text)
        else:
            raise PatternError(f"unexpected character {c!r} in a class", col, text)
        i += 1
    if negate:
        mask = _DIGITS & ~mask
        if not mask:
            raise PatternError("class excludes every digit", start + 1, text)
    return mask, end
