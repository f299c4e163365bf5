#!/usr/bin/env bash
# Whole-run benchmark on one machine, same collection, same parallelism:
#   1. raw drain (scroll pages fetched and thrown away)   2. q2z export (live)
#   1b. raw gRPC drain (pages decoded, thrown away)        2b. q2z export --transport grpc
#   3. qdrant-to-parquet --rest (PyPI)                    4. q2z export --snapshot
#   5. upload of the staged files: raw PUTs (curl --aws-sigv4) vs q2z's uploader, same files,
#      same parallelism, into the S3 stand-in (s3s-fs) on loopback
#   6. `q2z plan`'s prediction (export time, stage bytes, peak memory, upload time) made just
#      before each q2z run, beside what the run measured
# each with its peak RSS (/usr/bin/time -v). Usage: benches/compare.sh [POINTS] (default 200000)
# Env: DIM (768), WORKERS (4), PAGE (256), PROFILE (release; `dev` reuses the test build),
# SKIP_Q2P=1 leaves out qdrant-to-parquet (e.g. for the 1M-point memory run). STATIC=1 also
# builds the static musl binary (`scripts/dist.sh`'s build; ~16 min cold) and measures it over
# gRPC and from the snapshot beside the glibc build.
# PIN=1 runs the stand-in on CPU 0 and every measured client on CPU 1 (taskset): the server then
# drains as if on a machine of its own, and a client's ratio to the drain shows whether the
# client keeps up, not how two processes share two cores.
set -euo pipefail
N="${1:-200000}"; DIM="${DIM:-768}"; WORKERS="${WORKERS:-4}"; PAGE="${PAGE:-256}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
W="$ROOT/.cache/bench-$N-$DIM"; mkdir -p "$W"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
PROFILE="${PROFILE:-release}"
SRV=(); CLI=()
if [ -n "${PIN:-}" ]; then SRV=(taskset -c 0); CLI=(taskset -c 1); fi
. benches/build.sh
if [ -n "${STATIC:-}" ]; then
  q2z_musl_build 2>&1 | tail -1 >&2
  cp "target/$Q2Z_MUSL/release/q2z" "$W/q2z-static"
fi
if [ ! -f "$W/gen/bulk.collection.snapshot" ]; then
  echo "generating $N points of $DIM dims with ~1 KiB payloads..." >&2
  rm -rf "$W/gen"; "$B/qdrant-standin" generate --out "$W/gen" --bulk-points "$N" --bulk-dim "$DIM"
fi
VENV="$ROOT/.cache/venv-bench"
[ -x "$VENV/bin/qdrant-to-parquet" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q qdrant-to-parquet; }
rm -rf "$W/q" "$W/addr"
rm -f "$W/grpc.addr"
"${SRV[@]}" "$B/qdrant-standin" serve --snapshot "$W/gen/bulk.collection.snapshot" --data "$W/q" --addr-file "$W/addr" \
  --grpc-addr-file "$W/grpc.addr" >"$W/standin.log" 2>&1 &
SPID=$!; trap 'kill $SPID 2>/dev/null || true' EXIT
while [ ! -s "$W/addr" ]; do sleep 0.2; done
URL="http://$(cat "$W/addr")"
GRPC="http://$(cat "$W/grpc.addr")"

