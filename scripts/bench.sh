#!/usr/bin/env bash
# `make bench_pg`: pgbench through our pooler, through PgBouncer and straight to PostgreSQL,
# against one throw-away cluster, in interleaved rounds; prints a summary with ratios.
#
# Targets: odyssey (target/release/odyssey), pgbouncer (Debian package; installed here when
# root and missing), direct. Both poolers: transaction pooling, a pool of 20, SCRAM for clients.
# Scenarios, for each target (pgbench -n -j 2 -T $T, user `bench`):
#   sel_simple   -S -M simple   -c 50     sel_ext  -S -M extended -c 50
#   tpcb         tpcb-like      -c 50     storm_scram  -S -C -c 20 (a SCRAM login per transaction)
#   storm_authq  -S -C -c 20 as user bench_aq, whose SCRAM verifier both poolers read from
#                PostgreSQL with auth_query (as bench_reader) instead of a config file: ours
#                caches it (warm after the first login), PgBouncer 1.18 asks at every login
#   storm_md5    -S -C -c 20 as user bench_md5, whose password both poolers and PostgreSQL keep
#                as an md5 hash (an MD5 login per transaction)
#   sel_c20      -S -M simple   -c 20     (for direct: PostgreSQL at the pool's concurrency)
#   sel_sqlprep  -M simple -f sqlprep.sql -c 50: pgbench's select-only through SQL PREPARE
#                once per client and EXECUTE per transaction (compare with sel_prep; PgBouncer
#                passes SQL PREPARE through, so its clients fail once they meet another server)
#   sel_prep     -S -M prepared -c 50     (named prepared statements; PgBouncer 1.18 has no
#                support for them in transaction pooling, so its clients fail: rc and failed)
#   tls_sel      -S -M simple -c 50, TLS on both sides (clients sslmode=require; the poolers'
#                servers too: odyssey tls "require", PgBouncer server_tls_sslmode = require)
#   tls_storm    -S -M simple -C -c 20, TLS on both sides: a TLS handshake and SCRAM per txn
#   tls_large    -f large.sql -c 4, TLS on both sides: a 100 MB result per transaction
#   sel_many     -S -M simple -c $BENCH_MANY (1000) over the pool of 20, poolers only (direct
#                allows 300 connections); pgbench logs every transaction (-l), and p50, p99 and
#                p99.9 of their latencies go to latency.csv
#   idle_mem     poolers only: VmRSS of a fresh process before/with $IDLE_N idle clients (and,
#                with TLS scenarios, of a TLS instance with $IDLE_N idle TLS clients)
# TLS scenarios run against a second instance of each pooler (odyssey_tls, pgbouncer_tls) with
# a self-signed EC certificate; direct is PostgreSQL with ssl = on. Other scenarios disable TLS.
# Per run: TPS, average latency and the pooler's CPU µs per transaction (utime+stime of its pid),
# and the whole machine's busy CPU µs per transaction (/proc/stat) with its busy share.
# Order: for each round, each scenario, each target (target order reversed on even rounds),
# so that drift on a shared machine spreads over all targets; figures are medians over rounds.
#
# Environment: BENCH_BASELINE (another odyssey binary, e.g. an older build or upstream's C
# Odyssey (it reads the same config): run as the target "baseline" in the same rounds,
# compared with this one), BENCH_T (seconds per run, default
# 10), BENCH_ROUNDS (default 3), BENCH_WORKERS (odyssey's workers, 2), BENCH_MANY (clients of sel_many, 1000), BENCH_PERF=1 (count the
# poolers' system calls, context switches and calls to malloc per transaction with perf stat,
# and record each pooler's profile with perf record into logs/perf-*.data and a flat report
# next to it, and a flamegraph, logs/flame-*.svg, when inferno is installed: both slow the
# poolers, so these runs
# are for finding where the time goes, not for the ratios; BENCH_PERF=record only records, at
# BENCH_PERF_HZ samples a second, 499), BENCH_QUICK=1
# (T=3, R=1: a smoke run), BENCH_IDLE_N (default 15000, issue 16's figure), KEEP=1 (keep the temp dir), CARGO,
# CARGO_TARGET_DIR (where the odyssey binary is built; default target/).
# Results: build/bench/<timestamp>/ (summary.md, results.csv, idle.csv, meta.txt, logs/).
# Loopback only. Every process started here is stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

