"""Store.series: a metric of a run by step, downsampled to min/max per bucket, on both stores.

The store answers from metric_blocks (min/max per 64 steps, kept at ingest) and reads points only
where the step range cuts a block or the buckets are narrower than a block; the answers must be
exactly those of the reference, ``downsample_min_max`` over every point in the range.
"""

from __future__ import annotations

import importlib.util
import math
import random
from typing import Any

import pytest

from runyard.store import JournalBatch
from runyard.store.base import Series
from runyard.store.sql import _MIGRATIONS, SQLStore, bucket_grid, downsample_min_max

NAN = {"__f__": "nan"}


def _log(store: SQLStore, rows: list[dict[str, Any]], batch: int = 500, run_id: str = "r") -> int:
    """Apply history rows as the shipper would, ``batch`` records at a time; the run's pk."""
    header = {"entity": "e", "project": "p", "run_id": run_id, "journal_id": f"j-{run_id}"}
    records: list[Any] = [(1, "run", header)]
    records += [(i + 2, "row", row) for i, row in enumerate(rows)]
    for lo in range(0, len(records), batch):
        store.apply(JournalBatch(f"j-{run_id}", header, records[lo : lo + batch]))
    run = store.find_run("e", "p", run_id)
    assert run is not None
    return run.pk


def _expected(
    points: list[tuple[int, Any]], samples: int, lo: int | None = None, hi: int | None = None
) -> Series:
    steps, values = [], []
    for step, value in points:
        if (lo is not None and step < lo) or (hi is not None and step > hi):
            continue
        if value == NAN:
            value = math.nan
        if isinstance(value, bool | int | float):
            steps.append(step)
            values.append(float(value))
    return downsample_min_max("m", steps, values, samples)


def _same(got: Series, want: Series) -> None:
    assert (got.total, got.downsampled, got.steps) == (want.total, want.downsampled, want.steps)
    assert len(got.values) == len(want.values)
    for g, w in zip(got.values, want.values, strict=True):
        assert (math.isnan(g) and math.isnan(w)) or g == w, (g, w)


def test_short_series_comes_back_exactly(store: SQLStore) -> None:
    rows: list[dict[str, Any]] = [
        {"_step": 0, "m": 1.5},
        {"_step": 1, "m": NAN},
        {"_step": 2, "m": 7},  # int
        {"_step": 3, "m": True},  # bool
        {"_step": 4, "m": "text"},  # left out
        {"_step": 5, "m": None},  # left out
        {"_step": 6, "other": 1.0},
        {"_step": 7, "m": -math.inf},
        {"_step": 8, "m": 2**60},  # a big int, as a float
    ]
    pk = _log(store, rows)
    got = store.series(pk, "m")
    assert got.key == "m" and got.steps == [0, 1, 2, 3, 7, 8] and got.total == 6
    assert not got.downsampled
    assert got.values[0] == 1.5 and math.isnan(got.values[1])
    assert got.values[2:] == [7.0, 1.0, -math.inf, float(2**60)]
    assert all(type(v) is float for v in got.values)
    ranged = store.series(pk, "m", min_step=2, max_step=3)
    assert (ranged.steps, ranged.values, ranged.total) == ([2, 3], [7.0, 1.0], 2)


def test_absent_key_and_key_without_numbers(store: SQLStore) -> None:
    pk = _log(store, [{"_step": i, "label": f"s{i}", "x": 1.0} for i in range(5)])
    assert store.series(pk, "nope") == Series("nope", [], [], 0, False)
    assert store.series(pk, "label") == Series("label", [], [], 0, False)
    assert store.series(pk, "x", min_step=10) == Series("x", [], [], 0, False)
    assert store.series(pk + 1000, "x").total == 0  # another run


def test_spikes_and_dips_survive_downsampling(store: SQLStore) -> None:
    n = 20_000
    values = [0.001 * (i % 7) for i in range(n)]
    values[777], values[12_345], values[19_999] = -50.0, 100.0, 42.0
    pk = _log(store, [{"_step": i, "m": v} for i, v in enumerate(values)], batch=2000)
    got = store.series(pk, "m", samples=200)
    assert got.downsampled and got.total == n and len(got.steps) <= 200
    assert got.steps == sorted(got.steps)
    picked = dict(zip(got.steps, got.values, strict=True))
    assert picked[777] == -50.0 and picked[12_345] == 100.0 and picked[19_999] == 42.0
    assert min(got.values) == -50.0 and max(got.values) == 100.0


@pytest.mark.parametrize(
    ("samples", "lo", "hi"),
    [
        (100, None, None),  # buckets of 64+ steps: answered from blocks
        (60, 100, 4000),  # blocks, with a range cutting the first and last block
        (40, 3, 130),  # a short range inside three blocks
        (1000, None, None),  # buckets narrower than a block: answered from points
        (333, 1000, None),
        (7, 64, 127),  # exactly one block
        (2, None, None),  # the minimum: one bucket
    ],
)
def test_downsampling_matches_the_reference(
    store: SQLStore, samples: int, lo: int | None, hi: int | None
) -> None:
    rnd = random.Random(samples)
    points: list[tuple[int, Any]] = []
    step = 0
    for _ in range(5000):
        step += rnd.choice((1, 1, 1, 2, 5))  # gaps
        choice = rnd.random()
        value: Any = rnd.gauss(0, 1)
        if choice < 0.05:
            value = NAN
        elif choice < 0.08:
            value = rnd.randint(-3, 3)  # ties between ints
        elif choice < 0.10:
            value = "s"
        elif choice < 0.11:
            value = rnd.random() < 0.5
        points.append((step, value))
    # Odd batch sizes: blocks are continued across batches (the upsert path).
    pk = _log(store, [{"_step": s, "m": v} for s, v in points], batch=37)
    got = store.series(pk, "m", samples=samples, min_step=lo, max_step=hi)
    want = _expected(points, samples, lo, hi)
    assert want.downsampled
    _same(got, want)
    assert len(got.steps) <= max(4, samples)
    assert got.steps[0] == want.steps[0] and got.steps[-1] == want.steps[-1]


