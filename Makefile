# Two entry points: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve migrate bench clean browser console screenshots

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chargebot demo

test: $(STAMP) lint browser
	$(BIN)/pytest

# The console's end-to-end tests drive Debian's chromium; installed once, if missing.
browser:
	@[ -n "$$CHARGEBOT_CHROMIUM" ] || sh scripts/install-chromium.sh

# Screenshots of the console for the README (docs/screenshots/), from the demo.
screenshots: $(STAMP) browser
	$(BIN)/python scripts/console_screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

serve: $(STAMP)
	$(BIN)/chargebot serve

migrate: $(STAMP)
	$(BIN)/chargebot db upgrade

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
