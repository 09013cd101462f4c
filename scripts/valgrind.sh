#!/usr/bin/env bash
# Runs machinarium's tests under valgrind memcheck; any error fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind: not installed, skipped"; exit 0
fi
# The unit tests (context switch, coroutines) and the io/sync/tls integration tests.
for target in "--lib" "--test io" "--test sync" "--test tls"; do
  # shellcheck disable=SC2086
  bin=$(cargo test -p machinarium --release $target --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | head -n1 | cut -d'"' -f4)
  [ -n "$bin" ] || { echo "valgrind: no test binary for $target" >&2; exit 1; }
  echo "valgrind: $target"
  # One test thread: a crash names its test. Heavy tests scale down under this variable.
  MACHINARIUM_UNDER_VALGRIND=1 valgrind --error-exitcode=1 --quiet "$bin" --test-threads=1
done
