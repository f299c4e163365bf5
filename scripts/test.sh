#!/usr/bin/env bash
# The test command: starts the stand-ins, runs every test against them, stops them, and ends
# with one summary line over all test binaries ("N passed, M failed").
#
# With no arguments the test binaries run in two lanes side by side, each lane against stand-ins
# of its own (the tests mostly wait on the stand-ins; faults one test sets never reach the other
# lane), then the target suites again against the stand-in following each other Milvus release
# line. With arguments: `cargo test --workspace ARGS` against one set of stand-ins.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
# The report test opens the migration report in Debian's headless Chromium.
if [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: installing Debian's chromium for the report test" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
q2z_build
LANE_B="$ROOT/.cache/run-b"
scripts/standins.sh start >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true; Q2Z_RUN_DIR="$LANE_B" scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
log="$(mktemp)"
rc=0
set +e
if [ $# -gt 0 ]; then
  # shellcheck disable=SC1091
  . .cache/run/env
  cargo test --locked --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
else
  Q2Z_RUN_DIR="$LANE_B" scripts/standins.sh start --no-extra >/dev/null || rc=1
  # Every test executable: "name<TAB>package directory<TAB>path".
  mapfile -t exes < <(cargo test --locked --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, os, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], os.path.dirname(m["manifest_path"]), m["executable"], sep="\t")')
  [ "${#exes[@]}" -gt 10 ] || { echo "found only ${#exes[@]} test executables" >&2; rc=1; }
  # Lane B: these suites (about half the time); lane A: the rest.
  lane_b="import|search|repair|s3_stage"
  # run_exes ENV_FILE PATTERN: each executable whose name the extended glob matches, in
  # turn, from its package's directory, with the stand-in environment of ENV_FILE (and the
  # caller's exports); fails if any failed.
  run_exes() {
    (
      # shellcheck disable=SC1090
      . "$1"
      ok=0
      for e in "${exes[@]}"; do
        IFS=$'\t' read -r name dir path <<<"$e"
        # shellcheck disable=SC2053
        [[ "$name" == $2 ]] || continue
        echo "     Running $name ($path)"
        (cd "$dir" && "$path") 2>&1 || ok=1
      done
      exit "$ok"
    )
  }
  shopt -s extglob
  run_exes .cache/run/env "!($lane_b)" >"$log.a" 2>&1 &
  pa=$!
  run_exes "$LANE_B/env" "@($lane_b)" >"$log.b" 2>&1 &
  pb=$!
  wait "$pa" || rc=1
  wait "$pb" || rc=1
  cat "$log.a" "$log.b" | tee -a "$log"
  rm -f "$log.a" "$log.b"
  # The suites that talk to the target, again against the stand-in following each other release
  # line (q2z told the release through MILVUS_VERSION, as a user would with --milvus-version),
  # the lines side by side (each has its own stand-in).
  # shellcheck disable=SC1091
  . .cache/run/env
  # The release rules, the REST values, and the commands that change the target after an
  # import (sync, cut-over, repair after a sync) on every line; the rest on the main stand-in
  # (benches/profiles.sh runs every target suite against one line).
  profile_suites="milvus_profiles|rest_values|sync|cutover|repair|multivectors"
  # On the 2.6 and 3.0 lines the import and promoted-field suites too (their fixtures' empty
  # sparse rows are refused by the 2.4.9 / 2.5.4 lines' rules, as benches/profiles.sh shows).
  newer_suites="import|promote"
  for v in $Q2Z_MILVUS_PROFILES; do
    var="Q2Z_MILVUS_URL_${v//./_}"
    (
      echo "== target suites against the Milvus $v stand-in"
      export MILVUS_VERSION="$v" Q2Z_MILVUS_PROFILE="$v"
      url="${!var}"
      ok=0
      # The env file sets the main stand-in's URL: this line's is set after it.
      suites="$profile_suites"
      case "$v" in 2.6.* | 3.*) suites="$profile_suites|$newer_suites" ;; esac
      run_exes <(cat .cache/run/env; echo "export Q2Z_MILVUS_URL=$url") "@($suites)" || ok=1
      echo "$ok" >"$log.$v.rc"
    ) >"$log.$v" 2>&1 &
  done
  wait
  for v in $Q2Z_MILVUS_PROFILES; do
    tee -a "$log" <"$log.$v"
    [ "$(cat "$log.$v.rc" 2>/dev/null)" = 0 ] || rc=1
    rm -f "$log.$v" "$log.$v.rc"
  done
fi
set -e
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "tests took $(( $(date +%s) - start )) s in all" >&2
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
