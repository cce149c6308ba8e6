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

contract: spec-lint spec-check client-typescript client-python client-openapi-generator mock-test \
	docs docs-test contract-live  ## all of it

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

$(CONTRACT_STAMP): $(STAMP)
	$(PIP_EDITABLE) '.[dev,contract]'
	touch $@

# Spectral shows every finding and fails on warnings too; Redocly's recommended rules must
# report 0 errors and 0 warnings (it exits 0 on warnings, so its JSON totals are checked).
export REDOCLY_TOTALS := const t = JSON.parse(require("fs").readFileSync(0)).totals; \
	console.log(`redocly: $${t.errors} errors, $${t.warnings} warnings`); process.exit(t.errors + t.warnings ? 1 : 0)
spec-lint: $(NODE_STAMP)  ## Spectral (OpenAPI + OWASP, .spectral.yaml) and Redocly (recommended): 0 errors, 0 warnings
	$(NPX) spectral lint spec/openapi.yaml --fail-severity=warn
	$(NPX) redocly lint spec/openapi.yaml --extends=recommended
	$(NPX) redocly lint spec/openapi.yaml --extends=recommended --format=json 2>/dev/null | node -e "$$REDOCLY_TOTALS"

spec-check: $(STAMP)  ## breaking changes since the last release tag; changelog has this version
	$(BIN)/python -m tools.breaking_changes

# Every client is generated from the spec a live service serves, as its users would.
SERVED_SPEC = "$$TASKAPI_URL/openapi.json"

# openapi-typescript makes a property with a default required everywhere, request bodies
# included, unless told not to: `--default-non-nullable false` keeps the spec's `required` lists.
client-typescript: $(NODE_STAMP) $(STAMP)  ## openapi-typescript types from the served spec, run live through openapi-fetch
	rm -rf build/clients/typescript build/clients/typescript-js
	$(LIVE) sh -c '$(NPX) openapi-typescript $(SERVED_SPEC) --default-non-nullable false \
			-o build/clients/typescript/schema.d.ts \
		&& $(NPX) tsc -p clients/typescript/tsconfig.json \
		&& node build/clients/typescript-js/clients/typescript/scenario.js'

# The Python scenario runs twice: straight at the service, then through Prism's validating
# proxy (tools/prism_proxy.py), which fails the run on any request or response off the spec.
client-python: $(CONTRACT_STAMP) $(NODE_STAMP)  ## openapi-python-client from the served spec: type-check, run the scenario live and through prism proxy
	rm -rf build/clients/taskapi_client
	$(LIVE) sh -c 'PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/openapi-python-client generate --url $(SERVED_SPEC) \
		--output-path build/clients/taskapi_client --meta none --fail-on-warning \
		&& cd clients/python && MYPYPATH=$(CURDIR)/build/clients $(CURDIR)/$(BIN)/mypy \
			--config-file $(CURDIR)/pyproject.toml --no-incremental scenario.py tasks_scenario.py \
		&& cd $(CURDIR) && PYTHONPATH=build/clients:clients/python $(BIN)/python clients/python/scenario.py \
		&& $(BIN)/python -m tools.prism_proxy -- env PYTHONPATH=build/clients:clients/python \
			$(BIN)/python clients/python/scenario.py'

# openapi-generator's `python` and `typescript-fetch` clients. Its spec validator (swagger-parser)
# refuses link `requestBody` objects whose members are runtime expressions, which OpenAPI 3.0.3
# allows ("Any | {expression}") and schemathesis follows, hence --skip-validate-spec; Spectral and
# Redocly validate the document. The generator's own log goes to test-results/.
OPENAPI_GENERATOR = $(BIN)/openapi-generator-cli generate --skip-validate-spec -i $(SERVED_SPEC)
OG_OUT = build/clients/openapi-generator
client-openapi-generator: $(CONTRACT_STAMP) $(NODE_STAMP)  ## openapi-generator python + typescript-fetch clients from the served spec, each run through its scenario live
	bash .ci/ensure-java
	rm -rf $(OG_OUT) && mkdir -p $(OG_OUT) test-results
	$(LIVE) sh -c '$(OPENAPI_GENERATOR) -g python -o $(OG_OUT)/python --package-name taskapi_og \
			> test-results/openapi-generator-python.log \
		&& $(OPENAPI_GENERATOR) -g typescript-fetch -o $(OG_OUT)/typescript \
			> test-results/openapi-generator-typescript.log \
		&& $(NPX) tsc -p clients/openapi-generator/typescript/tsconfig.json \
		&& PYTHONPATH=$(OG_OUT)/python $(BIN)/python clients/openapi-generator/python/scenario.py \
		&& node $(OG_OUT)/typescript-js/clients/openapi-generator/typescript/scenario.js'

# Prism serves the spec's examples at the mock's root (it matches paths without the server's
# base path): http://127.0.0.1:4010/tasks. `Prefer: example=cursor-slice` picks a cursor slice,
# `Prefer: code=412` an error; an invalid body gets the operation's 422 if it has one, else 400.
MOCK_PORT ?= 4010
mock: $(NODE_STAMP)  ## Prism's mock of spec/openapi.yaml on 127.0.0.1:MOCK_PORT, for review before code
	$(NPX) prism mock spec/openapi.yaml --host 127.0.0.1 --port $(MOCK_PORT)

mock-test: $(NODE_STAMP)  ## a scripted client flow against the mock (tests/mock/)
	node --test tests/mock/

docs: $(NODE_STAMP)  ## the single-file HTML reference: build/docs/index.html
	$(NPX) redocly build-docs spec/openapi.yaml --inlineBundle -o build/docs/index.html

docs-test: $(NODE_STAMP) $(STAMP)  ## headless Chromium drives /v1/ui; screenshots in test-results/
	bash .ci/ensure-chromium
	$(LIVE) node --test tests/browser/

# Against the served spec: every phase but the stateful one, seeded; then the stateful phase for
# STATEFUL_SECONDS (its suites end at the first replay that a changed database makes differ, so
# it is given time rather than a count), which must follow at least STATEFUL_MIN_LINKS links.
STATEFUL_SECONDS ?= 30
STATEFUL_MIN_LINKS ?= 18
SCHEMATHESIS = env SCHEMATHESIS_HOOKS=tools.schemathesis_hooks $(BIN)/schemathesis \
	--config-file tests/contract/schemathesis-live.toml run "$$TASKAPI_URL/openapi.json" \
	--checks all --workers 1
contract-live: $(NODE_STAMP) $(STAMP)  ## lint the served spec, then schemathesis against it; reports in test-results/
	$(LIVE) sh -c 'curl -fsS "$$TASKAPI_URL/openapi.json" -o build/served-openapi.json \
		&& $(NPX) spectral lint build/served-openapi.json --ruleset .spectral.yaml --fail-severity=warn \
		&& $(SCHEMATHESIS) --phases examples,coverage,fuzzing \
			--report junit --report-junit-path test-results/schemathesis-live.xml \
		&& $(SCHEMATHESIS) --phases stateful --max-time $(STATEFUL_SECONDS) \
			--report ndjson --report-ndjson-path test-results/schemathesis-stateful.ndjson'
	$(BIN)/python -m tools.link_coverage test-results/schemathesis-stateful.ndjson --min $(STATEFUL_MIN_LINKS)

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
