# The project's commands. Prefect never phones home from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_HOME ?= $(CURDIR)/var/prefect
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: run demo test lint bench clean

$(BIN)/campaign: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

## make run: install, migrate, load the sample office and a plan starting today, serve Prefect on :4200
run: $(BIN)/campaign
	$(BIN)/python -m flows.serve

## make demo: the sample campaign through every phase in simulated time, with a summary table
demo: $(BIN)/campaign
	CAMPAIGN_SIMULATION=1 $(BIN)/python -m flows.demo

## make test: lint, type-check the core, and the whole test suite
test: $(BIN)/campaign lint
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(BIN)/campaign
	$(BIN)/ruff check states readers notices reports cli flows tests bench
	$(BIN)/mypy states

## make bench: timings at SIZES (default 10000,100000) on SQLite and PostgreSQL
bench: $(BIN)/campaign
	$(BIN)/python -m bench.run --sizes $${SIZES:-10000,100000}

clean:
	rm -rf var
