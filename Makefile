# Morosos developer commands. `make` alone lists them.
#
# A new developer needs two:
#   make run    creates .venv and installs what is missing, migrates, seeds the demo data,
#               then runs web + Celery worker + Celery beat in one foreground command (Ctrl-C stops all)
#   make test   installs the dev tools, Chromium and gettext when missing, makes sure PostgreSQL
#               and Redis answer, then runs the whole pytest suite against them

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3.11
VENV ?= .venv
CONSTRAINTS := requirements/constraints.txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
MANAGE := $(PY) manage.py
VAR_DIR := $(or $(MOROSOS_VAR_DIR),var)

# Python caches compiled modules (and pytest its rewritten test modules) in __pycache__ even
# where the environment turns that off (PYTHONDONTWRITEBYTECODE): every process a command starts
# (test workers, Celery workers, servers, manage.py) would otherwise compile the project again.
unexport PYTHONDONTWRITEBYTECODE

PORT ?= 8000
DEMO_PASSWORD := morosos-demo
PYTEST_ARGS ?=
LOCALES := --locale es --locale en
# With no DATABASE_URL, commands that need the database run inside the embedded PostgreSQL's
# `run` wrapper (morosos/embedded_db.py): it starts the server under $(VAR_DIR)/pgdata first and
# stops it after the command, Ctrl-C included.
WITH_DB := $(if $(DATABASE_URL),,MOROSOS_VAR_DIR=$(abspath $(VAR_DIR)) $(PY) -m morosos.embedded_db run --)
.PHONY: help run test test-fast lint fmt migrate seed messages lock clean services install install-dev bench bench-curves faults fuzz

help: ## Show this list
	@echo "Morosos — make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Quick start: 'make run' (app at http://127.0.0.1:$(PORT)/), 'make test' (whole suite)."

# --- Run ---------------------------------------------------------------------------------

# The development server needs DEBUG on; migrate/seed default to it (an existing value wins).
run: export DJANGO_DEBUG = 1
migrate seed messages: export DJANGO_DEBUG ?= 1
run: export PORT := $(PORT)
run: export PATH := $(abspath $(VENV))/bin:$(PATH)
run: export VIRTUAL_ENV := $(abspath $(VENV))

run: $(VENV)/.installed-run $(VAR_DIR)/.collectstatic ## Set up what is missing, then web + worker + beat (Ctrl-C stops all)
	@bash scripts/ensure_pango.sh || echo "warning: without Pango the dunning letters (PDF) fail; the rest works" >&2
	@VAR_DIR=$(VAR_DIR) DEMO_PASSWORD=$(DEMO_PASSWORD) $(WITH_DB) bash scripts/run.sh

migrate: $(VENV)/.installed-run ## Apply database migrations
	$(WITH_DB) $(MANAGE) migrate --noinput
	$(WITH_DB) $(MANAGE) createcachetable

seed: $(VENV)/.installed-run ## Load the demo data when the database is empty
	$(WITH_DB) $(MANAGE) seed_demo --if-empty

# --- Test and lint -----------------------------------------------------------------------

# The suite runs on real PostgreSQL and Redis; a value already in the environment wins.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morosos
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15

test: $(VENV)/.installed-dev ## Whole test suite on PostgreSQL + Redis, browser tests in Chromium (PYTEST_ARGS=... to narrow)
	@bash scripts/ensure_chromium.sh
	@bash scripts/ensure_pango.sh
	@bash scripts/ensure_services.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# The inner loop while developing: everything but the browser, fault-injection and fuzzing
# suites, on both cores (pytest-xdist; one test database per worker). `make test` stays the
# whole suite, in one process.
FAST_TESTS := --ignore=tests/e2e --ignore=tests/faults --ignore=tests/fuzz

test-fast: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morosos
test-fast: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15

test-fast: $(VENV)/.installed-dev ## The suite without browser, fault and fuzz tests, on every core (the inner loop)
	@bash scripts/ensure_pango.sh
	@bash scripts/ensure_services.sh
	$(PY) -m pytest -n auto -q $(FAST_TESTS) $(PYTEST_ARGS)

