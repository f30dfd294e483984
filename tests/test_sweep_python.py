"""Python-defined sweeps, as W&B's: ``runyard.sweep(config)`` and ``runyard.agent(sweep_id,
function=train, count=N)``, in this process, in forked processes sharing one sweep, and in a
real Jupyter kernel."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.api import Api
from runyard.sweeps.config import SweepConfigError

GRID = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "lr": {"values": [0.1, 0.2, 0.3]},
        "opt": {"parameters": {"mom": {"value": 0.9}}},
    },
}


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [k for k in os.environ if k.startswith("RUNYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path / ".runyard"))
    monkeypatch.setenv("RUNYARD_SILENT", "true")
    monkeypatch.setenv("RUNYARD_DISABLE_GIT", "true")
    monkeypatch.setenv("RUNYARD_PROJECT", "notebook")
    yield tmp_path / ".runyard"


def test_function_agent_runs_each_trial_as_a_run_and_goes_on_after_an_exception(
    store_dir: Path,
) -> None:
    seen: list[dict[str, Any]] = []

    def train() -> None:
        with runyard.init(config={"lr": 1.0, "epochs": 2}) as run:
            seen.append({"run": run.id, "config": dict(runyard.config.as_dict())})
            if runyard.config.lr == 0.2:
                raise ValueError("diverged")
            runyard.log({"loss": runyard.config.lr * 10})

    with pytest.raises(SweepConfigError, match="parameters"):
        runyard.sweep({"method": "grid"})
    sweep_id = runyard.sweep(GRID)
    runyard.agent(sweep_id, function=train, count=2)  # two trials, then the agent returns
    api = Api(dir=str(store_dir))
    record = api.store.get_sweep(sweep_id)
    assert record is not None
    runyard.agent(record.path, function=train)  # entity/project/id works too: the rest
    record = api.store.get_sweep(sweep_id)
    assert record is not None and record.project == "notebook" and record.state == "finished"
    trials = api.store.sweep_trials(sweep_id)
    assert [t.params["lr"] for t in trials] == [0.1, 0.2, 0.3]
    assert [t.state for t in trials] == ["finished", "failed", "finished"]
    assert [t.summary.get("loss") for t in trials] == [1.0, None, 3.0]
    assert "ValueError: diverged" in (trials[1].failure or "")
    # each trial was its own run, with its parameters in runyard.config (over init's defaults)
    assert [s["run"] for s in seen] == [t.run_id for t in trials]
    for trial, job in zip(trials, seen, strict=True):
        assert job["config"] == {"lr": trial.params["lr"], "epochs": 2, "opt": {"mom": 0.9}}
    assert runyard.run is None and "RUNYARD_RUN_ID" not in os.environ  # nothing left behind


def test_ctrl_c_ends_the_agent_cleanly_and_a_wrong_project_is_named(store_dir: Path) -> None:
    calls: list[float] = []

    def train() -> None:
        runyard.init()
        calls.append(runyard.config.lr)
        if len(calls) == 2:
            raise KeyboardInterrupt

    sweep_id = runyard.sweep(GRID, project="p2")
    runyard.agent(sweep_id, function=train)  # returns: no traceback
    trials = Api(dir=str(store_dir)).store.sweep_trials(sweep_id)
    assert [t.state for t in trials] == ["finished", "killed"] and calls == [0.1, 0.2]
    with pytest.raises(ValueError, match="not project 'other'"):
        runyard.agent(sweep_id, function=train, project="other")


def _agent_process(sweep_id: str, count: int) -> None:  # in a forked child
    def train() -> None:
        with runyard.init() as run:
            run.log({"loss": float(runyard.config.lr)})

    runyard.agent(sweep_id, function=train, count=count)
    os._exit(0)


def test_several_processes_run_agents_on_one_sweep(store_dir: Path) -> None:
    sweep_id = runyard.sweep(
        {"method": "grid", "parameters": {"lr": {"values": [1, 2, 3, 4, 5, 6]}}}
    )
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=_agent_process, args=(sweep_id, 3)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    trials = Api(dir=str(store_dir)).store.sweep_trials(sweep_id)
    assert sorted(t.params["lr"] for t in trials) == [1, 2, 3, 4, 5, 6]  # no cell twice
    assert {t.state for t in trials} == {"finished"}
    assert len({t.agent_id for t in trials}) == 2


NOTEBOOK_CELLS = [
    "import runyard",
    """
def train():
    run = runyard.init(config={"batch": 32})
    runyard.log({"loss": runyard.config.lr * runyard.config.batch})
    run.finish()
""",
    """
sweep_id = runyard.sweep({"method": "random", "run_cap": 3,
                          "parameters": {"lr": {"min": 0.0, "max": 1.0}}})
runyard.agent(sweep_id, function=train, count=3)
print("SWEEP", sweep_id)
""",
]


def test_works_in_a_jupyter_kernel(store_dir: Path) -> None:
    import nbclient
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(code) for code in NOTEBOOK_CELLS]
    )
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": "."}}
    )
    client.execute(env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    text = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    sweep_id = text.split("SWEEP ", 1)[1].split()[0]
    trials = Api(dir=str(store_dir)).store.sweep_trials(sweep_id)
    assert len(trials) == 3 and {t.state for t in trials} == {"finished"}
    for trial in trials:
        assert trial.summary["loss"] == pytest.approx(trial.params["lr"] * 32)
