#!/usr/bin/env bash
# Test stand-ins for q2z: Qdrant REST (qdrant-edge), Milvus REST v2 (Milvus Lite 2.5.1) and S3
# (s3s-fs). Installs what is missing under .cache/ (git-ignored), starts everything on
# 127.0.0.1 on free ports and writes the environment the tests read to .cache/run/env.
#
#   scripts/standins.sh start    install (if needed) and start; prints the environment
#   scripts/standins.sh start --target-only   only the Milvus and S3 stand-ins
#   scripts/standins.sh start --no-extra      without the Milvus release profiles and Milvus 2.3.5
#   scripts/standins.sh env      print the environment of the running stand-ins
#   scripts/standins.sh stop     stop them
# Q2Z_RUN_DIR (default .cache/run) holds their state: a bench can run its own set beside the tests'.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache"
RUN="${Q2Z_RUN_DIR:-$CACHE/run}"
VENV="$CACHE/venv-milvus"
VENV23="$CACHE/venv-m23"
# Releases whose REST behaviour extra Milvus stand-ins follow (the main one: 2.5.16); 2.5.4 is
# the line that takes an empty sparse row over REST but fails it in an import.
MILVUS_PROFILES="2.4.9 2.5.4 2.6.24 3.0.2"
SHARED_FIXTURES="${Q2Z_FIXTURES:-$ROOT/fixtures/qdrant-1.19}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/debug"

die() { echo "standins: $*" >&2; exit 1; }
log() { echo "standins: $*" >&2; }

install_python() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import milvus_lite, pymilvus, pyarrow' 2>/dev/null; then return; fi
  log "installing Milvus Lite 2.5.1 + pymilvus + pyarrow into $VENV (PyPI)"
  command -v python3 >/dev/null || die "python3 is required (apt-get install python3 python3-venv)"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'milvus-lite==2.5.1' 'pymilvus==2.5.18' 'pyarrow>=15' 'numpy' 'setuptools<70' \
    || die "pip install of milvus-lite 2.5.1 failed"
}

install_m23() {
  if [ -x "$VENV23/bin/milvus-server" ] && "$VENV23/bin/python" -c 'import pymilvus, pyarrow' 2>/dev/null; then return; fi
  log "installing the embedded Milvus 2.3.5 server + pymilvus 2.3.8 into $VENV23 (PyPI)"
  python3 -m venv "$VENV23" || die "python3 -m venv failed"
  "$VENV23/bin/pip" install -q --disable-pip-version-check 'milvus==2.3.5' 'pymilvus==2.3.8' 'setuptools<70' 'marshmallow<4' 'pyarrow' \
    || die "pip install of milvus 2.3.5 failed"
}

# Milvus 2.3.5 binds every interface: run it, and an S3 stand-in for its storage, in a private
# network namespace that has only loopback.
start_m23() {
  command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; } || die "ip (iproute2) is needed for the Milvus 2.3.5 namespace"
  local ns="q2z-m23-$$"
  ip netns add "$ns" || die "cannot create network namespace $ns (needs root)"
  echo "$ns" >"$RUN/netns"
  ip netns exec "$ns" ip link set lo up
  mkdir -p "$RUN/m23s3" "$RUN/m23"
  S3_STANDIN_SECRET=minioadmin ip netns exec "$ns" "$BIN/s3-standin" --root "$RUN/m23s3" --listen 127.0.0.1:9000 \
    --access-key minioadmin --bucket milvus-bucket >"$RUN/m23s3.log" 2>&1 &
  echo $! >>"$RUN/pids"
  ip netns exec "$ns" "$VENV23/bin/milvus-server" --data "$RUN/m23" --extra-config common.storageType=minio \
    --extra-config minio.address=127.0.0.1 --extra-config minio.port=9000 --extra-config minio.bucketName=milvus-bucket \
    --extra-config minio.rootPath=files >"$RUN/m23.log" 2>&1 &
  echo $! >>"$RUN/pids"
  local i=0
  until ip netns exec "$ns" "$VENV23/bin/python" -c 'import urllib.request,sys; sys.exit(0 if b"OK" in urllib.request.urlopen("http://127.0.0.1:9091/healthz", timeout=2).read() else 1)' 2>/dev/null; do
    i=$((i + 1)); [ "$i" -gt 240 ] && die "Milvus 2.3.5 did not become healthy in 120 s (log: $RUN/m23.log)"
    sleep 0.5
  done
}

build_bins() {
  # Always through cargo (a no-op when nothing changed): binaries left by an older checkout
  # would otherwise serve and generate stale fixtures.
  # The tests' own build (scripts/toolchain.sh): after scripts/test.sh's it compiles nothing.
  # shellcheck source=scripts/toolchain.sh
  . "$ROOT/scripts/toolchain.sh"
  log "building the Rust stand-ins (cargo build --locked --workspace --all-targets)"
  (cd "$ROOT" && q2z_build) || die "cargo build of the stand-ins failed"
}

wait_file() { # file seconds name
  local i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1)); [ "$i" -gt $(($2 * 10)) ] && die "$3 did not start within $2 s (log: $RUN/$3.log)"
    sleep 0.1
  done
}