# --- Scale, faults, fuzzing (long runs; short versions of faults and fuzzing are in `make test`) --

bench: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morosos
bench: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15
bench: $(VENV)/.installed-dev ## Benchmarks at 100,000 clients / 1,000,000 invoices -> docs/benchmarks.md
	@bash scripts/ensure_services.sh
	bash scripts/bench.sh

bench-curves: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morosos
bench-curves: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15
bench-curves: $(VENV)/.installed-dev ## Hot paths at 3 portfolio sizes (BENCH_SCALES) -> curves in docs/benchmarks.md
	@bash scripts/ensure_services.sh
	BENCH_ENTRY=curves BENCH_STEPS=curves bash scripts/bench.sh

faults: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morosos
faults: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15
faults: $(VENV)/.installed-dev ## Long fault-injection rounds (SIGKILL, Redis/PostgreSQL/SMTP outages) -> docs/reliability.md
	@bash scripts/ensure_services.sh
	bash scripts/faults.sh

fuzz: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/morosos
fuzz: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15
fuzz: $(VENV)/.installed-dev ## Long fuzzing: thousands of generated API requests, property tests, malformed imports
	@bash scripts/ensure_services.sh
	bash scripts/fuzz.sh

services: ## Start the local PostgreSQL and Redis if they are stopped
	@bash scripts/ensure_services.sh

lint: $(VENV)/.installed-dev ## ruff check
	$(VENV)/bin/ruff check .

fmt: $(VENV)/.installed-dev ## ruff format + ruff's safe fixes (import order, etc.)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# --- Maintenance -------------------------------------------------------------------------

messages: $(VENV)/.installed-run ## Update locale/*/LC_MESSAGES/django.po and compile the .mo files (committed)
	@command -v msgfmt >/dev/null || { echo "error: gettext is missing: apt-get install -y gettext" >&2; exit 1; }
	$(MANAGE) makemessages $(LOCALES) --no-obsolete --ignore 'var/*' --ignore 'static/*' --ignore 'tests/*' --ignore 'node_modules/*' --ignore 'build/*'
	$(MANAGE) compilemessages $(LOCALES) --ignore .venv --ignore var --ignore node_modules --ignore build

lock: ## Re-resolve the whole dependency tree from pyproject.toml into requirements/constraints.txt
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	echo "Resolving in a throw-away virtualenv..."; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip; \
	"$$tmp/venv/bin/pip" install --quiet --disable-pip-version-check -e '.[dev]'; \
	{ echo "# The whole dependency tree, pinned: pip install -c requirements/constraints.txt -e '.[dev]'"; \
	  echo "# Generated by \`make lock\` from pyproject.toml (direct pins there); do not edit by hand."; \
	  "$$tmp/venv/bin/pip" freeze --all --exclude-editable | grep -vE '^(setuptools|wheel)=='; \
	} > $(CONSTRAINTS).new; \
	mv $(CONSTRAINTS).new $(CONSTRAINTS); \
	echo "Wrote $(CONSTRAINTS); the next make run/test reinstalls from it."

clean: ## Delete runtime state in var/ (embedded PostgreSQL data, Celery queue, static files)
	rm -rf $(VAR_DIR)

# --- Environment -------------------------------------------------------------------------

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(CONSTRAINTS) pip

# Stamps: reinstall only when pyproject.toml or the constraints change.
$(VENV)/.installed-run: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run ## Create .venv and install the app (pinned by requirements/constraints.txt)

install-dev: $(VENV)/.installed-dev ## Same, plus the test and lint tools

# collectstatic only when the installed packages or static/ changed since the last run.
$(VAR_DIR)/.collectstatic: $(VENV)/.installed-run $(shell find static -type f 2>/dev/null)
	$(MANAGE) collectstatic --noinput --verbosity 0
	@mkdir -p $(@D) && touch $@
