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
