# The two quick-start commands: `make demo` and `make test`. Each builds .venv itself.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench bench-hydra clean postgres-binaries web chromium

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

# hydra-optuna-sweeper needs optuna<3 (the other benches use optuna 5): a venv of its own.
BENCH_HYDRA_VENV := .venv-bench-hydra
$(BENCH_HYDRA_VENV)/.installed: pyproject.toml
	$(PY) -m venv $(BENCH_HYDRA_VENV)
	$(BENCH_HYDRA_VENV)/bin/pip install --quiet -e '.[bench-hydra]'
	touch $@
bench-hydra: $(BENCH_HYDRA_VENV)/.installed
	$(BENCH_HYDRA_VENV)/bin/python bench/hydra_sweep.py

demo: $(STAMP) web
	cd examples/hydra_quickstart && ../../$(BIN)/python demo.py
	@echo "dashboard of the demo's runs and sweep: $(BIN)/runyard ui --dir examples/hydra_quickstart/.runyard  (then open http://127.0.0.1:8080/)"

# The dashboard (web/, TypeScript + Vite): npm dependencies from the lock file, then the bundle
# that the Python package serves (src/runyard/server/dashboard_dist, gitignored), rebuilt when a
# source changes.
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/package.json \
	web/vite.config.ts web/tsconfig.json
DASHBOARD := src/runyard/server/dashboard_dist/index.html
web/node_modules/.installed: web/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "the dashboard build needs Node.js >= 20 and npm (https://nodejs.org)"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@
$(DASHBOARD): web/node_modules/.installed $(WEB_SRC)
	cd web && npm run build
web: $(DASHBOARD)

# The browser tests drive Debian's chromium (Playwright, from the dev extra, launches it).
chromium:
	@test -x /usr/bin/chromium || { echo "installing chromium (apt-get install chromium)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

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

# The oldest wandb client the W&B door supports (tests/test_wandb_oldest.py), beside the newest
# that the dev extra pins: two versions of one package need two venvs.
WANDB_OLDEST := .venv-wandb-oldest
$(WANDB_OLDEST)/.installed: Makefile
	$(PY) -m venv $(WANDB_OLDEST)
	$(WANDB_OLDEST)/bin/pip install --quiet 'wandb==0.19.11' 'numpy>=1.26' 'pillow>=10'
	touch $@

# Two workers (pytest-xdist), a test file per worker at a time (module fixtures stay shared):
# most tests wait on subprocesses, servers and databases, so two cores run the suite in about
# half the time. PYTEST_WORKERS=0 runs it in one process; the slowest tests are listed at the end.
PYTEST_WORKERS ?= 2
unit: $(STAMP) $(WANDB_OLDEST)/.installed postgres-binaries web chromium
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=25

test: lint typecheck unit

bench: $(BENCH_VENV)/.installed $(STAMP) web chromium
	$(BENCH_VENV)/bin/python bench/sdk_overhead.py --repeats 3
	$(BENCH_VENV)/bin/python bench/search_quality.py
	$(BENCH_VENV)/bin/python bench/server_ingest.py
	$(BIN)/python bench/ui_load.py  # chromium + Playwright from .venv; MLflow's side from .venv-bench

clean:
	rm -rf $(VENV) .runyard build src/*.egg-info
