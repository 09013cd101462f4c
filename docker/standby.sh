#!/bin/bash
# The standby's entry point: clone the primary on first start, then run as its streaming
# replica (--write-recovery-conf leaves standby.signal and primary_conninfo in PGDATA).
set -euo pipefail
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pg_basebackup --host=primary --username=postgres --pgdata="$PGDATA" \
    --wal-method=stream --write-recovery-conf --checkpoint=fast
  chmod 0700 "$PGDATA"
fi
exec postgres -D "$PGDATA"
