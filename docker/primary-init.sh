#!/bin/bash
# Runs once, when the primary's data directory is created: lets the standby stream from it.
set -euo pipefail
echo "host replication all all trust" >> "$PGDATA/pg_hba.conf"
