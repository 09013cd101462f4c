#!/usr/bin/env bash
# Installs the client drivers the driver tests (test/tests/pstmt_drivers.rs) run, into the
# work tree only:
#   build/venv   python venv with asyncpg and psycopg 3 (binary wheels, from PyPI)
#   build/node   node-postgres (`pg`, from the npm registry)
# pgjdbc and the JDK are Debian packages (scripts/deps.sh). Each step is skipped, with a
# word, when what it installs is already there; each install is bounded in time.
# Needs no root. Run by `make drivers` (and so by `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=build/venv
NODE_DIR=build/node
# The longest one install may take (pip or npm), in seconds.
INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-300}

fail() {
  echo "drivers: $*" >&2
  exit 1
}

for tool in "$PYTHON" npm node; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "$tool not found; run ./scripts/deps.sh as root (sudo ./scripts/deps.sh)"
done

# Python: asyncpg and psycopg 3.
if [ -x "$VENV/bin/python" ] &&
  "$VENV/bin/python" -c 'import asyncpg, psycopg' >/dev/null 2>&1; then
  echo "drivers: skip python: $VENV has asyncpg and psycopg"
else
  if ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    # Absent, or left by a python that is gone: (re)create it.
    echo "drivers: creating $VENV"
    "$PYTHON" -m venv --clear "$VENV" ||
      fail "python3 -m venv failed; as root: apt-get install -y python3-venv"
  fi
  echo "drivers: pip install asyncpg psycopg[binary] into $VENV"
  timeout "$INSTALL_TIMEOUT" "$VENV/bin/python" -m pip install --quiet \
    --disable-pip-version-check --no-input asyncpg 'psycopg[binary]'
fi
"$VENV/bin/python" -c \
  'import asyncpg, psycopg; print("drivers: asyncpg", asyncpg.__version__, "psycopg", psycopg.__version__)'

# node-postgres.
if [ -f "$NODE_DIR/node_modules/pg/package.json" ]; then
  echo "drivers: skip node: $NODE_DIR has pg"
else
  echo "drivers: npm install pg into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  timeout "$INSTALL_TIMEOUT" npm install --prefix "$NODE_DIR" --no-audit --no-fund \
    --loglevel=error pg
fi
echo "drivers: pg $(node -p "require('./$NODE_DIR/node_modules/pg/package.json').version")"

# pgjdbc comes from Debian; say so here rather than in the middle of a test.
JAR=/usr/share/java/postgresql.jar
[ -f "$JAR" ] || fail "$JAR missing; as root: apt-get install -y libpostgresql-jdbc-java"
command -v javac >/dev/null 2>&1 ||
  fail "javac missing; as root: apt-get install -y default-jdk-headless"
echo "drivers: pgjdbc $(dpkg-query -W -f='${Version}' libpostgresql-jdbc-java 2>/dev/null ||
  echo "at $JAR"), $(javac -version 2>&1)"
