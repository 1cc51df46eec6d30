# Two entry points for a fresh machine; each creates .venv and installs into it.
#   make demo   set up, then build every line on the embedded default, then its governance reports
#   make test   set up (Debian's chromium too, for the browser tests), then run the linters (ruff,
#               pyright) and the test suite
#   make bench  set up, then measure the factory against its floor (benchmarks/results.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Each product line brings its own data packages (lines/<line>/requirements.txt).
LINE_REQUIREMENTS := $(foreach file,$(wildcard lines/*/requirements.txt),-r $(file))
# The browser tests drive Debian's chromium (never a downloaded browser); installed when missing.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test lint setup setup-test browser services ui clean bench

# The governance reports judge the built graph: built after it, they show its debt in the UI.
demo: setup
	$(BIN)/factory build
	$(BIN)/factory build --select 'group:governance'

# Two pytest-xdist workers (this machine's two cores); tests/conftest.py groups what must share one.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=30

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

bench: setup
	$(BIN)/python -m benchmarks.run --scale 1 30 --out benchmarks/results.md

ui: setup
	$(BIN)/factory ui

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test browser services

browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

# The production tests talk to the machine's PostgreSQL (127.0.0.1:5432: warehouse and Dagster
# instance), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672: Celery brokers); each is started
# when it is down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		$(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || $(SUDO) /etc/init.d/redis-server start
	@$(SUDO) rabbitmqctl -q status >/dev/null 2>&1 || $(SUDO) /etc/init.d/rabbitmq-server start

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
