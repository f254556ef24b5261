# partnerfleet — every set-up step lives here, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-integration test-browser screenshots lint format bench bench-quick install clean translations

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)  ## serve on SQLite under var/ with demo data (PORT overrides 8000)
	$(BIN)/partnerfleet serve --demo

# Test processes for `make test` (pytest-xdist): one per CPU by default; 0 runs in this process.
TEST_WORKERS ?= auto

test: $(STAMP)  ## every test: unit, property and integration (PostgreSQL at 127.0.0.1:5432)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration

test-browser: $(STAMP)  ## the portal's stories in headless Chromium (skipped when none is found)
	$(BIN)/pytest tests/browser

screenshots: $(STAMP)  ## the browser stories (a Chromium required), their screenshots into docs/screenshots/
	rm -rf var/screenshots
	PARTNERFLEET_REQUIRE_BROWSER=1 $(BIN)/pytest tests/browser; status=$$?; \
	mkdir -p docs/screenshots && cp var/screenshots/*.png docs/screenshots/ && exit $$status

lint: $(STAMP)  ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## the benchmark suite (docs/benchmarks.md) on PostgreSQL + Tansu: bench/results.json
	$(BIN)/python -m bench.suite

bench-quick: $(STAMP)  ## the same suite at a tenth of the size (under 3 minutes): bench/results-quick.json
	$(BIN)/python -m bench.suite --quick

LOCALES := infra/web/locales
translations: $(STAMP)  ## extract the portal's and the refusals' messages, merge them into each locale
	$(BIN)/pybabel extract --mapping-file babel.cfg --output-file $(LOCALES)/messages.pot \
		--no-location --sort-output --omit-header --width 100 \
		--keywords Msg --keywords _N --keywords gettext --keywords ngettext:1,2 --keywords _ \
		.
	$(BIN)/pybabel update --input-file $(LOCALES)/messages.pot --output-dir $(LOCALES) \
		--domain messages --no-fuzzy-matching --ignore-obsolete --width 100

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
