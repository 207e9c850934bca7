# The two commands of the README, and the checks CI runs. Every install step lives here.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The first Python >= 3.11 found on PATH builds the virtual environment.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { echo $$p; break; }; done)

.PHONY: run test pytest lint typecheck install clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Cerberus needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: start the gateway on the embedded default (SQLite file + in-process cache)
run: $(STAMP)
	$(BIN)/cerberus serve

## test: lint, type-check and run the whole test suite
test: lint typecheck pytest

pytest: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache

## bench: measure what the gateway costs (under 5 min): bench/results/, docs/benchmarks.md
BENCH_STAMP := $(VENV)/.bench-installed
.PHONY: bench
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench
