"""The SQL store: migrations, idempotent batches, and the same behaviour on PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

import runyard
from runyard.store import JournalBatch, RunConflictError, RunQuery
from runyard.store.sql import _MIGRATIONS, SCHEMA_REVISION, SQLStore
from tests import pg


def test_schema_revision_is_the_alembic_head() -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION


def _header(run_id: str = "r1", resume: bool = False) -> dict:
    return {
        "entity": "e",
        "project": "p",
        "run_id": run_id,
        "name": "n",
        "config": {"lr": 0.1, "nested": {"x": [1, 2]}},
        "tags": ["t"],
        "start_time": 1.0,
        "journal_id": "j-" + run_id,
        "resume": resume,
        "meta": {"host": "h"},
    }


def _rows(start: int, stop: int) -> list[tuple[int, str, dict]]:
    return [
        (
            i + 2,
            "row",
            {
                "_step": i,
                "_runtime": float(i),
                "_timestamp": 100.0 + i,
                "loss": 1.0 / (i + 1),
                "flag": i % 2 == 0,
                "nan": {"__f__": "nan"},
                "label": f"s{i}",
            },
        )
        for i in range(start, stop)
    ]


def test_batches_are_idempotent(store: SQLStore) -> None:
    header = _header()
    first = [(1, "run", header), *_rows(0, 10)]
    assert store.apply(JournalBatch("j-r1", header, first, summary={"loss": 0.1})) == 11
    # The same records again, and an overlapping batch: nothing duplicated, nothing lost.
    assert store.apply(JournalBatch("j-r1", header, first)) == 11
    overlap = [
        *_rows(5, 20),
        (22, "finish", {"state": "finished", "exit_code": 0, "time": 5.0, "runtime": 4.0}),
    ]
    assert store.apply(JournalBatch("j-r1", header, overlap, summary={"loss": 0.05})) == 22
    run = store.find_run("e", "p", "r1")
    assert run is not None and run.state == "finished" and run.last_step == 19
    assert run.config == {"lr": 0.1, "nested": {"x": [1, 2]}} and run.summary == {"loss": 0.05}
    rows = store.history(run.pk)
    assert [r["_step"] for r in rows] == list(range(20))
    assert rows[3]["flag"] is False and rows[4]["flag"] is True and rows[4]["label"] == "s4"
    assert math.isnan(rows[0]["nan"]) and rows[1]["loss"] == 0.5
    assert store.journal_progress("j-r1") == 22
    assert store.metric_names(run.pk) == ["flag", "label", "loss", "nan"]


def test_a_second_run_with_the_same_id_needs_resume(store: SQLStore) -> None:
    header = _header()
    store.apply(JournalBatch("j-r1", header, [(1, "run", header)]))
    other = dict(header, journal_id="j-other")
    with pytest.raises(RunConflictError, match="resume='allow'"):
        store.apply(JournalBatch("j-other", other, [(1, "run", other)]))
    resumed = dict(other, resume=True)
    store.apply(JournalBatch("j-other", resumed, [(1, "run", resumed), *_rows(0, 2)]))
    assert len(store.list_runs(RunQuery(project="p"))) == 1


def test_projects_and_queries(store: SQLStore) -> None:
    for n in range(3):
        header = _header(f"r{n}")
        store.apply(JournalBatch(f"j-r{n}", header, [(1, "run", header)]))
    assert store.list_projects() == [("e", "p", 3)]
    assert [r.run_id for r in store.list_runs(RunQuery(project="p", run_ids=["r1"]))] == ["r1"]
    assert len(store.list_runs(RunQuery(states=["running"], limit=2))) == 2


def test_sdk_against_postgresql(tmp_path: Path) -> None:
    with pg.fresh_schema() as url:
        run = runyard.init(project="pg", settings=runyard.Settings(store=url), config={"a": 1})
        for i in range(100):
            run.log({"i": i, "nan": math.nan})
        run.finish()
        opened = runyard.Api(store=url, dir=tmp_path / ".runyard")
        stored = opened.run(f"pg/{run.id}")
        assert stored.state == "finished" and stored.config == {"a": 1}
        assert [r["i"] for r in stored.scan_history()] == list(range(100))
        assert math.isnan(stored.summary["nan"])
        opened.store.close()
