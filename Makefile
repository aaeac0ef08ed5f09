# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed
# Browser tests drive Debian's Chromium through its own driver (a browser download fails here),
# with a CJK font so that screenshots of the Chinese console are legible.
CHROMEDRIVER := /usr/bin/chromedriver
# The webhook benchmark puts load on the servers from a second process.
WRK := /usr/bin/wrk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: help install run test test-postgres lint bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMEDRIVER):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei \
		|| ($(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei)

$(WRK):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk \
		|| ($(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk)

install: $(INSTALLED) $(NODE_INSTALLED) $(CHROMEDRIVER)  ## Install Python, Node and browser dependencies

run: $(INSTALLED)  ## Run web and worker on the embedded defaults (SQLite, no servers)
	$(BIN)/flask --app hotline init
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start web worker

test: $(INSTALLED) $(NODE_INSTALLED) $(CHROMEDRIVER)  ## Run the whole test suite (SQLite and the embedded broker), with line coverage
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

test-postgres: $(INSTALLED) $(NODE_INSTALLED) $(CHROMEDRIVER)  ## The suite again on PostgreSQL and Redis
	DATABASE_URL=$(POSTGRES_URL) BROKER_URL=$(REDIS_URL) $(BIN)/python -m pytest

lint: $(INSTALLED)  ## ruff (check and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(INSTALLED) $(WRK)  ## Benchmarks, as ratios against a baseline run beside them
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/transcription.py
	$(BIN)/python bench/classify.py

clean:  ## Remove the virtualenv, Node modules and local data
	rm -rf $(VENV) node_modules instance
