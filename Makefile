# switchboard — the two commands: `make up` (run the product) and `make test` (run the suite).
# Environments are (re)built only when their lock files change.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
RASA_VENV := .venv-rasa
# Python 3.10 for the Rasa server's own environment (Rasa 3.6 needs Python < 3.11): pyenv, then PATH.
PY310 ?= $(shell (command -v pyenv >/dev/null && ls -d $$(pyenv root)/versions/3.10*/bin/python3.10 2>/dev/null | sort -V | tail -1) || command -v python3.10 || true)
PYTEST_ARGS ?=

.PHONY: up test image soak test-fast bench bench-nlu bench-console lint audit sysdeps lock lock-rasa down clean help

help:
	@echo "make up     - install everything needed, train the NLU model if missing, run the product"
	@echo "make test   - install everything needed and run the whole test suite"
	@echo "make bench  - benchmarks (bench/), make bench-nlu - BANKING77 classifier benchmark"
	@echo "make bench-console - the agent console at 100,000 tickets / 1,000,000 messages, SQLite and PostgreSQL"
	@echo "make image  - container images (podman): localhost/switchboard:dev and localhost/switchboard-rasa:dev"
	@echo "make soak   - the fault tests, SOAK=10 times longer (more messages, kills and restarts)"

$(VENV)/.installed: requirements/product.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "python3 must be 3.11+"' || { echo "error: python3 3.11+ is required for the product"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements/product.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(RASA_VENV)/.installed: requirements/rasa.lock
	@if [ -z "$(PY310)" ] || [ ! -x "$(PY310)" ]; then \
	  echo "error: Python 3.10 is required for the Rasa server (Rasa 3.6 supports Python 3.8-3.10)."; \
	  echo "       Install it (e.g. 'pyenv install 3.10.13') or pass PY310=/path/to/python3.10."; exit 1; fi
	rm -rf $(RASA_VENV)
	$(PY310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install -q --disable-pip-version-check -r requirements/rasa.lock
	touch $@

venvs: $(VENV)/.installed $(RASA_VENV)/.installed
.PHONY: venvs

sysdeps:
	@bash scripts/sysdeps.sh

up: venvs
	$(VENV)/bin/switchboard up

test: venvs sysdeps
	bash scripts/run-tests.sh $(PYTEST_ARGS)

# Container images with podman (deploy/Containerfile, deploy/rasa.Containerfile; IMAGE_TAG=dev).
image: venvs sysdeps
	PY310=$(PY310) bash scripts/image.sh

# Longer fault runs: SOAK times the messages, worker kills and Redis restarts (default 10).
soak: venvs sysdeps
	SWITCHBOARD_SOAK=$${SOAK:-10} bash scripts/run-tests.sh tests/integration/test_router.py tests/integration/test_faults.py -k "killed or restart"

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit -q $(PYTEST_ARGS)

bench: venvs
	$(VENV)/bin/python -m bench.run

bench-nlu: $(RASA_VENV)/.installed
	$(RASA_VENV)/bin/python bench/nlu_banking77.py

# PostgreSQL: SWITCHBOARD_BENCH_PG_URL (a database the bench may empty), default .../switchboard_bench
bench-console: $(VENV)/.installed
	$(VENV)/bin/python -m bench.console_scale $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check app bot channels intents handoff tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Known vulnerabilities in the locked dependencies (pip-audit in .venv-audit; also run by `make test`).
audit:
	bash scripts/audit.sh

lock: $(VENV)/.installed
	{ echo "# Product environment (.venv, Python 3.11). Regenerate: make lock"; $(VENV)/bin/pip freeze --exclude-editable; } > requirements/product.lock

lock-rasa: $(RASA_VENV)/.installed
	{ echo "# Rasa NLU server environment (.venv-rasa, Python 3.10). Regenerate: make lock-rasa"; $(RASA_VENV)/bin/pip freeze; } > requirements/rasa.lock

clean:
	rm -rf $(VENV) $(RASA_VENV) .pytest_cache
