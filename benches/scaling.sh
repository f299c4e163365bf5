#!/usr/bin/env bash
# How exports scale with the collection's size: for each size, a generated one-shard collection
# (DIM-d vectors, ~300-byte payloads, segments optimized as a server leaves them) exported
# offline from its snapshot (time, points/s, peak RSS, the most disk its scratch directory held)
# and, up to LIVE_MAX points, live from the Qdrant stand-in over REST and over gRPC.
# Usage: benches/scaling.sh [SIZES...] (default: 100000 1000000 10000000). Env: DIM (64),
# WORKERS (4), LIVE_MAX (1000000), PAYLOAD (small; `text` adds ~800 bytes of text to each),
# OPTIMIZE_EVERY (200000 points per optimizer run; 0 leaves one appendable segment),
# ID_TRACKER (immutable: Qdrant 1.19's format, which q2z rewrites into the disk-resident one on
# its scratch copy — `Q2Z_ID_MAPPINGS_IN_RAM=1` keeps it in RAM to compare; `disk`: segments
# built with qdrant-edge's disk-resident format and its ~16 KiB e2i blocks), PROFILE (release;
# `dev` reuses the test build), PLAN (1: `q2z plan` is run before each export with the same
# arguments and its prediction — export time, peak memory — printed beside the measured run).
# 10M points need ~15 GB of free disk.
set -euo pipefail
if [ $# -gt 0 ]; then SIZES=("$@"); else SIZES=(100000 1000000 10000000); fi
DIM="${DIM:-64}"; WORKERS="${WORKERS:-4}"; LIVE_MAX="${LIVE_MAX:-1000000}"
PLAN="${PLAN:-0}"
PAYLOAD="${PAYLOAD:-small}"; OPTIMIZE_EVERY="${OPTIMIZE_EVERY:-200000}"
GEN=(--bulk-dim "$DIM" --bulk-optimize-every "$OPTIMIZE_EVERY")
[ "$PAYLOAD" = small ] && GEN+=(--bulk-small-payloads)
ID_TRACKER="${ID_TRACKER:-immutable}"
[ "$ID_TRACKER" = disk ] && GEN+=(--bulk-id-tracker-on-disk)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
PROFILE="${PROFILE:-release}"
. benches/build.sh
# predicted COMMAND-ARGS...: with PLAN=1, "predicted s / peak MB" of `q2z plan` given the
# export's own arguments (less --stage and --json), else "—".
predicted() {
  [ "$PLAN" = 1 ] || { echo "—"; return; }
  local args=() skip=0 a
  for a in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case "$a" in --stage) skip=1 ;; --json) ;; *) args+=("$a") ;; esac
  done
  "$B/q2z" plan "${args[@]}" --json 2>/dev/null | python3 -c 'import json,sys
r=json.load(sys.stdin)[0]["run"]; print("%.1f s / %d MB" % (r["export_seconds"], r["peak_memory_bytes"]/2**20))'
}
row() { # label points dir-to-watch command...
  local label="$1" n="$2" watch="$3"; shift 3
  local plan; plan=$(predicted "${@:3}")
  local log; log=$(mktemp)
  sync
  local t0; t0=$(date +%s%N)
  /usr/bin/time -v "$@" >/dev/null 2>"$log" &
  local tp=$! disk=0 d
  while kill -0 "$tp" 2>/dev/null; do
    if [ -n "$watch" ]; then
      d=$(du -sb "$watch" 2>/dev/null | cut -f1 || echo 0); [ "${d:-0}" -gt "$disk" ] && disk=$d
    fi
    sleep 0.2
  done
  wait "$tp" || { cat "$log" >&2; return 1; }
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local rss; rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  printf '| %s | %s | %.1f s | %s | %d MB | %s | %s |\n' "$label" "$n" "$(awk -v ms="$ms" 'BEGIN{print ms/1000}')" \
    "$(awk -v n="$n" -v ms="$ms" 'BEGIN{printf "%.0f", n*1000/ms}')" $((rss / 1024)) \
    "$([ -n "$watch" ] && awk -v b="$disk" 'BEGIN{printf "%.0f MB", b/1e6}' || echo "—")" "$plan"
  rm -f "$log"
}
echo "| run | points | time | points/s | peak RSS | most disk in scratch | plan: time / peak |"
echo "|---|---|---|---|---|---|---|"
for N in "${SIZES[@]}"; do
  W="$ROOT/.cache/bench-scaling-$N-$DIM-$PAYLOAD-$OPTIMIZE_EVERY-$ID_TRACKER"; mkdir -p "$W"
  SNAP="$W/gen/bulk.collection.snapshot"
  if [ ! -f "$SNAP" ]; then
    rm -rf "$W/gen"; "$B/qdrant-standin" generate --out "$W/gen" --bulk-points "$N" "${GEN[@]}" >&2
  fi
  rm -rf "$W/stage" "$W/scratch"; mkdir -p "$W/scratch"
  cat "$SNAP" >/dev/null
  row "snapshot export" "$N" "$W/scratch" "$B/q2z" export --snapshot "$SNAP" --as bulk --stage "$W/stage" \
    --scratch "$W/scratch" --workers "$WORKERS" --json
  rm -rf "$W/stage" "$W/q" "$W/addr" "$W/grpc.addr"
  [ "$N" -le "$LIVE_MAX" ] || continue
  "$B/qdrant-standin" serve --snapshot "$SNAP" --data "$W/q" --addr-file "$W/addr" \
    --grpc-addr-file "$W/grpc.addr" >"$W/standin.log" 2>&1 &
  SPID=$!
  while [ ! -s "$W/addr" ]; do sleep 0.2; done
  URL="http://$(cat "$W/addr")"; GRPC="http://$(cat "$W/grpc.addr")"
  row "live export, REST" "$N" "" "$B/q2z" export --qdrant-url "$URL" -c bulk --stage "$W/stage" \
    --transport rest --workers "$WORKERS" --json
  rm -rf "$W/stage"
  row "live export, gRPC" "$N" "" "$B/q2z" export --qdrant-url "$URL" --grpc-url "$GRPC" \
    --transport grpc -c bulk --stage "$W/stage" --workers "$WORKERS" --json
  rm -rf "$W/stage"
  kill "$SPID"; wait "$SPID" 2>/dev/null || true
done
