# Tributary: `make dev` runs the pipeline, `make test` runs every check. Both set everything up
# from this repository's own files: virtualenv, Kafka jars, PostgreSQL, Redis, migrations.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Pinned versions and hashes of every dependency; `make lock` writes it.
LOCK := requirements.lock
UV_VERSION := 0.13.9
LOCK_ARGS ?=

# Development mode: the API and the worker accept the published development secrets below
# (streams/settings/secrets.py lists them) and refuse them anywhere else.
export TRIBUTARY_ENV ?= dev
# Development-only webhook secrets, one per family (one secret never serves two), so that
# `make dev` accepts requests signed by scripts/sign_webhook.py out of the box.
export TRIBUTARY_WEBHOOK_SECRET_ORDERS ?= whsec_ZGV2LW9ubHktb3JkZXJzLXdlYmhvb2stc2VjcmV0LTMy
export TRIBUTARY_WEBHOOK_SECRET_USERS ?= whsec_ZGV2LW9ubHktdXNlcnMtd2ViaG9vay1zZWNyZXQtMzI=
export TRIBUTARY_WEBHOOK_SECRET_AUTH ?= whsec_ZGV2LW9ubHktYXV0aC13ZWJob29rLXNlY3JldC0zMi0=
export TRIBUTARY_WEBHOOK_SECRET_PROVIDERS ?= whsec_ZGV2LW9ubHktcHJvdmlkZXJzLXJlY2VpcHRzLXNlY3I=
# The operator endpoints' bearer token (table views, lifting blocks): development only.
export TRIBUTARY_OPERATOR_TOKEN ?= dev-operator-token
# The provider sandbox's credentials (it only checks that they are there): development only.
export TRIBUTARY_PROVIDERS_SENDGRID_API_KEY ?= dev-sendgrid-key
export TRIBUTARY_PROVIDERS_TWILIO_AUTH_TOKEN ?= dev-twilio-token
export TRIBUTARY_PROVIDERS_FCM_ACCESS_TOKEN ?= dev-fcm-token
export TRIBUTARY_PROVIDERS_META_ACCESS_TOKEN ?= dev-meta-token

.PHONY: dev test install lock stack tools stack-stop stack-status migrate lint format typecheck unit integration clean bench-notifications bench-ingest profile-worker chaos

# Every process logs JSON lines; `make dev`'s are for a person at a terminal (same fields).
dev: export TRIBUTARY_LOG_FORMAT ?= console
dev: install stack migrate
	$(PY) scripts/run_pipeline.py

test: install stack tools migrate lint typecheck
	$(PY) -m pytest

install: $(STAMP)

# Every dependency (the dev extra's too) at the version and hashes of the lock file, then the
# project itself, editable, without letting pip resolve anything further.
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Regenerates $(LOCK) from pyproject.toml (the dependencies and the dev extra, Python 3.11 on
# Linux, with hashes) using uv, installed into a throwaway virtualenv, never into the project's.
# Versions already in the lock are kept while pyproject.toml allows them; to move on, run
# `make lock LOCK_ARGS=--upgrade` (everything) or `LOCK_ARGS='--upgrade-package aiohttp'`.
lock:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	tool=$$(mktemp -d) && trap 'rm -rf "$$tool"' EXIT && \
	$(PYTHON) -m venv "$$tool" && "$$tool/bin/pip" install --quiet uv==$(UV_VERSION) && \
	"$$tool/bin/uv" pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform linux --generate-hashes --custom-compile-command 'make lock' \
		--output-file $(LOCK) --quiet $(LOCK_ARGS)

stack: install
	$(PY) stack/stackctl.py start

# promtool, from Debian's prometheus package into .stack/cache: the tests check the alert rules.
tools: install
	$(PY) stack/stackctl.py tools

stack-stop:
	$(PY) stack/stackctl.py stop

stack-status:
	$(PY) stack/stackctl.py status

migrate: install stack
	$(PY) -m streams.migrations

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

unit: install tools
	$(PY) -m pytest tests/unit

integration: install stack migrate
	$(PY) -m pytest tests/integration

# Whole notification loop at BENCH_RATE user.created/s for BENCH_DURATION_S (own topics and ports),
# with BENCH_WORKERS workers in one group (two do more than one, even on two cores).
BENCH_RATE ?= 1000
BENCH_DURATION_S ?= 60
BENCH_WORKERS ?= 2
bench-notifications: install stack migrate
	$(PY) scripts/bench_notifications.py --rate $(BENCH_RATE) --duration-s $(BENCH_DURATION_S) --workers $(BENCH_WORKERS)

# The chaos run: the pipeline under a steady mixed load of signed webhooks while workers are
# SIGKILLed, the broker restarts and PostgreSQL and Redis are stopped (stackctl: the stack must be
# this clone's own), then an independent checker prints lost inputs, duplicate sends, wrong
# windows and missed blocks (exit 1 unless all are 0). CHAOS_SCENARIO=crash|broker|postgres|redis
# runs one kind of fault alone, to measure what it costs.
CHAOS_SCENARIO ?= all
chaos: install stack migrate
	$(PY) -m scripts.chaos --scenario $(CHAOS_SCENARIO)

# Signed webhooks to a Kafka-acknowledged 202 at saturation, beside a bare aiohttp echo.
bench-ingest: install stack migrate
	$(PY) scripts/bench_ingest.py

# One worker of the loop under py-spy (400/s for 40 s, 20 s of samples), by package and module.
profile-worker: install stack migrate
	scripts/profile_worker.sh

# PostgreSQL's folder may live outside the clone (root, clone in a 0700 home): .stack/postgres
# links to it, and it goes too.
clean: stack-stop
	rm -rf "$$(readlink -f .stack/postgres)"
	rm -rf $(VENV) .stack .mypy_cache .ruff_cache .pytest_cache
