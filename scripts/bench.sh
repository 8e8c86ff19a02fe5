#!/usr/bin/env bash
# Run every benchmark; each prints one line: BENCH <name> <value> <unit> goal=<goal>.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL=${ERRATA_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/errata_bench}
export SECRET_KEY=${SECRET_KEY:-bench-only-secret-key} OMP_NUM_THREADS=1
# Its own data folder: a bench never leaves a queued message for the workers of `make run`.
export ERRATA_DATA_DIR=${ERRATA_BENCH_DATA_DIR:-$PWD/var/bench}
for bench in bench/bench_*.py; do
  .venv/bin/python "$bench"
done
