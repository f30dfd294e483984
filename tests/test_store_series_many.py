"""Store.series_many: one metric of many runs in one call (the workspace's charts), on SQLite
and PostgreSQL. The batched answer must be that of ``Store.series`` run by run (same points),
except that it may answer large calls from whole blocks, which still keeps every bucket's
extremes and the first and last point."""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from runyard.store import JournalBatch, sql_series
from runyard.store.base import Store
from runyard.store.sql import SQLStore


def _run(store: SQLStore, run_id: str, rows: list[dict[str, Any]], batch: int = 997) -> int:
    header = {"entity": "e", "project": "p", "run_id": run_id, "journal_id": f"j-{run_id}"}
    records: list[Any] = [(1, "run", header)] + [(i + 2, "row", r) for i, r in enumerate(rows)]
    for lo in range(0, len(records), batch):
        store.apply(JournalBatch(f"j-{run_id}", header, records[lo : lo + batch]))
    run = store.find_run("e", "p", run_id)
    assert run is not None
    return run.pk


def _rows(n: int, seed: int, start: int = 0) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        step = start + i
        value: Any = math.sin(step / 37) + rnd.uniform(-0.2, 0.2)
        if rnd.random() < 0.02:
            value = {"__f__": "nan"}
        row: dict[str, Any] = {
            "_step": step,
            "_runtime": 0.5 * step,
            "_timestamp": 1.7e9 + 0.5 * step,
            "loss": value,
            "global_step": 10 * step,
        }
        if step % 7 == 0:
            row["epoch"] = step // 7  # logged at a seventh of the steps
        out.append(row)
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SQLStore, dict[str, int]]]:
    """One store per backend for the module (filling it is most of the time), with runs of
    every size: shorter than the samples, bucketed from points, from blocks."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('many') / 'store.db'}"
        else:
            from tests import pg

            url = stack.enter_context(pg.fresh_schema())
        store = SQLStore(url)
        stack.callback(store.close)
        sizes = {"a": 40, "b": 700, "c": 3000, "d": 8000, "e": 1}
        pks = {n: _run(store, n, _rows(size, seed=i)) for i, (n, size) in enumerate(sizes.items())}
        pks["nokey"] = _run(store, "nokey", [{"_step": 0, "other": 1.0}])
        yield store, pks


@pytest.fixture
def store(filled: tuple[SQLStore, dict[str, int]]) -> SQLStore:
    return filled[0]


@pytest.fixture
def runs(filled: tuple[SQLStore, dict[str, int]]) -> dict[str, int]:
    return filled[1]


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("samples", [200, 1000, 2])
def test_batch_equals_series_run_by_run(
    store: SQLStore, runs: dict[str, int], samples: int
) -> None:
    got = store.series_many(list(runs.values()), "loss", samples)
    assert set(got) == set(runs.values())
    for name, pk in runs.items():
        want = store.series(pk, "loss", samples)
        one = got[pk]
        assert (one.steps, one.total, one.downsampled) == (want.steps, want.total, want.downsampled)
        assert _same(one.values, want.values), name
        assert one.xs == [float(s) for s in one.steps] and one.x == "_step"
    assert got[runs["nokey"]].steps == [] and got[runs["nokey"]].total == 0


def test_the_base_class_default_gives_the_same_answer(
    store: SQLStore, runs: dict[str, int]
) -> None:
    pks = [runs["a"], runs["c"], runs["nokey"]]
    for x in ("_step", "_runtime", "global_step"):
        fast = store.series_many(pks, "loss", 300, x=x)
        slow = Store.series_many(store, pks, "loss", 300, x=x)
        for pk in pks:
            assert (fast[pk].steps, fast[pk].xs) == (slow[pk].steps, slow[pk].xs), (x, pk)
            assert _same(fast[pk].values, slow[pk].values)


def test_large_calls_are_answered_from_blocks(
    store: SQLStore, runs: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_series, "POINT_BUDGET", 500)
    pks = [runs["b"], runs["c"], runs["d"]]
    got = store.series_many(pks, "loss", 1000)
    for pk in pks:
        exact = store.series(pk, "loss", 10**6)  # every point
        points = dict(zip(exact.steps, exact.values, strict=True))
        one = got[pk]
        assert one.downsampled and one.total == exact.total
        assert len(one.steps) <= 1000 and one.steps == sorted(set(one.steps))
        assert one.steps[0] == exact.steps[0] and one.steps[-1] == exact.steps[-1]
        assert all(_same([points[s]], [v]) for s, v in zip(one.steps, one.values, strict=True))
        finite = [v for v in exact.values if not math.isnan(v)]
        assert max(one.values) == max(finite) and min(one.values) == min(finite)
    # the largest run went to blocks first: it is coarser than what series() gives
    assert len(got[runs["d"]].steps) < len(store.series(runs["d"], "loss", 1000).steps)


def test_blocks_of_nan_and_ties_answer_like_series(store: SQLStore) -> None:
    """Whole blocks (and buckets) of NaN keep their first point as NaN; a constant stretch
    keeps the first step of its minimum and maximum (ties go to the first occurrence), and
    negative steps bucket like the others: the batch equals ``series()`` run by run."""
    rows: list[dict[str, Any]] = []
    for step in range(-300, 6000):
        if 1000 <= step < 1700:
            value: Any = {"__f__": "nan"}
        elif 3000 <= step < 4200:
            value = 0.25  # a plateau: every point of it ties
        else:
            value = math.cos(step / 50)
        rows.append({"_step": step, "loss": value})
    pk = _run(store, "nan-stretch", rows)
    for samples in (60, 200, 1000):
        got = store.series_many([pk], "loss", samples)[pk]
        want = store.series(pk, "loss", samples)
        assert got.steps == want.steps and _same(got.values, want.values), samples
        assert got.steps[0] == -300 and got.steps[-1] == 5999
        assert any(math.isnan(v) for v in got.values) and 0.25 in got.values


def test_pages_follow_appends_and_go_with_their_run(store: SQLStore) -> None:
    """``metric_pages`` is rewritten with its blocks: a run that goes on (batches that continue
    a block, and one that starts a new page) reads like ``series()`` after each batch, and
    deleting the run removes its pages with its blocks."""
    rows = _rows(10_000, seed=7)
    header = {"entity": "e", "project": "p", "run_id": "growing", "journal_id": "j-growing"}
    records: list[Any] = [(1, "run", header)] + [(i + 2, "row", r) for i, r in enumerate(rows)]
    for lo, hi in ((0, 4000), (4000, 4001), (4001, 4130), (4130, 10_001)):
        store.apply(JournalBatch("j-growing", header, records[lo:hi]))
        run = store.find_run("e", "p", "growing")
        assert run is not None
        for samples in (150, 2000):
            got = store.series_many([run.pk], "loss", samples)[run.pk]
            want = store.series(run.pk, "loss", samples)
            assert got.steps == want.steps and _same(got.values, want.values), (hi, samples)
    with store.engine.connect() as conn:
        pages = f"SELECT count(*) FROM metric_pages WHERE run_pk = {run.pk}"
        # 10,000 steps: 3 pages of 4096 for each of loss, global_step, epoch
        assert conn.exec_driver_sql(pages).scalar() == 9
    store.delete_run("e", "p", "growing", force=True)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql(pages).scalar() == 0


def test_pages_take_steps_logged_out_of_order(store: SQLStore) -> None:
    """A batch whose steps land before and inside blocks already stored (steps logged out of
    order) rewrites the middle of their pages: the batched read still equals ``series()``."""
    header = {"entity": "e", "project": "p", "run_id": "gappy", "journal_id": "j-gappy"}
    first = [{"_step": s, "v": math.sin(s / 40)} for s in range(0, 9000, 10)]
    later = [{"_step": s, "v": 5.0 if s == 2005 else -math.cos(s / 40)} for s in range(5, 3000, 10)]
    records: list[Any] = [(1, "run", header)]
    records += [(len(records) + 1 + i, "row", r) for i, r in enumerate(first + later)]
    store.apply(JournalBatch("j-gappy", header, records[: 1 + len(first)]))
    store.apply(JournalBatch("j-gappy", header, records[1 + len(first) :]))
    run = store.find_run("e", "p", "gappy")
    assert run is not None
    for samples in (100, 400):
        got = store.series_many([run.pk], "v", samples)[run.pk]
        want = store.series(run.pk, "v", samples)
        assert got.steps == want.steps and _same(got.values, want.values), samples
        assert got.total == len(first) + len(later) and max(got.values) == 5.0


def test_since_gives_only_the_later_points(store: SQLStore, runs: dict[str, int]) -> None:
    live, pk_a = _run(store, "live", _rows(300, seed=5)), runs["a"]
    got = store.series_many([live, pk_a], "loss", 500, since={live: 289})
    assert got[live].steps == list(range(290, 300)) and got[live].total == 10
    assert got[pk_a].steps == list(range(40))  # no since: everything
    # the run goes on: the next batch arrives, the tail is asked from the last step seen
    more = _rows(5, seed=99, start=300)
    header = {"entity": "e", "project": "p", "run_id": "live", "journal_id": "j-live"}
    records: list[Any] = [(302 + i, "row", r) for i, r in enumerate(more)]  # the same journal
    store.apply(JournalBatch("j-live", header, records))
    tail = store.series_many([live], "loss", 500, since={live: 299})[live]
    assert tail.steps == [300, 301, 302, 303, 304] and tail.total == 5


@pytest.mark.parametrize("samples", [100, 2000])
def test_x_axes(store: SQLStore, runs: dict[str, int], samples: int) -> None:
    pks = [runs["a"], runs["c"], runs["d"]]
    by_time = store.series_many(pks, "loss", samples, x="_runtime")
    wall = store.series_many(pks, "loss", samples, x="_timestamp")
    by_global = store.series_many(pks, "loss", samples, x="global_step")
    by_epoch = store.series_many(pks, "loss", samples, x="epoch")
    for pk in pks:
        steps = store.series(pk, "loss", samples).steps
        assert by_time[pk].steps == steps and by_time[pk].xs == [0.5 * s for s in steps]
        assert wall[pk].xs == [1.7e9 + 0.5 * s for s in steps]
        assert by_global[pk].xs == [10.0 * s for s in steps]  # logged at every step: exact
        # epoch is logged every 7th step: interpolated between, the tail after the last
        # logged epoch left out
        ep = by_epoch[pk]
        last_epoch_step = (steps[-1] // 7) * 7
        assert ep.steps == [s for s in steps if s <= last_epoch_step]
        assert ep.xs == pytest.approx([s / 7 for s in ep.steps])
    missing = store.series_many(pks, "loss", samples, x="nope")
    assert all(s.steps == [] for s in missing.values())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_from_before_pages_gets_them_on_open(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Migration 0010 builds ``metric_pages`` from the blocks of a store made before them:
    the batched read of the upgraded store is the single-run read, point for point."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'store.db'}"
        else:
            from tests import pg

            url = stack.enter_context(pg.fresh_schema())
        store = SQLStore(url)
        pks = [_run(store, f"old{i}", _rows(n, seed=i)) for i, n in enumerate((50, 5000, 9000))]
        with store.engine.begin() as conn:  # back to revision 0009: no pages yet
            conn.exec_driver_sql("DROP TABLE metric_pages")
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0009'")
        store.close()
        store = SQLStore(url)
        stack.callback(store.close)
        assert store.current_revision() == "0010"
        for samples in (100, 1000):
            got = store.series_many(pks, "loss", samples)
            for pk in pks:
                want = store.series(pk, "loss", samples)
                assert got[pk].steps == want.steps and _same(got[pk].values, want.values)
                assert got[pk].total == want.total
