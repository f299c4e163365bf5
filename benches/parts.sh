#!/usr/bin/env bash
# One snapshot export split into parts (`export --part I/N`, then `q2z stage merge`), all parts
# run at once on this machine, for each N: wall time of the parts, of the merge, and each part's
# peak RSS (/usr/bin/time -v), next to the same export as one process.
# Usage: benches/parts.sh [POINTS] (default 1000000)
# Env: DIM (64), SHARDS (6: the bulk collection's shards), PARTS ("1 3"), PROFILE (release;
# `dev` reuses the test build).
set -euo pipefail
N="${1:-1000000}"; DIM="${DIM:-64}"; SHARDS="${SHARDS:-6}"; PARTS="${PARTS:-1 3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
W="$ROOT/.cache/bench-parts-$N-$DIM-$SHARDS"; mkdir -p "$W"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
PROFILE="${PROFILE:-release}"
. benches/build.sh
SNAP="$W/gen/bulk.collection.snapshot"
if [ ! -f "$SNAP" ]; then
  echo "generating $N points of $DIM dims in $SHARDS shards with ~1 KiB payloads..." >&2
  rm -rf "$W/gen"
  "$B/qdrant-standin" generate --out "$W/gen" --bulk-points "$N" --bulk-dim "$DIM" --bulk-shards "$SHARDS"
fi
echo "snapshot: $(du -h "$SNAP" | cut -f1), $N points, $SHARDS shards, $(nproc) cores ($PROFILE build)"
rss_mb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%d", $1/1024}'; }
for P in $PARTS; do
  rm -rf "$W/p$P"; mkdir -p "$W/p$P"
  sync
  t0=$(date +%s%N)
  pids=()
  for ((i = 0; i < P; i++)); do
    /usr/bin/time -v "$B/q2z" export --snapshot "$SNAP" --part "$i/$P" --stage "$W/p$P/part-$i" \
      --json >"$W/p$P/part-$i.out" 2>"$W/p$P/part-$i.time" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s%N)
  parts=(); for ((i = 0; i < P; i++)); do parts+=("$W/p$P/part-$i"); done
  "$B/q2z" stage merge "${parts[@]}" --into "$W/p$P/merged" >"$W/p$P/merge.out"
  t2=$(date +%s%N)
  rss=""; for ((i = 0; i < P; i++)); do rss+="$(rss_mb "$W/p$P/part-$i.time") "; done
  rows=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(sum(c['rows'] for c in m['collections']['bulk']['chunks']))" "$W/p$P/merged/manifest.json")
  awk -v p="$P" -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v rows="$rows" -v rss="$rss" 'BEGIN {
    e = (b - a) / 1e9; m = (c - b) / 1e9
    printf "%d part(s): export %6.1f s (%7.0f points/s), merge %4.2f s, %d rows; peak RSS per part (MB): %s\n", p, e, n / e, m, rows, rss }'
  [ "$rows" = "$N" ] || { echo "expected $N rows" >&2; exit 1; }
done
