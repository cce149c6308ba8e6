# One obvious name per chore. Nothing needs to be installed beforehand but Python 3.11+ and make:
# the first target that needs the environment creates it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test pytest lint typecheck format migrate clean

run: $(STAMP)  ## start the service on HOST:PORT (127.0.0.1:8000), migrating first
	$(BIN)/taskapi serve

migrate: $(STAMP)  ## apply pending migrations to DATABASE_URL
	$(BIN)/taskapi migrate

test: lint typecheck pytest  ## every check and every test

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable import hook, so it reads the package through a
# symlink that gives src/ its import name.
typecheck: $(STAMP)
	@mkdir -p $(VENV)/typecheck && ln -sfn $(CURDIR)/src $(VENV)/typecheck/taskapi
	cd $(VENV)/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p taskapi

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
