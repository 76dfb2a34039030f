# The README's commands.  Every target creates and uses the project's own virtual environment.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve dev test test-interop scenarios lint types pytest bench bench-peers clean

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
	$(BIN)/ruff check src tests examples benchmarks

types: $(STAMP)
	$(BIN)/mypy

# Both cores: a whole test file per worker, so a module's server is started once.
pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

test: lint types pytest  ## lint, types and the whole suite

test-interop: $(STAMP)  ## the official Resonate SDKs against a Sustain server
	$(BIN)/pytest tests/interop

scenarios: $(STAMP)  ## the eight scenarios of examples/, with their crash tests
	$(BIN)/pytest tests/scenarios

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-peers: $(STAMP)  ## W1-W4 on Sustain, DBOS and Restate in one run (peers cached in .cache/)
	$(BIN)/python -m benchmarks.peers

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
