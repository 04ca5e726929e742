# Two commands for a fresh machine: `make run` (service on SQLite, in-process worker) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install migrate lint worker sandbox bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/wizesync migrate
	$(BIN)/wizesync serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000} --log-format auto

migrate: $(STAMP)
	$(BIN)/wizesync migrate

worker: $(STAMP)
	$(BIN)/wizesync worker

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks || true

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