T=${BENCH_T:-10}
R=${BENCH_ROUNDS:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then T=${BENCH_T:-3} R=${BENCH_ROUNDS:-1}; fi
IDLE_N=${BENCH_IDLE_N:-15000}
MANY=${BENCH_MANY:-1000}
WORKERS=${BENCH_WORKERS:-2}
PERF=${BENCH_PERF:-0}
KEEP=${KEEP:-0}
CARGO=${CARGO:-cargo}
# BENCH_SCENARIOS: a subset, e.g. "sel_simple sel_ext".
read -ra SCENARIOS <<<"${BENCH_SCENARIOS:-sel_simple sel_ext sel_prep sel_sqlprep tpcb storm_scram storm_md5 storm_authq sel_c20 sel_many tls_sel tls_storm tls_large}"
NEED_TLS=no
for sc in "${SCENARIOS[@]}"; do case $sc in tls_*) NEED_TLS=yes ;; esac; done
TARGETS=(odyssey pgbouncer direct)
POOL_SIZE=20
SCALE=10
DB=bench
USER_NAME=bench
export PGPASSWORD=bench-scram-pw # the bench role's password, for pgbench, psql and idle clients
MD5_USER=bench_md5 # storm_md5's role, its password stored as an md5 hash
MD5_PASSWORD=bench-md5-pw
AQ_USER=bench_aq # storm_authq's role: no password in either pooler's config
AQ_PASSWORD=bench-aq-pw
READER_USER=bench_reader # the superuser the poolers' auth_query runs as
READER_PASSWORD=bench-reader-pw
AUTH_QUERY='SELECT usename, passwd FROM pg_shadow WHERE usename = $1'
export PGCONNECT_TIMEOUT=5

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=scripts/pg_cluster.sh
. scripts/pg_cluster.sh

# ---------------------------------------------------------------- tools
BIN=${CARGO_TARGET_DIR:-target}/release/odyssey
log "building $BIN"
$CARGO build --release --bin odyssey

pg_find_bin

PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ ! -x "$PGBOUNCER" ]; then
  # Only the benchmark needs pgbouncer, so it is installed here and not by scripts/deps.sh.
  [ "$(id -u)" -eq 0 ] || die "pgbouncer is missing; run: sudo apt-get install -y pgbouncer"
  log "installing pgbouncer (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
  PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
fi
CLK_TCK=$(getconf CLK_TCK)

# 15,000 idle clients need file descriptors in the poolers (which inherit this limit) and here.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
[ "$hard" -gt 65536 ] && hard=65536
ulimit -n "$hard"
[ "$hard" -gt $((IDLE_N + MANY + 500)) ] || log "WARNING: fd limit $hard is low for $IDLE_N idle clients"

