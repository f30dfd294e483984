"""Cooperative early stopping (``run.should_stop``, sdk/stop.py), raising a sweep's run_cap, and
nested config group names. In-process, on a real SQLite store; the end-to-end versions with real
Hydra apps and agents are in test_hydra_stop.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.sdk.settings import Settings
from runyard.sdk.stop import StopPoller, StopRun
from runyard.store import open_store
from runyard.store.base import StoreError
from runyard.store.locate import default_store_url
from runyard.sweeps.config import SweepConfigError, load_sweep_config
from runyard.sweeps.controller import SweepController
from runyard.sweeps.hydra_args import HydraAppInfo, format_overrides
from runyard.sweeps.space import nest

# -- the poller, without a store ----------------------------------------------------------------


class _FakeControl:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls = 0

    def stop_decisions(self, run_id: str | None) -> str | None:
        self.calls += 1
        answer = self.answers[min(self.calls - 1, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]


class _FakeStore:
    def __init__(self, control: _FakeControl) -> None:
        self.control = control

    def controller(self, sweep_id: str) -> _FakeControl:
        return self.control


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_poller_flips_once_and_survives_store_errors() -> None:
    control = _FakeControl([None, RuntimeError("database is locked"), None, "hyperband: weak"])
    seen: list[str] = []
    poller = StopPoller("r1", "s1", lambda: _FakeStore(control), 0.01, on_stop=seen.append)
    _wait(lambda: poller.reason is not None)
    poller.join(5)
    assert poller.reason == "hyperband: weak" and seen == ["hyperband: weak"]
    assert poller.errors == 1 and control.calls == 4  # stops polling once it knows
    assert not poller.observed
    # a run that never looked keeps its own outcome
    assert poller.final_state("finished", None) == ("finished", None)
    assert poller.should_stop() and poller.observed
    assert poller.final_state("finished", None) == ("stopped", "stopped early: hyperband: weak")
    assert poller.final_state("failed", "boom") == ("failed", "boom")  # a real error stays
    assert poller.final_state("killed", "SIGTERM") == ("killed", "SIGTERM")
    exc = poller.stop_run()
    assert isinstance(exc, StopRun) and exc.reason == "hyperband: weak"
    assert poller.final_state("failed", "trace") == ("stopped", "stopped early: hyperband: weak")


def test_poller_that_cannot_open_the_store_never_raises() -> None:
    def broken() -> Any:
        raise OSError("no store")

    poller = StopPoller("r1", "s1", broken, 0.01)
    _wait(lambda: poller.errors >= 3)
    poller.close()
    assert poller.reason is None and not poller.should_stop()


def test_stop_run_pickles() -> None:
    import pickle

    exc = pickle.loads(pickle.dumps(StopRun("r1", "why")))
    assert isinstance(exc, StopRun) and exc.run_id == "r1" and exc.reason == "why"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_STOP_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("RUNYARD_STOP_RAISE", "true")
    resolved = Settings().resolved()
    assert resolved.stop_poll_interval == 0.5 and resolved.stop_raise is True
    monkeypatch.delenv("RUNYARD_STOP_POLL_INTERVAL")
    monkeypatch.delenv("RUNYARD_STOP_RAISE")
    resolved = Settings().resolved()
    assert resolved.stop_poll_interval == 5.0 and resolved.stop_raise is False
    monkeypatch.setenv("RUNYARD_STOP_POLL_INTERVAL", "0")
    with pytest.raises(ValueError, match="RUNYARD_STOP_POLL_INTERVAL"):
        Settings().resolved()


# -- a sweep run in this process, on a real store -----------------------------------------------


def _sweep(root: Path, config: dict[str, Any]) -> SweepController:
    store = open_store(default_store_url(root))
    store.create_sweep(
        sweep_id="sw1",
        entity="e",
        project="p",
        name=None,
        description=None,
        method=config["method"],
        config={"program": "train.py", **config},
        seed=3,
    )
    return SweepController(store, "sw1")


def _join(monkeypatch: pytest.MonkeyPatch, root: Path, controller: SweepController) -> str:
    """Take the next trial and put its assignment in the environment, as an agent does."""
    decision = controller.next_run("agent-1")
    assert decision.run_id is not None
    monkeypatch.setenv("RUNYARD_DIR", str(root))
    monkeypatch.setenv("RUNYARD_SWEEP_ID", "sw1")
    monkeypatch.setenv("RUNYARD_ENTITY", "e")
    monkeypatch.setenv("RUNYARD_PROJECT", "p")
    monkeypatch.setenv("RUNYARD_RUN_ID", decision.run_id)
    monkeypatch.setenv("RUNYARD_SWEEP_PARAMS", json.dumps(decision.config))
    monkeypatch.setenv("RUNYARD_STOP_POLL_INTERVAL", "0.05")
    return decision.run_id


GRID = {"method": "grid", "parameters": {"lr": {"values": [0.1, 0.2, 0.3]}}}


def test_canceled_sweep_sets_should_stop_and_the_run_ends_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / ".runyard"
    root.mkdir()
    controller = _sweep(root, GRID)
    run_id = _join(monkeypatch, root, controller)
    run = runyard.init()
    assert run.id == run_id and run.sweep_id == "sw1"
    assert not run.should_stop and run.stop_reason is None
    controller.store.set_sweep_state("sw1", "canceled")
    steps = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run.log({"loss": 1.0 / (steps + 1)})
        steps += 1
        if run.should_stop:
            break
        time.sleep(0.01)
    assert run.should_stop and run.stop_reason == "the sweep was canceled"
    run.finish()
    stored = controller.store.find_run("e", "p", run_id)
    assert stored is not None and stored.state == "stopped"
    assert stored.failure == "stopped early: the sweep was canceled"
    assert stored.summary["loss"] == pytest.approx(1.0 / steps)  # what it logged is kept
    assert "check `run.should_stop`" in capfd.readouterr().err  # told once, with the idiom


def test_a_run_that_never_looks_keeps_its_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / ".runyard"
    root.mkdir()
    controller = _sweep(root, GRID)
    run_id = _join(monkeypatch, root, controller)
    run = runyard.init()
    controller.store.set_sweep_state("sw1", "canceled")
    assert run._stop is not None
    _wait(lambda: run._stop is not None and run._stop.reason is not None)
    run.log({"loss": 0.5})
    run.finish()
    stored = controller.store.find_run("e", "p", run_id)
    assert stored is not None and stored.state == "finished"


def test_stop_raise_mode_raises_at_the_next_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / ".runyard"
    root.mkdir()
    controller = _sweep(root, GRID)
    run_id = _join(monkeypatch, root, controller)
    monkeypatch.setenv("RUNYARD_STOP_RAISE", "1")
    logged = 0
    with pytest.raises(StopRun) as info, runyard.init() as run:
        controller.store.set_sweep_state("sw1", "canceled")
        for i in range(100_000):
            run.log({"loss": float(i)})
            logged += 1
            time.sleep(0.005)
    assert info.value.reason == "the sweep was canceled" and logged < 100_000
    stored = controller.store.find_run("e", "p", run_id)
    assert stored is not None and stored.state == "stopped"
    assert stored.failure == "stopped early: the sweep was canceled"
    assert stored.summary["loss"] == float(logged)  # the raising call's values were recorded


def test_runs_outside_sweeps_poll_only_their_own_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run outside a sweep asks no controller, only whether it was stopped from outside
    (`runyard runs stop`, tests/test_run_management.py); offline runs ask nothing."""
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path / ".runyard"))
    with runyard.init() as run:
        assert run._stop is not None and run._stop.sweep_id is None
        assert run._stop.where == (run.entity, run.project)
        assert not run.should_stop and run.stop_reason is None
    assert run.state == "finished"
    with runyard.init(mode="offline", settings=runyard.Settings(sweep_id="sw1")) as run:
        assert run._stop is None


