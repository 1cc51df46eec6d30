# Two entry points for a fresh machine; each creates .venv and installs into it.
#   make demo   set up, then build the whole flights line on the embedded default
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup setup-test ui clean

demo: setup
	$(BIN)/factory build

test: setup-test
	$(BIN)/python -m pytest

ui: setup
	$(BIN)/factory ui

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/factory prepare
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) .factory dbt_project/target dbt_project/logs
