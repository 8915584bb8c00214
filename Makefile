# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint format bench soak deps test-deps system-deps clean

run: $(VENV)/.installed
	$(BIN)/hub serve

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

deps: $(VENV)/.installed
test-deps: $(VENV)/.installed-test system-deps

# System packages the suite needs, installed through apt only where missing.
SYSTEM_PACKAGES := chromium dovecot-imapd
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: test-deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q wrk; }
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/messenger.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/email_ingest.py
	$(BIN)/python bench/calls.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/lookup.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/cluster.py

# A soak run apart from `make bench`: SOAK_MINUTES of mixed traffic (10 by default).
soak: $(VENV)/.installed-test
	$(BIN)/python bench/soak.py --minutes $(or $(SOAK_MINUTES),10)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
