#!/usr/bin/env bash
# Sourced by every entry point (scripts/demo.sh, scripts/test.sh, .ci/run): makes sure the Rust
# toolchain pinned in rust-toolchain.toml is installed (current rustup no longer installs it on
# first use), then defines q2z_build, the one build both README commands share.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rustup >/dev/null; then
  echo "q2z: rustup is needed to install the pinned Rust toolchain (rust-toolchain.toml); install it from your package manager or rustup.rs, then run this again" >&2
  exit 1
fi
TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../rust-toolchain.toml")
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "q2z: installing Rust $TOOLCHAIN (pinned in rust-toolchain.toml; qdrant-edge needs rustc >= 1.96)" >&2
  (cd "$(dirname "${BASH_SOURCE[0]}")/.." && rustup toolchain install) \
    || { echo "q2z: rustup could not install Rust $TOOLCHAIN; run: rustup toolchain install $TOOLCHAIN --profile minimal -c rustfmt,clippy" >&2; exit 1; }
fi

# One build for the demo and the tests: the same command, so the second reuses the first
# (a narrower `cargo build -p q2z` resolves dependency features differently and rebuilds them).
q2z_build() {
  cargo build --locked --workspace --all-targets
}
