# shellcheck shell=bash
# Sourced by scripts/bench.sh and scripts/soak.sh: a throw-away PostgreSQL cluster on loopback
# and the process helpers around it. The caller defines log and die, and sets PGBIN with
# pg_find_bin before anything else here.
#
#   pg_find_bin             PGBIN: the newest server binaries (dies when there are none)
#   AS_PG / as_pg           runs a command as user postgres when we are root (PostgreSQL, and
#                           the poolers next to it, refuse root); setpriv execs in place, so
#                           after `"${AS_PG[@]}" cmd &` $! is cmd's own pid (not so with the
#                           function: a background function runs in a subshell)
#   free_port               a free TCP port on 127.0.0.1
#   stop_pid PID            TERM, up to 5 s, then KILL
#   pg_initdb DATA PORT SOCKDIR LOG   initdb (trust on the socket, SCRAM on TCP) and the
#                           settings of a throw-away cluster; the caller appends its own lines
#                           to DATA/postgresql.conf and writes DATA/pg_hba.conf
#   pg_start DATA LOG / pg_stop DATA  pg_ctl start (waits) / stop (fast, then immediate)

AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "no user postgres (run make deps)"
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

as_pg() { "${AS_PG[@]}" "$@"; }

pg_find_bin() {
  PGBIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n1)
  [ -x "$PGBIN/initdb" ] || PGBIN=$(pg_config --bindir 2>/dev/null) || true
  [ -x "$PGBIN/initdb" ] || die "no PostgreSQL server binaries (run make deps)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored TERM; KILL"; kill -KILL "$pid" 2>/dev/null || true; }
  wait "$pid" 2>/dev/null || true
}

pg_initdb() {
  local data=$1 port=$2 sockdir=$3 logf=$4
  as_pg "$PGBIN/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$logf" 2>&1 ||
    { cat "$logf" >&2; die "initdb failed"; }
  cat >>"$data/postgresql.conf" <<EOF
# --- scripts/pg_cluster.sh: a throw-away cluster, durability off ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
}

pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$1" -l "$2" -w -t 60 start >/dev/null ||
    { cat "$2" >&2; die "PostgreSQL did not start"; }
}

pg_stop() {
  as_pg "$PGBIN/pg_ctl" -D "$1" -m fast -t 30 stop >/dev/null 2>&1 ||
    as_pg "$PGBIN/pg_ctl" -D "$1" -m immediate stop >/dev/null 2>&1 || true
}
