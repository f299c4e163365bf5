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
# The suites that talk to the target, again against the stand-in following each other release
# line (q2z told the release through MILVUS_VERSION, as a user would with --milvus-version).
if [ $# -eq 0 ]; then
  for v in $Q2Z_MILVUS_PROFILES; do
    var="Q2Z_MILVUS_URL_${v//./_}"
    echo "== target suites against the Milvus $v stand-in" | tee -a "$log"
    Q2Z_MILVUS_URL="${!var}" MILVUS_VERSION="$v" Q2Z_MILVUS_PROFILE="$v" \
      cargo test --locked --no-fail-fast --test milvus_profiles --test rest_values 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  done
fi
set -e
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "tests took $(( $(date +%s) - start )) s in all" >&2
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
