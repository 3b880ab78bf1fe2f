# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv with the system python3 when missing and (re)installs when
# pyproject.toml changed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest check-example docs bench clean

demo: $(VENV)/.installed
	$(BIN)/nngsec demo

test: $(VENV)/.installed-test lint typecheck pytest

# benchmarks/ is checked once it exists (a fresh branch may not have it yet).
CHECKED := $(wildcard src tests benchmarks)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy $(patsubst src,src/nngsec,$(CHECKED))

pytest: $(VENV)/.installed-test
	$(BIN)/pytest -q

bench: $(VENV)/.installed
	$(BIN)/nngsec bench

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
