#!/usr/bin/env bash
# Time of `q2z sync` on a live collection of POINTS points (64-d, ~1 KiB payloads, an integer
# `updated_at`) served by the Qdrant stand-in: the full live export, then sync passes with no
# change and after 1% of the points changed (new vector, payload and updated_at), by digest and
# by `--changed-since-field updated_at`, then 10% changed through upserts and through bulk
# import (`--bulk-over`), next to each other.
# Each pass prints its time and peak RSS (the memory of a sync pass). QUICK=1 runs only the
# digest passes (nothing changed, 1% changed).
# Usage: benches/sync.sh [POINTS] (default 200000). Env: DIM (64), TEXT (30: repeats of a
# 27-byte phrase in each payload, ~1 KiB), PROFILE (dev), QUICK, Q2Z_RUN_DIR (stand-ins of its
# own beside the tests'), Q2Z_BENCH_BIN (binaries to time, copied, so a rebuild does not swap them).
set -euo pipefail
N="${1:-200000}"; DIM="${DIM:-64}"; TEXT="${TEXT:-30}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
W="$ROOT/.cache/bench-sync-$N-$DIM-$TEXT"; mkdir -p "$W"
PROFILE="${PROFILE:-dev}"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
. benches/build.sh
scripts/standins.sh start --target-only >/dev/null
rm -rf "$W/q" "$W/addr"
# An empty Qdrant stand-in; the collection is created and filled over REST, as an application
# would (a collection loaded from a snapshot keeps the snapshot's point versions, above which
# the stand-in's fresh operation counter cannot write).
"$B/qdrant-standin" serve --data "$W/q" --addr-file "$W/addr" >"$W/standin.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null || true; scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
while [ ! -s "$W/addr" ]; do sleep 0.2; done
URL="http://$(cat "$W/addr")"
python3 - "$URL" "$N" "$DIM" "$TEXT" <<'PY'
import json, sys, urllib.request, random
url, n, dim, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def call(method, path, body):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
call("PUT", "/collections/bulk", {"vectors": {"size": dim, "distance": "Cosine"}})
random.seed(1)
text = "lorem ipsum dolor sit amet " * reps
for start in range(1, n + 1, 400):
    pts = [{"id": i, "vector": [random.random() for _ in range(dim)], "payload": {"n": i, "text": text, "updated_at": 1000}}
           for i in range(start, min(start + 400, n + 1))]
    call("PUT", "/collections/bulk/points?wait=true", {"points": pts})
print(f"loaded {n} points")
PY
. "${Q2Z_RUN_DIR:-.cache/run}/env"
export MILVUS_TOKEN="$Q2Z_MILVUS_TOKEN" AWS_ACCESS_KEY_ID="$Q2Z_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$Q2Z_S3_SECRET_KEY"
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
rm -rf "$W/stage"
t0=$(date +%s%N)
"$B/q2z" export --qdrant-url "$URL" -c bulk --stage "$W/stage" >/dev/null
t1=$(date +%s%N)
"$B/q2z" import --stage "$W/stage" --milvus-url "$Q2Z_MILVUS_URL" --s3-endpoint "$Q2Z_S3_ENDPOINT" \
  --s3-bucket "$Q2Z_S3_BUCKET" --drop-existing --sample 0 >/dev/null
t2=$(date +%s%N)
SYNC=("$B/q2z" sync --stage "$W/stage" --qdrant-url "$URL" --milvus-url "$Q2Z_MILVUS_URL")
FIELD=(--changed-since-field updated_at)
BUCKET=(--s3-endpoint "$Q2Z_S3_ENDPOINT" --s3-bucket "$Q2Z_S3_BUCKET")
# Changes every STEP-th point from FIRST: new vector, payload and updated_at (now).
change() {
python3 - "$URL" "$N" "$DIM" "$1" "$2" <<'PY'
import json, sys, time, urllib.request, random
url, n, dim, first, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
random.seed(first)
now = int(time.time())
pts = [{"id": i, "vector": [random.random() for _ in range(dim)], "payload": {"n": i, "changed": True, "updated_at": now}}
       for i in range(first, n + 1, step)]
for k in range(0, len(pts), 500):
    req = urllib.request.Request(f"{url}/collections/bulk/points?wait=true", method="PUT",
        data=json.dumps({"points": pts[k:k + 500]}).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
print(f"changed {len(pts)} points")
PY
}
# Seconds, and the pass's peak RSS in MB.
timed() {
  local a b
  a=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$W/rss" "$@" | tail -2 >&2
  b=$(date +%s%N)
  echo "$(secs "$a" "$b") s, $(( $(tail -1 "$W/rss") / 1024 )) MB"
}
d0=$(timed "${SYNC[@]}")
if [ -n "${QUICK:-}" ]; then
  change 2 100
  d1=$(timed "${SYNC[@]}")
  echo "$N points: live export $(secs "$t0" "$t1") s; import $(secs "$t1" "$t2") s"
  echo "sync by digest (time, peak RSS): nothing changed $d0; 1% changed $d1"
  exit 0
fi
# The field holds Unix seconds; its first pass starts from the value the points were loaded with.
f0=$(timed "${SYNC[@]}" "${FIELD[@]}" --since 1000)
change 1 100
f1=$(timed "${SYNC[@]}" "${FIELD[@]}")
change 2 100
d1=$(timed "${SYNC[@]}")
change 3 10
u10=$(timed "${SYNC[@]}" "${FIELD[@]}")
change 4 10
b10=$(timed "${SYNC[@]}" "${FIELD[@]}" "${BUCKET[@]}" --bulk-over 1000)
echo "$N points: live export $(secs "$t0" "$t1") s; import $(secs "$t1" "$t2") s"
echo "sync (time, peak RSS), nothing changed: digest $d0, change field $f0"
echo "sync, 1% changed: digest $d1, change field $f1"
echo "sync, 10% changed (change field): upserts $u10, bulk import $b10"
