# The README's commands.  Every target creates and uses the project's own virtual environment,
# installed from the hashed lock files in requirements/ (docs/dependencies.md says why uv and
# how to update them): the same versions on every machine, whatever PyPI released since.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV     := .cache/uv/bin/uv
SYNC    = $(UV) pip sync -q --python $(BIN)/python --require-hashes
EDIT    = $(UV) pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
COMPILE = $(UV) pip compile -q --universal --python-version 3.11 --generate-hashes
STAMP  := $(VENV)/.installed-test

.PHONY: serve dev test test-interop test-latest scenarios lint types pytest docs docs-serve bench \
	bench-peers bench-profile lock dist clean

# uv itself, pinned by hash, installed with the interpreter's own pip (nothing else is needed
# on a fresh machine).
$(UV): requirements/uv.txt
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore --upgrade --target .cache/uv \
		--require-hashes -r requirements/uv.txt
	touch $@

$(BIN)/python: | $(UV)
	$(UV) venv -q --python $(PYTHON) $(VENV)

# The test environment: exactly the lock (sync removes anything else), then Sustain editable.
$(STAMP): requirements/test.txt pyproject.toml | $(BIN)/python
	$(SYNC) requirements/test.txt
	$(EDIT)
	touch $@

# Serving needs only the base install and the server extra (docs/install.md): installed from
# their own lock, which is constrained to the test lock's versions, so a test environment
# already satisfies it.
$(VENV)/.installed-serve: requirements/serve.txt pyproject.toml | $(BIN)/python
	$(UV) pip install -q --python $(BIN)/python --require-hashes -r requirements/serve.txt
	$(EDIT)
	touch $@

lock: $(UV)  ## re-resolve every dependency to its newest allowed release and re-pin by hash
	$(COMPILE) requirements/uv.in -o requirements/uv.txt
	$(COMPILE) --all-extras pyproject.toml requirements/build.in -o requirements/test.txt
	$(COMPILE) -c requirements/test.txt --extra server pyproject.toml requirements/build.in \
		-o requirements/serve.txt

# Drift on purpose: the whole suite against the newest releases, in a separate environment,
# so that a new release that breaks us is found before `make lock` takes it.
test-latest: $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv-latest
	$(UV) pip install -q --python .venv-latest/bin/python --upgrade --refresh -e '.[test,docs]'
	.venv-latest/bin/pytest -n 2 --dist loadfile -p no:cacheprovider

serve: $(VENV)/.installed-serve  ## the main job: the server on its embedded SQLite default
	$(BIN)/sustain serve --bind 127.0.0.1 --port 8001 --sqlite-path ./sustain.db

dev: $(VENV)/.installed-serve  ## in-memory store, debug operations on
	$(BIN)/sustain dev --bind 127.0.0.1 --port 8001

lint: $(STAMP)  ## ruff, and the import-linter contracts of pyproject.toml (the layers)
	$(BIN)/ruff check src tests examples benchmarks docs
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

# Both cores: a whole test file per worker, so a module's server is started once.
pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

# The documentation site (mkdocs.yml), built --strict into the git-ignored .cache/site: a
# broken link, anchor or nav entry fails it.  The CLI reference is generated from the click
# commands during the build (docs/gen_cli.py).  Never --quiet: mkdocs 1.6 then drops the
# warnings before strict mode counts them, and a broken link passes.
docs: $(STAMP)  ## the documentation site in .cache/site (open .cache/site/index.html)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)  ## the documentation site at http://127.0.0.1:8000, rebuilt on change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000

test: lint types docs pytest  ## lint, types, the docs build and the whole suite

test-interop: $(STAMP)  ## the official Resonate SDKs against a Sustain server
	$(BIN)/pytest tests/interop

scenarios: $(STAMP)  ## the eight scenarios of examples/, with their crash tests
	$(BIN)/pytest tests/scenarios

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-peers: $(STAMP)  ## W1-W4 on Sustain, DBOS and Restate in one run (peers cached in .cache/)
	$(BIN)/python -m benchmarks.peers

# py-spy is a tool, not a dependency: its own environment under .cache/, outside the lock.
bench-profile: $(STAMP)  ## where a W1 step's CPU goes, embedded and server (py-spy, per thread)
	test -x .cache/py-spy/bin/py-spy || (python3 -m venv .cache/py-spy && \
		.cache/py-spy/bin/pip install -q --disable-pip-version-check py-spy)
	$(BIN)/python -m benchmarks.stepprofile --steps 3000
	$(BIN)/python -m benchmarks.stepprofile --steps 1000 --server

# The sdist, and the wheel built from it (so the sdist is known to be complete), with the
# locked hatchling of the test environment: no network, the same backend every time.
dist: $(STAMP)  ## wheel and sdist into dist/ (tests/release checks they install and run)
	rm -rf dist
	$(UV) build -q --python $(BIN)/python --no-build-isolation --out-dir dist

clean:
	rm -rf $(VENV) .venv-latest dist .cache/uv .pytest_cache .mypy_cache .ruff_cache .hypothesis