measure() { # label command...
  local label="$1"; shift
  local log="$W/$label.time"
  sync # the previous run's files are written back before this one starts
  local t0; t0=$(date +%s%N)
  /usr/bin/time -v "${CLI[@]}" "$@" >"$W/$label.out" 2>"$log" &
  local tp=$! anon=0 a c
  # Peak anonymous memory (heap), sampled: RSS also counts file pages that are mmapped (the
  # unpacked snapshot's segments), which the kernel can drop at any time.
  while kill -0 "$tp" 2>/dev/null; do
    for c in $(pgrep -P "$tp"); do
      a=$(awk '/^RssAnon/{print $2}' "/proc/$c/status" 2>/dev/null || true)
      [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    done
    sleep 0.1
  done
  wait "$tp"
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local rss; rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  # CPU of the measured process itself (user + sys), per point.
  local cpu; cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$log")
  printf '%-22s %8d ms %10s points/s  peak RSS %6d MB (anonymous %5d MB)  CPU %5.1f µs/point\n' "$label" "$ms" "$(awk -v n="$N" -v ms="$ms" 'BEGIN{printf "%.0f", n*1000/ms}')" $((rss / 1024)) $((anon / 1024)) "$(awk -v c="$cpu" -v n="$N" 'BEGIN{printf "%.1f", c*1e6/n}')"
  echo "$label $ms $rss $anon $cpu" >>"$W/results"
}
rm -f "$W/results" "$W/predictions" "$W/staged-bytes"
# predict LABEL PLAN-ARGS...: what `q2z plan` (its calibration read) predicts for the run
# measured next under LABEL.
predict() {
  local label="$1"; shift
  "${CLI[@]}" "$B/q2z" plan "$@" --json >"$W/$label.plan.json" 2>"$W/$label.plan.log"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]["run"]
print(sys.argv[2], r["export_seconds"], r["stage_bytes"], r["peak_memory_bytes"], r.get("upload_seconds") or 0)' \
    "$W/$label.plan.json" "$label" >>"$W/predictions"
}
# staged LABEL DIR: the Parquet bytes an export under LABEL wrote.
staged_bytes() { echo "$1 $(find "$2" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s+0}')" >>"$W/staged-bytes"; }
# Warm-up pass (unmeasured): the first reader of a freshly loaded collection pays for faulting
# its storage in; every measured run then reads a warm source.
"$B/examples/drain" "$URL" bulk "$WORKERS" "$PAGE" >/dev/null
measure drain "$B/examples/drain" "$URL" bulk "$WORKERS" "$PAGE"
rm -rf "$W/stage-live"
predict q2z_live --qdrant-url "$URL" -c bulk --workers "$WORKERS" --page-size "$PAGE" --transport rest
measure q2z_live "$B/q2z" export --qdrant-url "$URL" -c bulk --stage "$W/stage-live" --workers "$WORKERS" --page-size "$PAGE" --transport rest --json
staged_bytes q2z_live "$W/stage-live"
"$B/examples/drain_grpc" "$URL" "$GRPC" bulk "$WORKERS" "$PAGE" >/dev/null
measure drain_grpc "$B/examples/drain_grpc" "$URL" "$GRPC" bulk "$WORKERS" "$PAGE"
rm -rf "$W/stage-grpc"
predict q2z_grpc --qdrant-url "$URL" --grpc-url "$GRPC" --transport grpc -c bulk --workers "$WORKERS" --page-size "$PAGE"
measure q2z_grpc "$B/q2z" export --qdrant-url "$URL" --grpc-url "$GRPC" --transport grpc -c bulk --stage "$W/stage-grpc" --workers "$WORKERS" --page-size "$PAGE" --json
staged_bytes q2z_grpc "$W/stage-grpc"
rm -rf "$W/stage-grpc"
if [ -n "${STATIC:-}" ]; then
  measure q2z_grpc_static "$W/q2z-static" export --qdrant-url "$URL" --grpc-url "$GRPC" --transport grpc -c bulk --stage "$W/stage-grpc" --workers "$WORKERS" --page-size "$PAGE" --json
  rm -rf "$W/stage-grpc"
fi
# The default: --transport auto times both on the first page and reads over the faster.
measure q2z_auto "$B/q2z" export --qdrant-url "$URL" --grpc-url "$GRPC" -c bulk --stage "$W/stage-grpc" --workers "$WORKERS" --page-size "$PAGE" --json
CHOSEN=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print([w for w in m["collections"]["bulk"]["warnings"] if w.startswith("pages read over")][0])' "$W/stage-grpc/manifest.json" 2>/dev/null || echo "?")
echo "auto: $CHOSEN"
rm -rf "$W/stage-grpc"
rm -f "$W/q2p.parquet" "$W/q2p.parquet".*
if [ -z "${SKIP_Q2P:-}" ]; then
  measure qdrant_to_parquet "$VENV/bin/qdrant-to-parquet" --url "$URL" --rest --workers "$WORKERS" --batch-size "$PAGE" -q -f bulk "$W/q2p.parquet"
