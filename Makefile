# One obvious name per chore. Nothing needs to be installed beforehand but Python 3.11+ and make:
# the first target that needs the environment creates it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The development install is setuptools' strict editable mode: under build/, a tree of links to
# the files of src/ named as the package imports them (`taskapi/...`), which mypy and every other
# tool can follow. A new file needs a new link, so the stamp is named after src/'s list of files.
SOURCES_ID := $(shell find src -type f -not -path '*/__pycache__/*' | sort | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(SOURCES_ID)
PIP_EDITABLE := $(BIN)/python -m pip install --quiet --config-settings editable_mode=strict -e

.PHONY: run serve test pytest lint typecheck format migrate clean fuzz soak wheel-check

run: $(STAMP)  ## start the service on HOST:PORT (127.0.0.1:8000), migrating first
	$(BIN)/taskapi serve

WORKERS ?= 2
serve: $(STAMP)  ## production serving: migrate, then WORKERS uvicorn workers on HOST:PORT
	$(BIN)/taskapi serve --workers $(WORKERS)

migrate: $(STAMP)  ## apply pending migrations to DATABASE_URL
	$(BIN)/taskapi migrate

test: lint typecheck pytest  ## every check and every test

# The scale-out tests start replicas and HAProxy: they have a target of their own (scale-test).
PYTEST_ARGS ?= --ignore=tests/scale
pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --config-file pyproject.toml -p taskapi
	$(BIN)/mypy --config-file pyproject.toml tools

# The artifact a deployment installs (README, "Installing from a wheel"): CI runs it.
wheel-check: $(STAMP)  ## build the wheel, install it in a new venv outside the checkout, serve, use it
	$(BIN)/python -m tools.wheel_check $(if $(TEST_DATABASE_URL),--postgres $(TEST_DATABASE_URL))

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_EDITABLE) '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

# --- Benchmarks (README, "Benchmarks"): taskapi against FastAPI and Starlette peers under wrk.
# Not part of `make test`. Options go through BENCH_ARGS, e.g. BENCH_ARGS='sweep --sizes 10k,100k'.
BENCH_STAMP := $(VENV)/.bench-installed
.PHONY: bench

bench: $(BENCH_STAMP)  ## table on stdout, figures in bench/results/latest.json
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(if $(filter replicas,$(BENCH_ARGS)),bash .ci/ensure-haproxy)
	$(BIN)/python -m bench $(BENCH_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(PIP_EDITABLE) '.[dev,bench]'
	touch $@

# --- Contract tooling (README, "Contract tooling"): needs node/npm besides Python; CI runs it
# after `make test`. Live runs start `taskapi serve` on a free port with a scratch database: on
# the PostgreSQL server of TEST_DATABASE_URL when it is set, else SQLite.
NODE_STAMP := node_modules/.installed
CONTRACT_STAMP := $(VENV)/.contract-installed
NPX := npx --no-install
LIVE = $(BIN)/python -m tools.live_service $(if $(TEST_DATABASE_URL),--postgres $(TEST_DATABASE_URL)) --
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

contract: spec-lint spec-check client-typescript client-python docs docs-test contract-live  ## all of it

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

$(CONTRACT_STAMP): $(STAMP)
	$(PIP_EDITABLE) '.[dev,contract]'
	touch $@

spec-lint: $(NODE_STAMP)  ## Spectral: OpenAPI + OWASP rules (.spectral.yaml), zero errors
	$(NPX) spectral lint spec/openapi.yaml --fail-severity=error --display-only-failures

spec-check: $(STAMP)  ## breaking changes since the last release tag; changelog has this version
	$(BIN)/python -m tools.breaking_changes

client-typescript: $(NODE_STAMP)  ## openapi-typescript types, type-checked in use by tsc
	$(NPX) openapi-typescript spec/openapi.yaml -o build/clients/typescript/schema.d.ts
	$(NPX) tsc -p clients/typescript/tsconfig.json

client-python: $(CONTRACT_STAMP)  ## generate the Python client, type-check and run the scenario live
	rm -rf build/clients/taskapi_client
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/openapi-python-client generate --path spec/openapi.yaml \
		--output-path build/clients/taskapi_client --meta none --fail-on-warning
	cd clients/python && MYPYPATH=$(CURDIR)/build/clients $(CURDIR)/$(BIN)/mypy \
		--config-file $(CURDIR)/pyproject.toml --no-incremental scenario.py $$(grep -q 'operationId: tasks.create_task' \
		$(CURDIR)/spec/openapi.yaml && echo tasks_scenario.py)
	$(LIVE) env PYTHONPATH=build/clients:clients/python $(BIN)/python clients/python/scenario.py

docs: $(NODE_STAMP)  ## the single-file HTML reference: build/docs/index.html
	$(NPX) redocly build-docs spec/openapi.yaml --inlineBundle -o build/docs/index.html

docs-test: $(NODE_STAMP) $(STAMP)  ## headless Chromium drives /v1/ui; screenshots in test-results/
	bash .ci/ensure-chromium
	$(LIVE) node --test tests/browser/

contract-live: $(STAMP)  ## the schemathesis CLI against the live service; JUnit in test-results/
	$(LIVE) env SCHEMATHESIS_HOOKS=tools.schemathesis_hooks $(BIN)/schemathesis \
		--config-file tests/contract/schemathesis-live.toml run spec/openapi.yaml \
		--checks all --max-examples 25 --workers 1 \
		--report junit --report-junit-path test-results/schemathesis-live.xml

# --- Hostile input and long runs (README, "Hostile input and soak").
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)  ## the HTTP fuzz suite with a long budget and fresh randomness (FUZZ_EXAMPLES)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RANDOM=1 $(BIN)/python -m pytest tests/fuzz -q

SOAK_MINUTES ?= 60
soak: $(STAMP)  ## mixed traffic on 2 workers for SOAK_MINUTES; fails on 5xx or growth
	$(if $(TEST_REDIS_URL),REDIS_URL=$(TEST_REDIS_URL)) $(BIN)/python -m tools.live_service --workers 2 \
		$(if $(TEST_DATABASE_URL),--postgres $(TEST_DATABASE_URL)) -- \
		$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

# --- Scale-out (docs/deployment.md, "Scale-out"): three replicas behind HAProxy on PostgreSQL
# (TEST_DATABASE_URL) and Redis (TEST_REDIS_URL); skipped, with the reason, without them.
# SCALE_ARGS go to pytest, e.g. SCALE_ARGS='-k restart'.
.PHONY: scale-test
scale-test: $(STAMP)  ## shared state across replicas, rolling restart and SIGKILL under load
	bash .ci/ensure-haproxy
	$(BIN)/python -m pytest tests/scale -s $(SCALE_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis build node_modules test-results