start() {
  local target_only="" extra="yes"
  case "${1:-}" in
    --target-only) target_only=yes; extra="" ;;
    --no-extra) extra="" ;;
  esac
  [ -f "$RUN/env" ] && stop >/dev/null 2>&1 || true
  install_python
  [ -n "$extra" ] && install_m23
  build_bins
  rm -rf "$RUN"; mkdir -p "$RUN"
  if [ -z "$target_only" ]; then
    [ -d "$SHARED_FIXTURES" ] || die "real-server fixtures not found at $SHARED_FIXTURES (set Q2Z_FIXTURES)"
  fi
  gen_version=$(sha256sum "$ROOT/standins/qdrant/src/fixtures.rs" | cut -c1-16)
  if [ -z "$target_only" ] && [ "$(cat "$CACHE/gen/.done" 2>/dev/null)" != "$gen_version" ]; then
    log "generating fixture collections into $CACHE/gen"
    rm -rf "$CACHE/gen"; "$BIN/qdrant-standin" generate --out "$CACHE/gen" && echo "$gen_version" > "$CACHE/gen/.done"
  fi
  local ak="AKIAQ2ZTEST" sk qk mt
  sk="s3-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  qk="qk-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mt="root:mv-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local t0; t0=$(date +%s%N)
  S3_STANDIN_SECRET="$sk" "$BIN/s3-standin" --root "$RUN/s3" --access-key "$ak" --bucket milvus-bucket \
    --addr-file "$RUN/s3.addr" >"$RUN/s3.log" 2>&1 &
  echo $! >>"$RUN/pids"
  wait_file "$RUN/s3.addr" 20 s3
  if [ -z "$target_only" ]; then
    QDRANT_STANDIN_API_KEY="$qk" "$BIN/qdrant-standin" serve --snapshot-dir "$SHARED_FIXTURES" --snapshot-dir "$CACHE/gen" \
      --data "$RUN/qdrant" --addr-file "$RUN/qdrant.addr" --grpc-addr-file "$RUN/qdrant-grpc.addr" >"$RUN/qdrant.log" 2>&1 &
    echo $! >>"$RUN/pids"
  else
    echo "-" >"$RUN/qdrant.addr"
    echo "-" >"$RUN/qdrant-grpc.addr"
  fi
  mkdir -p "$RUN/milvus"
  "$VENV/bin/python" "$ROOT/standins/milvus/milvus_standin.py" --data "$RUN/milvus" --token "$mt" \
    --s3-endpoint "http://$(cat "$RUN/s3.addr")" --s3-access-key "$ak" --s3-secret-key "$sk" --bucket milvus-bucket \
    --addr-file "$RUN/milvus.addr" >"$RUN/milvus.log" 2>&1 &
  echo $! >>"$RUN/pids"
  # The same stand-in following other releases' REST behaviour (--milvus-version), for the
  # suites that scripts/test.sh runs once per release line.
  local profiles_env=""
  if [ -n "$extra" ]; then
    for v in $MILVUS_PROFILES; do
      mkdir -p "$RUN/milvus-$v"
      "$VENV/bin/python" "$ROOT/standins/milvus/milvus_standin.py" --data "$RUN/milvus-$v" --token "$mt" \
        --s3-endpoint "http://$(cat "$RUN/s3.addr")" --s3-access-key "$ak" --s3-secret-key "$sk" --bucket milvus-bucket \
        --milvus-version "$v" --addr-file "$RUN/milvus-$v.addr" >"$RUN/milvus-$v.log" 2>&1 &
      echo $! >>"$RUN/pids"
    done
  fi
  wait_file "$RUN/qdrant.addr" 60 qdrant
  wait_file "$RUN/milvus.addr" 60 milvus
  if [ -n "$extra" ]; then
    for v in $MILVUS_PROFILES; do
      wait_file "$RUN/milvus-$v.addr" 60 "milvus $v"
      profiles_env="${profiles_env}export Q2Z_MILVUS_URL_${v//./_}=http://$(cat "$RUN/milvus-$v.addr")
"
    done
  fi
  [ -n "$extra" ] && start_m23
  cat >"$RUN/env" <<ENV
export Q2Z_QDRANT_URL=http://$(cat "$RUN/qdrant.addr")
export Q2Z_QDRANT_API_KEY=$qk
export Q2Z_QDRANT_GRPC_URL=http://$(cat "$RUN/qdrant-grpc.addr")
export Q2Z_MILVUS_URL=http://$(cat "$RUN/milvus.addr")
export Q2Z_MILVUS_TOKEN=$mt
export Q2Z_S3_ENDPOINT=http://$(cat "$RUN/s3.addr")
export Q2Z_S3_BUCKET=milvus-bucket
export Q2Z_S3_ACCESS_KEY=$ak
export Q2Z_S3_SECRET_KEY=$sk
export Q2Z_S3_ROOT=$RUN/s3
export Q2Z_GEN_FIXTURES=$CACHE/gen
export Q2Z_STANDIN_BIN=$BIN
export Q2Z_FIXTURES=$SHARED_FIXTURES
export Q2Z_M23_NETNS=$(cat "$RUN/netns" 2>/dev/null || echo none)
export Q2Z_M23_PYTHON=$VENV23/bin/python
export Q2Z_MILVUS_PROFILES="$([ -n "$extra" ] && echo "$MILVUS_PROFILES")"
${profiles_env}
ENV
  log "started in $(( ($(date +%s%N) - t0) / 1000000 )) ms; RSS (KiB): $(for p in $(cat "$RUN/pids"); do ps -o rss= -p "$p" | tr -d ' '; done | paste -sd' ')"
  cat "$RUN/env"
}

stop() {
  if [ -f "$RUN/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$RUN/pids"
    rm -f "$RUN/pids"
  fi
  if [ -f "$RUN/netns" ]; then
    # Every process in the namespace (milvus-server's child included) goes with it.
    local ns; ns=$(cat "$RUN/netns")
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -INT "$p" 2>/dev/null || true; done
    sleep 2
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$RUN/netns"
  fi
  rm -f "$RUN/env"
  log "stopped"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  env) [ -f "$RUN/env" ] || die "not running (scripts/standins.sh start)"; cat "$RUN/env" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
