"""The Hydra callback and sweeper through ``hydra/launcher=submitit_local`` (real apps, as
subprocesses).

submitit's local executor pickles the launcher (with the task function) into its folder and
runs every job in a fresh ``python -m submitit.local._local`` process, which starts the task in
a process of its own; the results come back as pickles. Nothing of the launching process is
shared with the jobs but the environment and the files, as on a SLURM node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_hydra_callback import APP_WITH_INIT, APP_WITHOUT_INIT, _app, _runs
from tests.test_hydra_sweeper import App


def _submitit(folder: Path) -> tuple[str, ...]:
    """Run each job through submitit's local executor, its files in the test's folder; no GPU
    for the jobs whatever the machine has (``CUDA_VISIBLE_DEVICES`` is then empty)."""
    return (
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=2",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.gpus_per_node=0",
        f"hydra.launcher.submitit_folder={folder}/%j",
    )


def _submitted_jobs(folder: Path) -> list[Path]:
    """The jobs submitit ran: one ``<job id>_0_result.pkl`` per job in its folder."""
    return sorted(folder.glob("*/*_result.pkl"))


# -- the callback --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("code", [APP_WITH_INIT, APP_WITHOUT_INIT], ids=["init", "no-init"])
def test_callback_records_each_submitit_job(tmp_path: Path, root: Path, code: str) -> None:
    with_init = code is APP_WITH_INIT
    code = code.replace(
        'if __name__ == "__main__":\n',
        'if __name__ == "__main__":\n    open("main.pid", "w").write(str(__import__("os").getpid()))\n',
    )
    _app(tmp_path, code)
    folder = tmp_path / "submitit"
    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "-m",
            "hydra/callbacks=runyard",
            *_submitit(folder),
            "lr=0.1,0.5",
            "model=small,big",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "RUNYARD_SILENT": "true",
            "RUNYARD_DISABLE_GIT": "true",
            "HYDRA_FULL_ERROR": "1",
        },
        check=False,
    )
    # Hydra's basic sweeper raises the first failure once the batch is back.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ValueError: diverged at lr=0.5" in proc.stderr
    assert len(_submitted_jobs(folder)) == 4

    runs = _runs(root)
    assert len(runs) == 4 and len({r.id for r in runs}) == 4
    seen = {(r.config["lr"], r.config["model"]["units"]) for r in runs}
    assert seen == {(lr, units) for lr in (0.1, 0.5) for units in (4, 64)}
    for run in runs:
        assert run.config["name"] == f"exp-{run.config['model']['units']}"
        hydra = run.metadata["hydra"]
        assert hydra["choices"]["hydra/launcher"] == "submitit_local"
        assert hydra["mode"] == "MULTIRUN"
        # submitit's job id (the local job's process id), not Hydra's "job_id_for_<n>"
        assert hydra["job_id"].isdigit()
        if run.config["lr"] == 0.5:
            assert run.state == "failed"
            assert "Traceback" in run.failure and "ValueError: diverged at lr=0.5" in run.failure
        else:
            assert run.state == "finished" and run.failure is None
            if with_init:
                assert run.summary["loss"] == 0.1 and run.summary["epochs"] == 3
                assert run.summary["best/loss"] == 0.05
                assert run.config["extra"] == {"seed": 7}
            else:
                assert run.summary["return_value"] == pytest.approx(1.0)
    assert sorted(r.metadata["hydra"]["job_num"] for r in runs) == [0, 1, 2, 3]
    assert len({r.group for r in runs}) == 1
    # every job ran in a process of its own, none in the launching one
    main_pid = int((tmp_path / "main.pid").read_text())
    pids = {r.record.pid for r in runs}
    assert len(pids) == 4 and main_pid not in pids
    for run in runs:
        model = {4: "small", 64: "big"}[run.config["model"]["units"]]
        assert run.metadata["hydra"]["overrides"] == [f"lr={run.config['lr']}", f"model={model}"]


# -- the sweeper ---------------------------------------------------------------------------------


def _sweep(app: App, *overrides: str, ok: bool = True) -> str:
    return app.run(
        *_submitit(app.root / "submitit"), "hydra.sweeper.max_batch_size=2", *overrides, ok=ok
    )


@pytest.mark.slow
def test_sweeper_random_sweep_through_submitit(tmp_path: Path) -> None:
    app = App(tmp_path / "app")
    out = _sweep(
        app,
        "hydra.sweeper.method=random",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.seed=3",
        "hydra.sweeper.metric.name=loss",
        "x=interval(0,1)",
        "db=mysql,postgres",
        "track=true,false",  # the task joins its trial's run (or not) in submitit's process
    )
    assert out.count("Submitit 'local' sweep output dir") == 2  # two batches of 2
    assert len(_submitted_jobs(app.root / "submitit")) == 4
    sweep = app.sweep()
    assert sweep.method == "random" and sweep.config["run_cap"] == 4
    trials = app.trials(sweep.id)
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    jobs: dict[str, dict[str, Any]] = {job["env_run_id"]: job for job in app.jobs()}
    assert set(jobs) == {t.run_id for t in trials}
    pids = {job["pid"] for job in jobs.values()}
    assert len(pids) == 4 and os.getpid() not in pids
    for trial in trials:
        job = jobs[trial.run_id]
        # the trial's values reached the job through env_set and Hydra's overrides
        assert job["cfg"]["x"] == trial.params["x"] and 0 <= trial.params["x"] <= 1
        assert job["cfg"]["db"] == {"driver": trial.params["db"]}
        assert job["cfg"]["track"] is trial.params["track"]
        assert job["tracked"] == (trial.run_id if trial.params["track"] else None)
        # the objective: logged by a tracked task, else the return value under metric.name
        assert trial.summary["loss"] == pytest.approx(job["loss"])
        run = app.api().store.find_run(sweep.entity, sweep.project, trial.run_id)
        assert run is not None and run.state == "finished"
        assert run.config["db"] == {"driver": trial.params["db"]}
    best = min(trials, key=lambda t: t.summary["loss"])
    results = app.results_file()
    assert results["sweep"] == sweep.path and results["n_trials"] == 4
    assert results["states"] == {"finished": 4}
    assert results["metric"] == {"name": "loss", "goal": "minimize"}
    assert results["best_run"] == best.run_id
    assert results["best_value"] == pytest.approx(best.summary["loss"])
    assert results["best_params"] == best.params
    assert f"x={best.params['x']}" in results["best_overrides"]


@pytest.mark.slow
def test_sweeper_grid_with_failing_and_open_trials_through_submitit(tmp_path: Path) -> None:
    """A job's exception comes back pickled by submitit and fails its trial; a run the task
    leaves open in submitit's process is settled too."""
    app = App(tmp_path / "app")
    _sweep(
        app,
        "hydra.sweeper.method=grid",
        "x=0.1,0.2",
        "leave_open=false,true",
        "track=true",
        "fail_x=0.2",
        ok=False,
    )
    sweep = app.sweep()
    trials = app.trials(sweep.id)
    assert len(trials) == 4
    states = {(t.params["x"], t.params["leave_open"]): t.state for t in trials}
    assert states == {
        (0.1, False): "finished",
        (0.1, True): "finished",
        (0.2, False): "failed",
        (0.2, True): "failed",
    }
    for trial in trials:
        if trial.state == "failed":
            assert trial.failure == "the job raised ValueError: x=0.2 is cursed"
        else:
            assert trial.summary["return_value"] == pytest.approx(0.04 + 0.25 + 0.01)
    results = app.results_file()
    assert results["states"] == {"finished": 2, "failed": 2}
    assert results["best_params"]["x"] == 0.1
