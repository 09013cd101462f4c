#!/usr/bin/env bash
# Runs machinarium's unit tests under valgrind memcheck; any error fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind: not installed, skipped"; exit 0
fi
bin=$(cargo test -p machinarium --release --lib --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*"' | head -n1 | cut -d'"' -f4)
[ -n "$bin" ] || { echo "valgrind: no machinarium test binary" >&2; exit 1; }
# Single-threaded test runner: valgrind serializes threads anyway, and a crash names its test.
MACHINARIUM_UNDER_VALGRIND=1 valgrind --error-exitcode=1 --quiet --leak-check=no \
  "$bin" --test-threads=1 --skip heavy_ 
