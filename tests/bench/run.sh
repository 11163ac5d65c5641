#!/usr/bin/env bash
# `make bench`: the rewrap benchmark (docs/performance.md, "Rewrap"). Not part of `make test`.
#
# Builds the release binary, starts a test world of its own (KS_RUN_DIR, default
# $TMPDIR/keyshift-bench, so it never touches tests/services/run), runs
# tests/bench/rewrap_bench.py with BENCH_ARGS (e.g. BENCH_ARGS=--quick) and stops the
# world on exit. With KS_BENCH_REUSE_WORLD=1 and a world already up at KS_RUN_DIR it
# uses that one and leaves it running. Seeded key vaults are cached in the world
# (KS_RUN_DIR/bench), so a second run on a reused world skips the seeding.
# KS_BENCH_KEYSHIFT=PATH benchmarks that binary and builds nothing (no setup.sh, no cargo:
# e.g. a release build of a clean checkout while the shared working tree is mid-change
# and other builds hold cargo's lock); the test world's .venv must exist.
# KS_RUN_DIR is wiped by tests/services/up: keep nothing of your own in it.
set -euo pipefail
cd "$(dirname "$0")/../.."

export KS_RUN_DIR=${KS_RUN_DIR:-${TMPDIR:-/tmp}/keyshift-bench}
export KS_ENV_FILE=$KS_RUN_DIR/env

bench_args=()
if [[ -n ${KS_BENCH_KEYSHIFT:-} ]]; then
  bench_args+=(--keyshift "$KS_BENCH_KEYSHIFT")
else
  bash tests/setup.sh
  cargo build --release --locked -p keyshift
fi

if [[ ${KS_BENCH_REUSE_WORLD:-} == 1 && -s $KS_ENV_FILE ]]; then
  echo "bench: reusing the world at $KS_RUN_DIR" >&2
else
  trap 'tests/services/down >/dev/null 2>&1 || true' EXIT
  tests/services/up --only mongodb,aws,proxy >/dev/null
fi

# shellcheck disable=SC2086
.venv/bin/python tests/bench/rewrap_bench.py "${bench_args[@]}" ${BENCH_ARGS:-}