fi
# Offline runs need no server: stop the stand-in so its memory and page cache are not in the way.
kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true
# The snapshot file is read into the page cache first (unmeasured), as the live runs read a
# warm stand-in; and one unmeasured export warms the disk path: on this VM the first run after
# the live export's 3 GB of writes took 27 s where the next ones took 18.5-19 s.
warm_snapshot() { cat "$W/gen/bulk.collection.snapshot" >/dev/null; }
warm_snapshot; "$B/q2z" export --snapshot "$W/gen/bulk.collection.snapshot" --as bulk --stage "$W/stage-snap" --workers "$WORKERS" --json >/dev/null 2>&1
rm -rf "$W/stage-snap"; warm_snapshot
predict q2z_snapshot --snapshot "$W/gen/bulk.collection.snapshot" --as bulk --workers "$WORKERS"
warm_snapshot
measure q2z_snapshot "$B/q2z" export --snapshot "$W/gen/bulk.collection.snapshot" --as bulk --stage "$W/stage-snap" --workers "$WORKERS" --json
staged_bytes q2z_snapshot "$W/stage-snap"
if [ -n "${STATIC:-}" ]; then
  rm -rf "$W/stage-snap"; warm_snapshot
  measure q2z_snapshot_static "$W/q2z-static" export --snapshot "$W/gen/bulk.collection.snapshot" --as bulk --stage "$W/stage-snap" --workers "$WORKERS" --json
fi
# The disk-read limit beside the snapshot export: dd of the snapshot file from the page cache
# (as the runs above read it) and cold, where this process may drop the caches.
dd_rate() { dd if="$W/gen/bulk.collection.snapshot" of=/dev/null bs=1M 2>&1 | awk -F', ' '/copied/ {print $NF}'; }
WARM_DD=$(dd_rate)
if sync && echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; then COLD_DD=$(dd_rate); else COLD_DD="(caches not droppable here)"; fi
SNAP_BYTES=$(stat -c %s "$W/gen/bulk.collection.snapshot")
echo "disk-read limit: dd of the ${SNAP_BYTES}-byte snapshot: $WARM_DD from the page cache, $COLD_DD cold"
staged() { du -sb --apparent-size "$1" | awk '{printf "%.0f MB", $1/1e6}'; }
SIZE_DEFAULT=$(staged "$W/stage-snap")
# The same with zstd on the vector columns too (--vector-compression zstd).
rm -rf "$W/stage-snap"; warm_snapshot
measure q2z_snapshot_zstd_vec "$B/q2z" export --snapshot "$W/gen/bulk.collection.snapshot" --as bulk --stage "$W/stage-snap" --workers "$WORKERS" --vector-compression zstd --json
echo "staged bytes: vectors uncompressed (default) $SIZE_DEFAULT, vectors zstd $(staged "$W/stage-snap")"
rm -rf "$W/stage-snap"
awk -v n="$N" -v b="$SNAP_BYTES" '{ms[$1]=$2; cpu[$1]=$5} END {
  printf "q2z live / drain          = %.2f\n", ms["drain"]/ms["q2z_live"];
  printf "q2z gRPC / gRPC drain     = %.2f\n", ms["drain_grpc"]/ms["q2z_grpc"];
  printf "q2z gRPC / q2z REST       = %.2f (speed); CPU per point %.1f vs %.1f µs\n", ms["q2z_live"]/ms["q2z_grpc"], cpu["q2z_grpc"]*1e6/n, cpu["q2z_live"]*1e6/n;
  best = ms["drain"] < ms["drain_grpc"] ? ms["drain"] : ms["drain_grpc"];
  printf "q2z auto / faster drain   = %.2f (auto / best of q2z REST, gRPC = %.2f)\n", best/ms["q2z_auto"], (ms["q2z_live"] < ms["q2z_grpc"] ? ms["q2z_live"] : ms["q2z_grpc"])/ms["q2z_auto"];
  if (ms["qdrant_to_parquet"]) printf "q2z live / qdrant-to-parquet = %.2f\n", ms["qdrant_to_parquet"]/ms["q2z_live"];
  printf "q2z snapshot / q2z live   = %.2f (vectors zstd: %.2f)\n", ms["q2z_live"]/ms["q2z_snapshot"], ms["q2z_live"]/ms["q2z_snapshot_zstd_vec"];
  printf "q2z snapshot reads        = %.0f MB/s of the snapshot file\n", b/ms["q2z_snapshot"]/1000;
  if (ms["q2z_grpc_static"]) printf "static / glibc build      = %.2f gRPC, %.2f snapshot (time; CPU %.1f vs %.1f µs/point from the snapshot)\n", ms["q2z_grpc"]/ms["q2z_grpc_static"], ms["q2z_snapshot"]/ms["q2z_snapshot_static"], cpu["q2z_snapshot_static"]*1e6/n, cpu["q2z_snapshot"]*1e6/n }' "$W/results"

