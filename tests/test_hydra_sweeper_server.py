"""The Hydra sweeper (``hydra/sweeper=runyard``) against a real ``runyard server``.

The sweeper process, its jobs and ``runyard agent`` talk to the server only (``RUNYARD_BASE_URL``
and an API key; the server runs with ``--auth``): the sweep's trials, their results and the
agents live in the server's store (SQLite, and PostgreSQL in the slow test), read back here
over HTTP and directly from the store. The controller operations the sweeper needs (reap,
record_results, abandon, agents) are checked over HTTP with the same scenario as on the SQL
stores (tests/test_sweep_controller.py).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from runyard.api import Api
from runyard.store import open_store
from runyard.store.base import Store, StoreError
from runyard.store.http import HTTPStore, StoreAuthError
from runyard.store.sql import SQLStore
from runyard.sweeps.controller import TrialResult
from tests.serverproc import ServerProc, auth_headers, create_admin_key, create_key, running_server
from tests.test_hydra_sweeper import App, agent_joins_a_blocked_sweep
from tests.test_sweep_controller import _start, settle_scenario


class ServerApp(App):
    """The test app, with every process pointed at the server (journals stay local)."""

    def __init__(self, root: Path, server: ServerProc, key: str) -> None:
        super().__init__(root)
        self.server = server
        self.key = key

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(RUNYARD_BASE_URL=self.server.url, RUNYARD_API_KEY=self.key)
        return env

    def results_file(self) -> dict[str, Any]:
        """The newest session's ``optimization_results.yaml`` (a resume is a new session)."""
        paths = self.root.glob("multirun/*/*/optimization_results.yaml")
        newest = max(paths, key=lambda p: p.stat().st_mtime)
        doc = yaml.safe_load(newest.read_text())
        assert isinstance(doc, dict)
        return doc

    def api(self) -> Api:
        # recover=False: what is on the server is what the sweeper and its jobs sent
        return Api(store=self.server.url, api_key=self.key, dir=str(self.store_dir), recover=False)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[ServerProc, str]]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    key = create_admin_key(url)
    with running_server(url, auth=True) as server:
        yield server, key


def _create_sweep(store: Store, config: dict[str, Any]) -> None:
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


def test_sweep_control_over_http(sqlite_server: tuple[ServerProc, str]) -> None:
    server, key = sqlite_server
    store = HTTPStore(server.url, api_key=key)
    _create_sweep(
        store,
        {
            "method": "grid",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"a": {"values": [1, 2, 3, 4, 5, 6]}},
        },
    )
    settle_scenario(store, store.controller("sw1"))

    # Authorization follows the sweep's entity, as for the other sweep routes.
    outsider = HTTPStore(server.url, api_key=create_key(server.store_url, "bob"))
    control = outsider.controller("sw1")
    for call in (
        lambda: control.reap({"a2": None}),
        lambda: control.abandon("a3"),
        lambda: control.record_results([TrialResult("x", "finished")]),
        control.agents,
    ):
        with pytest.raises(StoreAuthError):
            call()
    # Malformed bodies are 422s naming the field; an unknown sweep is a 404.
    api = f"{server.api}/sweeps/sw1"
    headers = auth_headers(key)
    bad = httpx.post(
        f"{api}/results",
        json={"results": [{"run_id": "r", "state": "pending"}]},
        headers=headers,
    )
    assert bad.status_code == 422 and "state" in bad.text
    bad = httpx.post(f"{api}/reap", json={"agents": [{"agent_id": "a/b"}]}, headers=headers)
    assert bad.status_code == 422
    missing = httpx.post(f"{server.api}/sweeps/nope/agents/a1/abandon", json={}, headers=headers)
    assert missing.status_code == 404
    with pytest.raises(StoreError, match="no sweep"):
        store.controller("nope").abandon("a1")
    # the results route restores non-finite markers into the summary
    inf = httpx.post(
        f"{api}/results",
        json={
            "results": [
                {
                    "run_id": "not-in-the-sweep",
                    "state": "finished",
                    "summary": {"v": {"__f__": "inf"}},
                }
            ]
        },
        headers=headers,
    )
    assert inf.status_code == 200 and inf.json() == {"skipped": ["not-in-the-sweep"]}


