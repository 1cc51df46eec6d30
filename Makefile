# Two entry points for a fresh machine; each creates .venv and installs into it.
#   make demo   set up, then build the whole flights line on the embedded default
#   make test   set up, then run the linters (ruff, pyright) and the test suite
#   make bench  set up, then measure the factory against its floor (benchmarks/results.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Each product line brings its own data packages (lines/<line>/requirements.txt).
LINE_REQUIREMENTS := $(foreach file,$(wildcard lines/*/requirements.txt),-r $(file))

.PHONY: demo test lint setup setup-test ui clean bench

demo: setup
	$(BIN)/factory build

test: lint
	$(BIN)/python -m pytest

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

bench: setup
	$(BIN)/python -m benchmarks.run --scale 1 30 --out benchmarks/results.md

ui: setup
	$(BIN)/factory ui

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml $(wildcard lines/*/requirements.txt)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . $(LINE_REQUIREMENTS)
	$(BIN)/factory prepare
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) .factory dbt_project/target dbt_project/logs
