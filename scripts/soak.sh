#!/usr/bin/env bash
# `make soak`: the pooler under SOAK_SECONDS (default 600) of mixed load and disturbances on a
# throw-away cluster, sampled every 10 s; fails on a crash, a leak or a broken pool limit.
#
# Pooler: target/release/odyssey, transaction pooling, pool_size 8, 2 workers, a console route
# (user admin, database console). Load, each a loop of pgbench -T <= 30 s runs until the end
# (a pgbench whose clients all aborted is started again):
#   sel    -S -c 12        select-only
#   tpcb   tpcb-like -c 6
#   churn  -S -C -c 3      a new connection per transaction
# Disturbances: every 15 s a victim killed with SIGKILL mid-transaction, alternately a
# tpcb-like pgbench -c 4 (after 3 s) and a psql holding `SELECT ... FOR UPDATE` on branch 1 in
# `pg_sleep(60)` (after 2 s); every 20 s pg_terminate_backend of every client backend, run
# straight on PostgreSQL; every 30 s SIGHUP (the config rewritten with the same rules).
# Samples (build/soak/samples.csv, every 10 s): the pooler's VmRSS, open fds, threads; server
# connections of user soak in pg_stat_activity; its routes and their servers in SHOW POOLS.
# Fails (exit 1, a line per reason) when: the pooler died; the max RSS of the last quarter of
# the run is more than 20 % above the max of the second (the first is warm-up); fds once the
# load is gone and the pool is idle exceed fds before the load + pool_size + 5; a sample (read
# again 1 s later, so a backend still exiting is not counted) saw more server connections
# than pool_size, or more than one route of user soak in SHOW POOLS (the reloads leave the
# rules as they were, so the route and its pool must outlive them); the
# pool does not go idle within 30 s of the load's end; a pooler log line says "panic".
# Environment: SOAK_SECONDS, KEEP=1 (keep the temp dir), CARGO, CARGO_TARGET_DIR.
# Results: build/soak/ (summary.txt, samples.csv, errors.txt, logs/). Loopback only. Every
# process started here is stopped by pid on exit; every loop ends by a deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${SOAK_SECONDS:-600}
KEEP=${KEEP:-0}
CARGO=${CARGO:-cargo}
POOL_SIZE=8
FD_SLACK=5
RSS_GROWTH_PCT=20
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
WORKER_PIDS=()

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid"; done
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

listen {
	host "127.0.0.1"
	port $PORT
	tls "disable"
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
server_conns() {
  psql_su -d postgres -Atc "SELECT count(*) FROM pg_stat_activity
    WHERE usename = '$USER_NAME' AND backend_type = 'client backend'"
}
show_pools() { # database user cl_active cl_waiting sv_active sv_idle sv_used sv_tested sv_login ...
  timeout 10 "$PGBIN/psql" -X -At -F ' ' -h 127.0.0.1 -p "$PORT" -U admin -d console -c 'SHOW POOLS'
}
pool_view() { # routes of user soak (one: reloads keep an unchanged rule's route), their servers
  # (sv_active + sv_idle + sv_login), the most servers of one route
  show_pools 2>/dev/null | awk -v db=$DB '$1 == db {
      r++; s = $5 + $6 + $9; n += s; if (s > m) m = s }
    END { print r + 0, n + 0, m + 0 }'
}
pool_busy() { # clients active or waiting, servers active, in SHOW POOLS
  show_pools | awk -v db=$DB '$1 == db { n += $3 + $4 + $5 } END { print n + 0 }'
}

# The reloads rewrite the same rules, so they keep the route: server connections stay within
# one pool_size, however many reloads and connected clients.
T0=$(date +%s)
MAX_SERVERS=0
MAX_ROUTES=0
OVER_LIMIT=()
echo "elapsed_s,phase,rss_kb,fds,threads,server_conns,routes,pool_servers" >"$OUT/samples.csv"
sample() { # phase
  local now sc sc2 routes servers route_max
  now=$(($(date +%s) - T0))
  read -r routes servers route_max < <(pool_view)
  sc=$(server_conns) || { log "pg_stat_activity did not answer"; sc=0; }
  if [ "$sc" -gt $POOL_SIZE ]; then
    sleep 1
    read -r routes servers route_max < <(pool_view)
    sc2=$(server_conns) || sc2=0
    [ "$sc2" -le $POOL_SIZE ] || OVER_LIMIT+=("${now}s: $sc, then $sc2 server connections on $routes routes")
  fi
  [ "$routes" -le 1 ] || OVER_LIMIT+=("${now}s: $routes routes of user $USER_NAME after reloads of the same rules")
  [ "$route_max" -le $POOL_SIZE ] || OVER_LIMIT+=("${now}s: a route holds $route_max servers")
  [ "$sc" -le "$MAX_SERVERS" ] || MAX_SERVERS=$sc
  [ "$routes" -le "$MAX_ROUTES" ] || MAX_ROUTES=$routes
  echo "$now,$1,$(rss_kb),$(fds),$(threads),$sc,$routes,$servers" >>"$OUT/samples.csv"
}

