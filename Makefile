# Developer commands. `make test` is what CI runs; it builds its own virtual environment on first use.
SHELL := /bin/bash
PYTHON ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The newest stack: Airflow 3.3.x with the latest Amazon provider (the oldest one runs in `make mwaa-test`).
AIRFLOW_SPEC ?= apache-airflow>=3.3,<3.4

.PHONY: venv test lint typecheck unit e2e integration demo mwaa-test mwaa-install-check deployment deployment-down \
	deploy-test benchmarks bench-deployed docs clean dist-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml emulator/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install -q "$(AIRFLOW_SPEC)" --group dev -e . -e ./emulator
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff check --preview --select AIR example_dags
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

e2e: venv
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

integration: venv
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

demo: venv
	$(BIN)/python scripts/demo.py

# Release artefacts: build, twine check --strict, check-wheel-contents, the wheel alone with the newest Airflow,
# provider_info schema, pyright --verifytypes >= 95%, pyroma (.ci/check_artefacts.sh; its own throwaway venvs).
dist-check:
	bash .ci/check_artefacts.sh

# Unit, e2e, reliability and leak-check suites in an MWAA-exact environment: make mwaa-test IMAGE=2.10.3
IMAGE ?= 2.10.3
mwaa-test:
	bash .ci/mwaa_env.sh $(IMAGE) test

# Does the wheel install on an MWAA image without pip changing any constrained package?
mwaa-install-check:
	bash .ci/mwaa_env.sh $(IMAGE) install-check

# An MWAA-shaped Airflow on 127.0.0.1, left running (docs/deployment.md): make deployment IMAGE=3.3.1
DEPLOY_PYTHON = $(if $(wildcard .venv-mwaa-$(IMAGE)/bin/python),.venv-mwaa-$(IMAGE)/bin/python,python3)
deployment:
	bash .ci/mwaa_env.sh $(IMAGE) deploy
	.venv-mwaa-$(IMAGE)/bin/python -m deployment up --image $(IMAGE)

deployment-down:
	$(DEPLOY_PYTHON) -m deployment down --image $(IMAGE)

# Brings the deployment up, runs tests/deployment against it through the REST API, takes it down.
deploy-test:
	bash .ci/mwaa_env.sh $(IMAGE) deploy
	.venv-mwaa-$(IMAGE)/bin/python -m deployment test --image $(IMAGE) $(PYTEST_ARGS)

benchmarks: venv
	for b in benchmarks/*.py; do [ $$b = benchmarks/deployed_triggers.py ] || $(BIN)/python $$b || exit 1; done

# N deferred waits in a deployment's real triggerers, ours vs the anchor trigger (brings its own deployment up and down)
bench-deployed:
	bash .ci/mwaa_env.sh $(IMAGE) deploy
	.venv-mwaa-$(IMAGE)/bin/python benchmarks/deployed_triggers.py --image $(IMAGE) $(BENCH_ARGS)

# The Sphinx site in docs/_build/html, warnings as errors, nothing fetched at build time. Its own venv (.venv-docs):
# Sphinx and the theme from docs/requirements.txt, and the package with Airflow, which autodoc imports.
DOCS_VENV ?= .venv-docs
$(DOCS_VENV)/.installed: docs/requirements.txt pyproject.toml emulator/pyproject.toml
	test -x $(DOCS_VENV)/bin/python || $(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install -q --upgrade uv
	VIRTUAL_ENV=$(DOCS_VENV) $(DOCS_VENV)/bin/uv pip install -q -r docs/requirements.txt "$(AIRFLOW_SPEC)" -e ".[async]" -e ./emulator
	touch $@

docs: $(DOCS_VENV)/.installed
	rm -rf docs/_build/html
	$(DOCS_VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "Documentation: docs/_build/html/index.html"

clean:
	rm -rf $(VENV) $(DOCS_VENV) docs/_build .deployment build dist *.egg-info emulator/build emulator/src/*.egg-info .mypy_cache .ruff_cache
