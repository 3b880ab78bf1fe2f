# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv with the system python3 when missing and (re)installs when
# pyproject.toml changed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# ajv, the second JSON Schema validator the tests run (Node.js and npm; versions pinned by
# tests/ajv/package-lock.json, installed with npm ci).
AJV    := tests/ajv/node_modules/.installed

.PHONY: demo test test-fast lint typecheck pytest check-example docs schemas bench bench-check clean

demo: $(VENV)/.installed
	$(BIN)/nngsec demo

test: $(VENV)/.installed-test $(AJV) lint typecheck pytest check-example

# benchmarks/ is checked once it exists (a fresh branch may not have it yet).
CHECKED := $(wildcard src tests benchmarks)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(CHECKED) vulture_allowlist.py
	$(BIN)/ruff format --check $(CHECKED) vulture_allowlist.py
	$(BIN)/vulture $(CHECKED) vulture_allowlist.py --min-confidence 60 \
		--ignore-decorators "@rule,@model_validator,@field_validator,@invariant"

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy $(patsubst src,src/nngsec,$(CHECKED))

# pytest in WORKERS processes (pytest-xdist), under coverage: the child processes tests start
# (python -m nngsec, the relay process, spawned peers, xdist's workers) are measured too
# ([tool.coverage.run] patch = subprocess), combined, and the build fails under the
# fail_under of [tool.coverage.report]. Everything runs, slow tests included.
WORKERS ?= 2
PYTEST_ARGS := -q -n $(WORKERS) --dist worksteal

pytest: $(VENV)/.installed-test $(AJV)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

# For local loops: no coverage, no tests marked slow, hypothesis's dev profile (fewer examples).
test-fast: $(VENV)/.installed-test $(AJV)
	HYPOTHESIS_PROFILE=dev $(BIN)/pytest $(PYTEST_ARGS) -m "not slow"

bench: $(VENV)/.installed
	$(BIN)/nngsec bench

# The example deployment must check clean (exit 0; expected warnings: the example policy
# ships unsigned, its control service has two servers sharing a service key, and its jobs
# and requests are shared out between two receivers each: replay-across-receivers).
check-example: $(VENV)/.installed
	$(BIN)/nngsec check policies/factory.yaml policies/factory.topology.yaml

# Regenerate docs/rules.md from the rule docstrings (a test fails when it is stale), and
# the picture of the example deployment (needs Graphviz).
docs: $(VENV)/.installed
	$(BIN)/python -m nngsec._topology._docs > docs/rules.md
	$(BIN)/nngsec check policies/factory.topology.yaml --graph docs/images/factory-topology.svg

# Regenerate the JSON Schemas the package ships from the models (a test fails when stale).
schemas: $(VENV)/.installed
	$(BIN)/python -m nngsec._cli._info_commands src/nngsec/schemas

# Time nngsec check on a generated deployment of 10,000 nodes and 200 channels.
bench-check: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_check.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The dev extra: the test extra (what pytest needs) plus the linters and type checkers.
$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(AJV): tests/ajv/package.json tests/ajv/package-lock.json
	npm ci --prefix tests/ajv --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.* htmlcov \
		tests/ajv/node_modules dist build
