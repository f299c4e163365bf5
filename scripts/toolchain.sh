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

# The static (musl) q2z binary: adds the target to the pinned toolchain, installs musl-gcc (the
# C compiler for the C parts of the dependencies) if missing, and builds `--release` for it with
# any extra cargo flags given. The binary lands in target/x86_64-unknown-linux-musl/release/.
# Used by scripts/dist.sh and the benchmarks that measure the static build.
Q2Z_MUSL=x86_64-unknown-linux-musl
q2z_musl_build() {
  rustup target add --toolchain "$TOOLCHAIN" "$Q2Z_MUSL" >/dev/null
  if ! command -v musl-gcc >/dev/null; then
    echo "installing musl-tools (the C compiler for the static build)..." >&2
    apt-get install -y -qq musl-tools >/dev/null \
      || { echo "install musl-tools (apt-get install musl-tools) and run again" >&2; return 1; }
  fi
  CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$Q2Z_MUSL" -p q2z --bin q2z "$@"
}
