# The two commands a newcomer needs: `make local_run` and `make test` (see README.md).
CARGO ?= cargo

.PHONY: deps local_build local_run test test_only bench fmt lint valgrind

deps:
	./scripts/deps.sh

local_build: deps
	$(CARGO) build --release

local_run: local_build
	./scripts/local_run.sh

# Everything CI checks: formatting, lints, every test, and valgrind over machinarium.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --release --bin odyssey
	$(CARGO) test --workspace --release
	$(MAKE) valgrind

bench: deps
	$(CARGO) bench --workspace

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# machinarium's test binary under memcheck (skipped, with a word, where valgrind is absent).
valgrind:
	./scripts/valgrind.sh
