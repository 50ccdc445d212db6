# The two commands (see README): `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 7071

.PHONY: run test setup setup-run lint typecheck format unit bench clean

## make run: bootstrap, then serve the API at http://localhost:$(PORT)/api with Azurite (data kept in
## .data/azurite), the Cosmos DB emulator (in memory) and, unless *_MODEL_ENDPOINT is set, fake models.
run: setup-run
	$(PY) -m tools.devserver --port $(PORT) --emulators --fake-models

## make test: bootstrap, lint, type-check, then the whole suite (the fixtures start and stop the emulators).
test: setup lint typecheck
	$(PY) -m pytest

TOOLS := .venv-tools

## What `make run` needs: the runtime, the dev server and the emulators. Tests need more (setup).
setup-run: $(VENV)/.run-installed node_modules/.installed

setup: setup-run $(VENV)/.installed $(TOOLS)/.installed

$(VENV)/.run-installed: requirements.txt requirements-local.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-local.txt
	touch $@

$(VENV)/.installed: $(VENV)/.run-installed requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m tools.settings_docs --check
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m tools.architecture

typecheck: setup
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make bench: the benchmark suite (bench/README in the README's Performance section); writes bench/results/.
bench: setup
	$(PIP) install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .pytest_cache .ruff_cache .mypy_cache

# ===== worker indexing (tests/test_worker_indexing.py) ===========================================================
# .venv-worker: what Azure installs (requirements.txt) plus the Functions Python worker's own indexing code
# (requirements-worker.txt, exact pins installed with --ignore-requires-python: see that file). The test indexes
# function_app.py with it in a subprocess, so .venv stays free of the worker. `setup` (and so `make test`) builds it.
WORKER := .venv-worker

setup: $(WORKER)/.installed

$(WORKER)/.installed: requirements.txt requirements-worker.txt
	test -x $(WORKER)/bin/python || $(PYTHON) -m venv $(WORKER)
	$(WORKER)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(WORKER)/bin/pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python -r requirements-worker.txt
	$(WORKER)/bin/pip check
	touch $@

.PHONY: clean-worker
clean: clean-worker
clean-worker:
	rm -rf $(WORKER)
# ===== end worker indexing =======================================================================================

# ===== dashboard browser tests (tests/test_dashboard.py) ======================================================
# Playwright drives Debian's chromium; Playwright's own browser download is never used. Installed when missing, as
# root or with sudo; where neither works (or there is no apt-get) the browser tests skip and say why.
CHROMIUM := /usr/bin/chromium
setup: $(CHROMIUM)
$(CHROMIUM):
	@if ! command -v apt-get >/dev/null; then echo "no apt-get: install chromium by hand to run the browser tests"; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser tests will be skipped"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		(sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser tests will be skipped"; \
	else echo "chromium is missing and neither root nor sudo is available: the browser tests will be skipped"; fi
# ===== end dashboard browser tests ============================================================================
