"""The ``runyard`` Hydra sweeper end to end: real Hydra apps run as subprocesses.

Each test writes a small Hydra app into its folder (config groups ``db`` in the defaults list
and ``experiment`` outside it, plain keys) and runs ``python train.py -m
hydra/sweeper=runyard ...``; the results are read back from the store (``RUNYARD_DIR`` in the
test's folder), from the sweep folder and from what each job wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from runyard.api import Api
from runyard.integrations.hydra.sweeper import (
    RunyardSweeperError,
    parse_search_space,
    return_summary,
    spec_from_override,
)
from runyard.store.base import SweepRecord, TrialRecord

TRAIN = """
import json, os, time, uuid
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    out = Path(os.environ["APP_RESULTS"])
    out.mkdir(parents=True, exist_ok=True)
    hc = HydraConfig.get()
    multirun = str(hc.mode).endswith("MULTIRUN")
    if multirun and cfg.block_job is not None and hc.job.num == cfg.block_job:
        (out / "blocked").touch()
        deadline = time.time() + 60
        while not (out / "release").exists() and time.time() < deadline:
            time.sleep(0.05)
    if cfg.fail_x is not None and cfg.x == cfg.fail_x:
        raise ValueError(f"x={cfg.x} is cursed")
    loss = (cfg.x - 0.3) ** 2 + (cfg.y + 0.5) ** 2 + cfg.optimizer.lr
    tracked = None
    if cfg.track:
        import runyard

        run = runyard.init(project="ignored", config=OmegaConf.to_container(cfg, resolve=True))
        runyard.log({"loss": loss})
        tracked = run.id
        if not cfg.leave_open:
            run.finish()
    record = {
        "env_run_id": os.environ.get("RUNYARD_RUN_ID"),
        "tracked": tracked,
        "pid": os.getpid(),
        "multirun": multirun,
        "cfg": OmegaConf.to_container(cfg, resolve=True),
        "loss": loss,
    }
    (out / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
    return loss


if __name__ == "__main__":
    main()
"""

CONFIG = """
defaults:
  - db: mysql
  - _self_
optimizer:
  lr: 0.01
  name: sgd
x: 0.0
y: 0.0
track: false
block_job: null
fail_x: null
leave_open: false
"""

FILES = {
    "conf/config.yaml": CONFIG,
    "conf/db/mysql.yaml": "driver: mysql\n",
    "conf/db/postgres.yaml": "driver: postgres\n",
    "conf/experiment/fast.yaml": "# @package _global_\nmodel:\n  depth: 2\n",
    "conf/experiment/slow.yaml": "# @package _global_\nmodel:\n  depth: 8\n",
    "conf/tune.yaml": """
defaults:
  - config
  - override hydra/sweeper: runyard
  - _self_
hydra:
  sweeper:
    method: random
    n_trials: 4
    seed: 3
    params:
      x: interval(0, 1)
      optimizer.lr: tag(log, interval(1e-4, 1e-1))
      +experiment: choice(fast, slow)
      +optimizer.layers: range(1, 4)  # not in config.yaml: added on purpose
""",
    "train.py": TRAIN,
}


class App:
    """A Hydra app written into ``root`` (``files``: path -> text), run as subprocesses with
    an embedded store of its own."""

    files: dict[str, str] = FILES
    extra_env: dict[str, str] = {}

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store_dir = root / ".store"
        self.results = root / "results"
        for name, text in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
        env.update(
            RUNYARD_DIR=str(self.store_dir),
            RUNYARD_SILENT="true",
            RUNYARD_DISABLE_GIT="true",
            APP_RESULTS=str(self.results),
            HYDRA_FULL_ERROR="1",
            **self.extra_env,
        )
        return env

    def argv(self, *overrides: str, flags: tuple[str, ...] = ()) -> list[str]:
        return [sys.executable, "train.py", *flags, "-m", "hydra/sweeper=runyard", *overrides]

    def run(
        self, *overrides: str, ok: bool = True, timeout: float = 120, flags: tuple[str, ...] = ()
    ) -> str:
        proc = subprocess.run(
            self.argv(*overrides, flags=flags),
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = proc.stdout + proc.stderr
        assert (proc.returncode == 0) == ok, output
        return output

    def start(self, *overrides: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*overrides),
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def api(self) -> Api:
        return Api(dir=str(self.store_dir))

    def sweep(self) -> SweepRecord:
        sweeps = self.api().store.list_sweeps()
        assert len(sweeps) == 1, sweeps
        return sweeps[0]

    def trials(self, sweep_id: str) -> list[TrialRecord]:
        return self.api().store.sweep_trials(sweep_id)

    def jobs(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.results.glob("*.json"))]

    def job_dirs(self) -> list[Path]:
        return sorted(p.parent for p in self.root.glob("multirun/*/*/*/.hydra"))

    def results_file(self) -> dict[str, Any]:
        (path,) = self.root.glob("multirun/*/*/optimization_results.yaml")
        doc = yaml.safe_load(path.read_text())
        assert isinstance(doc, dict)
        return doc

    def wait_for(self, name: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while not (self.results / name).exists():
            if proc.poll() is not None:
                raise AssertionError(
                    f"the sweep ended early:\n{proc.stdout and proc.stdout.read()}"
                )
            assert time.time() < deadline, f"{name} never appeared"
            time.sleep(0.05)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    application = App(tmp_path / "app")
    monkeypatch.setenv("RUNYARD_DIR", str(application.store_dir))
    yield application


# -- the grammar -> sweep.yaml mapping (in-process, fast) ---------------------------------------


@pytest.mark.parametrize(
    "override, spec",
    [
        ("a=1,2,3", {"values": [1, 2, 3]}),
        ("a='x',\"y z\",null", {"values": ["x", "y z", None]}),
        ("a=choice([1,2],{k:1})", {"values": [[1, 2], {"k": 1}]}),
        ("a=range(1,4)", {"distribution": "int_uniform", "min": 1, "max": 3}),
        # a range of multiples of its step keeps its order for bayes: q_uniform (item 10)
        ("a=range(0,1,0.25)", {"distribution": "q_uniform", "min": 0.0, "max": 0.75, "q": 0.25}),
        ("a=range(0,10,2)", {"distribution": "q_uniform", "min": 0, "max": 8, "q": 2}),
        ("a=interval(0,1)", {"distribution": "uniform", "min": 0.0, "max": 1.0}),
        ("a=int(interval(2,8))", {"distribution": "int_uniform", "min": 2, "max": 8}),
        (
            "a=tag(log,interval(1e-4,1e-1))",
            {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        ),
        (
            "a=tag(log,int(interval(1,64)))",
            {"distribution": "q_log_uniform_values", "min": 1, "max": 64, "q": 1},
        ),
    ],
)
def test_grammar_mapping(override: str, spec: dict[str, Any]) -> None:
    parsed = OverridesParser.create().parse_override(override)
    assert spec_from_override(parsed) == (spec, [])


def test_unaligned_range_stays_values_with_a_note() -> None:
    parsed = OverridesParser.create().parse_override("a=range(1,10,3)")
    spec, notes = spec_from_override(parsed)
    assert spec == {"values": [1, 4, 7]} and "unordered" in notes[0]


def test_search_space_split_and_names() -> None:
    parser = OverridesParser.create()
    spec = parse_search_space(
        parser,
        ["optimizer.lr=interval(0,1)", "+experiment=fast,slow", "seed=3", "optimizer.lr=0.1,0.2"],
    )
    # the key keeps its first place and its last value; names carry no + prefix
    assert spec.parameters == {
        "optimizer.lr": {"values": [0.1, 0.2]},
        "experiment": {"values": ["fast", "slow"]},
    }
    assert spec.slots == [("param", "optimizer.lr"), ("param", "experiment"), ("fixed", "seed=3")]
    notes = parse_search_space(parser, ["a=shuffle(1,2)"]).notes
    assert "shuffle() is ignored" in notes[0]
    for bad in ["hydra.job.name=a,b", "hydra/launcher=basic,joblib", "~db=a,b"]:
        with pytest.raises(RunyardSweeperError):
            parse_search_space(parser, [bad])
    # a group with a package is named group@package; + / ++ on a key say it is added
    packaged = parse_search_space(parser, ["db@backup=a,b", "+new.key=1,2", "++other=3,4"])
    assert list(packaged.parameters) == ["db@backup", "new.key", "other"]
    assert packaged.added == {"new.key": "+", "other": "++"}
    # a nested config group is named by its path (the sweeper picks db/engine= or +db/engine=)
    nested = parse_search_space(parser, ["db/engine=a,b", "+experiment/sub=x"])
    assert nested.parameters == {"db/engine": {"values": ["a", "b"]}}
    assert nested.slots == [("param", "db/engine"), ("fixed", "+experiment/sub=x")]


def test_return_summary() -> None:
    assert return_summary(0.5, "loss") == {"loss": 0.5}
    assert return_summary(True, "loss") == {}
    assert return_summary(None, "loss") == {}
    assert return_summary({"val": {"acc": 0.9}, "loss": 1}, "loss") == {"val/acc": 0.9, "loss": 1}


# -- real apps ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_over_groups_present_and_absent_keys(app: App) -> None:
    """db is in the defaults list, experiment is not; optimizer.lr exists, optimizer.mom not."""
    out = app.run(
        "hydra.sweeper.method=grid",
        "db=mysql,postgres",
        "experiment=fast,slow",
        "optimizer.lr=0.001,0.01",
        "+optimizer.mom=choice(0.9)",  # a key added on purpose: no typo warning
        "y=-0.5",
    )
    assert "optimizer.mom" not in out.split("Launching")[0]
    sweep = app.sweep()
    trials = app.trials(sweep.id)
    assert len(trials) == 8 and {t.state for t in trials} == {"finished"}
    # parameter names are the config keys and group names, not the override spelling
    assert {tuple(t.params) for t in trials} == {
        ("db", "experiment", "optimizer.lr", "optimizer.mom")
    }
    cells = {(t.params["db"], t.params["experiment"], t.params["optimizer.lr"]) for t in trials}
    assert len(cells) == 8
    # the objective is the return value, stored in the summary under the metric name
    for trial in trials:
        lr = trial.params["optimizer.lr"]
        assert trial.summary["return_value"] == pytest.approx(0.09 + lr)
    # each job got its cell, composed by Hydra (group content, the +experiment package)
    overrides = [yaml.safe_load((d / ".hydra/overrides.yaml").read_text()) for d in app.job_dirs()]
    assert [
        "db=mysql",
        "+experiment=fast",
        "optimizer.lr=0.001",
        "+optimizer.mom=0.9",
        "y=-0.5",
    ] in overrides
    jobs = app.jobs()
    assert len(jobs) == 8
    for job in jobs:
        trial = next(t for t in trials if t.run_id == job["env_run_id"])
        cfg = job["cfg"]
        assert cfg["db"] == {"driver": trial.params["db"]}
        assert cfg["model"]["depth"] == {"fast": 2, "slow": 8}[trial.params["experiment"]]
        assert cfg["optimizer"]["lr"] == trial.params["optimizer.lr"]
        assert cfg["optimizer"]["mom"] == 0.9
    # the store: a normal sweep config; the run of a job that never called runyard.init()
    # holds the job's composed config
    assert sweep.config["program"] == "train.py"
    assert sweep.config["method"] == "grid" and "run_cap" not in sweep.config
    assert sweep.config["command"] == [
        "${env}",
        "${interpreter}",
        "${program}",
        "y=-0.5",
        "${args_hydra}",
    ]
    assert sweep.config["parameters"]["db"] == {"values": ["mysql", "postgres"]}
    run = app.api().store.find_run(sweep.entity, sweep.project, trials[0].run_id)
    assert run is not None and run.config["db"] == {"driver": trials[0].params["db"]}
    # optimization_results.yaml: the best cell
    results = app.results_file()
    assert results["sweep"] == sweep.path and results["n_trials"] == 8
    assert results["best_value"] == pytest.approx(0.091)
    assert results["best_params"]["optimizer.lr"] == 0.001
    assert "optimizer.lr=0.001" in results["best_overrides"]


@pytest.mark.slow
def test_params_from_the_config_with_hydra_grammar(app: App) -> None:
    app.run("hydra.sweeper.project=tuning", flags=("--config-name", "tune"))
    sweep = app.sweep()
    assert sweep.project == "tuning" and sweep.method == "random"
    assert sweep.config["run_cap"] == 4
    assert sweep.config["parameters"] == {
        "x": {"distribution": "uniform", "min": 0.0, "max": 1.0},
        "optimizer.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "experiment": {"values": ["fast", "slow"]},
        "optimizer.layers": {"distribution": "int_uniform", "min": 1, "max": 3},
    }
    trials = app.trials(sweep.id)
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    for trial in trials:
        assert 0 <= trial.params["x"] <= 1 and 1e-4 <= trial.params["optimizer.lr"] <= 1e-1
        assert trial.params["optimizer.layers"] in (1, 2, 3)
    for job in app.jobs():
        trial = next(t for t in trials if t.run_id == job["env_run_id"])
        assert job["cfg"]["x"] == trial.params["x"]
        assert job["cfg"]["optimizer"]["layers"] == trial.params["optimizer.layers"]
        assert job["cfg"]["model"]["depth"] == {"fast": 2, "slow": 8}[trial.params["experiment"]]


@pytest.mark.slow
def test_sweep_yaml_and_tracked_runs(app: App) -> None:
    """A sweep.yaml gives the space and the metric; the task logs the metric itself."""
    (app.root / "sweep.yaml").write_text(
        textwrap.dedent(
            """
            method: random
            metric: {name: loss, goal: minimize}
            run_cap: 3
            name: from-yaml
            parameters:
              optimizer:
                parameters:
                  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
              db: {values: [mysql, postgres]}
              x: {min: 0.0, max: 1.0}
            """
        )
    )
    app.run("hydra.sweeper.sweep_config=sweep.yaml", "track=true")
    sweep = app.sweep()
    assert sweep.name == "from-yaml" and sweep.config["metric"]["name"] == "loss"
    assert set(sweep.config["parameters"]) == {"optimizer.lr", "db", "x"}
    trials = app.trials(sweep.id)
    assert len(trials) == 3 and {t.state for t in trials} == {"finished"}
    jobs = {job["env_run_id"]: job for job in app.jobs()}
    for trial in trials:
        job = jobs[trial.run_id]
        assert job["tracked"] == trial.run_id  # runyard.init() joined the trial's run
        assert trial.summary["loss"] == pytest.approx(job["loss"])
        run = app.api().store.find_run(sweep.entity, sweep.project, trial.run_id)
        assert run is not None and run.config["optimizer"]["lr"] == trial.params["optimizer.lr"]
        assert run.config["db"] == {"driver": trial.params["db"]}  # composed, not the option
    assert app.results_file()["metric"] == {"name": "loss", "goal": "minimize"}


@pytest.mark.slow
def test_joblib_launcher_runs_batches_in_workers(app: App) -> None:
    out = app.run(
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.method=grid",
        "x=0.1,0.2",
        "track=true,false",
        "leave_open=false,true",  # a task that does not finish its run, in a worker
    )
    assert out.count("is launching 2 jobs") == 4  # batch size = the launcher's n_jobs
    sweep = app.sweep()
    trials = app.trials(sweep.id)
    assert len(trials) == 8 and {t.state for t in trials} == {"finished"}
    jobs = {job["env_run_id"]: job for job in app.jobs()}
    assert set(jobs) == {t.run_id for t in trials}
    assert os.getpid() not in {job["pid"] for job in jobs.values()}
    for trial in trials:
        job = jobs[trial.run_id]
        assert job["cfg"]["x"] == trial.params["x"]
        if trial.params["track"]:
            assert job["tracked"] == trial.run_id
            assert trial.summary["loss"] == pytest.approx(job["loss"])
        if not (trial.params["track"] and trial.params["leave_open"]):
            # (a run left open in a worker may get its summary replaced by the worker later)
            assert trial.summary["return_value"] == pytest.approx(job["loss"])


@pytest.mark.slow
def test_bayes_improves_on_its_first_trials(app: App) -> None:
    app.run(
        "hydra.sweeper.method=bayes",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.seed=1",
        "x=interval(-2,2)",
        "y=interval(-2,2)",
        timeout=150,
    )
    trials = app.trials(app.sweep().id)
    assert len(trials) == 20 and {t.state for t in trials} == {"finished"}
    values = [t.summary["return_value"] for t in trials]
    assert min(values[5:]) < min(values[:5])
    assert min(values) < 0.1 + 0.01  # near the optimum (0.3, -0.5) plus lr


def _interrupt(app: App, proc: subprocess.Popen[str], sig: int) -> None:
    try:
        app.wait_for("blocked", proc)
        (app.results / "blocked").unlink()
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.slow
def test_interrupted_sweep_resumes_and_reruns_interrupted_trials(app: App) -> None:
    """Ctrl-C, resume, kill -9, resume: the trial each interruption hit runs again (item 6);
    no finished cell is repeated, and a resume with nothing left to run still writes
    optimization_results.yaml."""
    grid = ("hydra.sweeper.method=grid", "x=0.1,0.2,0.3,0.4,0.5,0.6", "track=true")
    _interrupt(app, app.start(*grid, "block_job=2"), signal.SIGINT)  # in job 2 (x=0.3)
    sweep = app.sweep()
    before = app.trials(sweep.id)
    assert [t.state for t in before[:2]] == ["finished"] * 2 and len(before) == 3
    # resumed, then killed in job 4: the retry of x=0.3 was job 3, x=0.4 is job 4
    _interrupt(app, app.start(*grid, f"hydra.sweeper.sweep_id={sweep.path}", "block_job=4"), 9)
    out = app.run(*grid, f"hydra.sweeper.sweep_id={sweep.path}")
    assert "resuming sweep" in out and "1 interrupted trial(s) run again" in out
    trials = app.trials(sweep.id)
    finished = sorted(t.params["x"] for t in trials if t.state == "finished")
    assert finished == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # every cell, none twice
    interrupted = sorted(t.params["x"] for t in trials if t.state != "finished")
    assert interrupted == [0.3, 0.4]  # kept in the store as they ended
    # the finished trials of the first process kept their results
    assert [t.summary for t in trials[:2]] == [t.summary for t in before[:2]]
    # resuming a finished sweep runs nothing, and still writes the results file
    out = app.run(f"hydra.sweeper.sweep_id={sweep.id}", *grid, "hydra.sweep.dir=multirun/again")
    assert len(app.trials(sweep.id)) == len(trials) and "sweep over" in out
    results = yaml.safe_load((app.root / "multirun/again/optimization_results.yaml").read_text())
    assert results["states"] == {"finished": 6, **_states(trials, finished=False)}
    assert results["best_params"] == {"x": 0.3}


def _states(trials: list[TrialRecord], finished: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    for trial in trials:
        if (trial.state == "finished") == finished:
            out[trial.state] = out.get(trial.state, 0) + 1
    return out


def agent_joins_a_blocked_sweep(app: App) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """A 4-trial random sweep whose first job blocks while `runyard agent --count 2` joins it;
    returns (every trial, the agent's trials, the jobs by run id) once all four finished."""
    proc = app.start(
        "hydra.sweeper.method=random",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.metric.name=loss",
        "x=interval(0,1)",
        "db=mysql,postgres",
        "track=true",
        "block_job=0",
    )
    try:
        app.wait_for("blocked", proc)
        sweep = app.sweep()
        agent = subprocess.run(
            [sys.executable, "-m", "runyard.cli", "agent", sweep.path, "--count", "2"],
            cwd=app.root,
            env=app.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert agent.returncode == 0, agent.stdout + agent.stderr
        (app.results / "release").touch()
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    trials = app.trials(sweep.id)
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    by_agent = [t for t in trials if t.agent_id and "-hydra-" not in t.agent_id]
    assert len(by_agent) == 2
    jobs = {job["env_run_id"]: job for job in app.jobs()}
    return trials, by_agent, jobs


@pytest.mark.slow
def test_runyard_agent_joins_a_hydra_sweep(app: App) -> None:
    _, by_agent, jobs = agent_joins_a_blocked_sweep(app)
    for trial in by_agent:
        job = jobs[trial.run_id]
        assert not job["multirun"] and job["tracked"] == trial.run_id
        assert job["cfg"]["x"] == trial.params["x"] and job["cfg"]["track"] is True
        assert job["cfg"]["db"] == {"driver": trial.params["db"]}
        assert trial.summary["loss"] == pytest.approx(job["loss"])


@pytest.mark.slow
def test_unknown_group_option_fails_before_any_trial(app: App) -> None:
    out = app.run("hydra.sweeper.method=grid", "db=mysql,oracle", ok=False)
    assert "oracle not an option of the config group 'db'" in out
    assert not app.results.exists()


@pytest.mark.slow
def test_a_failing_job_fails_its_trial_and_the_sweep_goes_on(app: App) -> None:
    # the other trials run, and the sweep exits non-zero, as Hydra's basic sweeper does
    out = app.run("hydra.sweeper.method=grid", "x=0.1,0.2,0.3", "fail_x=0.2", ok=False)
    assert "1 of 3 trials of this sweep session failed" in out and "cursed" in out
    trials = app.trials(app.sweep().id)
    states = {t.params["x"]: t.state for t in trials}
    assert states == {0.1: "finished", 0.2: "failed", 0.3: "finished"}
    failed = next(t for t in trials if t.state == "failed")
    assert failed.failure == "the job raised ValueError: x=0.2 is cursed"
    # a session in which every trial fails ends with an error
    out = app.run("hydra.sweeper.method=grid", "x=choice(0.2)", "fail_x=0.2", ok=False)
    assert "every trial of this sweep session failed" in out and "cursed" in out


@pytest.mark.slow
def test_objective_from_the_summary_only(app: App) -> None:
    out = app.run("hydra.sweeper.objective=summary", "hydra.sweeper.method=grid", "x=choice(0.1)")
    assert "a trial has no objective" in out
    (trial,) = app.trials(app.sweep().id)
    assert trial.state == "finished" and "return_value" not in trial.summary
