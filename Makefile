# Every target sets up .venv first: torch==2.13.0 (the CPU build), then the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test run demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

run: setup
	$(BIN)/forecaster run

demo: setup
	$(BIN)/python scripts/demo.py

bench: setup
	$(BIN)/python benchmarks/seed_speed.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
