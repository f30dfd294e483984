"""``runyard.mark_preempting()`` (W&B's): a run that said it may be preempted is ``preempting``,
ends ``preempted`` (not crashed/failed/killed) when its process dies, and a requeued job
resumes it with ``init(id=..., resume="allow")``; a sweep requeues preempted trials."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import runyard
from runyard.store import open_store
from runyard.store.base import RunQuery
from tests.conftest import api, killed_child, run_python
from tests.serverproc import ServerProc


def _preempted_session(run_id: str, values: range) -> None:
    """A job that logs, says it may be preempted, logs on, then is killed (-9) by the caller."""
    run = runyard.init(project="p", id=run_id, resume="allow")
    for value in values:
        run.log({"v": value})
        if value == values[0]:
            runyard.mark_preempting()
    time.sleep(0.3)  # the shipper delivers the preempt record (an online run)


def _state(root: Path, run_id: str) -> str | None:
    found = open_store(f"sqlite:///{root / 'runyard.db'}").list_runs(RunQuery(run_ids=[run_id]))
    return found[0].state if found else None


def _wait_state(root: Path, run_id: str, state: str) -> None:
    deadline = time.monotonic() + 10
    while _state(root, run_id) != state:
        assert time.monotonic() < deadline, f"{run_id} never became {state}"
        time.sleep(0.05)


def test_killed_while_preempting_is_preempted_and_resumes(root: Path) -> None:
    os.environ["RUNYARD_DIR"] = str(root)
    try:
        assert killed_child(_preempted_session, "pre1", range(3)) == -signal.SIGKILL
        run = api(root).run("pre1")  # Api recovers the dead process's journal
        assert run.state == "preempted", (run.state, run.failure)
        assert runyard.Api(dir=root).runs("p", filters={"state": "preempted"})[0].id == "pre1"
        resumed = runyard.init(project="p", id="pre1", resume="allow")
        assert resumed.resumed and resumed.step == 3
        resumed.log({"v": 3})
        _wait_state(root, "pre1", "running")  # once the resumed session's records arrive
        resumed.finish()
    finally:
        del os.environ["RUNYARD_DIR"]
    stored = api(root).run("pre1")
    assert stored.state == "finished"
    assert [r["v"] for r in stored.scan_history()] == [0, 1, 2, 3]


def test_preempting_state_and_endings(root: Path) -> None:
    run = runyard.init(project="p", id="pre2")
    run.mark_preempting()
    run.mark_preempting()  # harmless twice
    run.log({"v": 1})
    assert run.state == "preempting"
    _wait_state(root, "pre2", "preempting")
    run.finish(exit_code=3)  # a non-zero exit after mark_preempting: preempted
    assert api(root).run("pre2").state == "preempted"
    clean = runyard.init(project="p", id="pre3")
    clean.mark_preempting()
    clean.finish()  # it finished after all
    assert api(root).run("pre3").state == "finished"
    with pytest.raises(runyard.RunFinishedError):
        clean.mark_preempting()
    with pytest.raises(RuntimeError, match="init"):
        runyard.mark_preempting()


def test_sigterm_after_mark_preempting_through_a_server(
    shared_server: ServerProc, tmp_path: Path
) -> None:
    """The SLURM habit: a SIGTERM handler marks the run preempting and exits; the run is
    preempted on the server, shown by the CLI, and the requeued job resumes it."""
    env = {"RUNYARD_BASE_URL": shared_server.url}
    code = """
        import os, signal, sys, runyard
        run = runyard.init(project="pre", id=sys.argv[1], resume="allow")
        def on_term(signum, frame):
            runyard.mark_preempting()
            sys.exit(128 + signum)
        signal.signal(signal.SIGTERM, on_term)
        start = run.step
        for i in range(start, start + 3):
            run.log({"v": i})
        if start == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        run.finish()
    """
    first = run_python(code, tmp_path, env=env, args=["srv1"], check=False)
    assert first.returncode == 128 + signal.SIGTERM, first.stderr
    doc = httpx.get(f"{shared_server.api}/runs/root/pre/srv1").json()
    assert doc["state"] == "preempted", doc
    listed = httpx.get(
        f"{shared_server.api}/runs", params={"filter": "state = preempted", "project": "pre"}
    )
    assert listed.status_code == 200, listed.text
    run_python(code, tmp_path, env=env, args=["srv1"])
    store = open_store(shared_server.store_url)
    (stored,) = store.list_runs(RunQuery(project="pre", run_ids=["srv1"]))
    assert stored.state == "finished"
    assert [row["v"] for row in store.history(stored.pk)] == [0, 1, 2, 3, 4, 5]


def test_a_preempted_sweep_trial_is_requeued(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runyard.sweeps.create import create_sweep

    store = open_store(f"sqlite:///{root / 'runyard.db'}")
    sweep, _config = create_sweep(
        store,
        {"method": "grid", "parameters": {"x": {"values": [1, 2]}}},
        entity="e",
        project="sw",
        require_program=False,
    )
    store.register_agent("ag1", sweep.id, "h", 1)
    control: Any = store.controller(sweep.id)
    decision = control.next_run("ag1", reclaim=True)
    assert decision.kind == "run" and decision.run_id
    monkeypatch.setenv("RUNYARD_SWEEP_ID", sweep.id)
    monkeypatch.setenv("RUNYARD_RUN_ID", decision.run_id)
    monkeypatch.setenv("RUNYARD_SWEEP_PARAMS", '{"x": 1}')
    monkeypatch.setenv("RUNYARD_ENTITY", "e")
    monkeypatch.setenv("RUNYARD_PROJECT", "sw")
    run = runyard.init()
    assert run.id == decision.run_id
    run.mark_preempting()
    run.finish(exit_code=143)  # the job's SIGTERM handler: sys.exit(128 + 15)
    control.finish_trial(decision.run_id, 143, None)  # the agent sees the exit
    (trial,) = [t for t in store.sweep_trials(sweep.id) if t.run_id == decision.run_id]
    assert trial.state == "preempted"
    assert control.requeue() == [decision.run_id]
    again = control.next_run("ag1")
    assert again.params == decision.params and again.run_id != decision.run_id
