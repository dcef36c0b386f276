# Every target installs what it needs: a private copy of uv, then the locked workspace.
PYTHON ?= python3
UV_HOME := .cache/uv-bootstrap
UV := $(shell command -v uv 2>/dev/null || echo $(UV_HOME)/bin/uv)
DATA_DIR ?= .score

.PHONY: up demo test test-fast soak lint typecheck schemas bench bench-quick sync clean

$(UV_HOME)/bin/uv:
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

sync: $(if $(findstring $(UV_HOME),$(UV)),$(UV_HOME)/bin/uv)
	$(UV) sync --locked --all-packages

up: sync  ## run the whole system on the embedded default (nats-server, SQLite, services)
	$(UV) run --no-sync score up --data-dir $(DATA_DIR)

demo: sync  ## run the system and load the Bolivia factsheet scenario
	$(UV) run --no-sync score demo --data-dir $(DATA_DIR)

test: sync  ## the whole suite: unit, integration (SQLite, PostgreSQL, nats-server), e2e
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy
	$(UV) run --no-sync pytest

test-fast: sync  ## unit tier only
	$(UV) run --no-sync pytest -m "not nats and not postgres and not e2e and not soak"

soak: sync  ## the long reliability scenarios (thousands of commands, kills, fuzzing): see docs/RELIABILITY.md
	$(UV) run --no-sync pytest -m soak --timeout 3600

lint: sync
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

typecheck: sync
	$(UV) run --no-sync mypy

schemas: sync  ## regenerate the committed JSON Schemas and AsyncAPI documents
	$(UV) run --no-sync python -m score_contracts.schemas write
	$(UV) run --no-sync python -m score_cli.asyncapi write

bench: sync  ## every scenario next to its baseline (about 8 min); writes bench/results/latest.json
	$(UV) run --no-sync python -m bench

bench-quick: sync  ## every scenario for a second or two: the harness works (says nothing of speed)
	$(UV) run --no-sync python -m bench --quick

clean:
	rm -rf .cache .venv $(DATA_DIR)
