# Two entry points: `make run` (embedded service with demo data) and `make test` (every gate).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck imports pytest

run: install
	$(BIN)/analytics migrate
	$(BIN)/analytics serve --demo

test: install lint typecheck imports pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy --strict src

imports: install
	$(BIN)/lint-imports

# pytest exits 5 when it collects nothing; make treats that as the failure it is.
pytest: install
	$(BIN)/pytest
