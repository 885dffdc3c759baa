# Groundwork: `make run` serves everything, `make test` tests everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-all steady lint system-deps bench load install clean-instance

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

install: $(STAMP)

## Serve API, /docs and /admin with a worker and the scheduler (embedded services when needed).
run: install
	$(BIN)/python -m backend.devstack

## Lint, then the whole suite against real PostgreSQL, Redis, nginx, ffmpeg, on
## TEST_WORKERS pytest-xdist workers (each its own database and Redis DB; 0: one process).
## Tests of one xdist_group share a worker. pytest's exit code 5 (no tests ran) fails too.
TEST_WORKERS ?= 2
PYTEST_ARGS  ?=
test: install system-deps lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

## Today the same as `test`: every chaos/e2e/security test fits CI's budget.
test-all: test

## The e2e, chaos and security tests STEADY_RUNS times in a row, each a fresh session;
## STEADY_ARGS=--busy-core keeps one core spinning meanwhile. Fails if any run failed.
STEADY_RUNS ?= 10
STEADY_ARGS ?=
steady: install system-deps
	$(BIN)/python -m tests.steady --runs $(STEADY_RUNS) $(STEADY_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/shellcheck deploy/*.sh .ci/run

## nginx and ffmpeg from Debian packages when missing (tests drive the real binaries).
system-deps:
	@if [ -x deploy/install-system-deps.sh ]; then deploy/install-system-deps.sh; fi

bench: install system-deps
	$(BIN)/python -m bench

## B12: minutes of mixed traffic through nginx, phase by phase (bench/RESULTS-b12.md).
load: install system-deps
	$(BIN)/python -m bench.b12_load

clean-instance:
	rm -rf instance
