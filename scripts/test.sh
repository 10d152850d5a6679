#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, lint, types, layering,
# pytest (unit, vectors, integration, interop), then a short bounded fuzz pass.
# Bounded, so that the whole run ends within ~60 minutes on 2 cores: pytest has
# a per-test timeout (pyproject, 300 s) and an outer bound of 48 minutes; each
# fuzz target runs ~15 s (hard bound 60 s). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

scripts/install-deps.sh

LINT_PATHS=(src tests bench fuzz)
echo "== ruff"
"$PY" -m ruff check "${LINT_PATHS[@]}"
"$PY" -m ruff format --check "${LINT_PATHS[@]}"
echo "== mypy"
"$PY" -m mypy
echo "== import-linter"
lint-imports
echo "== pytest"
# Two workers (pytest-xdist): most interop and security tests wait on peers and
# timers, so two run side by side in about the time of one; a test file stays
# on one worker (its servers and fixtures are shared within it).
timeout --signal=INT --kill-after=60 2880 \
  "$PY" -m pytest -q -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"

shopt -s nullglob
targets=(fuzz/fuzz_*.py fuzz/*_fuzz.py)
if ((${#targets[@]} == 0)); then
  targets=()
  for f in fuzz/*.py; do
    [[ $(basename "$f") == __init__.py || $(basename "$f") == _* ]] && continue
    grep -q "atheris" "$f" && targets+=("$f")
  done
fi
if ((${#targets[@]})); then
  echo "== fuzz (${#targets[@]} targets, bounded)"
  corpus_root=$(mktemp -d)
  trap 'rm -rf "$corpus_root"' EXIT
  for t in "${targets[@]}"; do
    name=$(basename "$t" .py)
    mkdir -p "$corpus_root/$name"
    seeds=()
    [[ -d fuzz/corpus/$name ]] && seeds=("fuzz/corpus/$name")
    echo "-- $t"
    # atheris takes libFuzzer flags; timeout(1) is the outer bound.
    timeout --signal=INT --kill-after=10 60 \
      "$PY" "$t" -atheris_runs=1000000 -max_total_time=15 -timeout=15 -rss_limit_mb=2048 \
      "$corpus_root/$name" "${seeds[@]}"
  done
else
  echo "== fuzz: no targets in fuzz/"
fi
echo "== all checks passed"
