#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS each (default 600) on the nightly toolchain,
# installing nightly and cargo-fuzz when they are missing (CI's fresh machine). FUZZ_TARGETS
# picks some of them ("decode startup scram relay config hba" by default). New inputs go to
# <crate>/fuzz/corpus/<target>, crashes to <crate>/fuzz/artifacts/<target> (both ignored by
# git); the committed seeds (<crate>/fuzz/seeds/<target>, taken from the tests) start each off.
# A crash fails the script; at the end it prints each target's executions.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-600}"
targets="${FUZZ_TARGETS:-decode startup scram relay config hba}"

# The crate that holds a target.
crate_of() {
  case "$1" in
    decode | startup | scram) echo "$root/third_party/kiwi/fuzz" ;;
    relay | config | hba) echo "$root/odyssey/fuzz" ;;
    *)
      echo "fuzz: unknown target '$1'" >&2
      exit 2
      ;;
  esac
}

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

summary=()
for target in $targets; do
  dir="$(crate_of "$target")"
  log="$dir/artifacts/$target.log"
  mkdir -p "$dir/corpus/$target" "$dir/artifacts"
  echo "fuzz: $target for ${seconds} s"
  (cd "$dir" && cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1) 2>&1 | tee "$log" | grep -E 'DONE|ERROR|panicked|^stat::number_of_executed_units' || true
  if ! grep -q '^Done [0-9]* runs' "$log"; then
    echo "fuzz: $target failed; see $log and $dir/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(grep -o '^Done [0-9]* runs' "$log" | awk '{print $2}')"
  summary+=("$target: $runs executions in ${seconds} s")
done
printf 'fuzz: %s\n' "${summary[@]}"
