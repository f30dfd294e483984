"""Sweeps end to end: `runyard sweep`, real `runyard agent` processes, the embedded store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import api, store_env

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "runyard.cli"]

TRAIN = """
import math, os, sys, time
import runyard

run = runyard.init(config={"lr": 0.5, "untouched": "yes"})
cfg = runyard.config
quality = -abs(math.log10(cfg.lr) + 2) if "lr" in cfg else 0.0
quality += {"x": 0.0, "y": 0.5, "z": -0.5}.get(cfg.get("opt", "x"), 0.0)
steps = int(os.environ.get("TRAIN_STEPS", "3"))
for step in range(steps):
    runyard.log({"score": quality + step * 0.01})
    time.sleep(float(os.environ.get("TRAIN_SLEEP", "0")))
if cfg.get("fail"):
    sys.exit("asked to fail")
runyard.config.update({"lr": 123.0}, allow_val_change=True)  # sweep values are locked
print("trained", dict(cfg))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update({"RUNYARD_SILENT": "true", "RUNYARD_DISABLE_GIT": "true"}, **extra)
    # The store_url fixture's PostgreSQL store (this process's RUNYARD_STORE; the autouse
    # fixture clears every other RUNYARD_* variable).
    env.update(store_env(os.environ.get("RUNYARD_STORE")))
    return env


def _write(tmp_path: Path, sweep: dict[str, Any], train: str = TRAIN) -> Path:
    (tmp_path / sweep["program"]).write_text(textwrap.dedent(train))
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(sweep))  # JSON is YAML
    return path


