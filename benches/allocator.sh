#!/usr/bin/env bash
# The allocator of the q2z binary, measured: an offline snapshot export (no server, so nothing
# but q2z on the CPU) of one generated collection, by three release builds — glibc (glibc's
# malloc), the static musl target with mimalloc (the default feature) and with musl's own malloc
# (`--no-default-features`), and the musl one again with MIMALLOC_PURGE_DELAY=0 (memory given
# back at once) — each run RUNS times (default 3), with user / sys CPU, wall time and peak RSS
# from /usr/bin/time. Usage: benches/allocator.sh [POINTS] (default 50000; DIM 768,
# ~1 KiB payloads). Cold: two release builds of ~16 min each on 2 cores (not in CI).
set -euo pipefail
N="${1:-50000}"; DIM="${DIM:-768}"; RUNS="${RUNS:-3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
W="$ROOT/.cache/bench-alloc"; mkdir -p "$W/bin"
if [ ! -f "$W/gen-$N-$DIM/bulk.collection.snapshot" ]; then
  q2z_build
  target/debug/qdrant-standin generate --out "$W/gen-$N-$DIM" --bulk-points "$N" --bulk-dim "$DIM" >/dev/null
fi
SNAP="$W/gen-$N-$DIM/bulk.collection.snapshot"
for libc in gnu musl; do
  for alloc in mimalloc system; do
    [ "$libc-$alloc" = gnu-system ] && continue   # glibc builds use glibc's malloc either way
    flags=()
    [ "$alloc" = system ] && flags+=(--no-default-features)
    if [ "$libc" = musl ]; then
      q2z_musl_build "${flags[@]}" 2>&1 | tail -1 >&2; dir="target/$Q2Z_MUSL/release"
    else
      cargo build --release --locked -p q2z --bin q2z 2>&1 | tail -1 >&2; dir=target/release
    fi
    cp "$dir/q2z" "$W/bin/q2z-$libc-$alloc"
  done
done
printf '%-22s %8s %8s %8s %10s\n' build wall_s user_s sys_s peak_MB
for run in gnu-mimalloc:glibc musl-mimalloc:musl-mimalloc musl-mimalloc:musl-mimalloc-purge0 musl-system:musl-system; do
  b="${run%%:*}"; name="${run#*:}"
  for _ in $(seq "$RUNS"); do
    rm -rf "$W/stage"
    purge=(); [ "$name" = musl-mimalloc-purge0 ] && purge=(env MIMALLOC_PURGE_DELAY=0)
    /usr/bin/time -f '%e %U %S %M' -o "$W/time" \
      "${purge[@]}" "$W/bin/q2z-$b" export --snapshot "$SNAP" --stage "$W/stage" >/dev/null 2>"$W/err" \
      || { cat "$W/err" >&2; exit 1; }
    read -r wall user sys rss <"$W/time"
    printf '%-22s %8s %8s %8s %10s\n' "$name" "$wall" "$user" "$sys" "$((rss / 1024))"
  done
done
rm -rf "$W/stage"
