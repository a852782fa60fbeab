# Chargeslot — the commands a newcomer needs. `make run` serves the embedded default
# (SQLite + in-process bus) with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The accessibility engine the browser tests inject (npm; never served by the site).
AXE_DIR := tests/browser/axe
AXE_STAMP := $(AXE_DIR)/node_modules/.installed
SOURCES := $(wildcard app workers tests bench)

.PHONY: install run test fuzz lint format bench clean

install: $(STAMP) $(AXE_STAMP)

$(STAMP): pyproject.toml
	@echo "==> Creating $(VENV) and installing Chargeslot with its test extras"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

$(AXE_STAMP): $(AXE_DIR)/package.json $(AXE_DIR)/package-lock.json
	@echo "==> Installing axe-core for the browser tests"
	npm ci --prefix $(AXE_DIR) --no-audit --no-fund --loglevel=error
	@touch $(AXE_STAMP)

run: install
	$(BIN)/chargeslot serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The schema fuzzer of `make test`, with 25 times as many examples per operation and role.
fuzz: install
	FUZZ_EXAMPLES=100 $(BIN)/python -m pytest tests/test_fuzz.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/mypy

format: install
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

bench: install
	@for script in bench/bench_*.py; do echo "==> $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(AXE_DIR)/node_modules data .pytest_cache .mypy_cache .ruff_cache