sleep 1
sample before
FDS_START=$(fds)
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
    timeout $((left + 30)) "$PGBIN/pgbench" -n -j 1 -h 127.0.0.1 -p "$PORT" -U $USER_NAME "$@" \
      -T "$left" $DB >>"$OUT/logs/load-$name.txt" 2>&1 &
    cur=$!
    wait "$cur" || sleep 1 # a pgbench that failed at once (the pooler gone?) must not spin
    cur=''
  done
}
load_loop sel -S -c 12 &
WORKER_PIDS+=($!)
load_loop tpcb -c 6 &
WORKER_PIDS+=($!)
load_loop churn -S -C -c 3 &
WORKER_PIDS+=($!)
log "load for ${DURATION}s: sel (-S -c 12), tpcb (-c 6), churn (-S -C -c 3)"

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
  kill -KILL "$VICTIM_PID" 2>/dev/null || true
  wait "$VICTIM_PID" 2>/dev/null || true
  VICTIM_PID=
}

# Each disturbance and the sampling have their own next time (a slow step never skips one).
L0=$(date +%s)
NEXT_VICTIM=$((L0 + 7)) NEXT_TERMINATE=$((L0 + 5)) NEXT_RELOAD=$((L0 + 15))
NEXT_SAMPLE=$((L0 + SAMPLE_EVERY)) NEXT_LOG=$((L0 + 60))
DIED=no
while now=$(date +%s) && [ "$now" -lt "$END" ]; do
  pooler_alive || { DIED=yes; log "the pooler died at $((now - T0))s"; break; }
  [ -z "$VICTIM_PID" ] || [ "$now" -lt "$VICTIM_KILL_AT" ] || victim_kill
  if [ "$now" -ge $NEXT_VICTIM ] && [ -z "$VICTIM_PID" ]; then
    victim_start
    NEXT_VICTIM=$((NEXT_VICTIM + VICTIM_EVERY))
  fi
  if [ "$now" -ge $NEXT_TERMINATE ]; then
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
    log "$((now - T0))s: elapsed,phase,rss_kb,fds,threads,server_conns,routes,pool_servers = $(tail -1 "$OUT/samples.csv")"
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
if [ $DIED = no ] && [ "$FDS_END" -gt $((FDS_START + POOL_SIZE + FD_SLACK)) ]; then
  FAIL+=("fds: $FDS_END after the load, $FDS_START before (limit $((FDS_START + POOL_SIZE + FD_SLACK)))")
fi
[ ${#OVER_LIMIT[@]} -eq 0 ] ||
  FAIL+=("more than pool_size $POOL_SIZE servers per route: ${OVER_LIMIT[*]}")
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

# pgbench figures of the load loops; error lines by kind (client numbers and pids taken out).
TXNS=$(cat "$OUT"/logs/load-*.txt | awk '/^number of transactions actually processed:/ { s += $6 } END { print s + 0 }')
RUNS=$(cat "$OUT"/logs/load-*.txt | grep -c '^number of transactions actually processed:' || true)
grep -h 'error' "$OUT"/logs/load-*.txt |
  sed -E 's/client [0-9]+/client N/g; s/odyssey: c[0-9a-f]+/odyssey: cID/g; s/command [0-9]+/command N/g; s/query [0-9]+/query N/g' |
  sort | uniq -c | sort -rn >"$OUT/errors.txt" || true
ERRORS=$(awk '{ s += $1 } END { print s + 0 }' "$OUT/errors.txt")
POOLER_ERRORS=$(grep -cE '^[0-9]+ [^ ]+ [^ ]+ (error|fatal) ' "$TMP/odyssey.log" || true)

{
  printf '%-34s %s\n' \
    "duration" "${LOAD_SECONDS}s of load (SOAK_SECONDS=$DURATION)" \
    "transactions (load loops)" "$TXNS in $RUNS pgbench runs ($((TXNS / (LOAD_SECONDS > 0 ? LOAD_SECONDS : 1))) per s)" \
    "client errors (pgbench lines)" "$ERRORS (build/soak/errors.txt)" \
    "pooler error/fatal log lines" "$POOLER_ERRORS" \
    "disturbances" "$VICTIMS victims killed, $TERMINATED backends terminated, $RELOADS reloads" \
    "RSS kB start / peak / end" "$RSS_START / $RSS_PEAK / $RSS_END" \
    "RSS 2nd -> 4th quarter max" "$RSS_TREND" \
    "fds start / end" "$FDS_START / $FDS_END (limit $((FDS_START + POOL_SIZE + FD_SLACK)))" \
    "threads start / end" "$THREADS_START / $THREADS_END" \
    "server connections max" "$MAX_SERVERS (pool_size $POOL_SIZE; up to $MAX_ROUTES routes of user $USER_NAME at once)"
  if [ ${#FAIL[@]} -eq 0 ]; then echo "PASS"; else printf 'FAIL: %s\n' "${FAIL[@]}"; fi
} | tee "$OUT/summary.txt"
if [ -s "$OUT/errors.txt" ]; then
  echo "most frequent client errors:"
  head -5 "$OUT/errors.txt"
fi
[ ${#FAIL[@]} -eq 0 ] || exit 1