def _interrupt_and_resume(app: ServerApp) -> None:
    """A grid sweep killed (-9) while its 4th job runs, then resumed by id on the server."""
    grid = ("hydra.sweeper.method=grid", "x=0.1,0.2,0.3,0.4,0.5,0.6", "track=true")
    proc = app.start(*grid, "block_job=3")
    try:
        app.wait_for("blocked", proc)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    sweep = app.sweep()
    before = app.trials(sweep.id)
    assert [t.state for t in before[:3]] == ["finished"] * 3 and len(before) == 4
    out = app.run(*grid, f"hydra.sweeper.sweep_id={sweep.path}")
    assert "resuming sweep" in out and app.server.url in out
    assert "1 interrupted trial(s) run again" in out  # requeued by the server
    trials = app.trials(sweep.id)
    xs = sorted(t.params["x"] for t in trials if t.state == "finished")
    assert xs == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # every cell once: none repeated
    (crashed,) = [t for t in trials if t.state != "finished"]
    assert crashed.params == {"x": 0.4} and crashed.state == "crashed"  # in flight, kept
    assert [t.summary for t in trials[:3]] == [t.summary for t in before[:3]]
    jobs = {job["env_run_id"]: job for job in app.jobs()}
    for trial in trials:
        if trial.state != "finished":
            continue
        # the job's runyard.init() joined its trial on the server (key and URL reached it)
        job = jobs[trial.run_id]
        assert job["tracked"] == trial.run_id
        assert trial.summary["loss"] == pytest.approx(job["loss"])
        assert trial.summary["return_value"] == pytest.approx(job["loss"])
    # the dead sweeper's agent is marked dead; the resumed one ended normally
    agents = {a.id: a.state for a in app.api().store.controller(sweep.id).agents()}
    assert sorted(agents.values()) == ["dead", "finished"]
    results = app.results_file()
    assert results["sweep"] == sweep.path and results["n_trials"] == 7
    assert results["states"] == {"finished": 6, "crashed": 1}
    best = min((t for t in trials if t.state == "finished"), key=lambda t: t.summary["loss"])
    assert results["best_run"] == best.run_id and best.params == {"x": 0.3}
    assert results["best_value"] == pytest.approx(0.26)
    assert results["best_params"] == {"x": 0.3} and "x=0.3" in results["best_overrides"]
    # resuming a finished sweep runs nothing
    out = app.run(f"hydra.sweeper.sweep_id={sweep.id}", *grid)
    assert len(app.trials(sweep.id)) == 7 and "sweep over" in out


@pytest.mark.slow
def test_hydra_sweep_on_a_server_resumes_by_id(
    tmp_path: Path, sqlite_server: tuple[ServerProc, str]
) -> None:
    server, key = sqlite_server
    app = ServerApp(tmp_path / "app", server, key)
    _interrupt_and_resume(app)
    # Nothing went to a local store: the sweep is only on the server.
    local = open_store(f"sqlite:///{app.store_dir / 'runyard.db'}")
    assert local.list_sweeps() == [] and len(open_store(server.store_url).list_sweeps()) == 1


@pytest.mark.slow
def test_runyard_agent_joins_a_hydra_sweep_over_http(
    tmp_path: Path, sqlite_server: tuple[ServerProc, str]
) -> None:
    server, key = sqlite_server
    app = ServerApp(tmp_path / "app", server, key)
    trials, by_agent, jobs = agent_joins_a_blocked_sweep(app)
    assert set(jobs) == {t.run_id for t in trials}
    for trial in trials:
        job = jobs[trial.run_id]
        assert job["multirun"] == (trial not in by_agent)
        assert job["tracked"] == trial.run_id and job["cfg"]["x"] == trial.params["x"]
        assert job["cfg"]["db"] == {"driver": trial.params["db"]}
        assert trial.summary["loss"] == pytest.approx(job["loss"])
    results = app.results_file()
    assert results["n_trials"] == 4 and results["states"] == {"finished": 4}
    assert results["best_value"] == pytest.approx(min(j["loss"] for j in jobs.values()))


