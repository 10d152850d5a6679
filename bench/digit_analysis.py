"""Digit analysis on a large plan: the trie index against a brute-force scan.

Builds a synthetic plan (default 100,000 entries: DNs, route patterns,
translations over 20 partitions), then measures

- index build time (compile every pattern + build the trie), the index's own
  ``memory_estimate()`` and the tracemalloc peak of a second build;
- analyses of full numbers (hits and misses mixed) for several calling search
  spaces: lookups/s and microseconds per analysis;
- for reference, a brute-force scanner (``Pattern.matches``/``could_extend``
  on every entry, same selection rules) on a 1,000-entry subset, and the
  index on that same subset; the ratio is brute(1k) / index(full plan).

Bounded: about 15-30 s on a shared 2-core machine. ``--json FILE`` writes the
figures.

    python bench/digit_analysis.py
    python bench/digit_analysis.py --patterns 20000 --lookups 5000
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from offhook.core.dialplan.index import Analysis, IndexEntry, PatternIndex
from offhook.core.dialplan.pattern import compile_pattern

SITES = [f"site{i:02d}" for i in range(16)]
CARRIER = ["pstn-local", "pstn-national", "pstn-intl", "e164"]
PARTITIONS = SITES + CARRIER  # 20 partitions


def make_plan(n: int, rng: random.Random) -> list[tuple[str, str, str, bool]]:
    """(pattern text, partition, kind, urgent) in these proportions:

    55 % DNs of 4-5 digits in a site partition, 25 % 10-digit route patterns
    with a literal area code / office code (``9.1212555XXXX``,
    ``9.1NPA[2-9]XXXXXX``), 10 % on-net site codes (``8SS[2-9]XXXX``),
    10 % translations (E.164 ``\\+1NPANXXXXXX`` -> DN, short codes ``*XX``, ...),
    plus the fixed shapes every plan has (``9.011!``, ``9.011!#``, 911, 0).
    """
    plan: list[tuple[str, str, str, bool]] = []
    for p in CARRIER[:3]:
        plan += [
            ("9.011!", p, "route", False),
            ("9.011!#", p, "route", True),
            ("9.1[2-9]XX[2-9]XXXXXX", p, "route", False),
            ("9.[2-9]XXXXXX", p, "route", False),
            ("911", p, "route", True),
            ("9.911", p, "route", True),
        ]
    plan.append(("0", "", "translation", False))
    seen: set[tuple[str, str]] = set()
    while len(plan) < n:
        r = rng.random()
        if r < 0.55:
            digits = rng.choice((4, 5, 5))
            text = str(rng.randrange(10 ** (digits - 1), 10**digits))
            item = (text, rng.choice(SITES), "dn", False)
        elif r < 0.80:
            npa = f"{rng.randrange(2, 10)}{rng.randrange(10)}{rng.randrange(10)}"
            if rng.random() < 0.5:
                nxx = f"{rng.randrange(2, 10)}{rng.randrange(100):02d}"
                text = f"9.1{npa}{nxx}XXXX"
            else:
                text = f"9.1{npa}[2-9]XXXXXX"
            item = (text, rng.choice(CARRIER[:2]), "route", False)
        elif r < 0.90:
            text = f"8{rng.randrange(10, 100)}[2-9]XXXX"
            item = (text, rng.choice(SITES), "route", False)
        else:
            s = rng.random()
            if s < 0.6:
                text = f"\\+1{rng.randrange(200, 1000)}{rng.randrange(200, 1000)}XXXX"
                item = (text, "e164", "translation", False)
            elif s < 0.8:
                text = f"*{rng.randrange(10, 100)}"
                item = (text, rng.choice(SITES), "translation", False)
            else:
                text = f"{rng.randrange(1, 10)}[2-4]XX"
                item = (text, rng.choice(SITES), "translation", False)
        if (item[0], item[1]) not in seen:
            seen.add((item[0], item[1]))
            plan.append(item)
    return plan


def css_list(rng: random.Random) -> list[list[str]]:
    """A few calling search spaces: staff (own site + all carriers), lobby, e164 ingress."""
    out = []
    for site in rng.sample(SITES, 6):
        others = rng.sample(SITES, 3)
        out.append([site, *others, "e164", "pstn-local", "pstn-national", "pstn-intl"])
    out.append([SITES[0]])  # lobby: internal only
    out.append(["e164", *SITES])  # trunk ingress
    return out


def make_numbers(
    plan: Sequence[tuple[str, str, str, bool]], count: int, rng: random.Random
) -> list[str]:
    """Full numbers: DNs from the plan, 9+1 NANP, international, E.164, random misses."""
    dns = [t for t, _, k, _ in plan if k == "dn"]
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.35:
            out.append(rng.choice(dns))
        elif r < 0.60:
            out.append(
                f"91{rng.randrange(2, 10)}{rng.randrange(100):02d}{rng.randrange(2000000, 10**7)}"
            )
        elif r < 0.70:
            out.append(f"9011{rng.randrange(10**7, 10**11)}")
        elif r < 0.80:
            out.append(
                f"+1{rng.randrange(200, 1000)}{rng.randrange(200, 1000)}{rng.randrange(10**4):04d}"
            )
        elif r < 0.90:
            out.append(f"8{rng.randrange(10, 100)}{rng.randrange(2, 10)}{rng.randrange(10**4):04d}")
        else:
            out.append(str(rng.randrange(10**5, 10**6)))  # 6 digits: a miss
    return out


def to_entries(plan: Sequence[tuple[str, str, str, bool]]) -> list[IndexEntry]:
    return [IndexEntry(compile_pattern(t), p, k, t, u) for t, p, k, u in plan]


def brute_force(entries: Sequence[IndexEntry], digits: str, css: Sequence[str]) -> Analysis:
    """Scan every entry (the reference the property tests use)."""
    visible = list(dict.fromkeys([*css, ""]))
    best: tuple[int, int, int, int] | None = None
    match = None
    more = False
    candidates = 0
    for order, e in enumerate(entries):
        if e.partition not in visible:
            continue
        if not more and e.pattern.could_extend(digits):
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


def time_analyses(
    ix: PatternIndex, queries: Sequence[tuple[str, list[str]]], budget: float
) -> tuple[int, float]:
    """Run the queries (repeating up to ``budget`` seconds); return (count, seconds)."""
    done = 0
    start = time.perf_counter()
    while True:
        for digits, css in queries:
            ix.analyze(digits, css)
        done += len(queries)
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return done, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--patterns", type=int, default=100_000)
    ap.add_argument("--lookups", type=int, default=20_000, help="distinct (number, CSS) queries")
    ap.add_argument("--seconds", type=float, default=5.0, help="time budget for the timed loop")
    ap.add_argument("--brute-size", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    t_total = time.perf_counter()

    plan = make_plan(args.patterns, rng)
    cs = css_list(rng)
    numbers = make_numbers(plan, args.lookups, rng)
    queries = [(d, rng.choice(cs)) for d in numbers]

    gc.collect()
    t0 = time.perf_counter()
    entries = to_entries(plan)
    t1 = time.perf_counter()
    ix = PatternIndex(entries)
    t2 = time.perf_counter()
    mem = ix.memory_estimate()

    # Sanity: the index agrees with the brute-force scanner on a sample.
    sub = entries[: args.brute_size]
    sub_ix = PatternIndex(sub)
    for digits, css in queries[:300]:
        assert sub_ix.analyze(digits, css) == brute_force(sub, digits, css), digits

    # Warm up (match_count caches), then time.
    for digits, css in queries[:2000]:
        ix.analyze(digits, css)
    n_done, secs = time_analyses(ix, queries, args.seconds)
    hits = sum(ix.analyze(d, c).match is not None for d, c in queries[:5000])
    n_sub, secs_sub = time_analyses(sub_ix, queries, min(2.0, args.seconds))

    brute_q = queries[:500]
    tb = time.perf_counter()
    for digits, css in brute_q:
        brute_force(sub, digits, css)
    brute_us = (time.perf_counter() - tb) / len(brute_q) * 1e6

    del ix, sub_ix
    gc.collect()
    tracemalloc.start()
    ix2 = PatternIndex(entries)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del ix2

    us = secs / n_done * 1e6
    us_sub = secs_sub / n_sub * 1e6
    fig = {
        "patterns": len(entries),
        "partitions": len(PARTITIONS),
        "css": len(cs),
        "compile_s": round(t1 - t0, 3),
        "build_index_s": round(t2 - t1, 3),
        "memory_estimate_mb": round(mem / 1e6, 1),
        "tracemalloc_peak_build_mb": round(peak / 1e6, 1),
        "lookups_per_s": round(n_done / secs),
        "us_per_analysis": round(us, 2),
        "hit_rate": round(hits / min(5000, len(queries)), 3),
        "index_1k_us_per_analysis": round(us_sub, 2),
        "brute_1k_us_per_analysis": round(brute_us, 1),
        "ratio_brute1k_over_index_full": round(brute_us / us, 1),
        "brute_full_extrapolated_us": round(brute_us * len(entries) / len(sub)),
        "total_s": round(time.perf_counter() - t_total, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    width = max(map(len, fig))
    for k, v in fig.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