# 5. Upload throughput of the live export's files.
rm -rf "$W/s3" "$W/s3.addr"; mkdir -p "$W/s3"
S3_STANDIN_SECRET=benchsecret "$B/s3-standin" --root "$W/s3" --access-key benchkey --bucket bench \
  --addr-file "$W/s3.addr" >"$W/s3.log" 2>&1 &
S3PID=$!; trap 'kill $SPID $S3PID 2>/dev/null || true' EXIT
while [ ! -s "$W/s3.addr" ]; do sleep 0.2; done
export S3="http://$(cat "$W/s3.addr")"
BYTES=$(find "$W/stage-live" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
upload_rate() { # label command...
  local label="$1"; shift
  sync
  local t0; t0=$(date +%s%N)
  "$@" >/dev/null
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%-22s %8d ms %10s MB/s (%s bytes)\n' "$label" "$ms" "$(awk -v b="$BYTES" -v ms="$ms" 'BEGIN{printf "%.1f", b/ms/1000}')" "$BYTES"
  echo "$label $ms" >>"$W/upload-results"
}
rm -f "$W/upload-results"
raw_put() {
  find "$W/stage-live" -name '*.parquet' -print0 | xargs -0 -P "$WORKERS" -I{} sh -c \
    'curl -sf --aws-sigv4 aws:amz:us-east-1:s3 --user benchkey:benchsecret -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$1" "$S3/bench/raw/${1##*/}"' _ {}
}
upload_rate raw_put raw_put
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
# The plan's upload prediction: its calibration files sent to the same bucket, the rate scaled
# to the stage the live export wrote.
predict q2z_upload --snapshot "$W/gen/bulk.collection.snapshot" --as bulk --workers "$WORKERS" \
  --s3-endpoint "$S3" --s3-bucket bench
# q2z as `import` runs it: one streamed PUT per file whose manifest SHA-256 is signed into the
# URL (x-amz-checksum-sha256), so the store hashes every byte it receives ...
upload_rate q2z_upload "$B/examples/upload" "$S3" bench "$W/stage-live" "$WORKERS"
# ... and without the checksum header: the same request shape as the raw PUTs.
upload_rate q2z_upload_no_checksum "$B/examples/upload" "$S3" bench "$W/stage-live" "$WORKERS" no-checksum
awk '{ms[NR]=$2} END { printf "q2z upload / raw PUT      = %.2f (without the checksum: %.2f)\n", ms[1]/ms[2], ms[1]/ms[3] }' "$W/upload-results"

# 6. The plan's predictions beside the measured runs (ratio = predicted / measured; the issue's
# target is within ±25 %).
echo "plan's prediction vs the run:"
awk 'FILENAME ~ /predictions$/ {pt[$1]=$2; pb[$1]=$3; pm[$1]=$4; pu[$1]=$5; next}
     FILENAME ~ /staged-bytes$/ {sb[$1]=$2; next}
     FILENAME ~ /upload-results$/ {if ($1=="q2z_upload") up=$2/1000; next}
     {ms[$1]=$2/1000; rss[$1]=$3*1024}
     END {
       printf "%-14s %22s %26s %24s\n", "run", "export s (pred/meas)", "stage MB (pred/meas)", "peak MB (pred/meas)";
       n = split("q2z_live q2z_grpc q2z_snapshot", L, " ");
       for (i = 1; i <= n; i++) { l = L[i]; if (!(l in pt)) continue;
         printf "%-14s %8.1f / %6.1f %5.2f %10.0f / %6.0f %5.2f %8.0f / %6.0f %5.2f\n", l,
           pt[l], ms[l], pt[l]/ms[l], pb[l]/1e6, sb[l]/1e6, pb[l]/sb[l], pm[l]/2^20, rss[l]/2^20, pm[l]/rss[l] }
       if ("q2z_upload" in pu && up > 0) {
         # Scaled to the bytes the measured upload sent (the live export'"'"'s stage).
         pred = pu["q2z_upload"] * sb["q2z_live"] / pb["q2z_upload"];
         printf "%-14s %8.1f / %6.1f %5.2f (upload s, at the plan'"'"'s measured rate)\n", "q2z_upload", pred, up, pred/up }
     }' "$W/predictions" "$W/staged-bytes" "$W/upload-results" "$W/results"
