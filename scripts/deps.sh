#!/usr/bin/env bash
# Installs what the build and the tests need, or says exactly what to install.
#
# As root it runs apt-get (once per missing set); otherwise it prints the apt-get line and
# fails, so that `make test` never half-runs on a machine that lacks PostgreSQL or valgrind.
set -euo pipefail

# Debian packages, each with a command or file that proves it is there.
declare -A need=(
  [pkg-config]=/usr/bin/pkg-config
  [libssl-dev]=/usr/include/openssl/ssl.h
  [postgresql]=/usr/lib/postgresql
  [postgresql-client]=/usr/bin/psql
  [valgrind]=/usr/bin/valgrind
  [openssl]=/usr/bin/openssl
)

missing=()
for pkg in "${!need[@]}"; do
  [ -e "${need[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  line="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    $line
  else
    echo "deps: missing Debian packages; run as root:" >&2
    echo "  sudo apt-get update && sudo $line" >&2
    exit 1
  fi
fi

# PostgreSQL refuses to run as root; the test harness runs it as this user.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# Rust components used by `make test`.
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
