PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo needs the command line (cli) and the simulator's server (sim), nothing more.
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test lint typecheck pytest demo soak bench bench-smoke clean

$(VENV)/bin/python:
	@echo "make: creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "make: installing jobwatch with the cli, sim, fast and dev extras into $(VENV)"
	$(BIN)/python -m pip install --quiet -e '.[cli,sim,fast,dev]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "make demo: installing jobwatch with the cli and sim extras into $(VENV) (once)"
	$(BIN)/python -m pip install --quiet -e '.[cli,sim]'
	touch $(DEMO_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check jobwatch tests examples benchmarks
	$(BIN)/ruff format --check jobwatch tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

demo: $(DEMO_STAMP)
	@# The demo scenario has failing jobs on purpose: exit status 1 is its expected result.
	$(BIN)/jobwatch demo || test $$? -eq 1

soak: $(STAMP)
	$(BIN)/python tests/soak.py --jobs 10000

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks --out bench-results.json

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke --out bench-smoke.json

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
