"""`runyard sweep` and `runyard agent` against real `runyard server` processes.

Every agent is its own process and talks only HTTP; the sweep decisions are the servers'.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runyard.store import open_store
from tests.serverproc import running_server

CLI = [sys.executable, "-m", "runyard"]

TRAIN = """
import math, os, runyard
run = runyard.init(config={"a": 0, "b": 0})
cfg = runyard.config
for step in range(3):
    runyard.log({"loss": cfg.a * cfg.b + step, "odd": math.nan})
print("trained", cfg.a, cfg.b, os.environ.get("RUNYARD_BASE_URL") is not None, flush=True)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update({"RUNYARD_SILENT": "true", "RUNYARD_DISABLE_GIT": "true", **extra})
    return env


def _sweep_file(tmp_path: Path, sweep: dict[str, Any]) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(sweep))
    return path


def _create(tmp_path: Path, url: str, sweep: dict[str, Any]) -> str:
    out = subprocess.run(
        [*CLI, "sweep", str(_sweep_file(tmp_path, sweep)), "--store", url, "--seed", "3"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in out.stdout.splitlines() if "runyard agent" in x)
    return line.split()[-1]


def test_agent_over_http_runs_a_program_end_to_end(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'server.db'}"
    with running_server(store_url) as server:
        sweep_ref = _create(
            tmp_path,
            server.url,
            {
                "program": "train.py",
                "method": "grid",
                "project": "agent-http",
                "metric": {"name": "loss", "goal": "minimize"},
                "parameters": {"a": {"values": [1, 2]}, "b": {"values": [3]}},
            },
        )
        sweep_id = sweep_ref.split("/")[-1]
        for flag, state in (("--pause", "paused"), ("--resume", "running")):
            subprocess.run(
                [*CLI, "sweep", flag, sweep_id, "--store", server.url],
                env=_env(),
                capture_output=True,
                check=True,
            )
            listed = subprocess.run(
                [*CLI, "sweep", "ls", "agent-http", "--format", "json", "--store", server.url],
                env=_env(),
                capture_output=True,
                text=True,
                check=True,
            )
            assert [(s["id"], s["state"]) for s in json.loads(listed.stdout)] == [(sweep_id, state)]
        root = tmp_path / "agent-dir"
        agent = subprocess.run(
            [*CLI, "agent", sweep_ref, "--heartbeat-interval", "0.2"],
            cwd=tmp_path,
            env=_env(RUNYARD_BASE_URL=server.url, RUNYARD_DIR=str(root)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert agent.returncode == 0, agent.stderr
        assert "sweep over: every grid cell has been run" in agent.stderr
        assert agent.stdout.count("True") == 2  # the program saw RUNYARD_BASE_URL
        shown = subprocess.run(
            [*CLI, "sweep", "show", sweep_ref, "--format", "json"],
            cwd=tmp_path,
            env=_env(RUNYARD_BASE_URL=server.url),
            capture_output=True,
            text=True,
            check=True,
        )
        doc = json.loads(shown.stdout)
        assert doc["state"] == "finished" and doc["runs"] == 2
        assert [(b["params"], b["value"], b["state"]) for b in doc["best"]] == [
            ({"a": 1, "b": 3}, 5.0, "finished"),  # the last loss: a * b + 2
            ({"a": 2, "b": 3}, 8.0, "finished"),
        ]
    # Everything went to the server: the agent's folder holds no database and no journal.
    assert not (root / "runyard.db").exists()
    assert list((root / "journal").glob("*.journal")) == []
    store = open_store(store_url)
    for trial in store.sweep_trials(sweep_id):
        rows = store.history(trial.pk)
        assert [r["_step"] for r in rows] == [0, 1, 2]
        assert trial.summary["loss"] == trial.params["a"] * trial.params["b"] + 2
        assert [t for s, _, t in store.console(trial.pk) if s == "stdout"] == [
            f"trained {trial.params['a']} {trial.params['b']} True"
        ]


def test_run_cap_and_reclaim_over_http(tmp_path: Path) -> None:
    """`runyard sweep ID --run-cap N` works against a server, and an agent repeating a lost
    `next` request gets the same pending run (no orphan counts against run_cap)."""
    with running_server(f"sqlite:///{tmp_path / 'server.db'}") as server:
        sweep_ref = _create(
            tmp_path,
            server.url,
            {
                "program": "train.py",
                "method": "random",
                "project": "cap-http",
                "run_cap": 1,
                "parameters": {"a": {"values": [1, 2, 3]}},
            },
        )
        sweep_id = sweep_ref.split("/")[-1]
        store = open_store(server.url)
        control = store.controller(sweep_id)
        first = control.next_run("agent-x", reclaim=True)
        assert control.next_run("agent-x", reclaim=True).run_id == first.run_id
        assert control.next_run("agent-y").kind == "done"  # run_cap 1 reached
        assert store.get_sweep(sweep_id).state == "finished"  # type: ignore[union-attr]
        raised = subprocess.run(
            [*CLI, "sweep", sweep_id, "--run-cap", "3", "--store", server.url],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert raised.returncode == 0, raised.stderr
        sweep = store.get_sweep(sweep_id)
        assert sweep is not None and sweep.config["run_cap"] == 3 and sweep.state == "running"
        assert control.next_run("agent-y").kind == "run"
        assert len(store.sweep_trials(sweep_id)) == 2


@pytest.mark.slow
def test_eight_agents_on_two_servers_never_share_a_cell(tmp_path: Path) -> None:
    from tests import pg

    with (
        pg.fresh_schema() as store_url,
        running_server(store_url) as first,
        running_server(store_url) as second,
    ):
        sweep_ref = _create(
            tmp_path,
            first.url,
            {
                "program": "train.py",
                "method": "grid",
                "project": "two-servers",
                "run_cap": 10,
                "metric": {"name": "loss", "goal": "minimize"},
                "parameters": {
                    "a": {"values": [1, 2, 3, 4]},
                    "b": {"values": [1, 2, 3]},
                },
            },
        )
        agents = []
        started = time.monotonic()
        for n in range(8):
            url = (first, second)[n % 2].url
            agents.append(
                subprocess.Popen(
                    [*CLI, "agent", sweep_ref, "--store", url, "--heartbeat-interval", "0.3"],
                    cwd=tmp_path,
                    env=_env(RUNYARD_DIR=str(tmp_path / f"agent{n}")),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = []
        try:
            for proc in agents:
                left = max(1.0, 150 - (time.monotonic() - started))
                outputs.append(proc.communicate(timeout=left))
        finally:
            for proc in agents:
                if proc.poll() is None:
                    proc.kill()
        for proc, (_, err) in zip(agents, outputs, strict=True):
            assert proc.returncode == 0, err
        store = open_store(store_url)
        sweep_id = sweep_ref.split("/")[-1]
        trials = store.sweep_trials(sweep_id)
        cells = Counter((t.params["a"], t.params["b"]) for t in trials)
        assert len(trials) == 10  # run_cap, exactly
        assert max(cells.values()) == 1  # no cell handed out twice
        assert {t.state for t in trials} == {"finished"}
        assert all(t.summary["loss"] == t.params["a"] * t.params["b"] + 2 for t in trials)
        sweep = store.get_sweep(sweep_id)
        assert sweep is not None and sweep.state == "finished"
        # Several agents (on both servers) shared the work.
        agents_used = {t.agent_id for t in trials}
        assert len(agents_used) >= 2
