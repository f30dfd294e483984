"""Reading runs back: Api filters and ordering, and the CLI's tables, JSON, CSV and errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import runyard
from runyard.query import QueryError
from tests.conftest import api

CLI = [sys.executable, "-m", "runyard.cli"]


@pytest.fixture
def three_runs(root: Path) -> list[str]:
    ids = []
    for n, (lr, opt) in enumerate([(0.1, "sgd"), (0.01, "adam"), (0.001, "adam")]):
        run = runyard.init(
            project="api",
            id=f"run{n}",
            config={"optimizer": {"lr": lr, "name": opt}},
            tags=["base"] if n else ["base", "first"],
            group="g" if n < 2 else "h",
        )
        for step in range(5):
            run.log({"test/accuracy": (n + 1) * 0.1 + step * 0.01, "loss": lr * (5 - step)})
        run.finish(exit_code=1 if n == 2 else 0)
        ids.append(run.id)
    return ids


def _cli(tmp_path: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        CLI + list(args), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_filters_and_order(root: Path, store_url: str | None, three_runs: list[str]) -> None:
    a = api(root)
    ids = lambda runs: [r.id for r in runs]  # noqa: E731
    assert ids(a.runs("api", {"config.optimizer.name": "adam"}, order="config.optimizer.lr")) == [
        "run2",
        "run1",
    ]
    assert ids(a.runs("api", {"config.optimizer.lr": {"$lt": 0.05}, "state": "finished"})) == [
        "run1"
    ]
    assert ids(a.runs("api", order="-summary.test/accuracy")) == ["run2", "run1", "run0"]
    assert ids(a.runs("api", {"tags": "first"})) == ["run0"]
    assert ids(
        a.runs("api", {"$or": [{"group": "h"}, {"tags": {"$in": ["first"]}}]}, order="id")
    ) == ["run0", "run2"]
    assert ids(a.runs("api", {"name": {"$regex": "^nope"}})) == []
    assert a.run("api/run1").config["optimizer"]["lr"] == 0.01
    assert a.run("run1").id == "run1"
    with pytest.raises(QueryError, match="unknown field 'colour'"):
        a.runs("api", {"colour": 1})
    with pytest.raises(QueryError, match=r"unknown operator '\$near'"):
        a.runs("api", {"config.x": {"$near": 1}})
    with pytest.raises(LookupError, match="no run"):
        a.run("api/missing")


def test_cli_ls_table_json_csv(tmp_path: Path, three_runs: list[str]) -> None:
    table = _cli(tmp_path, "runs", "ls", "api").stdout
    assert "run0" in table and "failed" in table and "0.34" in table  # summary column shown
    rows = json.loads(
        _cli(
            tmp_path,
            "runs",
            "ls",
            "api",
            "--format",
            "json",
            "-s",
            "config.optimizer.lr",
            "-c",
            "config.optimizer.lr,summary.loss",
        ).stdout
    )
    assert [(r["id"], r["config.optimizer.lr"]) for r in rows] == [
        ("run2", 0.001),
        ("run1", 0.01),
        ("run0", 0.1),
    ]
    assert rows[0]["state"] == "failed"
    parsed = list(
        csv.DictReader(
            io.StringIO(
                _cli(tmp_path, "runs", "ls", "--format", "csv", "-f", "state=finished").stdout
            )
        )
    )
    assert sorted(r["id"] for r in parsed) == ["run0", "run1"]


def test_cli_show_and_export(tmp_path: Path, three_runs: list[str]) -> None:
    shown = _cli(tmp_path, "runs", "show", "api/run0").stdout
    assert "optimizer" in shown and "test/accuracy" in shown and "finished" in shown
    doc = json.loads(_cli(tmp_path, "runs", "show", "run2", "--format", "json").stdout)
    assert (
        doc["state"] == "failed"
        and doc["exit_code"] == 1
        and doc["metrics"] == ["loss", "test/accuracy"]
    )
    exported = list(
        csv.DictReader(io.StringIO(_cli(tmp_path, "runs", "export", "api/run1").stdout))
    )
    assert [int(r["_step"]) for r in exported] == list(range(5))
    assert float(exported[-1]["loss"]) == pytest.approx(0.01)
    out = tmp_path / "h.jsonl"
    _cli(tmp_path, "runs", "export", "run1", "--format", "jsonl", "-k", "loss", "-o", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and set(lines[0]) == {"_step", "_runtime", "_timestamp", "loss"}
    projects = json.loads(_cli(tmp_path, "projects", "--format", "json").stdout)
    assert projects[0]["project"] == "api" and projects[0]["runs"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "ls", "-f", "config.lr<<1"], "cannot read filter"),
        (["runs", "ls", "-f", "colour=red"], "unknown field 'colour'"),
        (["runs", "ls", "-s", "bogus"], "unknown field 'bogus'"),
        (["runs", "show", "nope"], "no run 'nope'"),
        (["runs", "export", "a/b/c/d"], "not a run path"),
    ],
)
def test_cli_errors_are_one_clear_line(
    tmp_path: Path, three_runs: list[str], args: list[str], message: str
) -> None:
    proc = _cli(tmp_path, *args, ok=False)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_stale_running_run_is_marked_crashed(root: Path, store_url: str | None) -> None:
    """A run left 'running' by a process that no longer exists (no journal) is crashed."""
    from runyard.store import JournalBatch

    a = api(root)
    header = {
        "entity": "e",
        "project": "stale",
        "run_id": "ghost",
        "name": "g",
        "journal_id": "jg",
        "start_time": 1.0,
        "host": __import__("socket").gethostname(),
        "pid": 2**22 + 12345,
    }
    a.store.apply(JournalBatch("jg", header, [(1, "run", header)]))
    assert a.store.find_run("e", "stale", "ghost").state == "running"  # type: ignore[union-attr]
    assert api(root).run("e/stale/ghost").state == "crashed"
