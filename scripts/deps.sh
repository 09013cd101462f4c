#!/usr/bin/env bash
# Installs what the build and the tests need, or says exactly what to install.
#
# As root it runs apt-get (once per missing set); otherwise it prints the apt-get line and
# fails, so that `make test` never half-runs on a machine that lacks PostgreSQL or valgrind.
# The dev container's image (.devcontainer/Dockerfile) runs this script too, so it holds
# exactly these packages; `deps.sh --list` prints their names (test/tests/containers.rs).
set -euo pipefail

# Debian packages, each with a file (absolute path) or a command (bare name, found on $PATH)
# that proves it is there. The last five serve the driver tests (scripts/drivers.sh,
# test/tests/pstmt_drivers.rs): a venv for pip, npm for node-postgres, a JDK and Debian's
# pgjdbc jar (Maven Central is not reachable from the build machines). `prometheus` brings
# promtool, which checks the pooler's /metrics (test/tests/metrics.rs). slapd and ldap-utils
# serve the LDAP tests (test/tests/ldap.rs starts its own slapd); libpam0g-dev links PAM.
# dpkg-dev (dpkg-shlibdeps) and lintian build and check the package (scripts/deb.sh,
# test/tests/package.rs). The Rust toolchain is Debian 12's rustc-web family (1.96 from
# bookworm-security; plain `rustc` there is too old for edition 2024): where cargo and friends
# are on $PATH already (rustup), nothing is installed for them. ca-certificates lets cargo
# reach crates.io; make and git serve the dev container.
# iproute2's `ss` shows a listener's backlog (test/tests/listen_binding.rs).
declare -A need=(
  [pkg-config]=/usr/bin/pkg-config
  [libssl-dev]=/usr/include/openssl/ssl.h
  [postgresql]=/usr/lib/postgresql
  [postgresql-client]=/usr/bin/psql
  [valgrind]=/usr/bin/valgrind
  [openssl]=/usr/bin/openssl
  [python3-venv]=/usr/share/doc/python3-venv
  [nodejs]=node
  [npm]=npm
  [default-jdk-headless]=javac
  [libpostgresql-jdbc-java]=/usr/share/java/postgresql.jar
  [prometheus]=/usr/bin/promtool
  [slapd]=/usr/sbin/slapd
  [ldap-utils]=/usr/bin/ldapadd
  [libpam0g-dev]=/usr/include/security/pam_appl.h
  [dpkg-dev]=dpkg-shlibdeps
  [lintian]=lintian
  [rustc-web]=rustc
  [cargo-web]=cargo
  [rust-web-clippy]=cargo-clippy
  [rustfmt-web]=rustfmt
  [ca-certificates]=/etc/ssl/certs/ca-certificates.crt
  [git]=git
  [make]=make
  [iproute2]=ss
)

if [ "${1:-}" = --list ]; then
  printf '%s\n' "${!need[@]}" | sort
  exit 0
fi

# A file that exists, or a command on $PATH.
present() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pkg in "${!need[@]}"; do
  present "${need[$pkg]}" || missing+=("$pkg")
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
