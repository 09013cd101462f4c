#!/usr/bin/env bash
# `make soak`: the pooler under SOAK_SECONDS (default 1800) of mixed load and disturbances on
# a throw-away cluster, with SOAK_CLIENTS (default 10,000) connected clients, sampled every
# 10 s into a CSV and a plot; fails on a crash, a leak, an error outside the planned faults or
# a broken pool limit.
#
# Pooler: target/release/odyssey, 2 workers, listen with `tls "allow"` (a throw-away
# certificate), /metrics on a free port, a console route (user admin, database console), a
# transaction pool (user soak, pool_size 8) and a session pool (user soak_session, pool_size 6).
# Load until the end, each pgbench loop of runs of <= 30 s (a pgbench whose clients all
# aborted is started again):
#   crowd    SOAK_CLIENTS asyncpg clients (scripts/soak_clients.py), every 3rd over TLS, each
#            a `SELECT 1` at random, on average once a minute; every 300 s 10 % of them drop
#            their connections and reconnect at once (a reconnect storm)
#   sel      -S -c 12                select-only, transaction pool
#   tpcb     tpcb-like -c 6          transaction pool
#   churn    -S -C -c 3              a new connection per transaction
#   session  -S -C -c 4              session pool, a new connection per transaction
# Planned faults (each in build/soak/faults.csv; errors within a few seconds after one are
# expected): every 15 s a victim killed with SIGKILL mid-transaction, alternately a tpcb-like
# pgbench -c 4 (after 3 s) and a psql holding `SELECT ... FOR UPDATE` on branch 1 in
# `pg_sleep(60)` (after 2 s); every 20 s pg_terminate_backend of every client backend, run
# straight on PostgreSQL; in the middle of the run PostgreSQL restarted (`pg_ctl restart -m
# fast`). Not faults (no error may follow): SIGHUP every 30 s (the config rewritten with the
# same rules), the reconnect storms.
# Samples (build/soak/samples.csv, every 10 s; plot.png when gnuplot is there or can be
# installed): the pooler's VmRSS, open fds, threads, coroutines and clients (its /metrics);
# server connections in pg_stat_activity; routes and their servers in SHOW POOLS; the crowd's
# connected clients and errors.
# Fails (exit 1, a line per reason) when: the pooler died; the max RSS of the last quarter of
# the run is more than 2 % above the max of the second (the first is warm-up); fds once the
# load is gone, less the server connections then, exceed fds before the load less its server
# connections, + 2; a sample (read again 1 s later, so a backend still exiting is not
# counted) saw more server connections than the pools' sizes, or more than one route per user
# in SHOW POOLS (the reloads leave the rules as they were, so the routes must outlive them); a
# client error (crowd or pgbench) came outside the planned faults' windows; the pool does not
# go idle within 30 s of the load's end; a pooler log line says "panic".
# Environment: SOAK_SECONDS, SOAK_CLIENTS, KEEP=1 (keep the temp dir), CARGO,
# CARGO_TARGET_DIR. Needs build/venv (make drivers) for the crowd.
# Results: build/soak/ (summary.txt, samples.csv, plot.png, faults.csv, errors.txt, logs/).
# Loopback only. Every process started here is stopped by pid on exit; every loop ends by a
# deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${SOAK_SECONDS:-1800}
CLIENTS=${SOAK_CLIENTS:-10000}
KEEP=${KEEP:-0}
CARGO=${CARGO:-cargo}
POOL_SIZE=8
SESSION_POOL_SIZE=6
SERVER_LIMIT=$((POOL_SIZE + SESSION_POOL_SIZE))
FD_SLACK=2
RSS_GROWTH_PCT=2
FAULT_WINDOW=5          # seconds after a fault when client errors are expected
RESTART_WINDOW=20       # ... after the PostgreSQL restart began
SAMPLE_EVERY=10
VICTIM_EVERY=15
TERMINATE_EVERY=20
RELOAD_EVERY=30
RUN_MAX=30 # seconds per pgbench run of a load loop
DB=soak
USER_NAME=soak
export PGCONNECT_TIMEOUT=5

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=scripts/pg_cluster.sh
. scripts/pg_cluster.sh

