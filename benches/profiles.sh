#!/usr/bin/env bash
# Every suite that talks to the target, against the stand-in following one Milvus release line
# (2.4.9, 2.5.4, 2.6.24 or 3.0.2; q2z told the release through MILVUS_VERSION, as a user would with
# --milvus-version). CI runs the release-rule, REST-value, sync, cut-over and repair suites
# against each line (scripts/test.sh); this runs the rest too (~15 min a line on 2 cores).
# Suites whose fixtures a line refuses by its rules (empty sparse rows before 2.4.12 / 2.5.7)
# fail there with q2z's refusal, which names the fix: that is the line's behaviour, not a bug.
# Usage: benches/profiles.sh VERSION [SUITE ...]   (default: every target suite)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
v="${1:?usage: benches/profiles.sh VERSION [SUITE ...]}"; shift
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(milvus_profiles rest_values import sync cutover cutover_integrity
  repair search promote cluster report live_export s3_stage multivectors)
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
q2z_build
scripts/standins.sh start >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. .cache/run/env
var="Q2Z_MILVUS_URL_${v//./_}"
[ -n "${!var:-}" ] || { echo "no stand-in for Milvus $v (have: $Q2Z_MILVUS_PROFILES)" >&2; exit 2; }
export MILVUS_VERSION="$v" Q2Z_MILVUS_PROFILE="$v" Q2Z_MILVUS_URL="${!var}"
args=()
for s in "${suites[@]}"; do args+=(--test "$s"); done
start=$(date +%s)
set +e
cargo test --locked --no-fail-fast "${args[@]}" 2>&1 | grep -E "^     Running|^test result|FAILED|panicked at"
rc=${PIPESTATUS[0]}
set -e
echo "Milvus $v: took $(( $(date +%s) - start )) s"
exit "$rc"
