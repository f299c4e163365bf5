#!/usr/bin/env bash
# The test command: starts the stand-ins, runs every test against them, stops them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
cargo build --locked --workspace --all-targets
scripts/standins.sh start >/dev/null
trap 'scripts/standins.sh stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. .cache/run/env
cargo test --locked --workspace "$@"
