"""The digit-analysis index: closest match over many patterns without scanning them.

Theory of operation. Every pattern is a sequence of elements (see
:mod:`offhook.core.dialplan.pattern`); the index is a trie over those
elements, shared by all partitions, so that ``9.1[2-9]XX...`` and
``9.1[2-9]XX...`` in twenty partitions are one path. A trie node stands for
"these elements have been matched"; its outgoing edges are:

- literal edges (an element of one symbol, once): a ``dict`` lookup;
- wildcard edges (``X``, classes, and ``+``/``!`` elements): a short list of
  ``(mask, child)``;
- ``?`` edges: taken without consuming (the epsilon closure, precomputed);
- a self loop on the node reached by a ``?``, ``+`` or ``!`` element.

Analysis is an NFA simulation: the active set starts as the root's closure
and advances one dialed symbol at a time. Each node carries bitmasks over
partition ids: ``own`` (partitions with an entry ending here), ``reach``
(partitions with an entry here or below) and ``ext`` (partitions with an
entry reachable by consuming at least one more symbol). A node whose
``reach`` misses the caller's calling search space is dropped at once, so
the work per symbol follows the caller's visible plan, never the plan's size.

Selection (Cisco closest match): among the visible entries whose pattern
matches the whole string, the one with the smallest
``Pattern.match_count(len(digits))``; ties go to the partition that comes
first in the CSS, then a directory number (or meet-me number: an exact
number too) beats a pattern, then the entry added first. Entries on one node
share their element sequence, hence their count; each node keeps its best
entry per partition.

The null partition ``""`` (Cisco's <None>) is visible to every caller and
searched last. Pure and sans-IO.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from offhook.core.dialplan.pattern import ONCE, STAR, SYMBOLS, Pattern, symbol_bit

__all__ = ["MAX_DIALED_LENGTH", "NULL_PARTITION", "Analysis", "IndexEntry", "PatternIndex"]

MAX_DIALED_LENGTH = 48
NULL_PARTITION = ""
_KIND_SHIFT = 13
_MASK = (1 << _KIND_SHIFT) - 1
_CSS_CACHE_SIZE = 1024
# Exact numbers, ranked before patterns.
_EXACT_KINDS = frozenset({"dn", "meetme", "hunt", "pickup", "park"})


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One DN or pattern to index; ``payload`` is opaque to the index."""

    pattern: Pattern
    partition: str
    kind: str  # "dn" | "meetme" | "route" | "translation"
    payload: object
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the digits so far mean to one caller."""

    match: IndexEntry | None  # the closest complete match among visible partitions
    more_possible: bool  # some visible pattern matches a longer string
    candidates: int  # visible entries that fully match (for the analyzer's trace)

    @property
    def route_now(self) -> bool:
        """Overlap dialing: route without waiting for more digits (or T302)."""
        return self.match is not None and (self.match.urgent or not self.more_possible)


_NO_MATCH = Analysis(None, False, 0)


class _Node:
    __slots__ = ("closure", "ents", "ext", "hits", "kids", "lit", "loop", "own", "reach", "wild")

    def __init__(self) -> None:
        self.kids: dict[str, _Node] | None = None  # element key -> child (build time only)
        self.lit: dict[str, _Node] | None = None  # dialed symbol -> child
        self.wild: tuple[tuple[int, _Node], ...] = ()
        self.loop = 0  # symbol mask of the self loop ('?', '+', '!' element ending here)
        # Nodes reached without consuming (itself, then '?' children), or
        # None when that is the node alone (most nodes: saves a tuple each).
        self.closure: tuple[_Node, ...] | None = None
        self.own = 0
        self.reach = 0
        self.ext = 0
        # Build time: partition id -> (best entry, its tie rank, number of
        # entries); the rank is (0 for a DN or meet-me number, 1 for a
        # pattern) << 40 | order.
        self.ents: dict[int, tuple[IndexEntry, int, int]] | None = None
        # After the build: the same as a tuple of (pid, entry, rank, count).
        self.hits: tuple[tuple[int, IndexEntry, int, int], ...] = ()


class PatternIndex:
    """Closest-match digit analysis over a fixed set of entries (rebuild on plan change)."""

    def __init__(self, entries: Iterable[IndexEntry]) -> None:
        self._root = _Node()
        self._pids: dict[str, int] = {NULL_PARTITION: 0}
        self._count = 0
        self._nodes = 1
        self._css_cache: dict[tuple[str, ...], tuple[int, dict[int, int]]] = {}
        # The build allocates a few objects per pattern element and frees
        # none: the cyclic GC would rescan the growing trie again and again
        # (three quarters of the build time at 100k patterns), so it is paused.
        paused = gc.isenabled()
        gc.disable()
        try:
            for order, entry in enumerate(entries):
                self._add(entry, order)
            self._finish()
        finally:
            if paused:
                gc.enable()

    def __len__(self) -> int:
        return self._count

    @property
    def partitions(self) -> tuple[str, ...]:
        """Every partition that holds an entry (and the null partition)."""
        return tuple(self._pids)

    # -- build ---------------------------------------------------------------

    def _add(self, entry: IndexEntry, order: int) -> None:
        node = self._root
        for key in entry.pattern.elements:
            kids = node.kids
            if kids is None:
                kids = node.kids = {}
            child = kids.get(key)
            if child is None:
                child = kids[key] = _Node()
                self._nodes += 1
            node = child
        pid = self._pids.setdefault(entry.partition, len(self._pids))
        rank = (0 if entry.kind in _EXACT_KINDS else 1 << 40) | order
        ents = node.ents
        if ents is None:
            ents = node.ents = {}
        best = ents.get(pid)
        if best is None:
            ents[pid] = (entry, rank, 1)
        else:
            keep = best if best[1] <= rank else (entry, rank)
            ents[pid] = (keep[0], keep[1], best[2] + 1)
        node.own |= 1 << pid
        self._count += 1

    def _finish(self) -> None:
        # Iterative post-order: children are finished before their parent.
        order: list[_Node] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            order.append(node)
            if node.kids:
                stack.extend(node.kids.values())
        for node in reversed(order):
            lit: dict[str, _Node] = {}
            wild: list[tuple[int, _Node]] = []
            closure: list[_Node] = [node]
            reach = node.own
            ext = 0
            for key, child in (node.kids or {}).items():
                code = ord(key)
                mask, kind = code & _MASK, code >> _KIND_SHIFT
                reach |= child.reach
                if kind != ONCE:
                    child.loop = mask
                if kind == STAR:
                    closure.extend(child.closure or (child,))  # epsilon: skip the '?
                    continue
                ext |= child.reach
                if kind == ONCE and mask.bit_count() == 1:
                    lit[SYMBOLS[mask.bit_length() - 1]] = child
                else:
                    wild.append((mask, child))
            node.kids = None
            node.lit = lit or None
            node.wild = tuple(wild)
            node.closure = tuple(closure) if len(closure) > 1 else None
            if node.ents is not None:
                node.hits = tuple((pid, *v) for pid, v in node.ents.items())
                node.ents = None
            node.reach = reach
            node.ext = ext
        # A node's self loop (set by its parent above) makes its own reach
        # reachable by one more symbol.
        for node in order:
            if node.loop:
                node.ext |= node.reach

    # -- analysis ------------------------------------------------------------

    def _css(self, partitions: Sequence[str]) -> tuple[int, dict[int, int]]:
        """(partition-id mask, partition id -> CSS rank) for a CSS, null partition last."""
        if isinstance(partitions, str):
            raise TypeError("partitions is a sequence of partition names, not one name")
        key = tuple(partitions)
        hit = self._css_cache.get(key)
        if hit is not None:
            return hit
        mask = 0
        rank: dict[int, int] = {}
        pids = self._pids
        for name in (*key, NULL_PARTITION):
            pid = pids.get(name)
            if pid is not None and pid not in rank:
                rank[pid] = len(rank)
                mask |= 1 << pid
        if len(self._css_cache) >= _CSS_CACHE_SIZE:
            self._css_cache.clear()
        self._css_cache[key] = (mask, rank)
        return mask, rank

    def analyze(self, digits: str, partitions: Sequence[str]) -> Analysis:
        """Analyse ``digits`` for a caller whose CSS is ``partitions`` (in order).

        Never raises on the digits (they come from the wire): symbols outside
        ``0-9 * # +`` or more than ``MAX_DIALED_LENGTH`` symbols match nothing.
        Not thread-safe: it fills small caches (CSS masks, bounded; match
        counts of variable-length patterns, at most one per length); call it
        from the event loop.
        """
        if len(digits) > MAX_DIALED_LENGTH:
            return _NO_MATCH
        cmask, rank = self._css(partitions)
        root = self._root
        active = [n for n in root.closure or (root,) if n.reach & cmask]
        for c in digits:
            if not active:
                return _NO_MATCH
            bit = symbol_bit(c)
            if not bit:
                return _NO_MATCH
            seen: set[_Node] = set()
            nxt: list[_Node] = []
            for node in active:
                lit = node.lit
                if lit is not None:
                    t = lit.get(c)
                    if t is not None and t.reach & cmask:
                        cl = t.closure
                        if cl is None:
                            if t not in seen:
                                seen.add(t)
                                nxt.append(t)
                        else:
                            for u in cl:
                                if u not in seen and u.reach & cmask:
                                    seen.add(u)
                                    nxt.append(u)
                for m, t in node.wild:
                    if m & bit and t.reach & cmask:
                        cl = t.closure
                        if cl is None:
                            if t not in seen:
                                seen.add(t)
                                nxt.append(t)
                        else:
                            for u in cl:
                                if u not in seen and u.reach & cmask:
                                    seen.add(u)
                                    nxt.append(u)
                if node.loop & bit:
                    # The self loop keeps this node (its reach was checked
                    # when it became active) and its '?' followers.
                    for u in node.closure or (node,):
                        if u not in seen and u.reach & cmask:
                            seen.add(u)
                            nxt.append(u)
            active = nxt
        more = False
        best: tuple[int, int, int] | None = None
        match: IndexEntry | None = None
        candidates = 0
        n = len(digits)
        for node in active:
            if node.ext & cmask:
                more = True
            if not node.own & cmask:
                continue
            count = -1
            for pid, entry, erank, k in node.hits:
                if not cmask >> pid & 1:
                    continue
                candidates += k
                if count < 0:
                    count = entry.pattern.match_count(n)
                key = (count, rank[pid], erank)
                if best is None or key < best:
                    best, match = key, entry
        if match is None and not more:
            return _NO_MATCH
        return Analysis(match, more, candidates)

    # -- size ----------------------------------------------------------------

    @property
    def node_count(self) -> int:
        return self._nodes

    def memory_estimate(self) -> int:
        """Bytes held by the index structure, roughly (entries and patterns not included)."""
        total = sys.getsizeof(self) + sys.getsizeof(self._pids)
        seen: set[int] = set()
        stack = [self._root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            total += sys.getsizeof(node)
            if node.closure is not None:
                total += sys.getsizeof(node.closure)
                stack.extend(node.closure[1:])  # '?' children live only in closures
            if node.lit is not None:
                total += sys.getsizeof(node.lit)
                stack.extend(node.lit.values())
            if node.wild:
                total += sys.getsizeof(node.wild) + len(node.wild) * 64  # (mask, child) pairs
                stack.extend(t for _, t in node.wild)
            if node.hits:
                total += sys.getsizeof(node.hits) + len(node.hits) * 104  # 4-tuples, rank
        return total
