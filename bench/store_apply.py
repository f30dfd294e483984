"""Store throughput: ``SQLStore.apply`` ingest and ``SQLStore.series`` on SQLite and PostgreSQL.

Ingest: batches shaped like the server's (``--records`` history rows of ``--metrics`` float
metrics each, one journal, in order) applied one after the other to a fresh store; reported as
points (metric values) per second, median over ``--repeats``.

Series: a run with ``--series-steps`` steps of one metric (plus a second one interleaved), then
``series(run, "loss", samples=--samples)`` over the whole range and over a middle half,
median of ``--series-repeats`` calls (after one warm-up call).

PostgreSQL: ``--pg-url`` (a plain ``postgresql://`` URL; each store gets a new schema, dropped
afterwards), by default the test database of tests/pg.py (the machine's server, or a
throwaway cluster when none answers)::

    .venv/bin/python bench/store_apply.py
    .venv/bin/python bench/store_apply.py --backends postgresql --repeats 5 --series-steps 0
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runyard.store.base import JournalBatch  # noqa: E402
from runyard.store.sql import SQLStore  # noqa: E402


@contextmanager
def open_backend(backend: str, pg_url: str | None) -> Iterator[SQLStore]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLStore(f"sqlite:///{tmp}/runyard.db")
            try:
                yield store
            finally:
                store.close()
        return
    import psycopg

    if pg_url is None:
        from tests import pg

        pg_url = pg.ensure_server()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    store = SQLStore(url)
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def header(run_id: str) -> dict[str, Any]:
    return {
        "entity": "bench",
        "project": "apply",
        "run_id": run_id,
        "name": run_id,
        "config": {"lr": 0.1},
        "start_time": time.time(),
        "journal_id": f"j-{run_id}",
    }


def make_batches(run_id: str, n_batches: int, records: int, metrics: int) -> list[JournalBatch]:
    rng = random.Random(0)
    keys = [f"train/metric_{k}" for k in range(metrics)]
    head = header(run_id)
    out = []
    seq, step = 1, 0
    t0 = time.time()
    for b in range(n_batches):
        recs: list[tuple[int, str, Any]] = []
        if b == 0:
            recs.append((seq, "run", head))
            seq += 1
        for _ in range(records):
            row: dict[str, Any] = {"_step": step, "_runtime": step * 0.01, "_timestamp": t0 + step}
            for key in keys:
                row[key] = rng.random()
            recs.append((seq, "row", row))
            seq += 1
            step += 1
        summary = {k: 0.5 for k in keys}
        out.append(JournalBatch(head["journal_id"], head, recs, summary=summary))
    return out


def bench_ingest(store: SQLStore, args: argparse.Namespace, run_id: str) -> dict[str, float]:
    batches = make_batches(run_id, args.batches, args.records, args.metrics)
    per_batch = []
    start = time.perf_counter()
    for batch in batches:
        t = time.perf_counter()
        store.apply(batch)
        per_batch.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    points = args.batches * args.records * args.metrics
    return {
        "points_per_s": points / elapsed,
        "batch_ms_median": statistics.median(per_batch) * 1000,
    }


def bench_series(store: SQLStore, args: argparse.Namespace) -> dict[str, float]:
    run_id = "series"
    head = header(run_id)
    steps = args.series_steps
    chunk = 20000
    seq = 1
    load_start = time.perf_counter()
    for lo in range(0, steps, chunk):
        recs: list[tuple[int, str, Any]] = []
        if lo == 0:
            recs.append((seq, "run", head))
            seq += 1
        for step in range(lo, min(steps, lo + chunk)):
            row: dict[str, Any] = {"_step": step, "_runtime": 0.0, "_timestamp": 0.0}
            row["loss"] = math.sin(step / 1000.0) + (5.0 if step % 99_991 == 0 else 0.0)
            if step % 10 == 0:
                row["acc"] = step / steps
            recs.append((seq, "row", row))
            seq += 1
        store.apply(JournalBatch(head["journal_id"], head, recs))
    load_s = time.perf_counter() - load_start
    run = store.find_run("bench", "apply", run_id)
    assert run is not None
    result: dict[str, float] = {"load_s": load_s}
    ranges = {"full": (None, None), "half": (steps // 4, steps // 4 + steps // 2)}
    for name, (lo_step, hi_step) in ranges.items():
        series = store.series(run.pk, "loss", args.samples, lo_step, hi_step)  # warm-up
        assert len(series.steps) <= args.samples and series.downsampled
        times = []
        for _ in range(args.series_repeats):
            t = time.perf_counter()
            store.series(run.pk, "loss", args.samples, lo_step, hi_step)
            times.append(time.perf_counter() - t)
        result[f"series_{name}_ms"] = statistics.median(times) * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--series-steps", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--series-repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        rates, batch_ms = [], []
        with open_backend(backend, args.pg_url) as store:
            for r in range(args.repeats):
                out = bench_ingest(store, args, f"ingest-{r}")
                rates.append(out["points_per_s"])
                batch_ms.append(out["batch_ms_median"])
            res: dict[str, Any] = {
                "points_per_s_median": statistics.median(rates),
                "points_per_s_all": [round(x) for x in rates],
                "batch_ms_median": statistics.median(batch_ms),
            }
            if args.series_steps:
                res.update(bench_series(store, args))
        results[backend] = res
        print(
            f"{backend:10s} ingest {res['points_per_s_median']:>10,.0f} points/s "
            f"(runs: {', '.join(f'{x:,}' for x in res['points_per_s_all'])}; "
            f"{args.records} rows x {args.metrics} metrics per batch, "
            f"median batch {res['batch_ms_median']:.0f} ms)",
            flush=True,
        )
        if args.series_steps:
            print(
                f"{backend:10s} series of {args.series_steps:,} steps -> {args.samples}: "
                f"full {res['series_full_ms']:.0f} ms, half range {res['series_half_ms']:.0f} ms "
                f"(loaded in {res['load_s']:.1f} s)",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
