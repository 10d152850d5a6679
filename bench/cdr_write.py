"""The CDR writer thread's work for one batch, in process: before/after session 14.

What ``CdrWriter`` does with a batch of ended calls: ``node_cdr.cdr_row`` for
each record (its ``convert``), then one ``CdrRepository.add_many`` into a file
SQLite database set up as the node's (``create_engine_for``: WAL,
synchronous=NORMAL). ``--rows`` records like the bench calls' (a new Call-ID,
microsecond times, one in seven unanswered, one in ten with the trunks a route
tried in ``extra``, the rest with ``extra`` empty); old and new path
alternating, three times ``--rounds`` passes each, the table emptied (untimed)
before each pass; the best pass of each figure. ``cdr_row`` in process CPU time;
``add_many`` also in wall time. Both include sqlite's C work (its statement
steps release the GIL), so the Python work taken from the event loop is
the difference between the paths more than either figure.

"old" is the code before session 14, kept here: ``cdr_row`` with keywords,
``add_many`` with a dict per row and ``conn.execute(insert(Cdr), dicts)``
(SQLAlchemy's parameter processing per row). "new" is ``node_cdr.cdr_row`` and
``CdrRepository.add_many``: the INSERT compiled once, a tuple per row with the
columns' bind processors applied directly, one DBAPI executemany.

    python bench/cdr_write.py [--rows 500] [--rounds 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from offhook.core.records import CallRecord
from offhook.db.cdr import CdrRepository, CdrRow
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import Cdr
from offhook.node_cdr import cdr_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.cdr_reference import reference_add_many, reference_cdr_row

T0 = 1_796_300_000.123456


def records(n: int, first: int = 0) -> list[CallRecord]:
    out = []
    for k in range(first, first + n):
        start = T0 + k * 0.004017
        answered = k % 7 != 0
        out.append(
            CallRecord(
                call_id=f"{k}-4242@127.0.0.1",
                calling="benchuac",
                called=str(2000 + k % 100),
                original_called=str(2000 + k % 100),
                calling_device="benchuac",
                called_device=f"benchuas{k % 4}",
                start=start,
                answer=start + 0.0213 if answered else None,
                end=start + 1.0417,
                duration=1 if answered else 0,
                cause=16 if answered else 17,
                cause_text="",
                node="cm1",
                hunt=(("pstn-a", 34), ("pstn-b", 38)) if k % 10 == 3 else (),
            )
        )
    return out


def best(
    engine: Engine,
    convert: Callable[[CallRecord], CdrRow],
    write: Callable[[list[CdrRow]], int],
    recs: list[CallRecord],
    rounds: int,
) -> tuple[float, float, float]:
    """Best CPU of ``cdr_row`` for the batch, best wall and CPU of writing it."""
    rowing = wall = cpu = float("inf")
    for _ in range(rounds):
        with engine.begin() as conn:
            conn.execute(delete(Cdr))
        c0 = time.process_time()
        rows = [convert(r) for r in recs]
        w1, c1 = time.perf_counter(), time.process_time()
        write(rows)
        w2, c2 = time.perf_counter(), time.process_time()
        rowing, wall, cpu = min(rowing, c1 - c0), min(wall, w2 - w1), min(cpu, c2 - c1)
    return rowing, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    recs = records(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'offhook.db'}"
        upgrade(url)
        engine = create_engine_for(url)
        repo = CdrRepository(engine)
        paths: dict[str, tuple[Callable[[CallRecord], CdrRow], Callable[[list[CdrRow]], int]]] = {
            "old": (reference_cdr_row, lambda rows: reference_add_many(engine, rows)),
            "new": (cdr_row, repo.add_many),
        }
        for convert, write in paths.values():  # warm: connection, compiled caches
            write([convert(r) for r in records(50, 10**6)])
        results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in paths}
        for _ in range(3):
            for name, (convert, write) in paths.items():
                results[name].append(best(engine, convert, write, recs, args.rounds))
        engine.dispose()
    n = args.rows
    print(f"{n} rows into file SQLite, best of {3 * args.rounds} (µs a row):")
    fig = {k: [min(r[i] for r in v) / n * 1e6 for i in range(3)] for k, v in results.items()}
    for k, (convert, wall, cpu) in fig.items():
        print(f"  {k}: add_many wall {wall:.1f}, CPU {cpu:.1f}; cdr_row CPU {convert:.1f}")
    old, new = fig["old"], fig["new"]
    print(
        f"  new/old: add_many wall {new[1] / old[1]:.2f}, CPU {new[2] / old[2]:.2f}; "
        f"cdr_row + add_many CPU {(new[0] + new[2]) / (old[0] + old[2]):.2f}"
    )


if __name__ == "__main__":
    main()
