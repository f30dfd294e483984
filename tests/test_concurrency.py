"""Several processes writing runs into one store (SQLite, PostgreSQL) at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import api, store_env

WRITER = """
import sys
import runyard
n, steps = sys.argv[1], int(sys.argv[2])
run = runyard.init(project="load", id=f"w{n}")
for i in range(steps):
    runyard.log({"loss": 1.0 / (i + 1), "acc": i / steps, "step_copy": i})
run.finish()
"""


@pytest.mark.slow
def test_eight_processes_twenty_thousand_steps_each(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    # PostgreSQL has no single-writer lock to contend on: fewer steps there keep the suite short.
    steps = 5000 if store_url else 20000
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(n), str(steps)],
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "RUNYARD_SILENT": "true",
                "RUNYARD_DISABLE_GIT": "true",
                **store_env(store_url),
            },
        )
        for n in range(8)
    ]
    try:
        for proc in procs:
            assert proc.wait(timeout=400) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=30)
    runs = {r.id: r for r in api(root).runs("load")}
    assert sorted(runs) == [f"w{n}" for n in range(8)]
    for run in runs.values():
        assert run.state == "finished"
        assert [r["step_copy"] for r in run.scan_history(keys=["step_copy"])] == list(
            range(steps)
        ), run.id
        assert run.summary["step_copy"] == steps - 1


def _dead_runs(count: int) -> None:
    """``count`` runs of three rows each, left running (the caller's child is then killed)."""
    import runyard

    for n in range(count):
        run = runyard.init(
            project="dead",
            id=f"d{n}",
            reinit="create_new",
            settings=runyard.Settings(flush_interval=60),
        )
        for i in range(3):
            run.log({"i": i})


def _start_and_finish(n: int) -> None:
    import runyard

    if n % 3 == 2:
        runyard.Api()
    else:
        runyard.init(project="live", id=f"l{n}").finish()


def test_concurrent_inits_and_apis_recover_dead_journals_once(tmp_path: Path, root: Path) -> None:
    """Eight processes start at once in a folder full of dead journals: each recovers what it
    finds (journals another process has just retired included) and none crashes."""
    import multiprocessing
    import os

    from tests.conftest import killed_child

    os.environ["RUNYARD_DIR"] = str(root)  # the children find the same folder
    try:
        assert killed_child(_dead_runs, 20) == -9
        assert len(list((root / "journal").glob("*.journal"))) == 20
        context = multiprocessing.get_context("fork")
        children = [context.Process(target=_start_and_finish, args=(n,)) for n in range(8)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
    finally:
        del os.environ["RUNYARD_DIR"]
    assert [c.exitcode for c in children] == [0] * 8
    dead = {r.id: r for r in api(root).runs("dead")}
    assert sorted(dead) == sorted(f"d{n}" for n in range(20))
    for run in dead.values():
        assert run.state == "crashed"
        assert [r["i"] for r in run.scan_history()] == [0, 1, 2], run.id
    assert list((root / "journal").glob("*.journal")) == []


@pytest.mark.slow
def test_thirty_two_writer_processes_on_one_sqlite_store(tmp_path: Path, root: Path) -> None:
    """32 processes contend for SQLite's single write lock: every step of every run is stored
    once (bench/faults.py --writers runs the full 32 x 20,000)."""
    steps = 500
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNYARD_SILENT": "true",
        "RUNYARD_DISABLE_GIT": "true",
        "RUNYARD_DISABLE_STATS": "true",
        "RUNYARD_CONSOLE": "off",
    }
    procs = [
        subprocess.Popen([sys.executable, str(script), str(n), str(steps)], cwd=tmp_path, env=env)
        for n in range(32)
    ]
    try:
        for proc in procs:
            assert proc.wait(timeout=400) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=30)
    runs = {r.id: r for r in api(root).runs("load")}
    assert sorted(runs) == sorted(f"w{n}" for n in range(32))
    for run in runs.values():
        assert run.state == "finished"
        assert [r["step_copy"] for r in run.scan_history(keys=["step_copy"])] == list(range(steps))
