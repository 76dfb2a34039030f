# The README's commands.  Every target creates and uses the project's own virtual environment.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve dev test lint types pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)  ## the main job: the server on its embedded SQLite default
	$(BIN)/sustain serve --bind 127.0.0.1 --port 8001 --sqlite-path ./sustain.db

dev: $(STAMP)  ## in-memory store, debug operations on
	$(BIN)/sustain dev --bind 127.0.0.1 --port 8001

lint: $(STAMP)
	$(BIN)/ruff check src tests

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint types pytest  ## lint, types and the whole suite

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