def _create(tmp_path: Path, sweep_file: Path, *extra: str) -> str:
    out = subprocess.run(
        [*CLI, "sweep", str(sweep_file), "--seed", "7", *extra],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    line = next(li for li in out.stdout.splitlines() if "runyard agent " in li)
    return line.split("runyard agent ")[1].strip()


def _agents(
    tmp_path: Path, ref: str, n: int, *args: str, **env: str
) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [*CLI, "agent", ref, "--heartbeat-interval", "0.5", *args],
            cwd=tmp_path,
            env=_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def _wait_all(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        outputs.append(out + err)
    return outputs


def test_grid_is_exhausted_exactly_once_by_four_agents(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    sweep = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {
            "lr": {"values": [0.001, 0.01, 0.1]},
            "opt": {"values": ["x", "y", "z", "x2"]},
        },
    }
    ref = _create(tmp_path, _write(tmp_path, sweep), "--project", "grid")
    _wait_all(_agents(tmp_path, ref, 4))
    runs = api(root).runs("grid")
    cells = sorted((r.config["lr"], r.config["opt"]) for r in runs)
    assert cells == sorted((lr, o) for lr in (0.001, 0.01, 0.1) for o in ("x", "y", "z", "x2"))
    assert all(r.state == "finished" for r in runs)
    assert all(r.config["untouched"] == "yes" for r in runs)  # init config kept, sweep wins
    sweep_id = ref.split("/")[-1]
    assert {r.sweep_id for r in runs} == {sweep_id}
    assert api(root).store.get_sweep(sweep_id).state == "finished"  # type: ignore[union-attr]
    shown = subprocess.run(
        [*CLI, "sweep", "show", ref, "--format", "json"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    best = json.loads(shown.stdout)["best"][0]
    listed = subprocess.run(
        [*CLI, "sweep", "ls", "grid", "--format", "json"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert [(s["id"], s["state"], s["runs"]) for s in json.loads(listed.stdout)] == [
        (sweep_id, "finished", 12)
    ]
    assert best["params"] == {"lr": 0.01, "opt": "y"} and best["value"] == pytest.approx(0.52)


def test_run_cap_is_exact_with_concurrent_agents(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    sweep = {
        "program": "train.py",
        "method": "random",
        "run_cap": 7,
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0}},
    }
    ref = _create(tmp_path, _write(tmp_path, sweep), "--project", "cap")
    _wait_all(_agents(tmp_path, ref, 4))
    runs = api(root).runs("cap")
    assert len(runs) == 7 and len({r.config["lr"] for r in runs}) == 7
    assert all(1e-4 <= r.config["lr"] <= 1.0 for r in runs)


def test_bayes_sweep_and_a_failing_run(tmp_path: Path, root: Path) -> None:
    sweep = {
        "program": "train.py",
        "method": "bayes",
        "metric": {"name": "score", "goal": "maximize"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0},
            "opt": {"values": ["x", "y", "z"]},
            "fail": {"values": [False, True], "probabilities": [0.8, 0.2]},
        },
        "command": ["${env}", "${interpreter}", "${program}", "${args}"],
    }
    ref = _create(tmp_path, _write(tmp_path, sweep), "--project", "bayes")
    (out,) = _wait_all(_agents(tmp_path, ref, 1, "--count", "8"))
    runs = api(root).runs("bayes")
    assert len(runs) == 8
    for run in runs:
        assert run.state == ("failed" if run.config["fail"] else "finished"), run.failure
    assert "best score" in out


def test_hyperband_stops_weak_runs(tmp_path: Path, root: Path) -> None:
    sweep = {
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "score", "goal": "maximize"},
        "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2},
        "parameters": {"lr": {"values": [0.01, 1e-5, 0.1, 1e-6, 0.001, 1e-7]}},
    }
    ref = _create(tmp_path, _write(tmp_path, sweep), "--project", "hb")
    _wait_all(_agents(tmp_path, ref, 2, TRAIN_STEPS="40", TRAIN_SLEEP="0.1"), timeout=300)
    runs = {r.config["lr"]: r for r in api(root).runs("hb")}
    assert runs[0.01].state == "finished"  # the best is never stopped
    stopped = [lr for lr, r in runs.items() if r.state == "stopped"]
    assert stopped, {lr: r.state for lr, r in runs.items()}
    assert all(lr < 1e-4 for lr in stopped)
    assert "hyperband" in runs[stopped[0]].failure


def test_pause_resume_and_cancel(tmp_path: Path, root: Path) -> None:
    sweep = {
        "program": "train.py",
        "method": "random",
        "parameters": {"lr": {"min": 0.001, "max": 0.1}},
    }
    ref = _create(tmp_path, _write(tmp_path, sweep), "--project", "ctl")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "sweep", *args],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert "paused" in cli("--pause", ref).stdout
    (agent,) = _agents(tmp_path, ref, 1, TRAIN_STEPS="1000", TRAIN_SLEEP="0.05")
    # Wait until the agent has asked for work and been told to wait a few times (its heartbeats
    # while paused span >= 2 s): no run may have started meanwhile.
    store = api(root).store
    sweep_id = ref.split("/")[-1]
    deadline = time.monotonic() + 60
    waited = False
    while time.monotonic() < deadline and not waited:
        with store.sweep_transaction(sweep_id) as tx:
            agents = tx.agents()
        waited = bool(agents) and agents[0].heartbeat_at - agents[0].created_at >= 2.0
        time.sleep(0.2)
    assert waited, "the agent never heartbeated while the sweep was paused"
    assert api(root).runs("ctl") == []
    assert "resumed" in cli("--resume", ref).stdout
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not api(root).runs("ctl", {"state": "running"}):
        time.sleep(0.2)
    assert "canceled" in cli("--cancel", ref).stdout
    _wait_all([agent], timeout=120)
    (run,) = api(root).runs("ctl")
    assert run.state == "stopped" and "canceled" in run.failure
    assert "cannot be running" in cli("--resume", ref).stderr


def test_killed_agent_leaves_its_run_crashed_and_never_reassigned(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    sweep = {
        "program": "train.py",
        "method": "grid",
        "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}},
    }
    ref = _create(tmp_path, _write(tmp_path, sweep), "--project", "dead")
    (victim,) = _agents(tmp_path, ref, 1, TRAIN_STEPS="100000", TRAIN_SLEEP="0.05")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not api(root).runs("dead", {"state": "running"}):
        time.sleep(0.2)
    (first,) = api(root).runs("dead")
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    # The next agent finds the dead agent (short timeout for the test) and goes on.
    _wait_all(_agents(tmp_path, ref, 1, RUNYARD_AGENT_TIMEOUT="2"))
    runs = api(root).runs("dead")
    assert sorted(r.config["lr"] for r in runs) == [0.001, 0.01, 0.1]  # no cell twice
    killed = next(r for r in runs if r.id == first.id)
    assert killed.state in ("crashed", "killed"), killed.state
    assert [r.state for r in runs if r.id != first.id] == ["finished", "finished"]


def test_invalid_sweep_file_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grd\nparameters:\n  lr: {min: 1, max: 0.5}\ncommand: ['${nope}']\n")
    out = subprocess.run(
        [*CLI, "sweep", str(bad)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    for needle in ("method", "parameters.lr", "${nope}"):
        assert needle in out.stderr, out.stderr


HYDRA_APP = """
import hydra
from omegaconf import OmegaConf
import runyard


@hydra.main(config_path="configs", config_name="defaults", version_base=None)
def main(cfg):
    run = runyard.init(project=cfg.project, config=OmegaConf.to_container(cfg, resolve=True))
    score = cfg.lr * 10 + cfg.db.speed + (cfg.experiment.bonus if "experiment" in cfg else 0)
    runyard.log({"test/accuracy": score})
    run.summary["db"] = cfg.db.name


if __name__ == "__main__":
    main()
"""


def test_args_hydra_sweeps_plain_keys_and_present_and_absent_groups(
    tmp_path: Path, root: Path
) -> None:
    configs = tmp_path / "configs"
    for folder in ("db", "experiment"):
        (configs / folder).mkdir(parents=True)
    (configs / "defaults.yaml").write_text(
        "defaults:\n  - db: mysql\n  - _self_\nproject: hyd\nlr: 0.1\n"
    )
    (configs / "db" / "mysql.yaml").write_text("name: mysql\nspeed: 1\n")
    (configs / "db" / "postgres.yaml").write_text("name: postgres\nspeed: 2\n")
    (configs / "experiment" / "fast.yaml").write_text("bonus: 100\n")
    (configs / "experiment" / "slow.yaml").write_text("bonus: 200\n")
    sweep = {
        "program": "main.py",
        "method": "grid",
        "metric": {"name": "test/accuracy", "goal": "maximize"},
        "parameters": {
            "db": {"values": ["mysql", "postgres"]},
            "experiment": {"values": ["fast", "slow"]},
            "lr": {"values": [0.5]},
            "new.flag": {"value": True},
        },
        "command": ["${env}", "${interpreter}", "${program}", "${args_hydra}"],
    }
    ref = _create(tmp_path, _write(tmp_path, sweep, train=HYDRA_APP), "--project", "hyd")
    (out,) = _wait_all(_agents(tmp_path, ref, 1))
    runs = api(root).runs("hyd")
    got = sorted((r.summary["db"], r.config["experiment"]["bonus"], r.config["lr"]) for r in runs)
    assert got == [
        ("mysql", 100, 0.5),
        ("mysql", 200, 0.5),
        ("postgres", 100, 0.5),
        ("postgres", 200, 0.5),
    ]
    assert all(r.config["new"]["flag"] is True for r in runs)  # absent key added with ++
    assert all(r.state == "finished" for r in runs)
    assert "new.flag" in out  # warned: a swept key absent from the config
    best = max(runs, key=lambda r: r.summary["test/accuracy"])
    assert best.sweep_params == {
        "db": "postgres",
        "experiment": "slow",
        "lr": 0.5,
        "new.flag": True,
    }
