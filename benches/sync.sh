#!/usr/bin/env bash
# Time of `q2z sync` on a live collection of POINTS points (64-d, ~1 KiB payloads) served by the
# Qdrant stand-in: the full live export, then a sync pass with no change, then one after 1% of
# the points changed (new vector and payload), next to each other.
# Usage: benches/sync.sh [POINTS] (default 200000). Env: DIM (64), PROFILE (dev).
set -euo pipefail
N="${1:-200000}"; DIM="${DIM:-64}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
W="$ROOT/.cache/bench-sync-$N-$DIM"; mkdir -p "$W"
PROFILE="${PROFILE:-dev}"
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
python3 - "$URL" "$N" "$DIM" <<'PY'
import json, sys, urllib.request, random
url, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def call(method, path, body):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
call("PUT", "/collections/bulk", {"vectors": {"size": dim, "distance": "Cosine"}})
random.seed(1)
text = "lorem ipsum dolor sit amet " * 30
for start in range(1, n + 1, 400):
    pts = [{"id": i, "vector": [random.random() for _ in range(dim)], "payload": {"n": i, "text": text}}
           for i in range(start, min(start + 400, n + 1))]
    call("PUT", "/collections/bulk/points?wait=true", {"points": pts})
print(f"loaded {n} points")
PY
. .cache/run/env
export MILVUS_TOKEN="$Q2Z_MILVUS_TOKEN" AWS_ACCESS_KEY_ID="$Q2Z_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$Q2Z_S3_SECRET_KEY"
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
rm -rf "$W/stage"
t0=$(date +%s%N)
"$B/q2z" export --qdrant-url "$URL" -c bulk --stage "$W/stage" >/dev/null
t1=$(date +%s%N)
"$B/q2z" import --stage "$W/stage" --milvus-url "$Q2Z_MILVUS_URL" --s3-endpoint "$Q2Z_S3_ENDPOINT" \
  --s3-bucket "$Q2Z_S3_BUCKET" --drop-existing --sample 0 >/dev/null
t2=$(date +%s%N)
"$B/q2z" sync --stage "$W/stage" --qdrant-url "$URL" --milvus-url "$Q2Z_MILVUS_URL" | tee "$W/sync0.txt"
t3=$(date +%s%N)
# 1% changed: ids 1, 101, 201, … get a new vector and a new payload.
python3 - "$URL" "$N" "$DIM" <<'PY'
import json, sys, urllib.request, random
url, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(5)
pts = [{"id": i, "vector": [random.random() for _ in range(dim)], "payload": {"n": i, "changed": True}}
       for i in range(1, n + 1, 100)]
for k in range(0, len(pts), 500):
    req = urllib.request.Request(f"{url}/collections/bulk/points?wait=true", method="PUT",
        data=json.dumps({"points": pts[k:k + 500]}).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
print(f"changed {len(pts)} points")
PY
t4=$(date +%s%N)
"$B/q2z" sync --stage "$W/stage" --qdrant-url "$URL" --milvus-url "$Q2Z_MILVUS_URL" | tee "$W/sync1.txt"
t5=$(date +%s%N)
echo "$N points: live export $(secs "$t0" "$t1") s; import $(secs "$t1" "$t2") s; sync, nothing changed $(secs "$t2" "$t3") s; sync, 1% changed $(secs "$t4" "$t5") s"
