# The two README commands: `make run` (install + main job) and `make test` (install + tests).
# Checks (all run by .ci/run): `make lint` (ruff), `make typecheck` (mypy on the package), `make docs` (Sphinx, -W).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint typecheck docs check
install: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml setup.cfg
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: install
	$(BIN)/python -m pyro_flows fit --out runs/demo

test: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy pyro_flows

docs: install
	$(BIN)/python -m sphinx -W -n --keep-going -q -b html docs docs/_build/html

check: test lint typecheck docs