[ "$DURATION" -ge 20 ] 2>/dev/null || die "SOAK_SECONDS must be a number >= 20"
[ "$CLIENTS" -ge 0 ] 2>/dev/null || die "SOAK_CLIENTS must be a number"
VENV_PY=$ROOT/build/venv/bin/python
if [ "$CLIENTS" -gt 0 ]; then
  "$VENV_PY" -c 'import asyncpg' 2>/dev/null || die "no build/venv with asyncpg for the crowd (run make drivers)"
fi

# ---------------------------------------------------------------- tools, dirs, clean-up
BIN=${CARGO_TARGET_DIR:-target}/release/odyssey
log "building $BIN"
$CARGO build --release --bin odyssey
pg_find_bin

OUT=$ROOT/build/soak
rm -rf "$OUT"
mkdir -p "$OUT/logs"
TMP=$(mktemp -d /tmp/odyssey-soak.XXXXXX)
chmod 755 "$TMP"
[ ${#AS_PG[@]} -eq 0 ] || chown postgres "$TMP"
PGDATA=$TMP/pg
cp "$BIN" "$TMP/odyssey"
chmod 755 "$TMP/odyssey"

PG_STARTED=no
POOLER_PID=
VICTIM_PID=
CROWD_PID=
WORKER_PIDS=()

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid"; done
  [ -z "$CROWD_PID" ] || stop_pid "$CROWD_PID"
  if [ -n "$VICTIM_PID" ]; then kill -KILL "$VICTIM_PID" 2>/dev/null || true; wait "$VICTIM_PID" 2>/dev/null || true; fi
  [ -z "$POOLER_PID" ] || stop_pid "$POOLER_PID"
  [ $PG_STARTED = no ] || pg_stop "$PGDATA"
  cp "$TMP"/*.log "$OUT/logs/" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- PostgreSQL
PG_PORT=$(free_port)
log "initdb in $PGDATA, port $PG_PORT"
pg_initdb "$PGDATA" "$PG_PORT" "$TMP" "$TMP/initdb.log"
# The pooler logs in as soak over TCP without a password; the superuser uses the socket.
cat >"$PGDATA/pg_hba.conf" <<EOF
local all postgres trust
host $DB $USER_NAME 127.0.0.1/32 trust
EOF
pg_start "$PGDATA" "$TMP/postgres.log"
PG_STARTED=yes

psql_su() { timeout 20 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMP" -p "$PG_PORT" -U postgres "$@"; }
psql_su -d postgres -c "CREATE ROLE $USER_NAME LOGIN" -c "CREATE DATABASE $DB OWNER $USER_NAME"
log "pgbench -i -s 4"
timeout 300 "$PGBIN/pgbench" -i -q -s 4 -h 127.0.0.1 -p "$PG_PORT" -U $USER_NAME $DB \
  >"$OUT/logs/pgbench-init.txt" 2>&1 || { cat "$OUT/logs/pgbench-init.txt" >&2; die "pgbench -i failed"; }

# ---------------------------------------------------------------- the pooler
PORT=$(free_port)
METRICS_PORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$TMP/server.key" -out "$TMP/server.crt" >"$TMP/openssl.log" 2>&1 ||
  { cat "$TMP/openssl.log" >&2; die "openssl req failed"; }
chmod 644 "$TMP/server.key" "$TMP/server.crt"
RELOADS=0
write_conf() { # the same rules every time; the comment changes so that the file does
  cat >"$TMP/odyssey.conf" <<EOF
# scripts/soak.sh, reload $RELOADS
daemonize no
pid_file "$TMP/odyssey.pid"
log_file "$TMP/odyssey.log"
log_to_stdout no
log_format "%p %t %l [%i %s] (%c) %m\n"
log_debug no
log_config no
log_session no
log_query no
log_stats no
workers 2
promhttp_server_port $METRICS_PORT

listen {
	host "127.0.0.1"
	port $PORT
	backlog 4096
	tls "allow"
	tls_cert_file "$TMP/server.crt"
	tls_key_file "$TMP/server.key"
}

storage "pg" {
	type "remote"
	host "127.0.0.1"
	port $PG_PORT
}

storage "local" {
	type "local"
}

database "console" {
	user "admin" {
		authentication "none"
		role "admin"
		storage "local"
		pool "session"
	}
}

database "$DB" {
	user "$USER_NAME" {
		authentication "none"
		storage "pg"
		storage_user "$USER_NAME"
		pool "transaction"
		pool_size $POOL_SIZE
		pool_timeout 0
		pool_cancel yes
		pool_rollback yes
		client_fwd_error yes
	}
	user "${USER_NAME}_session" {
		authentication "none"
		storage "pg"
		storage_user "$USER_NAME"
		pool "session"
		pool_size $SESSION_POOL_SIZE
		pool_timeout 0
		client_fwd_error yes
	}
}
EOF
  chmod 644 "$TMP/odyssey.conf"
}
write_conf
# Not through the function as_pg: a background function is a subshell, and $! must be the
# pooler itself (setpriv execs in place).
"${AS_PG[@]}" "$TMP/odyssey" --console "$TMP/odyssey.conf" >"$TMP/odyssey.out.log" 2>&1 &
POOLER_PID=$!

pooler_alive() { kill -0 "$POOLER_PID" 2>/dev/null; }
psql_pooler() { timeout 10 "$PGBIN/psql" -X -Atq -h 127.0.0.1 -p "$PORT" -U $USER_NAME -d $DB "$@"; }
for i in $(seq 1 50); do # up to ~10 s
  pooler_alive || { cat "$TMP"/odyssey*.log >&2; die "the pooler exited at start"; }
  psql_pooler -c "SELECT 1" >/dev/null 2>&1 && break
  [ "$i" -lt 50 ] || { cat "$TMP"/odyssey*.log >&2; die "the pooler did not answer within 10 s"; }
  sleep 0.2
done
log "pooler: pid $POOLER_PID, port $PORT"

# ---------------------------------------------------------------- sampling
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$POOLER_PID/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$POOLER_PID/status"; }
fds() { find "/proc/$POOLER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
metric() { # name: its value in the pooler's /metrics, or -
  python3 - "$METRICS_PORT" "$1" <<'EOF' 2>/dev/null || echo -
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(next(int(float(l.split()[1])) for l in body.splitlines() if l.split(" ")[0] == sys.argv[2]))
EOF
}
server_conns() {
  psql_su -d postgres -Atc "SELECT count(*) FROM pg_stat_activity
    WHERE usename = '$USER_NAME' AND backend_type = 'client backend'"
}
show_pools() { # database user cl_active cl_waiting sv_active sv_idle sv_used sv_tested sv_login ...
  timeout 10 "$PGBIN/psql" -X -At -F ' ' -h 127.0.0.1 -p "$PORT" -U admin -d console -c 'SHOW POOLS'
}
pool_view() { # the most routes of one user of database soak (one each: reloads keep an
  # unchanged rule's route), their servers (sv_active + sv_idle + sv_login), the most
  # servers of one route
  show_pools 2>/dev/null | awk -v db=$DB '$1 == db {
      r[$2]++; s = $5 + $6 + $9; n += s; if (s > m) m = s }
    END { for (u in r) if (r[u] > rm) rm = r[u]; print rm + 0, n + 0, m + 0 }'
}
pool_busy() { # clients active or waiting, servers active, in SHOW POOLS
  show_pools | awk -v db=$DB '$1 == db { n += $3 + $4 + $5 } END { print n + 0 }'
}
client_sockets() { # established TCP connections to the pooler's port, as the kernel counts them
  ss -Htn state established "( sport = :$PORT )" 2>/dev/null | wc -l
}
crowd_field() { # name: the crowd's last count of it, or 0
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' \
    "$OUT/crowd-status.json" "$1" 2>/dev/null || echo 0
}

# The reloads rewrite the same rules, so they keep the routes: server connections stay within
# the pools' sizes, however many reloads and connected clients.
T0=$(date +%s)
MAX_SERVERS=0
MAX_ROUTES=0
MAX_CLIENTS=0
OVER_LIMIT=()
echo "elapsed_s,phase,rss_kb,fds,threads,coroutines,clients,server_conns,routes,pool_servers,crowd_connected,crowd_errors,client_sockets" >"$OUT/samples.csv"
sample() { # phase
  local now sc sc2 routes servers route_max clients
  now=$(($(date +%s) - T0))
  read -r routes servers route_max < <(pool_view)
  sc=$(server_conns) || { log "pg_stat_activity did not answer"; sc=0; }
  if [ "$sc" -gt $SERVER_LIMIT ]; then
    sleep 1
    read -r routes servers route_max < <(pool_view)
    sc2=$(server_conns) || sc2=0
    [ "$sc2" -le $SERVER_LIMIT ] || OVER_LIMIT+=("${now}s: $sc, then $sc2 server connections")
  fi
  [ "$routes" -le 1 ] || OVER_LIMIT+=("${now}s: $routes routes of one user after reloads of the same rules")
  [ "$route_max" -le $POOL_SIZE ] || OVER_LIMIT+=("${now}s: a route holds $route_max servers")
  [ "$sc" -le "$MAX_SERVERS" ] || MAX_SERVERS=$sc
  [ "$routes" -le "$MAX_ROUTES" ] || MAX_ROUTES=$routes
  clients=$(metric odyssey_clients)
  [ "$clients" = - ] || [ "$clients" -le "$MAX_CLIENTS" ] || MAX_CLIENTS=$clients
  echo "$now,$1,$(rss_kb),$(fds),$(threads),$(metric odyssey_coroutines),$clients,$sc,$routes,$servers,$(crowd_field connected),$(crowd_field errors),$(client_sockets)" >>"$OUT/samples.csv"
}

sleep 1
sample before
FDS_START=$(fds)
SERVERS_START=$(server_conns)
RSS_START=$(rss_kb)
THREADS_START=$(threads)

# ---------------------------------------------------------------- load
END=$(($(date +%s) + DURATION))
load_loop() { # name pgbench-args...: pgbench runs of <= RUN_MAX s until END
  local name=$1 cur='' left
  shift
  trap '[ -z "$cur" ] || kill -TERM "$cur" 2>/dev/null; exit 0' TERM
  while left=$((END - $(date +%s))) && [ "$left" -ge 2 ]; do
    [ "$left" -le $RUN_MAX ] || left=$RUN_MAX
    timeout $((left + 30)) "$PGBIN/pgbench" -n -j 1 -h 127.0.0.1 -p "$PORT" "$@" \
      -T "$left" $DB > >(stamp >>"$OUT/logs/load-$name.txt") 2>&1 &
    cur=$!
    wait "$cur" || sleep 1 # a pgbench that failed at once (the pooler gone?) must not spin
    cur=''
  done
}
stamp() { # each line with the epoch second it came at (errors are judged by the time)
  local line
  while IFS= read -r line; do printf '%(%s)T %s\n' -1 "$line"; done
}
fault() { # kind: a planned fault begins now
  echo "$(date +%s),$1" >>"$OUT/faults.csv"
}
echo "epoch_s,kind" >"$OUT/faults.csv"
if [ "$CLIENTS" -gt 0 ]; then
  "$VENV_PY" "$ROOT/scripts/soak_clients.py" --port "$PORT" --db $DB --user $USER_NAME \
    --clients "$CLIENTS" --end "$END" --status "$OUT/crowd-status.json" \
    --errors "$OUT/logs/crowd-errors.txt" --storm-every $((DURATION >= 1200 ? 300 : DURATION / 4)) \
    >"$OUT/logs/crowd.txt" 2>&1 &
  CROWD_PID=$!
fi
load_loop sel -U $USER_NAME -S -c 12 &
WORKER_PIDS+=($!)
load_loop tpcb -U $USER_NAME -c 6 &
WORKER_PIDS+=($!)
load_loop churn -U $USER_NAME -S -C -c 3 &
WORKER_PIDS+=($!)
load_loop session -U "${USER_NAME}_session" -S -C -c 4 &
WORKER_PIDS+=($!)
log "load for ${DURATION}s: $CLIENTS crowd clients, sel (-S -c 12), tpcb (-c 6), churn (-S -C -c 3), session (-S -C -c 4)"

VICTIMS=0
TERMINATED=0
VICTIM_KILL_AT=0
victim_start() {
  VICTIMS=$((VICTIMS + 1))
  if [ $((VICTIMS % 2)) = 1 ]; then
    "$PGBIN/pgbench" -n -j 1 -c 4 -T 60 -h 127.0.0.1 -p "$PORT" -U $USER_NAME $DB \
      >>"$OUT/logs/victims.txt" 2>&1 &
    VICTIM_KILL_AT=$(($(date +%s) + 3))
  else
    "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U $USER_NAME -d $DB >>"$OUT/logs/victims.txt" 2>&1 <<'EOF' &
BEGIN;
SELECT bid FROM pgbench_branches WHERE bid = 1 FOR UPDATE;
SELECT pg_sleep(60);
EOF
    VICTIM_KILL_AT=$(($(date +%s) + 2))
  fi
  VICTIM_PID=$!
}
victim_kill() {
  fault victim
  kill -KILL "$VICTIM_PID" 2>/dev/null || true
  wait "$VICTIM_PID" 2>/dev/null || true
  VICTIM_PID=
}

# Each disturbance and the sampling have their own next time (a slow step never skips one).
L0=$(date +%s)
NEXT_VICTIM=$((L0 + 7)) NEXT_TERMINATE=$((L0 + 5)) NEXT_RELOAD=$((L0 + 15))
NEXT_SAMPLE=$((L0 + SAMPLE_EVERY)) NEXT_LOG=$((L0 + 60))
RESTART_AT=$((L0 + DURATION / 2)) RESTARTED=no
DIED=no
while now=$(date +%s) && [ "$now" -lt "$END" ]; do
  pooler_alive || { DIED=yes; log "the pooler died at $((now - T0))s"; break; }
  [ -z "$VICTIM_PID" ] || [ "$now" -lt "$VICTIM_KILL_AT" ] || victim_kill
  if [ "$now" -ge $NEXT_VICTIM ] && [ -z "$VICTIM_PID" ]; then
    victim_start
    NEXT_VICTIM=$((NEXT_VICTIM + VICTIM_EVERY))
  fi
  if [ $RESTARTED = no ] && [ "$now" -ge $RESTART_AT ]; then
    fault restart
    log "restarting PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/postgres.log" -m fast -w -t 60 restart >/dev/null ||
      die "PostgreSQL did not come back"
    RESTARTED=yes
  fi
  if [ "$now" -ge $NEXT_TERMINATE ]; then
    fault terminate
    n=$(psql_su -d postgres -Atc "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()") || n=0
    TERMINATED=$((TERMINATED + n))
    NEXT_TERMINATE=$((NEXT_TERMINATE + TERMINATE_EVERY))
  fi
  if [ "$now" -ge $NEXT_RELOAD ]; then
    RELOADS=$((RELOADS + 1))
    write_conf
    kill -HUP "$POOLER_PID" 2>/dev/null || true
    NEXT_RELOAD=$((NEXT_RELOAD + RELOAD_EVERY))
  fi
  if [ "$now" -ge $NEXT_SAMPLE ]; then
    sample load
    NEXT_SAMPLE=$((NEXT_SAMPLE + SAMPLE_EVERY))
  fi
  if [ "$now" -ge $NEXT_LOG ]; then
    log "$((now - T0))s: $(head -1 "$OUT/samples.csv") = $(tail -1 "$OUT/samples.csv")"
    NEXT_LOG=$((NEXT_LOG + 60))
  fi
  sleep 0.5
done

# ---------------------------------------------------------------- the end of the load
[ -z "$VICTIM_PID" ] || victim_kill
# The last pgbench of each loop ends by its -T at END; let it print its report (up to 20 s).
for i in $(seq 1 40); do
  [ $DIED = no ] || break
  running=no
  for pid in "${WORKER_PIDS[@]}"; do ! kill -0 "$pid" 2>/dev/null || running=yes; done
  [ $running = yes ] || break
  sleep 0.5
done
for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid"; done
WORKER_PIDS=()
if [ -n "$CROWD_PID" ]; then # it ends by itself at END; up to 60 s to close its clients
  for i in $(seq 1 120); do kill -0 "$CROWD_PID" 2>/dev/null || break; sleep 0.5; done
  stop_pid "$CROWD_PID"
  CROWD_PID=
fi
LOAD_SECONDS=$(($(date +%s) - T0))
log "load stopped after ${LOAD_SECONDS}s; waiting for the pool to go idle"

IDLE=no
if [ $DIED = no ]; then
  for i in $(seq 1 30); do
    pooler_alive || { DIED=yes; break; }
    if [ "$(pool_busy 2>/dev/null || echo x)" = 0 ]; then IDLE=yes; break; fi
    sleep 1
  done
fi
if [ $DIED = no ] && pooler_alive; then
  sleep 2
  sample after
  FDS_END=$(fds)
  SERVERS_END=$(server_conns)
  RSS_END=$(rss_kb)
  THREADS_END=$(threads)
else
  DIED=yes FDS_END=- RSS_END=- THREADS_END=-
fi

# ---------------------------------------------------------------- verdict
FAIL=()
[ $DIED = no ] || FAIL+=("the pooler died (see build/soak/logs/odyssey*.log)")
[ $DIED = yes ] || [ $IDLE = yes ] ||
  FAIL+=("the pool did not go idle within 30 s of the load's end (SHOW POOLS: clients or servers still active)")
FD_BASE=$((FDS_START - SERVERS_START))
if [ $DIED = no ] && [ $((FDS_END - SERVERS_END)) -gt $((FD_BASE + FD_SLACK)) ]; then
  FAIL+=("fds: $FDS_END after the load with $SERVERS_END servers, $FDS_START before with $SERVERS_START (limit: servers + $((FD_BASE + FD_SLACK)))")
fi
[ ${#OVER_LIMIT[@]} -eq 0 ] ||
  FAIL+=("pool limits broken: ${OVER_LIMIT[*]}")
# RSS by quarter of the load samples: the last quarter's max against the second's.
read -r N_LOAD RSS_Q2 RSS_Q4 RSS_PEAK < <(awk -F, '$2 == "load" { r[n++] = $3 }
  END {
    q = int(n / 4); m2 = 0; m4 = 0; p = 0
    for (i = 0; i < n; i++) {
      if (i >= q && i < 2 * q && r[i] > m2) m2 = r[i]
      if (i >= 3 * q && r[i] > m4) m4 = r[i]
      if (r[i] > p) p = r[i]
    }
    print n, m2, m4, p
  }' "$OUT/samples.csv")
if [ "$N_LOAD" -ge 8 ]; then
  if [ "$RSS_Q4" -gt $((RSS_Q2 * (100 + RSS_GROWTH_PCT) / 100)) ]; then
    FAIL+=("RSS grew: last quarter max ${RSS_Q4} kB, second quarter max ${RSS_Q2} kB (> +$RSS_GROWTH_PCT %)")
  fi
  RSS_TREND="$RSS_Q2 -> $RSS_Q4 kB"
else
  RSS_TREND="not judged ($N_LOAD samples; needs 8, SOAK_SECONDS >= 80)"
fi
if grep -qi panic "$TMP"/odyssey*.log 2>/dev/null; then
  FAIL+=("the pooler log says panic: $(grep -hi -m3 panic "$TMP"/odyssey*.log | tr '\n' ' ')")
fi

# pgbench figures of the load loops (lines stamped with their epoch second); client error
# lines of pgbench and the crowd, each judged planned (within a fault's window) or not.
TXNS=$(cat "$OUT"/logs/load-*.txt | awk '$2 == "number" && $5 == "actually" { s += $7 } END { print s + 0 }')
RUNS=$(cat "$OUT"/logs/load-*.txt | grep -c ' number of transactions actually processed:' || true)
touch "$OUT/logs/crowd-errors.txt"
# ("Run was aborted" sums up a pgbench whose clients failed: not an error of its own.)
{ grep -hE '^[0-9]+ .*(error|abort)' "$OUT"/logs/load-*.txt | grep -v 'Run was aborted' || true
  cat "$OUT/logs/crowd-errors.txt"; } |
  awk -v w="$FAULT_WINDOW" -v rw="$RESTART_WINDOW" -v faults="$OUT/faults.csv" '
    BEGIN { n = 0; FS = ","; while ((getline l < faults) > 0) { split(l, f, ","); if (f[1] ~ /^[0-9]+$/) { t[n] = f[1]; k[n++] = f[2] } }; FS = " " }
    { planned = 0
      for (i = 0; i < n; i++) { win = (k[i] == "restart") ? rw : w; if ($1 >= t[i] - 1 && $1 <= t[i] + win) { planned = 1; break } }
      $1 = planned ? "planned" : "UNPLANNED"; print }' |
  sed -E 's/client [0-9]+/client N/g; s/odyssey: c[0-9a-f]+/odyssey: cID/g; s/command [0-9]+/command N/g; s/query [0-9]+/query N/g; s/pid=[0-9]+/pid=N/g' |
  sort | uniq -c | sort -rn >"$OUT/errors.txt" || true
ERRORS=$(awk '{ s += $1 } END { print s + 0 }' "$OUT/errors.txt")
UNPLANNED=$(awk '$2 == "UNPLANNED" { s += $1 } END { print s + 0 }' "$OUT/errors.txt")
[ "$UNPLANNED" -eq 0 ] ||
  FAIL+=("$UNPLANNED client errors outside the planned faults (build/soak/errors.txt)")
CROWD_QUERIES=$(crowd_field queries) CROWD_RECONNECTS=$(crowd_field reconnects) CROWD_STORMS=$(crowd_field storms)
POOLER_ERRORS=$(grep -cE '^[0-9]+ [^ ]+ [^ ]+ (error|fatal) ' "$TMP/odyssey.log" || true)

# The samples drawn over time (plot.png), with the PostgreSQL restart marked.
plot() {
  if ! command -v gnuplot >/dev/null && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 || true
  fi
  command -v gnuplot >/dev/null || { log "no gnuplot: no plot (apt-get install gnuplot-nox)"; return 0; }
  local restart arrow=''
  restart=$(awk -F, -v t0="$T0" '$2 == "restart" { print $1 - t0 }' "$OUT/faults.csv")
  [ -z "$restart" ] || arrow="set arrow from $restart, graph 0 to $restart, graph 1 nohead dashtype 2 lc rgb \"red\""
  gnuplot >"$OUT/logs/gnuplot.txt" 2>&1 <<EOF || log "gnuplot failed (build/soak/logs/gnuplot.txt)"
set terminal pngcairo size 1400,1100 font ",10"
set output "$OUT/plot.png"
set datafile separator ","
set key autotitle columnhead top left
set termoption noenhanced
set xlabel "seconds"
set grid
$arrow
set multiplot layout 3,2 title "make soak: $CLIENTS clients, ${LOAD_SECONDS}s (dashed: PostgreSQL restart)"
set title "pooler RSS (MiB)"
plot "$OUT/samples.csv" using 1:(\$3/1024) with lines lw 2 title "RSS"
set title "open fds"
plot "$OUT/samples.csv" using 1:4 with lines lw 2 title "fds"
set title "clients at the pooler, crowd connected"
plot "$OUT/samples.csv" using 1:7 with lines lw 2 title "clients", "" using 1:11 with lines title "crowd", "" using 1:13 with lines title "sockets (ss)"
set title "coroutines, threads"
plot "$OUT/samples.csv" using 1:6 with lines lw 2 title "coroutines", "" using 1:5 with lines title "threads"
set title "server connections"
plot "$OUT/samples.csv" using 1:8 with lines lw 2 title "pg_stat_activity", "" using 1:10 with lines title "SHOW POOLS"
set title "crowd errors (cumulative)"
plot "$OUT/samples.csv" using 1:12 with lines lw 2 title "errors"
unset multiplot
EOF
}
plot

{
  printf '%-34s %s\n' \
    "duration" "${LOAD_SECONDS}s of load (SOAK_SECONDS=$DURATION)" \
    "transactions (load loops)" "$TXNS in $RUNS pgbench runs ($((TXNS / (LOAD_SECONDS > 0 ? LOAD_SECONDS : 1))) per s)" \
    "client errors" "$ERRORS, $UNPLANNED of them outside the planned faults (build/soak/errors.txt)" \
    "crowd" "$CLIENTS clients (peak $MAX_CLIENTS at the pooler), $CROWD_QUERIES queries, $CROWD_RECONNECTS reconnects in $CROWD_STORMS storms" \
    "pooler error/fatal log lines" "$POOLER_ERRORS" \
    "disturbances" "$VICTIMS victims killed, $TERMINATED backends terminated, $RELOADS reloads, PostgreSQL restarted: $RESTARTED" \
    "RSS kB start / peak / end" "$RSS_START / $RSS_PEAK / $RSS_END" \
    "RSS 2nd -> 4th quarter max" "$RSS_TREND" \
    "fds start / end" "$FDS_START with $SERVERS_START servers / $FDS_END with ${SERVERS_END:--} servers" \
    "threads start / end" "$THREADS_START / $THREADS_END" \
    "server connections max" "$MAX_SERVERS (pools $POOL_SIZE + $SESSION_POOL_SIZE; up to $MAX_ROUTES routes of one user at once)"
  if [ ${#FAIL[@]} -eq 0 ]; then echo "PASS"; else printf 'FAIL: %s\n' "${FAIL[@]}"; fi
} | tee "$OUT/summary.txt"
if [ -s "$OUT/errors.txt" ]; then
  echo "most frequent client errors:"
  head -5 "$OUT/errors.txt"
fi
[ ${#FAIL[@]} -eq 0 ] || exit 1
