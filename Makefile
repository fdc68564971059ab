# Every target sets up .venv first: torch==2.13.0 (the CPU build), then the project with the
# notebook's torch reference and the dev tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint container-test run demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,reference]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

# Style, types and layers: ruff's formatter and linter over everything, mypy over the package, its
# migrations and the benchmarks, and import-linter's layer contract (pyproject.toml).
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The image and the compose stack, built and run for real (docker, or podman + podman-compose).
container-test:
	bash scripts/container-test.sh

run: setup
	$(BIN)/forecaster run

# Offline: synthetic prices for four tickers, a four-month backfill, then the report.
DEMO_ENV := FORECASTER_DATABASE_URL=sqlite:///demo-output/forecaster.db FORECASTER_SOURCE=synthetic \
	FORECASTER_TICKERS=ALPHA,BRAVO,CHARLIE,DELTA FORECASTER_REPORT_DIR=demo-output
demo: setup
	mkdir -p demo-output
	$(DEMO_ENV) $(BIN)/forecaster backfill --start 2025-06-02 --end 2025-09-30
	$(DEMO_ENV) $(BIN)/forecaster report --format md,html
	@echo "demo report: demo-output/ (open the .html in a browser)"

bench: setup
	$(BIN)/python benchmarks/seed_speed.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
