"""Grid bookkeeping: the time of ``SweepController.next_run`` on a grid sweep that already has N
runs, against the rescan it replaced.

A grid of 1,000 x 1,000 cells (two ``int_uniform`` parameters) in a fresh SQLite store gets N
finished trials (bulk-inserted, the first N cells in grid order), then ``next_run`` is timed
``--repeats`` times (median and spread). Two ways:

* ``cursor``: the controller as it is (the grid's cursor in the sweep's method state; the
  trials are read once, when a sweep without a cursor gets its first suggestion, which is
  timed separately as ``first``);
* ``rescan``: the stateless ``GridSearch.suggest`` over every trial (what every call cost
  before the cursor: read every run, then walk the grid from its first cell).

Usage::

    .venv/bin/python bench/grid_next.py                  # N = 1,000, 10,000, 100,000
    .venv/bin/python bench/grid_next.py --sizes 1000 10000 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import print_tables

from runyard._json import dumps_doc
from runyard.store import schema as S
from runyard.store.sql import SQLStore
from runyard.sweeps.controller import SweepController
from runyard.sweeps.search.grid import GridSearch

SIDE = 1000
DOC = {
    "program": "train.py",
    "method": "grid",
    "parameters": {
        "a": {"distribution": "int_uniform", "min": 0, "max": SIDE - 1},
        "b": {"distribution": "int_uniform", "min": 0, "max": SIDE - 1},
    },
}


def _store(folder: Path, n: int) -> SQLStore:
    store = SQLStore(f"sqlite:///{folder / f'grid-{n}.db'}")
    store.create_sweep(
        sweep_id="grid",
        entity="bench",
        project="grid",
        name=None,
        description=None,
        method="grid",
        config=DOC,
        seed=1,
    )
    with store.sweep_transaction("grid") as tx:
        project_id = tx._project_id  # type: ignore[attr-defined]
    now = time.time()
    rows = [
        {
            "project_id": project_id,
            "run_id": f"r{i:08d}",
            "name": f"r{i}",
            "tags": "[]",
            "state": "finished",
            "config": dumps_doc({"a": i // SIDE, "b": i % SIDE}),
            "summary": dumps_doc({"loss": 0.1}),
            "meta": "{}",
            "metric_defs": "[]",
            "sweep_id": "grid",
            "sweep_params": dumps_doc({"a": i // SIDE, "b": i % SIDE}),
            "agent_id": "bench",
            "created_at": now,
            "updated_at": now,
            "heartbeat_at": now,
            "runtime": 0.0,
            "last_step": -1,
        }
        for i in range(n)
    ]
    with store.engine.begin() as conn:
        for start in range(0, n, 10_000):
            conn.execute(S.runs.insert(), rows[start : start + 10_000])
        conn.execute(S.sweeps.update().where(S.sweeps.c.id == "grid").values(run_count=n))
    return store


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0] * 1000:.1f} ms"
    spread = (max(values) - min(values)) * 1000
    return f"{statistics.median(values) * 1000:.1f} ms (±{spread / 2:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="runyard-grid-bench-") as tmp:
        for n in args.sizes:
            store = _store(Path(tmp), n)
            controller = SweepController(store, "grid")
            t = time.perf_counter()
            first = controller.next_run("bench")
            first_s = time.perf_counter() - t
            assert first.params == {"a": n // SIDE, "b": n % SIDE}, first.params
            cursor = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                controller.next_run("bench")
                cursor.append(time.perf_counter() - t)
            rescan = []
            config = controller.config()
            for _ in range(min(args.repeats, 3)):
                t = time.perf_counter()
                with store.sweep_transaction("grid") as tx:
                    trials = controller.trials(tx, config)
                    GridSearch().suggest(config.parameters, trials, 1)
                rescan.append(time.perf_counter() - t)
            rows.append(
                [
                    f"{n:,}",
                    _fmt([first_s]),
                    _fmt(cursor),
                    _fmt(rescan),
                    f"{statistics.median(rescan) / statistics.median(cursor):.0f}x",
                ]
            )
            store.close()
    print_tables(
        [
            (
                "next_run on a grid sweep with N runs",
                ["N runs", "first (cursor set up)", "cursor", "rescan (before)", "rescan/cursor"],
                rows,
            )
        ],
        f"grid bookkeeping, python {sys.version.split()[0]}, median of {args.repeats}",
    )


if __name__ == "__main__":
    main()
