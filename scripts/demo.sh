#!/usr/bin/env bash
# The main job on the embedded default: the bundled Qdrant snapshots (fixtures/) are exported
# offline, bulk-imported through the S3 stand-in into the Milvus stand-in, and verified.
# Nothing outside this machine is used; the stand-ins are started and stopped here.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
q2z_build
scripts/standins.sh start --target-only >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. .cache/run/env
STAGE="$ROOT/.cache/demo-stage"
rm -rf "$STAGE"
export MILVUS_TOKEN="$Q2Z_MILVUS_TOKEN" AWS_ACCESS_KEY_ID="$Q2Z_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$Q2Z_S3_SECRET_KEY"
SNAPS=(fixtures/qdrant-1.19/fx_named.collection.snapshot fixtures/gen_ints.collection.snapshot)
target/debug/q2z plan --snapshot "${SNAPS[@]}"
target/debug/q2z migrate --snapshot "${SNAPS[@]}" --stage "$STAGE" \
  --milvus-url "$Q2Z_MILVUS_URL" --s3-endpoint "$Q2Z_S3_ENDPOINT" --s3-bucket "$Q2Z_S3_BUCKET" --drop-existing
# The migration report: one self-contained HTML file (and its JSON) a team can sign off on.
target/debug/q2z report --stage "$STAGE" --out "$ROOT/.cache/demo-report.html"
echo "migration report: $ROOT/.cache/demo-report.html"