# ---------------------------------------------------------------- dirs, clean-up
OUT=$ROOT/build/bench/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/logs"
TMP=$(mktemp -d /tmp/odyssey-bench.XXXXXX)
chmod 755 "$TMP"
[ ${#AS_PG[@]} -eq 0 ] || chown postgres "$TMP"
PGDATA=$TMP/pg
# The pooler binary is copied next to its config so that user postgres can surely run it.
cp "$BIN" "$TMP/odyssey"
chmod 755 "$TMP/odyssey"
if [ -n "${BENCH_BASELINE:-}" ]; then
  [ -x "$BENCH_BASELINE" ] || die "BENCH_BASELINE=$BENCH_BASELINE is not an executable"
  cp "$BENCH_BASELINE" "$TMP/baseline-odyssey"
  chmod 755 "$TMP/baseline-odyssey"
  TARGETS+=(baseline)
fi

declare -A PID=() PORT=()
IDLE_PID=
PG_STARTED=no

cleanup() {
  local rc=$? name
  trap - EXIT INT TERM
  [ -z "$IDLE_PID" ] || stop_pid "$IDLE_PID"
  for name in "${!PID[@]}"; do stop_pid "${PID[$name]}"; done
  [ $PG_STARTED = no ] || pg_stop "$PGDATA"
  [ "${PERF_PROBES:-no}" = no ] || perf probe -q -d 'probe_libc:bench_*' >/dev/null 2>&1 || true
  cp "$TMP"/*.log "$OUT/logs/" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- TLS material
# One self-signed certificate for PostgreSQL and both poolers (clients use sslmode=require,
# which does not verify), readable by user postgres only.
if [ $NEED_TLS = yes ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1 ||
    die "openssl could not make a certificate"
  chmod 600 "$TMP/tls.key"
  [ ${#AS_PG[@]} -eq 0 ] || chown postgres "$TMP/tls.key" "$TMP/tls.crt"
  # A 100 MB result: 100,000 rows of 1,000 bytes.
  echo "SELECT repeat('x', 1000) FROM generate_series(1, 100000);" >"$TMP/large.sql"
  chmod 644 "$TMP/large.sql"
fi

# ---------------------------------------------------------------- PostgreSQL
PORT[direct]=$(free_port)
log "initdb in $PGDATA, port ${PORT[direct]}"
pg_initdb "$PGDATA" "${PORT[direct]}" "$TMP" "$TMP/initdb.log"
cat >>"$PGDATA/postgresql.conf" <<EOF
max_connections = 300
password_encryption = 'scram-sha-256'
EOF
if [ $NEED_TLS = yes ]; then
  printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" "$TMP/tls.crt" "$TMP/tls.key" \
    >>"$PGDATA/postgresql.conf"
fi
# Setup as the superuser over the unix socket (trust); all measured traffic is TCP + SCRAM.
cat >"$PGDATA/pg_hba.conf" <<EOF
local all postgres trust
host $DB $USER_NAME 127.0.0.1/32 scram-sha-256
host $DB $MD5_USER 127.0.0.1/32 md5
host $DB $AQ_USER 127.0.0.1/32 scram-sha-256
host $DB $READER_USER 127.0.0.1/32 scram-sha-256
EOF
pg_start "$PGDATA" "$TMP/postgres.log"
PG_STARTED=yes

psql_su() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TMP" -p "${PORT[direct]}" -U postgres "$@"; }
psql_su -d postgres -c "CREATE ROLE $USER_NAME LOGIN PASSWORD '$PGPASSWORD'" \
  -c "CREATE DATABASE $DB OWNER $USER_NAME"
SCRAM_SECRET=$(psql_su -d postgres -Atc "SELECT rolpassword FROM pg_authid WHERE rolname = '$USER_NAME'")
case "$SCRAM_SECRET" in SCRAM-SHA-256\$*) ;; *) die "bench's password is not stored as SCRAM" ;; esac
psql_su -d postgres -c "SET password_encryption = 'md5'" \
  -c "CREATE ROLE $MD5_USER LOGIN PASSWORD '$MD5_PASSWORD'"
MD5_SECRET=$(psql_su -d postgres -Atc "SELECT rolpassword FROM pg_authid WHERE rolname = '$MD5_USER'")
case "$MD5_SECRET" in md5*) ;; *) die "$MD5_USER's password is not stored as md5" ;; esac
psql_su -d postgres -c "CREATE ROLE $AQ_USER LOGIN PASSWORD '$AQ_PASSWORD'" \
  -c "CREATE ROLE $READER_USER LOGIN SUPERUSER PASSWORD '$READER_PASSWORD'"

log "pgbench -i -s $SCALE"
timeout 600 "$PGBIN/pgbench" -i -q -s $SCALE -h 127.0.0.1 -p "${PORT[direct]}" -U $USER_NAME $DB \
  >"$OUT/logs/pgbench-init.txt" 2>&1 || { cat "$OUT/logs/pgbench-init.txt" >&2; die "pgbench -i failed"; }
psql_su -d $DB -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO $MD5_USER, $AQ_USER" >/dev/null

# ---------------------------------------------------------------- pooler configs
# Both poolers check the client's SCRAM proof against the verifier PostgreSQL stores (no PBKDF2
# per login on their side) and log into PostgreSQL over TCP with SCRAM.
odyssey_conf() { # name port tls(yes|no) -> $TMP/name.conf
  local listen_tls='tls "disable"' storage_tls='tls "disable"'
  # Both users' pools: transaction pooling, pool_size $POOL_SIZE.
  local pool="pool \"transaction\"
		pool_size $POOL_SIZE
		pool_timeout 0
		pool_discard no
		pool_cancel yes
		pool_rollback yes
		pool_reserve_prepared_statement yes
		client_fwd_error yes"
  if [ "$3" = yes ]; then
    listen_tls="tls \"require\"
	tls_cert_file \"$TMP/tls.crt\"
	tls_key_file \"$TMP/tls.key\""
    storage_tls='tls "require"'
  fi
  cat >"$TMP/$1.conf" <<EOF
daemonize no
pid_file "$TMP/$1.pid"
locks_dir "$TMP"
log_file "$TMP/$1.log"
log_to_stdout no
log_format "%p %t %l [%i %s] (%c) %m\n"
log_debug no
log_config no
log_session no
log_query no
log_stats no
workers $WORKERS
nodelay yes
keepalive 15

listen {
	host "127.0.0.1"
	port $2
	backlog 1024
	$listen_tls
}

storage "pg" {
	type "remote"
	host "127.0.0.1"
	port ${PORT[direct]}
	$storage_tls
}

database "$DB" {
	user "$USER_NAME" {
		authentication "scram-sha-256"
		password "$SCRAM_SECRET"
		storage "pg"
		storage_user "$USER_NAME"
		storage_password "$PGPASSWORD"
		$pool
	}
	user "$MD5_USER" {
		authentication "md5"
		password "$MD5_SECRET"
		storage "pg"
		storage_user "$MD5_USER"
		storage_password "$MD5_PASSWORD"
		$pool
	}
	user "$AQ_USER" {
		authentication "scram-sha-256"
		auth_query "$AUTH_QUERY"
		auth_query_db "$DB"
		auth_query_user "$READER_USER"
		storage "pg"
		$pool
	}
	user "$READER_USER" {
		authentication "none"
		storage "pg"
		storage_user "$READER_USER"
		storage_password "$READER_PASSWORD"
		pool "transaction"
		pool_size 2
		pool_routing "internal"
	}
}
EOF
}

pgbouncer_ini() { # name port tls(yes|no) -> $TMP/name.ini
  # bench_aq is not listed: PgBouncer asks auth_query for it, as bench_reader (whose plain
  # password it needs to log into PostgreSQL).
  printf '"%s" "%s"\n"%s" "%s"\n"%s" "%s"\n' "$USER_NAME" "$SCRAM_SECRET" "$MD5_USER" "$MD5_SECRET" \
    "$READER_USER" "$READER_PASSWORD" >"$TMP/userlist.txt"
  local tls="server_tls_sslmode = disable"
  if [ "$3" = yes ]; then
    tls="client_tls_sslmode = require
client_tls_cert_file = $TMP/tls.crt
client_tls_key_file = $TMP/tls.key
server_tls_sslmode = require"
  fi
  cat >"$TMP/$1.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=${PORT[direct]} dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
logfile = $TMP/$1.log
# md5: users with an md5 hash log in with MD5, users with a SCRAM secret with SCRAM.
auth_type = md5
auth_file = $TMP/userlist.txt
auth_user = $READER_USER
auth_query = $AUTH_QUERY
pool_mode = transaction
default_pool_size = $POOL_SIZE
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $((IDLE_N + MANY + 500))
log_connections = 0
log_disconnections = 0
stats_period = 60
$tls
EOF
}

start_pooler() { # name kind(odyssey|pgbouncer) [binary [tls(yes|no)]]: writes a config, starts
  # it, waits for a query
  local name=$1 kind=$2 bin=${3:-$TMP/odyssey} tls=${4:-no} i
  PORT[$name]=$(free_port)
  if [ "$kind" = odyssey ]; then
    odyssey_conf "$name" "${PORT[$name]}" "$tls"
    "${AS_PG[@]}" "$bin" --console "$TMP/$name.conf" >"$TMP/$name.out.log" 2>&1 &
  else
    pgbouncer_ini "$name" "${PORT[$name]}" "$tls"
    "${AS_PG[@]}" "$PGBOUNCER" "$TMP/$name.ini" >"$TMP/$name.out.log" 2>&1 &
  fi
  PID[$name]=$!
  chmod 644 "$TMP"/*.conf "$TMP"/*.ini "$TMP/userlist.txt" 2>/dev/null || true
  for i in $(seq 1 50); do # up to ~10 s
    kill -0 "${PID[$name]}" 2>/dev/null || { cat "$TMP/$name"*.log >&2; die "$name exited at start"; }
    if PGSSLMODE=$([ "$tls" = yes ] && echo require || echo disable) timeout 5 "$PGBIN/psql" -X -Atq -h 127.0.0.1 -p "${PORT[$name]}" -U $USER_NAME -d $DB \
      -c "SELECT 1" >/dev/null 2>&1; then
      log "$name: pid ${PID[$name]}, port ${PORT[$name]}"
      return 0
    fi
    sleep 0.2
  done
  cat "$TMP/$name"*.log >&2
  die "$name did not answer a query within 10 s"
}

stop_pooler() { stop_pid "${PID[$1]}"; unset "PID[$1]"; }

cpu_ticks() { # pid -> utime+stime of the whole process (all threads), in clock ticks
  local s f
  s=$(<"/proc/$1/stat")
  read -ra f <<<"${s##*) }" # fields after "pid (comm) ": f[0] is field 3 (state)
  echo $((f[11] + f[12]))
}
machine_ticks() { # -> "busy total": the machine's CPU ticks, all cores (/proc/stat)
  local cpu user nice sys idle iowait irq softirq steal rest
  read -r cpu user nice sys idle iowait irq softirq steal rest </proc/stat
  echo "$((user + nice + sys + irq + softirq + steal)) $((user + nice + sys + idle + iowait + irq + softirq + steal))"
}
cpu_sys_ticks() { # pid -> stime of the whole process: the kernel's share of cpu_ticks
  local s f
  s=$(<"/proc/$1/stat")
  read -ra f <<<"${s##*) }"
  echo "${f[12]}"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- metadata
{
  echo "date: $(date -Is)"
  echo "machine: $(uname -srm), nproc $(nproc)"
  echo "odyssey: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- odyssey machinarium third_party 2>/dev/null || echo ' (modified)'), workers $WORKERS"
  echo "pgbouncer: $("$PGBOUNCER" --version 2>&1 | head -1)"
  echo "postgres: $("$PGBIN/postgres" --version)"
  echo "settings: T=${T}s rounds=$R scale=$SCALE pool_size=$POOL_SIZE idle_clients=$IDLE_N pgbench -j 2"
} >"$OUT/meta.txt"

# Select-only as pgbench's -S, through SQL PREPARE (once per client: `prepared` starts at 0
# from -D, and pgbench keeps a client's variables across its transactions) and EXECUTE.
cat >"$TMP/sqlprep.sql" <<'SQL'
\if :prepared = 0
PREPARE sel(int) AS SELECT abalance FROM pgbench_accounts WHERE aid = $1;
\set prepared 1
\endif
\set aid random(1, 100000 * :scale)
EXECUTE sel(:aid);
SQL
chmod 644 "$TMP/sqlprep.sql"

# ---------------------------------------------------------------- interleaved rounds
start_pooler odyssey odyssey
start_pooler pgbouncer pgbouncer
[ -z "${BENCH_BASELINE:-}" ] || start_pooler baseline odyssey "$TMP/baseline-odyssey"
if [ $NEED_TLS = yes ]; then
  start_pooler odyssey_tls odyssey "$TMP/odyssey" yes
  start_pooler pgbouncer_tls pgbouncer "" yes
  [ -z "${BENCH_BASELINE:-}" ] || start_pooler baseline_tls odyssey "$TMP/baseline-odyssey" yes
fi

echo "round,scenario,target,rc,txns,failed,tps,lat_ms,cpu_ticks,cpu_us_per_txn,syscalls_per_txn,kernel_share,machine_us_per_txn,machine_busy" >"$OUT/results.csv"
echo "round,scenario,target,txns,p50_ms,p99_ms,p999_ms" >"$OUT/latency.csv"
echo "round,scenario,target,syscall,count" >"$OUT/syscalls.csv"

# BENCH_PERF=1: perf attached to a pooler for one pgbench run. Counting system calls costs
# little; each pooler's profile (perf record) costs more. Both stop with SIGINT after the run.
PERF_PIDS=()
PERF_CALLS=
# The system calls counted one by one (the total counts them all), and the context switches of
# the pooler's threads (each sleep in epoll_wait and each wake costs one).
PERF_SYSCALLS=raw_syscalls:sys_enter,context-switches
for c in read write recvfrom sendto readv writev epoll_wait epoll_pwait epoll_ctl futex accept4 \
  close setsockopt getsockopt mmap munmap madvise mprotect brk sched_yield; do
  PERF_SYSCALLS+=,syscalls:sys_enter_$c
done
# Calls into the C allocator (both poolers use libc's malloc), through uprobes on libc, when
# perf can place them; removed again at exit.
PERF_PROBES=no
if [ "$PERF" != 0 ] && [ "$PERF" != record ]; then
  libc=$(ldd "$TMP/odyssey" | awk '$1 ~ /^libc\.so/ { print $3 }')
  if [ -n "$libc" ] && perf probe -q -x "$libc" --add 'bench_malloc=malloc' --add 'bench_calloc=calloc' \
    --add 'bench_realloc=realloc' >/dev/null 2>&1; then
    PERF_PROBES=yes
    PERF_SYSCALLS+=,probe_libc:bench_malloc,probe_libc:bench_calloc,probe_libc:bench_realloc
  else
    log "perf probe on libc's malloc failed: allocations are not counted"
  fi
fi
perf_start() { # pid target tag
  PERF_PIDS=()
  [ "$PERF" != 0 ] && [ -n "$1" ] || return 0
  if [ "$PERF" != record ]; then
    perf stat -x, -e "$PERF_SYSCALLS" -p "$1" -o "$OUT/logs/perfstat-$3.csv" 2>/dev/null &
    PERF_PIDS+=($!)
  fi
  case $2 in odyssey* | baseline* | pgbouncer*)
    perf record -q -F "${BENCH_PERF_HZ:-499}" -g -p "$1" -o "$OUT/logs/perf-$3.data" >/dev/null 2>&1 &
    PERF_PIDS+=($!) ;;
  esac
  sleep 0.5 # perf attaches before pgbench starts
}
perf_stop() { # round scenario target -> PERF_CALLS (system calls counted; empty without perf)
  local p tag=r$1-$2-$3
  PERF_CALLS=
  for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PERF_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PERF_PIDS=()
  if [ -f "$OUT/logs/perf-$tag.data" ]; then
    perf report -i "$OUT/logs/perf-$tag.data" --no-children --sort symbol --stdio -g none \
      2>/dev/null | grep -v '^$' | head -120 >"$OUT/logs/perf-$tag.txt" || true
    # A flamegraph of the profile, with inferno (`cargo install inferno`) when it is there.
    if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
      perf script -i "$OUT/logs/perf-$tag.data" 2>/dev/null | inferno-collapse-perf 2>/dev/null |
        inferno-flamegraph --title "$3, $2 ($1)" >"$OUT/logs/flame-$tag.svg" 2>/dev/null || true
    fi
  fi
  [ -f "$OUT/logs/perfstat-$tag.csv" ] || return 0
  PERF_CALLS=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$OUT/logs/perfstat-$tag.csv")
  awk -F, -v pre="$1,$2,$3" '$3 ~ /^syscalls:sys_enter_/ && $1 ~ /^[0-9]+$/ {
    sub(/^syscalls:sys_enter_/, "", $3); print pre "," $3 "," $1 }
    $3 == "context-switches" && $1 ~ /^[0-9]+$/ { print pre ",(context switches)," $1 }
    $3 ~ /^probe_libc:bench_/ && $1 ~ /^[0-9]+$/ { sub(/^probe_libc:bench_/, "", $3); print pre ",(" $3 ")," $1 }' \
    "$OUT/logs/perfstat-$tag.csv" >>"$OUT/syscalls.csv"
}

# Percentiles of pgbench's per-transaction log (-l: the third field is the latency in µs).
latency_percentiles() { # round scenario target prefix
  cat "$4".* 2>/dev/null | awk -v round="$1" -v sc="$2" -v tg="$3" '
    $3 ~ /^[0-9]+$/ { print $3 }' | sort -n | awk -v round="$1" -v sc="$2" -v tg="$3" '
    { v[NR] = $1 }
    function q(p,  i) { i = int(p * NR); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1000 }
    END { if (NR > 0) printf "%s,%s,%s,%d,%.2f,%.2f,%.2f\n", round, sc, tg, NR, q(0.5), q(0.99), q(0.999) }'
  rm -f "$4".*
}

run_pgbench() { # round scenario target
  local round=$1 sc=$2 tg=$3 out rc=0 c0=0 c1=0 k0=0 k1=0 m0=0 m1=0 t0=0 t1=0 inst=$3 ssl=disable pid args
  local user=$USER_NAME password=$PGPASSWORD
  # TLS scenarios: the target's TLS instance (direct: PostgreSQL itself), sslmode=require.
  case $sc in tls_*) ssl=require; [ "$tg" = direct ] || inst=${tg}_tls ;; esac
  pid=${PID[$inst]:-}
  case $sc in
    sel_simple) args=(-S -M simple -c 50) ;;
    sel_ext) args=(-S -M extended -c 50) ;;
    sel_prep) args=(-S -M prepared -c 50) ;;
    sel_sqlprep) args=(-M simple -f "$TMP/sqlprep.sql" -D prepared=0 -c 50) ;;
    tpcb) args=(-M simple -c 50)
      # Same starting point for every tpcb run: small hot tables vacuumed, history empty.
      psql_su -d $DB -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" \
        -c "TRUNCATE pgbench_history" >/dev/null ;;
    storm_scram) args=(-S -M simple -C -c 20) ;;
    storm_md5) args=(-S -M simple -C -c 20) user=$MD5_USER password=$MD5_PASSWORD ;;
    storm_authq) args=(-S -M simple -C -c 20) user=$AQ_USER password=$AQ_PASSWORD ;;
    sel_c20) args=(-S -M simple -c 20) ;;
    sel_many) [ "$tg" != direct ] || return 0 # PostgreSQL here allows 300 connections
      args=(-S -M simple -c "$MANY" -l --log-prefix="$OUT/logs/lat-r$round-$tg") ;;
    tls_sel) args=(-S -M simple -c 50) ;;
    tls_storm) args=(-S -M simple -C -c 20) ;;
    tls_large) args=(-M simple -f "$TMP/large.sql" -c 4) ;;
  esac
  out=$OUT/logs/r$round-$sc-$tg.txt
  if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
    echo "$tg is not running" >"$out"
    echo "$round,$sc,$tg,dead,0,0,,,,,,,," >>"$OUT/results.csv"
    log "r$round $sc $tg: NOT RUNNING"
    return 0
  fi
  perf_start "$pid" "$inst" "r$round-$sc-$tg"
  [ -z "$pid" ] || { c0=$(cpu_ticks "$pid"); k0=$(cpu_sys_ticks "$pid"); }
  read -r m0 t0 < <(machine_ticks)
  PGPASSWORD=$password PGSSLMODE=$ssl timeout $((T + 60)) "$PGBIN/pgbench" -n -h 127.0.0.1 -p "${PORT[$inst]}" -U "$user" \
    "${args[@]}" -j 2 -T "$T" $DB >"$out" 2>&1 || rc=$?
  [ -z "$pid" ] || c1=$(cpu_ticks "$pid" 2>/dev/null || echo "$c0")
  [ -z "$pid" ] || k1=$(cpu_sys_ticks "$pid" 2>/dev/null || echo "$k0")
  read -r m1 t1 < <(machine_ticks)
  perf_stop "$round" "$sc" "$tg"
  awk -v round="$round" -v sc="$sc" -v tg="$tg" -v rc="$rc" -v ticks=$((c1 - c0)) -v kticks=$((k1 - k0)) \
    -v hz="$CLK_TCK" -v pooled="${pid:+1}" -v calls="$PERF_CALLS" \
    -v mticks=$((m1 - m0)) -v tticks=$((t1 - t0)) '
    /^number of transactions actually processed:/ { txns = $6 }
    /^number of failed transactions:/ { failed = $5 }
    /^tps = / { tps = $3 }
    /^latency average = / { lat = $4 }
    END {
      cpu = (pooled && txns > 0) ? sprintf("%.2f", ticks * 1e6 / hz / txns) : ""
      sys = (calls != "" && txns > 0) ? sprintf("%.2f", calls / txns) : ""
      kshare = (pooled && ticks > 0) ? sprintf("%.3f", kticks / ticks) : ""
      mcpu = txns > 0 ? sprintf("%.2f", mticks * 1e6 / hz / txns) : ""
      busy = tticks > 0 ? sprintf("%.3f", mticks / tticks) : ""
      printf "%s,%s,%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s\n", round, sc, tg, rc, txns, failed, tps, lat,
        pooled ? ticks : "", cpu, sys, kshare, mcpu, busy
    }' "$out" >>"$OUT/results.csv"
  log "r$round $sc $tg: $(tail -1 "$OUT/results.csv")"
  if [ "$sc" = sel_many ]; then
    latency_percentiles "$round" "$sc" "$tg" "$OUT/logs/lat-r$round-$tg" >>"$OUT/latency.csv"
    log "r$round $sc $tg latency: $(tail -1 "$OUT/latency.csv")"
  fi
}

log "scenarios ${SCENARIOS[*]} x targets ${TARGETS[*]} x $R rounds, ${T}s each"
for round in $(seq 1 "$R"); do
  order=("${TARGETS[@]}")
  if [ $((round % 2)) = 0 ]; then
    order=()
    for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[$i]}"); done
  fi
  for sc in "${SCENARIOS[@]}"; do
    for tg in "${order[@]}"; do run_pgbench "$round" "$sc" "$tg"; done
  done
done
stop_pooler odyssey
stop_pooler pgbouncer
[ -z "${BENCH_BASELINE:-}" ] || stop_pooler baseline
if [ $NEED_TLS = yes ]; then
  stop_pooler odyssey_tls
  stop_pooler pgbouncer_tls
  [ -z "${BENCH_BASELINE:-}" ] || stop_pooler baseline_tls
fi

# ---------------------------------------------------------------- idle_mem
echo "target,n,ok,failed,rss_before_kb,rss_with_kb,rss_after_kb,bytes_per_client" >"$OUT/idle.csv"
run_idle() { # kind [tls]: a fresh pooler, then IDLE_N idle clients logged in with SCRAM
  local kind=$1 tls=${2:-no} name=$1-idle pid r0 r1 r2 i ready out=$OUT/logs/idle_mem-$1.txt
  local target=$kind tls_arg=() bin=""
  if [ "$tls" = yes ]; then name=$kind-tls-idle target=${kind}_tls tls_arg=(--tls) out=$OUT/logs/idle_mem-$target.txt; fi
  # The baseline is an older odyssey binary.
  if [ "$kind" = baseline ]; then bin=$TMP/baseline-odyssey kind=odyssey; fi
  start_pooler "$name" "$kind" "$bin" "$tls"
  pid=${PID[$name]}
  sleep 1
  r0=$(rss_kb "$pid")
  python3 bench/idle_clients.py --port "${PORT[$name]}" --n "$IDLE_N" --user $USER_NAME \
    --password "$PGPASSWORD" --db $DB --hold 180 --timeout 120 "${tls_arg[@]}" </dev/null >"$out" 2>&1 &
  IDLE_PID=$!
  for i in $(seq 1 1300); do # up to ~130 s: the clients give up after 120 s
    ready=$(grep -m1 '^ready ' "$out" || true)
    [ -z "$ready" ] && kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
  done
  sleep 2 # let the pooler settle (buffers of the last logins)
  r1=$(rss_kb "$pid")
  stop_pid "$IDLE_PID"
  IDLE_PID=
  sleep 2
  r2=$(rss_kb "$pid")
  stop_pooler "$name"
  set -- $ready
  local ok=${2:-0} failed=${3:-$IDLE_N}
  echo "$target,$IDLE_N,$ok,$failed,$r0,$r1,$r2,$([ "$ok" -gt 0 ] && echo $(((r1 - r0) * 1024 / ok)))" \
    >>"$OUT/idle.csv"
  log "idle_mem $kind: $(tail -1 "$OUT/idle.csv")"
}
run_idle odyssey
run_idle pgbouncer
[ -z "${BENCH_BASELINE:-}" ] || run_idle baseline
if [ $NEED_TLS = yes ]; then
  run_idle odyssey yes
  run_idle pgbouncer yes
fi

# ---------------------------------------------------------------- summary
# Pooler log lines worth a look (odyssey's %l is error/fatal; pgbouncer writes ERROR/WARNING).
grep -HE ' (error|fatal) |ERROR|WARNING|panicked' "$TMP"/odyssey*.log "$TMP"/pgbouncer*.log \
  2>/dev/null | sed "s|$TMP/||" | head -50 >"$OUT/log_errors.txt" || true
python3 bench/pg_summary.py "$OUT" >"$OUT/summary.md"
echo
cat "$OUT/summary.md"
log "results in ${OUT#"$ROOT"/}"
