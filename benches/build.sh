# Sourced by the bench scripts (after PROFILE is set): installs the pinned toolchain, builds once
# — dev: the tests' own build (same features, nothing rebuilt); release: a build of its own —
# and sets B to the directory of the binaries.
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
B="$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo release)"
if [ -n "${Q2Z_BENCH_BIN:-}" ] && [ -x "$Q2Z_BENCH_BIN/q2z" ]; then
  # Binaries copied by an earlier run: a rebuild during a long bench does not swap them.
  B="$Q2Z_BENCH_BIN"
else
  if [ "$PROFILE" = dev ]; then q2z_build; else cargo build --release --locked --workspace --all-targets; fi
  if [ -n "${Q2Z_BENCH_BIN:-}" ]; then
    mkdir -p "$Q2Z_BENCH_BIN" && cp "$B/q2z" "$B/qdrant-standin" "$Q2Z_BENCH_BIN/" && B="$Q2Z_BENCH_BIN"
  fi
fi
