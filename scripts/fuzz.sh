#!/usr/bin/env bash
# Runs the relay fuzz target (odyssey/fuzz) for FUZZ_SECONDS (default 600) with cargo-fuzz on
# the nightly toolchain; installs cargo-fuzz when it is missing. New inputs go to
# odyssey/fuzz/corpus/relay, crashes to odyssey/fuzz/artifacts/relay (both ignored by git);
# the committed seeds (odyssey/fuzz/seeds/relay) start it off with real sessions.
set -euo pipefail
cd "$(dirname "$0")/../odyssey/fuzz"
seconds="${FUZZ_SECONDS:-600}"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz
fi
mkdir -p corpus/relay
cargo +nightly fuzz run relay corpus/relay seeds/relay -- \
  -max_total_time="$seconds" -print_final_stats=1
