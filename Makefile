# The two commands a newcomer needs: `make local_run` and `make test` (see README.md).
CARGO ?= cargo

.PHONY: deps drivers local_build local_run test test_only bench bench_micro bench_pg bench_listen fmt lint valgrind fuzz fuzz_smoke soak sanitize deb docker_run

deps:
	./scripts/deps.sh

# Client drivers for test/tests/pstmt_drivers.rs, into build/ (python venv, node-postgres);
# pgjdbc and the JDK come from deps.
drivers: deps
	./scripts/drivers.sh

local_build: deps
	$(CARGO) build --release

local_run: local_build
	./scripts/local_run.sh

# Everything CI checks: formatting, lints, every test, valgrind over machinarium, and every
# fuzz target for 30 s.
# The unit tests of kiwi and odyssey run once more as a debug build, where integer overflow
# panics (release wraps silently).
test: deps drivers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --release --bin odyssey
	$(CARGO) test --workspace --release
	$(CARGO) test -p kiwi -p odyssey --lib
	$(MAKE) valgrind
	$(MAKE) fuzz_smoke

bench: bench_micro bench_pg

# cargo bench: machinarium and kiwi micro-benchmarks.
bench_micro: deps
	$(CARGO) bench --workspace

# pgbench through the pooler, PgBouncer and direct on a throw-away cluster (scripts/bench.sh;
# BENCH_QUICK=1 for a smoke run). Installs pgbouncer when run as root and it is missing.
bench_pg: deps
	CARGO="$(CARGO)" ./scripts/bench.sh

# LISTEN/NOTIFY delivery: 1,000 listeners on a pool of 5 next to direct PostgreSQL, latency
# p50/p99 and the pooler's CPU per delivered notification (test/src/bin/listen_bench.rs).
bench_listen: deps
	$(CARGO) build --release -p odyssey
	$(CARGO) run --release -p odyssey-test --bin listen_bench -- $(LISTEN_BENCH_ARGS)

# Every fuzz target (kiwi: decode, startup, scram; odyssey: relay, config, hba) for
# FUZZ_SECONDS each (default 600; FUZZ_TARGETS picks some); scripts/fuzz.sh installs nightly
# and cargo-fuzz when missing and prints each target's executions.
fuzz:
	./scripts/fuzz.sh

# The same for 30 s each: CI's check that no target crashes on its seeds or soon after.
fuzz_smoke:
	FUZZ_SECONDS=30 ./scripts/fuzz.sh

# The pooler for SOAK_SECONDS (default 1800) with SOAK_CLIENTS (default 10,000) mostly idle
# clients, some over TLS, with reconnect storms, under pgbench load on transaction and session
# pools, with clients killed mid transaction, pg_terminate_backend, a PostgreSQL restart and
# SIGHUPs (scripts/soak.sh): fails on a crash, RSS or fd growth, an error outside the planned
# faults, more servers than the pools hold, a panic. Figures and a plot go to build/soak/.
soak: deps drivers
	CARGO="$(CARGO)" ./scripts/soak.sh

# The pooler built with AddressSanitizer (nightly) under integration smoke tests
# (scripts/sanitize.sh; SANITIZE_TESTS picks them): any ASan report fails it.
sanitize: deps
	./scripts/sanitize.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# machinarium's test binary under memcheck (skipped, with a word, where valgrind is absent).
valgrind:
	./scripts/valgrind.sh

# The Debian package, into build/deb/ (scripts/deb.sh; lintian checks it: `lintian build/deb/*.deb`).
deb: deps
	CARGO="$(CARGO)" ./scripts/deb.sh

# PostgreSQL primary + streaming standby + the pooler on localhost:6432 (docker/compose.yaml).
docker_run:
	docker compose -f docker/compose.yaml up --build
