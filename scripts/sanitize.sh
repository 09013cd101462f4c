#!/usr/bin/env bash
# Builds the pooler with AddressSanitizer (nightly, -Zsanitizer=address; the standard library
# itself is not instrumented) and runs integration smoke tests against it (ODYSSEY_BIN). Every
# pooler process writes its ASan output to build/asan/asan.<pid>; the run fails on any
# "ERROR: AddressSanitizer" there, or a failed test. Each process warns once that it ignores
# __asan_handle_no_return: machinarium switches stacks without telling ASan, so reports about
# coroutine stacks could be false (none came); heap checks are unaffected. Leak checking is off:
# the pooler exits by signal, with live coroutines.
# SANITIZE_TESTS picks the test files (names under test/tests/, without .rs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tests="${SANITIZE_TESTS:-queries copy tls fault_client_death fault_bad_input fault_crowd fault_terminate_backend fault_odd_sql}"
target="${CARGO_TARGET_DIR:-$root/target}/asan"
triple="$(rustc -vV | sed -n 's/^host: //p')"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR="$target" \
  cargo +nightly build --release --bin odyssey --target "$triple"

reports="$root/build/asan"
rm -rf "$reports"
mkdir -p "$reports"
args=()
for t in $tests; do args+=(--test "$t"); done
ODYSSEY_BIN="$target/$triple/release/odyssey" \
  ASAN_OPTIONS="detect_leaks=0:log_path=$reports/asan" \
  cargo test --release -p odyssey-test "${args[@]}"

if grep -l "ERROR: AddressSanitizer" "$reports"/asan.* >/dev/null 2>&1; then
  echo "sanitize: AddressSanitizer errors:" >&2
  grep -l "ERROR: AddressSanitizer" "$reports"/asan.* | xargs cat >&2
  exit 1
fi
echo "sanitize: clean ($tests)"
