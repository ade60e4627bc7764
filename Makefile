# Two entry points: `make run` (embedded service with demo data) and `make test` (every gate).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck imports pytest bench

# The demo events carry team and feature tags: roll them up for groupBy=tag:team (override by
# setting ANALYTICS_ATTRIBUTION_KEYS yourself).
run: export ANALYTICS_ATTRIBUTION_KEYS ?= team,feature
run: install
	@echo "==> database: $(BIN)/analytics migrate"
	@$(BIN)/analytics migrate
	@echo "==> serving with demo data: $(BIN)/analytics serve --demo"
	@$(BIN)/analytics serve --demo

test: install lint typecheck imports pytest

install: $(STAMP)

# uv (installed into the venv by pip, a few seconds) installs everything in seconds where pip
# takes minutes; plain pip is the fallback when uv cannot be installed or fails. Each step says
# what it does, so a first run never looks hung.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing the project and its tools into $(VENV)"
	@if { $(BIN)/python -m uv --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet uv; } \
	    && $(BIN)/python -m uv pip install --python $(BIN)/python -e '.[dev]'; then :; \
	else echo "==> uv unavailable: installing with pip (slower)"; \
	    $(BIN)/python -m pip install -e '.[dev]'; fi
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy --strict src

imports: install
	$(BIN)/lint-imports

# pytest exits 5 when it collects nothing; make treats that as the failure it is.
pytest: install
	$(BIN)/pytest

# Reduced performance figures against their targets (~3 minutes; needs PostgreSQL on 5432).
# Not part of `make test`: figures belong in docs/benchmarks.md, never in assertions.
bench: install
	$(BIN)/python bench/quick.py
