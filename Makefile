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

.PHONY: help install run run-scaled serve serve-scaled test test-postgres lint fuzz faults bench load load-scaled bench-queue clean eval-merging screenshots

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

# The pages' charts: hotline/assets/charts.mjs with the parts of Apache ECharts it imports (npm,
# pinned), bundled by esbuild (package.json's "build") and served from our own /static; no page
# loads a script from another site. Without it the pages show their tables, not their charts.
CHARTS_BUNDLE := hotline/static/charts.js
$(CHARTS_BUNDLE): hotline/assets/charts.mjs $(NODE_INSTALLED)
	npm run --silent build

$(CHROMEDRIVER):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei \
		|| ($(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei)

$(WRK):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk \
		|| ($(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk)

install: $(INSTALLED) $(NODE_INSTALLED) $(CHARTS_BUNDLE) $(CHROMEDRIVER)  ## Install Python, Node and browser dependencies

# Where every process of `make run` writes its metrics, emptied at each start (README, "Metrics").
METRICS_DIR ?= $(CURDIR)/instance/prometheus

run: $(INSTALLED) $(CHARTS_BUNDLE)  ## Run web, streams, worker, transcriber and beat on the embedded defaults (SQLite, no servers)
	$(BIN)/flask --app hotline init
	$(BIN)/flask --app hotline models ensure
	$(MAKE) --no-print-directory serve

# The scaled formation: any number of stateless web, worker and transcriber processes share
# PostgreSQL and Redis; here two of each, beside the one streams process and the one beat a
# deployment has.
SCALED_FORMATION := web=2,worker=2,transcriber=2
SCALED_ENV = DATABASE_URL=$(POSTGRES_URL) BROKER_URL=$(REDIS_URL)

run-scaled: $(INSTALLED) $(CHARTS_BUNDLE)  ## Two web, two worker and two transcriber processes, streams and beat, on PostgreSQL and Redis
	$(SCALED_ENV) $(BIN)/flask --app hotline init
	$(SCALED_ENV) $(BIN)/flask --app hotline models ensure
	$(SCALED_ENV) $(MAKE) --no-print-directory serve-scaled

# What `run` and `run-scaled` start once set up, and what bench/calls.py measures: honcho runs
# the Procfile's web, streams, worker, transcriber and beat, FORMATION of each (honcho's -c;
# web.N listens on PORT+N-1, from 5000), on the environment's DATABASE_URL and BROKER_URL.
# Sets nothing up.
FORMATION ?= web=1,worker=1,transcriber=1
serve: $(INSTALLED)
	rm -rf "$(METRICS_DIR)" && mkdir -p "$(METRICS_DIR)"
	PROMETHEUS_MULTIPROC_DIR="$(METRICS_DIR)" PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -c $(FORMATION) web streams worker transcriber beat

serve-scaled: FORMATION = $(SCALED_FORMATION)
# web.2 takes PORT+1, the streams process's own default (5001): it moves to 5100 unless told.
serve-scaled: export STREAMS_PORT ?= 5100
serve-scaled: serve

test: $(INSTALLED) $(NODE_INSTALLED) $(CHARTS_BUNDLE) $(CHROMEDRIVER)  ## Run the whole test suite (SQLite and the embedded broker), with line coverage
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

test-postgres: $(INSTALLED) $(NODE_INSTALLED) $(CHARTS_BUNDLE) $(CHROMEDRIVER)  ## The suite again on PostgreSQL and Redis
	DATABASE_URL=$(POSTGRES_URL) BROKER_URL=$(REDIS_URL) $(BIN)/python -m pytest

screenshots: $(INSTALLED) $(NODE_INSTALLED) $(CHARTS_BUNDLE) $(CHROMEDRIVER)  ## Refresh the README's screenshots (docs/screenshots/), desktop and phone
	$(BIN)/python -m pytest -q tests/console/test_screenshots.py
	mkdir -p docs/screenshots
	cp test-artifacts/screenshots/desktop-*.png test-artifacts/screenshots/phone-*.png docs/screenshots/

lint: $(INSTALLED)  ## ruff (check and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The fuzzers' long run: 10,000 inputs per surface (`make fuzz FUZZ_EXAMPLES=N` for another
# count); `make test` runs the same suites with a few hundred. Add DATABASE_URL and BROKER_URL
# as for test-postgres to fuzz on PostgreSQL.
FUZZ_EXAMPLES ?= 10000
fuzz: $(INSTALLED) $(NODE_INSTALLED)  ## Fuzz the IVR webhooks and the department API; prints inputs, 5xx, crashes
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/fuzz/test_fuzz.py --timeout=0

# The fault suite at full counts, on both setups (`make test` and `make test-postgres` run it
# with small ones): FAULT_CALLS calls per fault, the broker down FAULT_OUTAGE_SECONDS, and
# WORKER_START_ROUNDS fresh starts of worker and beat. Faults that need a server (Redis down,
# PostgreSQL restarted) are skipped on the embedded setup and run on the second.
FAULT_CALLS ?= 20
FAULT_OUTAGE_SECONDS ?= 60
WORKER_START_ROUNDS ?= 20
faults: $(INSTALLED) $(NODE_INSTALLED)  ## The fault-injection suite at full counts, on both setups; prints its table
	FAULT_CALLS=$(FAULT_CALLS) FAULT_OUTAGE_SECONDS=$(FAULT_OUTAGE_SECONDS) WORKER_START_ROUNDS=$(WORKER_START_ROUNDS) \
		$(BIN)/python -m pytest tests/faults tests/hotline/test_jobs.py --timeout=0
	DATABASE_URL=$(POSTGRES_URL) BROKER_URL=$(REDIS_URL) FAULT_CALLS=$(FAULT_CALLS) FAULT_OUTAGE_SECONDS=$(FAULT_OUTAGE_SECONDS) \
		$(BIN)/python -m pytest tests/faults --timeout=0

bench: $(INSTALLED) $(WRK)  ## Benchmarks, as ratios against a baseline run beside them
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/transcription.py
	$(BIN)/python bench/classify.py

# Whole calls at once (bench/calls.py): LOAD_CALLS callers, LOAD_SECONDS of speech each, and
# up to LOAD_SETTLE seconds for the last push and text; exit 1 if a call is lost or doubled.
LOAD_CALLS ?= 100
LOAD_SECONDS ?= 10
LOAD_SETTLE ?= 600
LOAD_ARGS = --calls $(LOAD_CALLS) --seconds $(LOAD_SECONDS) --settle $(LOAD_SETTLE)
load: $(INSTALLED)  ## 100 whole calls at once on the embedded service: lost, duplicated, delays
	$(BIN)/python bench/calls.py $(LOAD_ARGS)

load-scaled: $(INSTALLED)  ## The same on the scaled formation (PostgreSQL, Redis, 2 web, 2 workers, 2 transcribers)
	$(SCALED_ENV) $(BIN)/python bench/calls.py --scaled $(LOAD_ARGS)

bench-queue: $(INSTALLED)  ## Queue service level on the emulator's virtual clock, beside Erlang C
	$(BIN)/python bench/queue_service_level.py --hours 20 --seats 7

eval-merging: $(INSTALLED)  ## Pairwise precision and recall of merging repeat reports (config/merging/)
	$(BIN)/python -m routing.merge_eval

clean:  ## Remove the virtualenv, Node modules and local data
	rm -rf $(VENV) node_modules instance