@pytest.mark.parametrize("samples", [1000, 100, 2])  # from points; from blocks; one bucket
def test_downsampling_keeps_the_first_and_last_point(store: SQLStore, samples: int) -> None:
    # A noisy loss: the last point (step 1999) is neither the minimum nor the maximum of its
    # bucket, nor is the first one; the chart must still start at step 0 and end at step 1999
    # with the value the summary has.
    n = 2000
    rnd = random.Random(7)
    values = [2.0 - i / n + rnd.uniform(-0.3, 0.3) for i in range(n)]
    values[0], values[1], values[2] = 1.5, 3.0, 0.1  # first: between its bucket's extremes
    values[-3], values[-2], values[-1] = 0.0, 2.0, 1.0  # last: likewise
    pk = _log(store, [{"_step": i, "m": v} for i, v in enumerate(values)], batch=700)
    got = store.series(pk, "m", samples=samples)
    assert got.downsampled and got.total == n
    assert (got.steps[0], got.values[0]) == (0, 1.5)
    assert (got.steps[-1], got.values[-1]) == (n - 1, 1.0)
    assert len(got.steps) <= max(samples, 4) and got.steps == sorted(set(got.steps))
    assert max(got.values) == max(values) and min(got.values) == min(values)
    # a step range: its own first and last point
    ranged = store.series(pk, "m", samples=samples, min_step=101, max_step=1900)
    assert ranged.steps[0] == 101 and ranged.steps[-1] == 1900
    assert ranged.values[-1] == values[1900]


def test_nan_buckets_and_ties(store: SQLStore) -> None:
    # 40 steps, 4 buckets of 10 (10 samples: 4 buckets and the two ends): all NaN; constant (a tie everywhere); NaN around one number;
    # the maximum before the minimum.
    values: list[Any] = [NAN] * 10 + [3.0] * 10 + [NAN] * 5 + [5.0] + [NAN] * 4
    values += [9.0] + [1.0] * 8 + [0.5]
    pk = _log(store, [{"_step": i, "m": v} for i, v in enumerate(values)])
    got = store.series(pk, "m", samples=10)
    assert got.steps == [0, 10, 25, 30, 39]
    assert math.isnan(got.values[0]) and got.values[1:] == [3.0, 5.0, 9.0, 0.5]


def test_bucket_grid_never_makes_more_buckets_than_asked() -> None:
    rnd = random.Random(0)
    for _ in range(2000):
        first = rnd.randrange(0, 10**6)
        last = first + rnd.randrange(0, 10**6)
        buckets = rnd.randrange(1, 3000)
        base, width = bucket_grid(first, last, buckets)
        assert base <= first and width >= 1
        assert (last - base) // width < buckets
        if width >= 64:
            assert base % 64 == 0 and width % 64 == 0


def test_migration_backfills_the_blocks(store: SQLStore) -> None:
    rnd = random.Random(1)
    rows: list[dict[str, Any]] = []
    for i in range(3000):
        row: dict[str, Any] = {"_step": i * 3, "m": rnd.choice([rnd.random(), NAN, 2, True])}
        if i % 5 == 0:
            row["m2"] = rnd.random()
        rows.append(row)
    _log(store, rows, batch=101)
    columns = (
        "key_id, run_pk, block, n, first_step, last_step, min_value, min_step, max_value, max_step"
    )
    with store.engine.begin() as conn:
        ingested = conn.exec_driver_sql(
            f"SELECT {columns} FROM metric_blocks ORDER BY 1, 2, 3"
        ).all()
        conn.exec_driver_sql("DELETE FROM metric_blocks")
    spec = importlib.util.spec_from_file_location(
        "m0004", _MIGRATIONS / "versions" / "0004_metric_blocks.py"
    )
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(migration._BACKFILL)
        conn.exec_driver_sql(migration._BACKFILL_STEPS)
        backfilled = conn.exec_driver_sql(
            f"SELECT {columns} FROM metric_blocks ORDER BY 1, 2, 3"
        ).all()
    assert len(ingested) > 50 and backfilled == ingested


def test_long_nan_stretches_from_blocks(store: SQLStore) -> None:
    points: list[tuple[int, Any]] = [
        (i, NAN if 640 <= i < 1600 else math.sin(i / 50)) for i in range(3200)
    ]
    pk = _log(store, [{"_step": s, "m": v} for s, v in points], batch=1000)
    for samples, lo in ((40, None), (12, 700), (300, None)):
        _same(store.series(pk, "m", samples=samples, min_step=lo), _expected(points, samples, lo))


def test_steps_out_of_order_in_a_batch(store: SQLStore) -> None:
    # The SDK never does this, but the store does not rely on it: a block seen twice in one
    # batch is merged by the upsert.
    rnd = random.Random(5)
    steps = list(range(0, 2000, 2))
    rnd.shuffle(steps)
    points: list[tuple[int, Any]] = [(s, rnd.choice([rnd.random(), 0.5, NAN])) for s in steps]
    pk = _log(store, [{"_step": s, "m": v} for s, v in points], batch=400)
    ordered = sorted(points, key=lambda p: p[0])
    for samples in (10, 100):
        _same(store.series(pk, "m", samples=samples), _expected(ordered, samples))
