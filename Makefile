# The two Quickstart commands. Both run scripts/setup.sh first (idempotent, reuses .venv).
VENV ?= .venv
export QUANTDROP_VENV := $(VENV)

.PHONY: demo test lint setup
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/quantdrop study

test: setup
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
