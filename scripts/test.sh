#!/usr/bin/env bash
# The test command: starts the stand-ins, runs every test against them, stops them, and ends
# with one summary line over all test binaries ("N passed, M failed").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
q2z_build
scripts/standins.sh start >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. .cache/run/env
log="$(mktemp)"
set +e
cargo test --locked --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "tests took $(( $(date +%s) - start )) s in all" >&2
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