# -- run_cap of a stored sweep ------------------------------------------------------------------


def test_raising_run_cap_reopens_a_finished_sweep(tmp_path: Path) -> None:
    controller = _sweep(
        tmp_path, {"method": "random", "run_cap": 2, "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    )
    assert controller.next_run("a").kind == "run" and controller.next_run("a").kind == "run"
    assert controller.next_run("a").kind == "done"
    assert controller.sweep().state == "finished"
    updated = controller.set_run_cap(4)
    assert updated.state == "running" and updated.config["run_cap"] == 4
    # the same controller (its parsed config is cached) sees the new cap: exactly 2 more runs
    kinds = [controller.next_run("a").kind for _ in range(3)]
    assert kinds == ["run", "run", "done"]
    assert len(controller.store.sweep_trials("sw1")) == 4
    # lowering below the run count finishes nothing by itself; the next request does
    assert controller.set_run_cap(3).state == "finished"
    controller.store.set_sweep_state("sw1", "canceled")
    assert controller.set_run_cap(10).state == "canceled"  # a canceled sweep stays canceled
    with pytest.raises(StoreError, match="run_cap"):
        controller.set_run_cap(0)


def test_cli_run_cap(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from runyard.cli import main

    controller = _sweep(
        tmp_path, {"method": "random", "run_cap": 1, "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    )
    controller.next_run("a")
    controller.next_run("a")
    assert controller.sweep().state == "finished"
    result = CliRunner().invoke(
        main, ["sweep", "e/p/sw1", "--run-cap", "3", "--dir", str(tmp_path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "run_cap 1 -> 3; finished -> running" in result.output
    assert controller.sweep().config["run_cap"] == 3
    (tmp_path / "sweep.yaml").write_text(
        "program: t.py\nmethod: random\nparameters: {a: {values: [1]}}\n"
    )
    result = CliRunner().invoke(
        main, ["sweep", str(tmp_path / "sweep.yaml"), "--run-cap", "7", "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    created = [s for s in controller.store.list_sweeps() if s.id != "sw1"]
    assert created[0].config["run_cap"] == 7


# -- nested config group names ------------------------------------------------------------------


def test_nested_group_names_in_sweep_yaml() -> None:
    doc = {
        "program": "train.py",
        "method": "grid",
        "parameters": {
            "db/engine": {"values": ["innodb", "myisam"]},
            "db": {"values": ["mysql"]},
            "optimizer": {"parameters": {"lr": {"values": [0.1]}}},
        },
        "command": ["${env}", "${interpreter}", "${program}", "${args_hydra}"],
    }
    config = load_sweep_config(doc)
    assert config.parameters.names == ["db/engine", "db", "optimizer.lr"]
    assert config.warnings == []
    assert config.parameters.grid_size() == 2
    # a group's value is an option name: nest() keeps the path as one key
    assert nest({"db/engine": "innodb", "optimizer.lr": 0.1}) == {
        "db/engine": "innodb",
        "optimizer": {"lr": 0.1},
    }
    # without ${args_hydra} the name is passed as --db/engine=...: a warning says so
    with pytest.warns(UserWarning, match="is a Hydra config group"):
        plain = load_sweep_config({**doc, "command": None})
    assert any("db/engine" in w for w in plain.warnings)
    bad = {
        "program": "train.py",
        "method": "grid",
        "parameters": {
            "model": {"parameters": {"enc/layer": {"values": [1]}}},
            "db/": {"values": ["a"]},
            "/db": {"values": ["a"]},
            "db/engine.x": {"values": ["a"]},
            "db//engine": {"values": ["a"]},
            "a/b": {"parameters": {"c": {"values": [1]}}},
        },
    }
    with pytest.raises(SweepConfigError) as info:
        load_sweep_config(bad)
    text = str(info.value)
    assert "parameters.model.parameters.enc/layer" in text and "top level" in text
    for name in ("db/", "/db", "db/engine.x", "db//engine"):
        assert f'"{name}" is not a valid parameter name' in text
    assert "a/b" in text and "option names, not a block" in text


def test_nested_group_overrides() -> None:
    info = HydraAppInfo(
        choices={"db": "mysql", "db/engine": "innodb"},
        groups={"db", "db/engine", "experiment", "experiment/sub"},
        config={"db": {"engine": {"name": "innodb"}}},
    )
    overrides, warnings = format_overrides({"db/engine": "myisam", "experiment/sub": "a"}, info)
    assert overrides == ["db/engine=myisam", "+experiment/sub=a"]
    assert warnings == []
