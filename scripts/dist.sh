#!/usr/bin/env bash
# Static Linux binaries for air-gapped sites: builds q2z for x86_64-unknown-linux-musl (aarch64
# needs a cross C toolchain this machine lacks: not built), writes it with a SHA-256 file, shell
# completions and a man page into dist/, and checks that ldd reports a static executable, and
# that the binary — copied into an empty directory and run with no toolchain on PATH — plans and
# migrates the bundled fixture into the stand-ins (which this script starts), verification passed.
# Usage: scripts/dist.sh   (16 minutes cold on 2 cores: a release build of its own; not in CI,
# which it would double — run it as the release job)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
. scripts/toolchain.sh
TARGET="$Q2Z_MUSL"
q2z_musl_build
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
OUT="$ROOT/dist"; mkdir -p "$OUT"
NAME="q2z-$VERSION-$TARGET"
cp "target/$TARGET/release/q2z" "$OUT/$NAME"
strip "$OUT/$NAME" 2>/dev/null || true
# A static executable: ldd says so (and names no shared library).
LDD="$(ldd "$OUT/$NAME" 2>&1 || true)"
case "$LDD" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) echo "not static: $LDD" >&2; exit 1 ;;
esac
"$OUT/$NAME" --version
"$OUT/$NAME" completions bash >"$OUT/q2z.bash"
"$OUT/$NAME" completions zsh >"$OUT/_q2z"
"$OUT/$NAME" completions fish >"$OUT/q2z.fish"
"$OUT/$NAME" manpage --dir "$OUT/man"   # q2z.1 and one page per command
# It runs with no toolchain on PATH, from a clean directory: plan, then a whole migration of
# the fixture into the Milvus and S3 stand-ins.
CLEAN="$(mktemp -d)"
scripts/standins.sh start --target-only >/dev/null
trap 'rm -rf "$CLEAN"; scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. .cache/run/env
cp "$OUT/$NAME" "$CLEAN/q2z"
FIXTURE="$ROOT/fixtures/qdrant-1.19/fx_named.collection.snapshot"
(cd "$CLEAN" && env -i PATH=/usr/bin:/bin HOME="$CLEAN" ./q2z plan --snapshot "$FIXTURE" >plan.txt)
grep -q "Milvus collection 'fx_named'" "$CLEAN/plan.txt"
(cd "$CLEAN" && env -i PATH=/usr/bin:/bin HOME="$CLEAN" MILVUS_TOKEN="$Q2Z_MILVUS_TOKEN" \
  AWS_ACCESS_KEY_ID="$Q2Z_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$Q2Z_S3_SECRET_KEY" \
  ./q2z migrate --snapshot "$FIXTURE" --stage ./stage --milvus-url "$Q2Z_MILVUS_URL" \
  --s3-endpoint "$Q2Z_S3_ENDPOINT" --s3-bucket "$Q2Z_S3_BUCKET" --drop-existing >migrate.txt)
grep -q "verification: PASSED" "$CLEAN/migrate.txt"
echo "the static binary migrated the fixture from an empty directory with PATH=/usr/bin:/bin"
(cd "$OUT" && sha256sum "$NAME" >"$NAME.sha256")
ls -l "$OUT"
echo "dist/$NAME: $(du -h "$OUT/$NAME" | cut -f1), static, sha256 in dist/$NAME.sha256"
