# The two quick-start commands: `make demo` and `make test`. Each builds .venv itself.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench clean

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

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/sdk_overhead.py --repeats 3
	$(BENCH_VENV)/bin/python bench/search_quality.py

clean:
	rm -rf $(VENV) .runyard build src/*.egg-info
