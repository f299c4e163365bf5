#!/usr/bin/env bash
# Peak RSS of a `q2z sync` pass at POINTS points, the pass that finds nothing changed (it diffs
# every point, so it holds the most): a bulk collection generated as a Qdrant snapshot (DIM-d
# vectors, ~300-byte payloads) and served live by the Qdrant stand-in, exported, bulk-imported
# into the Milvus stand-in, then synced. Prints time and peak RSS of each step.
# Usage: benches/sync_memory.sh [POINTS] (default 1000000). Env: DIM (8), DIFF_WINDOW (q2z's
# default), WORKERS (q2z's default), PROFILE (dev), Q2Z_RUN_DIR (stand-ins of its own beside the
# tests'), Q2Z_BENCH_BIN (binaries copied once, so a rebuild does not swap them).
# Memory: the Milvus Lite stand-in holds the whole collection in its one process; during the bulk
# import of 10M points its RSS reached 20.5 GB (session 17): beyond ~5M points, point
# Q2Z_MILVUS_URL of Q2Z_RUN_DIR's env at a real Milvus.
set -euo pipefail
N="${1:-1000000}"; DIM="${DIM:-8}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
W="$ROOT/.cache/bench-syncmem-$N-$DIM"; mkdir -p "$W"
PROFILE="${PROFILE:-dev}"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
. benches/build.sh
scripts/standins.sh start --target-only >/dev/null
if [ ! -s "$W/gen/bulk.collection.snapshot" ]; then
  "$B/qdrant-standin" generate --out "$W/gen" --bulk-points "$N" --bulk-dim "$DIM" --bulk-small-payloads
fi
rm -rf "$W/q" "$W/addr" "$W/stage"
"$B/qdrant-standin" serve --snapshot-dir "$W/gen" --data "$W/q" --addr-file "$W/addr" >"$W/standin.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true; scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
while [ ! -s "$W/addr" ]; do sleep 0.2; done
URL="http://$(cat "$W/addr")"
# shellcheck disable=SC1091
. "${Q2Z_RUN_DIR:-.cache/run}/env"
export MILVUS_TOKEN="$Q2Z_MILVUS_TOKEN" AWS_ACCESS_KEY_ID="$Q2Z_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$Q2Z_S3_SECRET_KEY"
# "<seconds> s, <peak RSS> MB" of a command (its output discarded).
measure() {
  /usr/bin/time -f "%e %M" -o "$W/time" "$@" >/dev/null 2>"$W/step.log" || { tail -5 "$W/step.log" >&2; exit 1; }
  awk '{ printf "%.1f s, %d MB", $1, $2 / 1024 }' "$W/time"
}
e=$(measure "$B/q2z" export --qdrant-url "$URL" -c bulk --stage "$W/stage")
i=$(measure "$B/q2z" import --stage "$W/stage" --milvus-url "$Q2Z_MILVUS_URL" --s3-endpoint "$Q2Z_S3_ENDPOINT" \
  --s3-bucket "$Q2Z_S3_BUCKET" --drop-existing --sample 0)
s=$(measure "$B/q2z" sync --stage "$W/stage" --qdrant-url "$URL" --milvus-url "$Q2Z_MILVUS_URL" \
  ${DIFF_WINDOW:+--diff-window "$DIFF_WINDOW"} ${WORKERS:+--workers "$WORKERS"})
echo "$N points ($DIM-d): export $e; import $i; sync pass, nothing changed: $s"
