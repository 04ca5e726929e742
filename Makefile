# Two commands for a fresh machine: `make run` (service on SQLite, in-process worker) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long install migrate lint worker sandbox bench clean lock audit

# Dependencies come from the hash-pinned lock (every version and file hash fixed), the package
# itself without dependencies: the same install on every machine, CI and the image.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# After changing dependencies in pyproject.toml: one command regenerates both locks (dev for
# make/CI, runtime for the Dockerfile); `make install` then installs the new set.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	--custom-compile-command "make lock" --quiet
lock: $(STAMP)
	$(UV_COMPILE) --extra dev -o requirements.lock
	$(UV_COMPILE) -o requirements-runtime.lock

# Known vulnerabilities in the locked set (skipped, with a message, when offline).
audit: $(STAMP)
	$(BIN)/python scripts/audit_lock.py

run: $(STAMP)
	$(BIN)/wizesync migrate
	$(BIN)/wizesync dev --host $${HOST:-127.0.0.1} --port $${PORT:-8000} --log-format auto

migrate: $(STAMP)
	$(BIN)/wizesync migrate

worker: $(STAMP)
	$(BIN)/wizesync worker

# Four pytest-xdist processes, on 2 cores too: most tests wait on subprocesses, sockets, leases
# or PostgreSQL, so four keep both cores busy (docs/BENCHMARKS.md: 4 min against 6-7 with two).
# PYTEST_WORKERS=0 runs in one process (pdb, -x, output ordering).
# The long runs (marker `long`: the chaos suite, the GHL budget at full load across processes)
# are `make test-long`, one at a time so they do not compete for the 2 cores.
PYTEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not long" $(PYTEST_ARGS)

test-long: $(STAMP)
	$(BIN)/pytest -m long $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src migrations tests benchmarks scripts
	$(BIN)/ruff format --check src migrations tests benchmarks scripts

sandbox: $(STAMP)
	$(BIN)/wizesync sandbox --port $${SANDBOX_PORT:-8010}

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) wizesync.db wizesync.db-wal wizesync.db-shm .pytest_cache

.PHONY: demo
# The whole sync on loopback: sandbox + service (temp SQLite), an order, a refund, the poller.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

.PHONY: chaos
# Replicas under fire on PostgreSQL (benchmarks/chaos.py): 2 API + 2 worker processes, the sandbox
# failing ~20% of GHL calls, SIGKILLs every few seconds, PostgreSQL cut once; then every promise
# is checked from the sandbox's records. CHAOS_ARGS="--orders 300 --seconds 60" for a shorter run.
chaos: $(STAMP)
	$(BIN)/python benchmarks/chaos.py $(CHAOS_ARGS)
