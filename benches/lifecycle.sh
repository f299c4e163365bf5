#!/usr/bin/env bash
# The cut-over lifecycle at length: HISTORIES seeded histories (default 2000) of STEPS steps
# (default 8) of source changes and q2z commands (export whole or in parts + merge, import bulk
# or upsert, sync by digest / datetime / counter change field, bulk deltas, kill -9 mid-sync and
# rerun, target damaged then `verify --repair`), each checked against the invariant "the target
# holds exactly the source's points" read back from both servers. Prints the histories and
# steps run. Seeds start at SEED (default 1000, past the CI run's); THREADS histories at once (4).
# Usage: benches/lifecycle.sh [HISTORIES]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
PROFILE=dev
. benches/build.sh
scripts/standins.sh start >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. .cache/run/env
start=$(date +%s)
# The whole output (a failing step's full message included) goes to a log; its summary here.
log=".cache/lifecycle-$(date +%Y%m%d-%H%M%S).log"
set +e
Q2Z_LIFECYCLE_HISTORIES="${1:-2000}" Q2Z_LIFECYCLE_STEPS="${STEPS:-8}" \
  Q2Z_LIFECYCLE_SEED="${SEED:-1000}" Q2Z_LIFECYCLE_THREADS="${THREADS:-4}" \
  cargo test --locked --test cutover_integrity lifecycle_histories -- --nocapture >"$log" 2>&1
rc=$?
set -e
grep -E "^lifecycle|Tally|panicked at|test result" "$log" || true
echo "took $(( $(date +%s) - start )) s; full output: $log"
exit "$rc"
