PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cli,sim,dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check jobwatch tests examples
	$(BIN)/ruff format --check jobwatch tests examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

demo: $(STAMP)
	@# The demo scenario has failing jobs on purpose: exit status 1 is its expected result.
	$(BIN)/jobwatch demo || test $$? -eq 1

soak: $(STAMP)
	$(BIN)/python tests/soak.py --jobs 10000

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
