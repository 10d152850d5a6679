"""bench/cdr_write.py runs, and its old and new paths make the same rows (no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import cdr_write  # noqa: E402


def test_old_and_new_rows_agree() -> None:
    recs = cdr_write.records(40)
    assert [cdr_write.cdr_row(r) for r in recs] == [cdr_write.reference_cdr_row(r) for r in recs]
    assert any(r.answer is None for r in recs) and any(r.hunt for r in recs)


def test_it_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["cdr_write.py", "--rows", "5", "--rounds", "1"])
    cdr_write.main()
    assert "new/old" in capsys.readouterr().out
