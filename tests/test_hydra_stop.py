"""Real Hydra apps in subprocesses: early termination through ``run.should_stop`` with the
in-process sweeper and with ``runyard agent``, raising ``n_trials`` on resume, and sweeping
nested config groups (``db/engine``, ``+experiment/sub``) with the sweeper and the agent."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from runyard.store.base import TrialRecord
from tests.test_hydra_sweeper import App as SweeperApp

pytestmark = pytest.mark.slow

TRAIN = """
import json, os, time, uuid
from pathlib import Path

import hydra
from omegaconf import OmegaConf

import runyard


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    run = runyard.init(config=OmegaConf.to_container(cfg, resolve=True))
    quality = cfg.x + cfg.db.engine.speed + cfg.get("bonus", 0)
    steps = 0
    for step in range(cfg.steps):
        runyard.log({"score": quality + 0.001 * step})
        steps += 1
        if run.should_stop:
            break
        time.sleep(cfg.sleep)
    out = Path(os.environ["APP_RESULTS"])
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run.id,
        "steps": steps,
        "stop_reason": run.stop_reason,
        "cfg": OmegaConf.to_container(cfg, resolve=True),
    }
    (out / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
    run.finish()
    return quality


if __name__ == "__main__":
    main()
"""

FILES = {
    "conf/config.yaml": """
        defaults:
          - db: mysql
          - _self_
        x: 0.0
        steps: 1
        sleep: 0.0
        """,
    # a group in the defaults list whose option has a nested group of its own (db/engine)
    "conf/db/mysql.yaml": "defaults:\n  - engine: innodb\nname: mysql\n",
    "conf/db/engine/innodb.yaml": "speed: 1\n",
    "conf/db/engine/myisam.yaml": "speed: 2\n",
    # a nested group absent from the defaults list (+experiment/sub=...)
    "conf/experiment/sub/a.yaml": "# @package _global_\nbonus: 10\n",
    "conf/experiment/sub/b.yaml": "# @package _global_\nbonus: 20\n",
    "train.py": TRAIN,
}


class App(SweeperApp):
    files = FILES
    extra_env = {"RUNYARD_STOP_POLL_INTERVAL": "0.2"}

    def sweeper(self, *overrides: str, timeout: float = 180) -> str:
        return self._run(
            [sys.executable, "train.py", "-m", "hydra/sweeper=runyard", *overrides], timeout
        )

    def cli(self, *args: str, timeout: float = 180) -> str:
        return self._run([sys.executable, "-m", "runyard.cli", *args], timeout)

    def _run(self, argv: list[str], timeout: float) -> str:
        proc = subprocess.run(
            argv, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        return output

    def jobs_by_run(self) -> dict[str, dict[str, Any]]:
        return {doc["run_id"]: doc for doc in self.jobs()}


@pytest.fixture
def app(tmp_path: Path) -> App:
    return App(tmp_path / "app")


HYPERBAND = {"type": "hyperband", "min_iter": 3, "eta": 2}
# Trials run one at a time, best first: the first two pass every band (2 runs at a band: the
# threshold is the worse of the two), the next two are worse than the second best at band 3.
XS = [0.9, 0.8, 0.1, 0.05]
#: iterations of a trial that is not stopped (0.1 s each)
STEPS = 40


def _assert_weak_trials_stopped(app: App, trials: list[TrialRecord]) -> None:
    jobs = app.jobs_by_run()
    assert len(trials) == 4 and set(jobs) == {t.run_id for t in trials}
    by_x = {t.params["x"]: t for t in trials}
    for x in (0.9, 0.8):
        trial = by_x[x]
        assert trial.state == "finished", (x, trial.state, trial.failure)
        assert jobs[trial.run_id]["steps"] == STEPS and jobs[trial.run_id]["stop_reason"] is None
    for x in (0.1, 0.05):
        trial = by_x[x]
        job = jobs[trial.run_id]
        assert trial.state == "stopped", (x, trial.state, trial.failure)
        assert trial.failure is not None and trial.failure.startswith("stopped early: hyperband")
        assert job["stop_reason"] and 3 <= job["steps"] < STEPS  # stopped, after the first band
        # the partial metric is kept for the search (best so far: its last value here)
        assert trial.summary["score"] == pytest.approx(x + 1 + 0.001 * (job["steps"] - 1))


def test_sweeper_hyperband_stops_weak_trials_through_should_stop(app: App) -> None:
    out = app.sweeper(
        "hydra.sweeper.method=grid",
        "hydra.sweeper.metric.name=score",
        "hydra.sweeper.metric.goal=maximize",
        "++hydra.sweeper.early_terminate={type:hyperband,min_iter:3,eta:2}",
        f"x={','.join(map(str, XS))}",
        f"steps={STEPS}",
        "sleep=0.1",
    )
    sweep = app.sweep()
    assert sweep.config["early_terminate"] == HYPERBAND
    trials = app.trials(sweep.id)
    _assert_weak_trials_stopped(app, trials)
    assert "stopped" in out and "hyperband" in out
    results = yaml.safe_load(
        next(app.root.glob("multirun/*/*/optimization_results.yaml")).read_text()
    )
    assert results["states"] == {"finished": 2, "stopped": 2}
    assert results["best_params"]["x"] == 0.9


def test_agent_run_stops_itself_through_should_stop(app: App) -> None:
    """The agent checks rarely here (heartbeat 30 s): the run learns the decision itself, ends
    ``stopped`` and exits 0 before the agent would have sent SIGTERM."""
    sweep_file = app.root / "sweep.yaml"
    sweep_file.write_text(
        json.dumps(
            {
                "program": "train.py",
                "method": "grid",
                "metric": {"name": "score", "goal": "maximize"},
                "early_terminate": HYPERBAND,
                "parameters": {
                    "x": {"values": XS},
                    "steps": {"value": STEPS},
                    "sleep": {"value": 0.1},
                },
                "command": ["${env}", "${interpreter}", "${program}", "${args_hydra}"],
            }
        )
    )
    created = app.cli("sweep", str(sweep_file))
    ref = next(line for line in created.splitlines() if "runyard agent " in line).split()[-1]
    out = app.cli("agent", ref, "--heartbeat-interval", "30")
    trials = app.trials(app.sweep().id)
    _assert_weak_trials_stopped(app, trials)
    assert "ignored SIGTERM" not in out and "stopping run" not in out  # the agent never had to


def test_resume_with_more_trials_runs_exactly_the_extra_ones(app: App) -> None:
    first = ("hydra.sweeper.method=random", "hydra.sweeper.seed=5", "x=interval(0,1)")
    app.sweeper(*first, "hydra.sweeper.n_trials=2")
    sweep = app.sweep()
    assert sweep.state == "finished" and len(app.trials(sweep.id)) == 2
    out = app.sweeper(*first, f"hydra.sweeper.sweep_id={sweep.id}", "hydra.sweeper.n_trials=5")
    assert "run_cap raised from 2 to 5" in out and "the finished sweep runs again" in out
    sweep = app.sweep()
    trials = app.trials(sweep.id)
    assert len(trials) == 5 and {t.state for t in trials} == {"finished"}
    assert len({t.params["x"] for t in trials}) == 5
    assert sweep.config["run_cap"] == 5 and sweep.state == "finished"
    # a smaller n_trials is not a way to lower the cap: warned and ignored
    out = app.sweeper(*first, f"hydra.sweeper.sweep_id={sweep.id}", "hydra.sweeper.n_trials=3")
    assert "n_trials=3 is ignored" in out and len(app.trials(sweep.id)) == 5


def test_sweeper_sweeps_nested_groups(app: App) -> None:
    app.sweeper(
        "hydra.sweeper.method=grid",
        "db/engine=innodb,myisam",
        "experiment/sub=a,b",  # absent from the defaults list: the sweeper adds the +
    )
    sweep = app.sweep()
    assert set(sweep.config["parameters"]) == {"db/engine", "experiment/sub"}
    trials = app.trials(sweep.id)
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    jobs = app.jobs_by_run()
    cells = set()
    for trial in trials:
        cfg = jobs[trial.run_id]["cfg"]
        engine, sub = trial.params["db/engine"], trial.params["experiment/sub"]
        assert cfg["db"]["engine"]["speed"] == {"innodb": 1, "myisam": 2}[engine]
        assert cfg["bonus"] == {"a": 10, "b": 20}[sub]
        assert trial.summary["return_value"] == cfg["db"]["engine"]["speed"] + cfg["bonus"]
        cells.add((engine, sub))
    assert len(cells) == 4
    overrides = [
        yaml.safe_load(p.read_text()) for p in app.root.glob("multirun/*/*/*/.hydra/overrides.yaml")
    ]
    assert ["db/engine=myisam", "+experiment/sub=b"] in overrides


def test_agent_sweeps_nested_groups(app: App) -> None:
    sweep_file = app.root / "sweep.yaml"
    sweep_file.write_text(
        textwrap.dedent(
            """
            program: train.py
            method: grid
            metric: {name: score, goal: maximize}
            parameters:
              db/engine: {values: [innodb, myisam]}
              experiment/sub: {values: [a, b]}
              x: {value: 0.5}
            command: ["${env}", "${interpreter}", "${program}", "${args_hydra}"]
            """
        )
    )
    created = app.cli("sweep", str(sweep_file))
    assert "warning" not in created
    ref = next(line for line in created.splitlines() if "runyard agent " in line).split()[-1]
    app.cli("agent", ref)
    sweep = app.sweep()
    trials = app.trials(sweep.id)
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    jobs = app.jobs_by_run()
    for trial in trials:
        cfg = jobs[trial.run_id]["cfg"]
        assert cfg["db"]["engine"]["speed"] == {"innodb": 1, "myisam": 2}[trial.params["db/engine"]]
        assert cfg["bonus"] == {"a": 10, "b": 20}[trial.params["experiment/sub"]]
        assert cfg["x"] == 0.5
        run = app.api().store.find_run(sweep.entity, sweep.project, trial.run_id)
        # the run's config is the composed one: a group's option name is not a config key
        assert run is not None and "db/engine" not in run.config and run.config["x"] == 0.5
    best = max(trials, key=lambda t: t.summary["score"])
    assert best.params == {"db/engine": "myisam", "experiment/sub": "b", "x": 0.5}
