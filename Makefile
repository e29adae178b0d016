PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Airflow and Temporal are heavy and pin their own versions: their tests run in a
# virtualenv of their own, so that .venv stays light.
ORCH_VENV := .venv-orchestrators
ORCH_BIN := $(ORCH_VENV)/bin
ORCH_STAMP := $(ORCH_VENV)/.installed
# Sphinx and its theme pin their own versions (docs/requirements.txt): the API
# reference is built in a virtualenv of its own.
DOCS_VENV := .venv-docs
DOCS_BIN := $(DOCS_VENV)/bin
DOCS_STAMP := $(DOCS_VENV)/.installed
LINTED := jobwatch tests tests_orchestrators examples benchmarks docs
# The demo needs the command line (cli) and the simulator's server (sim), nothing more.
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test lint typecheck pytest test-orchestrators test-airflow docs demo soak bench bench-smoke clean

$(VENV)/bin/python:
	@echo "make: creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "make: installing jobwatch with the cli, sim, fast and dev extras into $(VENV)"
	$(BIN)/python -m pip install --quiet -e '.[cli,sim,fast,dev]'
	touch $(STAMP)

$(ORCH_STAMP): pyproject.toml tests_orchestrators/requirements.txt
	@echo "making $(ORCH_VENV) (Airflow and Temporal, for tests_orchestrators)"
	test -x $(ORCH_BIN)/python || $(PYTHON) -m venv $(ORCH_VENV)
	$(ORCH_BIN)/python -m pip install --quiet --upgrade pip
	$(ORCH_BIN)/python -m pip install --quiet -e '.[airflow,sim,fast]' -r tests_orchestrators/requirements.txt
	touch $(ORCH_STAMP)

$(DOCS_STAMP): pyproject.toml docs/requirements.txt
	@echo "make docs: installing Sphinx (docs/requirements.txt) and jobwatch into $(DOCS_VENV)"
	test -x $(DOCS_BIN)/python || $(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_BIN)/python -m pip install --quiet --upgrade pip
	$(DOCS_BIN)/python -m pip install --quiet -e '.[otel,prometheus]' -r docs/requirements.txt
	touch $(DOCS_STAMP)

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "make demo: installing jobwatch with the cli and sim extras into $(VENV) (once)"
	$(BIN)/python -m pip install --quiet -e '.[cli,sim]'
	touch $(DEMO_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test-orchestrators: $(ORCH_STAMP)
	cd tests_orchestrators && ../$(ORCH_BIN)/python -m pytest

test-airflow: test-orchestrators

# The API reference, into site/.  -n: every cross-reference must resolve; -W: a
# warning fails the build; -E: read every page again, so no warning is skipped.
docs: $(DOCS_STAMP)
	$(DOCS_BIN)/sphinx-build -E -n -W --keep-going -q -b html -d build/doctrees docs site

test: lint typecheck pytest test-orchestrators docs

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
	rm -rf $(VENV) $(ORCH_VENV) $(DOCS_VENV) .mypy_cache .pytest_cache .ruff_cache site build/doctrees
