#!/usr/bin/env bash
# `make local_run`: run the pooler in the foreground with odyssey-dev.conf, in front of a
# PostgreSQL at 127.0.0.1:5432. If nothing answers there, a throw-away cluster is made under
# build/pg (initdb, trust auth, as user `postgres` when run as root) and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PGHOST=127.0.0.1
PGPORT=5432
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
DATA=$PWD/build/pg
started=no

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$PGBIN/pg_isready" -q -h $PGHOST -p $PGPORT; then
  echo "local_run: no PostgreSQL at $PGHOST:$PGPORT, starting a throw-away one in $DATA"
  mkdir -p build
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"; mkdir -p "$DATA"
    [ "$(id -u)" -eq 0 ] && chown postgres "$DATA"
    as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
  fi
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$DATA"
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -w -l "$DATA/log" \
    -o "-h $PGHOST -p $PGPORT -k /tmp -c max_connections=200" start >/dev/null
  started=yes
fi

stop_pg() {
  if [ $started = yes ]; then as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null || true; fi
}
trap stop_pg EXIT

echo "local_run: connect with:  psql -h 127.0.0.1 -p 6432 -U postgres postgres"
./target/release/odyssey --console ${ODYSSEY_CONF:-odyssey-dev.conf}
