# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv with the system python3 when missing and (re)installs when
# pyproject.toml changed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast lint typecheck pytest check-example docs bench bench-check clean

demo: $(VENV)/.installed
	$(BIN)/nngsec demo

test: $(VENV)/.installed-test lint typecheck pytest check-example

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

pytest: $(VENV)/.installed-test
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

# For local loops: no coverage, no tests marked slow, hypothesis's dev profile (fewer examples).
test-fast: $(VENV)/.installed-test
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

# Time nngsec check on a generated deployment of 10,000 nodes and 200 channels.
bench-check: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_check.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.* htmlcov
