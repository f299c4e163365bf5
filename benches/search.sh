#!/usr/bin/env bash
# Time of the search-parity check (`q2z verify --search N`) on a collection of POINTS points:
# the bulk collection is generated with qdrant-edge, exported from its snapshot, bulk-imported
# into the Milvus stand-in (Milvus Lite), then checked with N queries offline (the snapshot
# searched through qdrant-edge, exact) against the target.
# Usage: benches/search.sh [POINTS] [QUERIES] (default 200000 1000). Env: DIM (64), PROFILE (dev).
set -euo pipefail
N="${1:-200000}"; Q="${2:-1000}"; DIM="${DIM:-64}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
W="$ROOT/.cache/bench-search-$N-$DIM"; mkdir -p "$W"
PROFILE="${PROFILE:-dev}"
. benches/build.sh
SNAP="$W/gen/bulk.collection.snapshot"
[ -f "$SNAP" ] || "$B/qdrant-standin" generate --out "$W/gen" --bulk-points "$N" --bulk-dim "$DIM"
scripts/standins.sh start --target-only >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
. .cache/run/env
export MILVUS_TOKEN="$Q2Z_MILVUS_TOKEN" AWS_ACCESS_KEY_ID="$Q2Z_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$Q2Z_S3_SECRET_KEY"
rm -rf "$W/stage"
t0=$(date +%s%N)
"$B/q2z" migrate --snapshot "$SNAP" --stage "$W/stage" --milvus-url "$Q2Z_MILVUS_URL" \
  --s3-endpoint "$Q2Z_S3_ENDPOINT" --s3-bucket "$Q2Z_S3_BUCKET" --drop-existing --search 0 >/dev/null
t1=$(date +%s%N)
"$B/q2z" verify --stage "$W/stage" --milvus-url "$Q2Z_MILVUS_URL" --search "$Q" --snapshot "$SNAP" \
  --sample 0 | tee "$W/parity.txt"
t2=$(date +%s%N)
awk -v n="$N" -v q="$Q" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "%d points: migrate %.1f s; verify with %d search queries %.1f s (%.1f ms per query, both sides)\n",
    n, (b - a) / 1e9, q, (c - b) / 1e9, (c - b) / 1e6 / q }'