@pytest.mark.slow
def test_hydra_sweep_on_a_postgresql_server(tmp_path: Path) -> None:
    """PostgreSQL behind the server: joblib workers (tracked, untracked, runs left open in a
    worker, a failing job), then an interrupted sweep resumed by id."""
    from tests import pg

    with pg.fresh_schema() as url:
        key = create_admin_key(url)
        with running_server(url, auth=True) as server:
            app = ServerApp(tmp_path / "app", server, key)
            out = app.run(
                "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2",
                "hydra.sweeper.method=grid",
                "x=0.1,0.2",
                "track=true,false",
                "leave_open=false,true",
                "fail_x=0.2",
                ok=False,  # some trials failed: exit 1, as Hydra's basic sweeper
            )
            assert "4 of 8 trials of this sweep session failed" in out
            assert out.count("is launching 2 jobs") == 4
            sweep = app.sweep()
            trials = app.trials(sweep.id)
            assert len(trials) == 8
            jobs = {job["env_run_id"]: job for job in app.jobs()}
            assert os.getpid() not in {job["pid"] for job in jobs.values()}
            for trial in trials:
                if trial.params["x"] == 0.2:
                    assert trial.state == "failed" and "cursed" in (trial.failure or "")
                    continue
                job = jobs[trial.run_id]
                assert trial.state == "finished"
                if trial.params["track"]:
                    assert job["tracked"] == trial.run_id
                    assert trial.summary["loss"] == pytest.approx(job["loss"])
                else:  # never called runyard.init(): the sweeper recorded config and result
                    run = app.api().store.find_run(sweep.entity, sweep.project, trial.run_id)
                    assert run is not None and run.config["x"] == 0.1
                if not (trial.params["track"] and trial.params["leave_open"]):
                    assert trial.summary["return_value"] == pytest.approx(job["loss"])
            results = app.results_file()
            assert results["states"] == {"finished": 4, "failed": 4}
            assert results["best_params"]["x"] == 0.1
            # the same trials, read directly from PostgreSQL
            direct = open_store(url).sweep_trials(sweep.id)
            assert {(t.run_id, t.state) for t in direct} == {(t.run_id, t.state) for t in trials}

            second = ServerApp(tmp_path / "app2", server, key)
            _interrupt_and_resume_other(second, sweep.id)


def _interrupt_and_resume_other(app: ServerApp, first_sweep: str) -> None:
    """:func:`_interrupt_and_resume` on a server that already holds another sweep."""
    original = app.sweep

    def sweep() -> Any:
        found = [s for s in app.api().store.list_sweeps() if s.id != first_sweep]
        assert len(found) == 1, found
        return found[0]

    app.sweep = sweep  # type: ignore[method-assign]
    try:
        _interrupt_and_resume(app)
    finally:
        app.sweep = original  # type: ignore[method-assign]


def test_settle_decides_again_when_a_run_moves_on(store: SQLStore, tmp_path: Path) -> None:
    """The job's first records reach the store between the sweeper's read and its write: the
    result decided for a never-started run is skipped, and the run is read and settled again
    as the running run it now is (its logged summary kept)."""
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from runyard.integrations.hydra.sweeper import RunyardSweeperImpl
    from runyard.sweeps.config import load_sweep_config
    from runyard.sweeps.controller import SweepController

    doc = {"program": "train.py", "method": "grid", "parameters": {"a": {"values": [1, 2]}}}
    _create_sweep(store, doc)
    controller = SweepController(store, "sw1")
    racing, plain = controller.next_run("hydra"), controller.next_run("hydra")
    assert racing.run_id is not None and plain.run_id is not None
    calls: list[list[TrialResult]] = []

    class Racing(SweepController):
        def record_results(self, results: Sequence[TrialResult]) -> list[str]:
            if not calls:
                _start(store, racing.run_id or "")  # the job's shipper wins the race
            calls.append(list(results))
            return super().record_results(results)

    def ret(value: float) -> JobReturn:
        return JobReturn(
            overrides=[],
            cfg=OmegaConf.create({"a": 1}),
            status=JobStatus.COMPLETED,
            _return_value=value,
        )

    sweeper = RunyardSweeperImpl()
    failures = sweeper._settle(
        store,
        Racing(store, "sw1"),
        tmp_path,
        store.get_sweep("sw1"),  # type: ignore[arg-type]
        load_sweep_config(doc),
        [racing, plain],
        [ret(0.25), ret(0.5)],
    )
    assert failures == []
    assert [[r.expect_state for r in c] for c in calls] == [["pending", "pending"], ["running"]]
    trials = {t.run_id: t for t in store.sweep_trials("sw1")}
    assert trials[racing.run_id].state == "finished"
    assert trials[racing.run_id].summary == {"logged": 1, "return_value": 0.25}
    assert trials[plain.run_id].state == "finished"
    assert trials[plain.run_id].summary == {"return_value": 0.5}
    run = store.find_run("e", "p", plain.run_id)
    assert run is not None and run.config == {"a": 1}
