# phoenix: `make demo` and `make test` are the two commands; both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= sandbox

# Quiet and offline: the node 20 end-of-life banner from jsii, the CDK CLI's version
# check and telemetry, npm's update notifier, and the AWS SDKs' probe of the EC2
# instance metadata endpoint (synthesis needs no credentials) are all switched off.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export NPM_CONFIG_UPDATE_NOTIFIER := false
export NPM_CONFIG_FUND := false
export NPM_CONFIG_AUDIT := false
export AWS_EC2_METADATA_DISABLED := true
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Independent set-up steps (the Python environment, node_modules, checkov's environment)
# and lint beside checkov's install run at once.
MAKEFLAGS += --jobs=3

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov pins boto3 and botocore to versions other than phoenix's: its own environment.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: help setup chromium demo test lint typecheck unit synth bench clean

help:
	@echo "make demo   set up, then rehearse releases and rollbacks in the embedded AWS"
	@echo "make test   set up, then lint, type-check and run every test"
	@echo "make synth  synthesize ENV=$(ENV) with the CDK CLI into cdk.out/"
	@echo "make lint   ruff (lint and format check) and mypy"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make clean  remove cdk.out, .venv, .venv-checkov, node_modules and caches"

# uv installs the pinned requirements: on a fresh machine pip took over three minutes for
# both environments, uv under a minute (pip installs uv itself, pinned). Compiled to
# bytecode at install, as pip does: else the first test to import a package pays for it.
UV_PIN := uv==0.13.8
UV := $(BIN)/uv

# Set-up is keyed on the requirement and lock files: it runs again only when they change.
$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "phoenix needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install --quiet --disable-pip-version-check $(UV_PIN)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	$(UV) pip install --quiet --no-deps --no-build-isolation --python $(BIN)/python -e .
	@touch $@

$(CHECKOV_STAMP): requirements-checkov.txt $(PY_STAMP)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(PY_STAMP) $(NODE_STAMP)

# The rehearsal report's browser test drives Debian's Chromium (tests/browser.py), which
# is not on a fresh machine: as root (a CI machine) it is installed, else `make` says how.
chromium:
	@command -v chromium >/dev/null || test -n "$$PHOENIX_CHROMIUM" || { \
		test "$$(id -u)" = 0 || { echo "make test needs Chromium: sudo apt-get install chromium, or set PHOENIX_CHROMIUM" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null; }

synth: setup
	npx cdk synth --quiet -c env=$(ENV) '**'
	$(BIN)/cfn-lint --non-zero-exit-code error -- cdk.out/assembly-*/*.template.json
	$(BIN)/python -m phoenix.platform.summary cdk.out config

demo: setup
	$(BIN)/python -m local.rehearsal.run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app.py phoenix tests bench local
	$(BIN)/mypy examples/own-app/app.py

# ruff first (seconds). Then `python -m local serve`'s test, timed against its 30 s promise,
# alone: it needs both cores (it deploys with the CDK CLI beside the server). Then four
# processes share them: mypy, the integration tests (one deployed sandbox, shared by
# their modules in order), the chaos test (a sandbox of its own), and the rest; the
# others' output follows when all are done.
test: setup $(CHECKOV_STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/local/test_serve.py
	@typed=$$(mktemp); integration=$$(mktemp); chaos=$$(mktemp); \
	( $(BIN)/mypy app.py phoenix tests bench local && $(BIN)/mypy examples/own-app/app.py ) \
		> $$typed 2>&1 & mypy=$$!; \
	$(BIN)/python -m pytest -p no:cacheprovider tests/integration \
		--ignore=tests/integration/test_chaos.py > $$integration 2>&1 & first=$$!; \
	$(BIN)/python -m pytest -p no:cacheprovider tests/integration/test_chaos.py \
		> $$chaos 2>&1 & second=$$!; \
	$(BIN)/python -m pytest --ignore=tests/integration --ignore=tests/local/test_serve.py; \
	rest=$$?; \
	wait $$mypy; typing=$$?; wait $$first; one=$$?; wait $$second; two=$$?; \
	echo "mypy:"; cat $$typed $$integration $$chaos; rm -f $$typed $$integration $$chaos; \
	test $$rest -eq 0 && test $$typing -eq 0 && test $$one -eq 0 && test $$two -eq 0

bench: setup
	$(BIN)/python bench/synth.py
	$(BIN)/python -m bench.cold_import
	$(BIN)/python -m bench.release
	$(BIN)/python -m bench.rollback
	$(BIN)/python -m bench.canary
	$(BIN)/python -m bench.drift

clean:
	rm -rf cdk.out $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
