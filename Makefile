# The two quick-start commands: `make demo` and `make test`. Each builds .venv itself.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench clean postgres-binaries

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Benchmarks compare against wandb, MLflow, Optuna and W&B's sweeps in their own venv, so the
# project's .venv stays free of them.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -e '.[bench]'
	touch $@

demo: $(STAMP)
	cd examples/hydra_quickstart && ../../$(BIN)/python demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

# The PostgreSQL tests need a server: the machine's (127.0.0.1:5432 in CI) or, when none answers,
# a throwaway cluster that tests/pg.py makes from the installed server binaries. On a fresh
# Debian machine without them, install them (nothing to do, and quick, where they are present).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
postgres-binaries:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || { echo "installing PostgreSQL server binaries (apt-get install postgresql)"; \
	       $(SUDO) apt-get update -qq && \
	       $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

unit: $(STAMP) postgres-binaries
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/sdk_overhead.py --repeats 3
	$(BENCH_VENV)/bin/python bench/search_quality.py

clean:
	rm -rf $(VENV) .runyard build src/*.egg-info
