"""The examples run as shipped (copies in tmp_path, so the repository stays clean)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, api

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update({"RUNYARD_SILENT": "true", "RUNYARD_DISABLE_GIT": "true"})
    return env


def test_hydra_quickstart_sweep_with_an_agent(tmp_path: Path) -> None:
    app = tmp_path / "hydra_quickstart"
    shutil.copytree(
        REPO / "examples" / "hydra_quickstart",
        app,
        ignore=shutil.ignore_patterns(".runyard", "outputs", "multirun"),
    )
    cli = [sys.executable, "-m", "runyard.cli"]
    out = subprocess.run(
        [*cli, "sweep", "sweep.yaml", "--seed", "3"],
        cwd=app,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    ref = next(li for li in out.splitlines() if "runyard agent " in li).split()[-1]
    assert ref.startswith("lab/hydra-quickstart/")
    subprocess.run(
        [*cli, "agent", ref, "--count", "3"],
        cwd=app,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    runs = api(app / ".runyard").runs("lab/hydra-quickstart")
    assert len(runs) == 3 and all(r.state == "finished" for r in runs)
    for run in runs:
        params = run.sweep_params
        assert run.config["train"]["lr"] == params["train.lr"]
        assert run.config["model"]["kind"] == params["model"]
        assert run.config["train"]["epochs"] == {"short": 4, "long": 16}[params["experiment"]]
        assert 0.5 < run.summary["test/accuracy"] <= 1.0
        assert (
            len(run.history(keys=["test/accuracy"], pandas=False)) == run.config["train"]["epochs"]
        )


def test_plain_sdk_quickstart(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart" / "demo.py")],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    runs = api(tmp_path / ".runyard").runs("quickstart")
    assert len(runs) == 4 and all(r.summary["test/accuracy"]["max"] > 0.8 for r in runs)


def test_hydra_quickstart_bayes_sweeper_beats_its_first_five_trials(tmp_path: Path) -> None:
    app = tmp_path / "hydra_quickstart"
    shutil.copytree(
        REPO / "examples" / "hydra_quickstart",
        app,
        ignore=shutil.ignore_patterns(".runyard", "outputs", "multirun"),
    )
    env = _env() | {"RUNYARD_DIR": str(app / ".runyard")}
    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "-m",
            "hydra/sweeper=runyard",
            "hydra.sweeper.sweep_config=sweep.yaml",
            "hydra.sweeper.n_trials=20",
            "hydra.sweeper.seed=0",
        ],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    runs = sorted(api(app / ".runyard").runs("lab/hydra-quickstart"), key=lambda r: r.created_at)
    assert len(runs) == 20 and all(r.state == "finished" for r in runs)
    accuracy = [r.summary["test/accuracy"] for r in runs]
    assert max(accuracy[5:]) > max(accuracy[:5])
    assert list(app.glob("multirun/*/*/optimization_results.yaml"))
