"""Recovery meets resume, sweeps and exits: the cases where a journal arrives late."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import runyard
from runyard.sdk.recovery import replay
from runyard.store import Store, open_store
from runyard.sweeps.controller import Decision, SweepController
from tests.conftest import api, run_python, store_env

DIE_UNFLUSHED = """
import os, signal, runyard
run = runyard.init(project="p", id="{rid}", resume="allow")
for i in range(3):
    runyard.log({{"x": i, "{key}": 0.9}})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_resume_after_a_killed_session_that_never_flushed(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    proc = run_python(
        DIE_UNFLUSHED.format(rid="r1", key="acc"),
        tmp_path,
        env={"RUNYARD_FLUSH_INTERVAL": "60", **store_env(store_url)},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    run = runyard.init(project="p", id="r1", resume="allow")
    assert run.step == 3  # the dead session's rows were recovered before deciding
    for i in range(3, 6):
        run.log({"x": i})
    run.finish()
    stored = api(root).run("p/r1")
    assert stored.state == "finished"
    assert [r["x"] for r in stored.scan_history()] == list(range(6))
    assert list((root / "journal").glob("*.journal")) == []


def test_recovering_a_resumed_session_keeps_the_earlier_summary(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    first = runyard.init(project="p", id="r2")
    first.log({"acc": 0.9})
    first.finish()
    proc = run_python(
        DIE_UNFLUSHED.format(rid="r2", key="loss"),
        tmp_path,
        env={"RUNYARD_FLUSH_INTERVAL": "60", **store_env(store_url)},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    stored = api(root).run("p/r2")  # recovers the second session's journal
    assert stored.state == "crashed"
    assert stored.summary["acc"] == 0.9 and stored.summary["loss"] == 0.9


def _one_pending_trial(
    root: Path, sweep_id: str, url: str | None = None
) -> tuple[Store, SweepController, Decision]:
    """A one-cell grid sweep whose only run the controller has just handed out."""
    store = open_store(url or f"sqlite:///{root / 'runyard.db'}")
    store.create_sweep(
        sweep_id=sweep_id,
        entity="e",
        project="p",
        name=None,
        description=None,
        method="grid",
        config={"program": "t.py", "method": "grid", "parameters": {"a": {"values": [1]}}},
        seed=0,
    )
    controller = SweepController(store, sweep_id)
    decision = controller.next_run("agent")
    assert decision.run_id is not None
    return store, controller, decision


def test_a_sweep_trial_that_died_before_flushing_keeps_its_rows(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    store, controller, decision = _one_pending_trial(root, "sw", store_url)
    env = {
        **store_env(store_url),
        "RUNYARD_FLUSH_INTERVAL": "60",
        "RUNYARD_SWEEP_ID": "sw",
        "RUNYARD_RUN_ID": decision.run_id,
        "RUNYARD_SWEEP_PARAMS": '{"a": 1}',
        "RUNYARD_PROJECT": "p",
        "RUNYARD_ENTITY": "e",
    }
    proc = run_python(DIE_UNFLUSHED.format(rid="ignored", key="y"), tmp_path, env=env, check=False)
    assert proc.returncode == -signal.SIGKILL
    from runyard.sdk.recovery import recover_journals

    recover_journals(root, store)  # what the agent does once its child has exited
    record = controller.finish_trial(decision.run_id, proc.returncode, None)
    assert record is not None and record.state == "crashed"
    run = api(root).run(f"e/p/{decision.run_id}")
    assert [r["x"] for r in run.scan_history()] == [0, 1, 2] and run.config["a"] == 1


@pytest.mark.parametrize(
    ("code", "state", "exit_code"),
    [
        ("sys.exit(3)", "failed", 3),
        ("sys.exit(0)", "finished", None),
        ("os.kill(os.getpid(), signal.SIGTERM)", "killed", 143),
    ],
)
def test_with_block_respects_exit_and_sigterm(
    tmp_path: Path, root: Path, code: str, state: str, exit_code: int | None
) -> None:
    run_python(
        f"""
import os, signal, sys, time, runyard
with runyard.init(project="p", id="w") as run:
    run.log({{"x": 1}})
    {code}
    time.sleep(5)
""",
        tmp_path,
        check=False,
    )
    stored = api(root).run("p/w")
    assert (stored.state, stored.exit_code) == (state, exit_code)


def test_assigning_a_section_keeps_locked_sweep_values() -> None:
    config = runyard.Config({"model": {"lr": 0.5, "layers": 1}})
    config.lock({"model": {"lr": 0.5}}, reason="sweep")
    with pytest.warns(UserWarning, match="model.lr is set by the sweep"):
        config.model = {"lr": 0.001, "layers": 2}
    assert config.as_dict() == {"model": {"lr": 0.5, "layers": 2}}
    with pytest.warns(UserWarning):
        config.update({"model": {"lr": 1.0}}, allow_val_change=True)
    assert config.model.lr == 0.5


def test_a_late_journal_does_not_undo_stopped(root: Path, store_url: str | None) -> None:
    from runyard.store import JournalBatch

    store, controller, decision = _one_pending_trial(root, "sw2", store_url)
    header = {
        "entity": "e",
        "project": "p",
        "run_id": decision.run_id,
        "sweep_id": "sw2",
        "join_sweep": True,
    }
    store.apply(
        JournalBatch(
            "child",
            dict(header, journal_id="child"),
            [(1, "run", header), (2, "finish", {"state": "killed", "exit_code": 143})],
        )
    )
    controller.finish_trial(decision.run_id, -15, "hyperband: too slow")
    late = dict(header, journal_id="late")
    store.apply(JournalBatch("late", late, [(1, "run", late), (2, "finish", {"state": "crashed"})]))
    run = store.find_run("e", "p", decision.run_id)
    assert run is not None and run.state == "stopped" and "hyperband" in (run.failure or "")


def _define_and_log(run_id: str) -> None:
    with runyard.init(project="p", id=run_id) as first:
        first.define_metric("epoch")
        first.define_metric("acc", summary="max", step_metric="epoch")
        first.define_metric("loss", summary="min,first")
        for epoch, (acc, loss) in enumerate([(0.5, 2.0), (0.9, 1.0), (0.7, 1.5)]):
            first.log({"acc": acc, "loss": loss, "epoch": epoch})


def test_a_resumed_run_keeps_its_metric_definitions_and_aggregates(
    root: Path, store_url: str | None
) -> None:
    _define_and_log("d1")
    # The second session does not repeat define_metric (a script resumed from a checkpoint
    # often skips its setup): the stored definitions and the max over both sessions stay.
    again = runyard.init(project="p", id="d1", resume="must")
    for epoch, (acc, loss) in enumerate([(0.6, 3.0), (0.4, 0.5)], start=3):
        again.log({"acc": acc, "loss": loss, "epoch": epoch})
    again.finish()
    stored = api(root).run("p/d1")
    assert stored.summary["acc"] == {"max": 0.9}
    assert stored.summary["loss"] == {"min": 0.5, "first": 2.0}
    defs = {d["name"]: d for d in stored.metric_definitions}
    assert defs["acc"]["step_metric"] == "epoch" and defs["acc"]["summary"] == ["max"]


def test_a_resumed_session_may_redefine_a_metric(root: Path, store_url: str | None) -> None:
    _define_and_log("d2")
    with runyard.init(project="p", id="d2", resume="must") as again:
        again.define_metric("acc", summary="last")  # newer than the stored definition
        again.log({"acc": 0.6, "epoch": 3})
    stored = api(root).run("p/d2")
    assert stored.summary["acc"] == {"last": 0.6}
    assert {d["name"] for d in stored.metric_definitions} == {"epoch", "acc", "loss"}


DIE_AFTER_RESUME = """
import os, signal, runyard
run = runyard.init(project="p", id="d3", resume="must")
run.log({"acc": 0.3, "epoch": 3})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_recovering_a_killed_resumed_session_keeps_the_definitions(
    tmp_path: Path, root: Path, store_url: str | None
) -> None:
    _define_and_log("d3")
    proc = run_python(
        DIE_AFTER_RESUME,
        tmp_path,
        env={"RUNYARD_FLUSH_INTERVAL": "60", **store_env(store_url)},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL
    stored = api(root).run("p/d3")  # recovers the killed session's journal
    assert stored.state == "crashed" and stored.summary["epoch"] == 3
    assert stored.summary["acc"] == {"max": 0.9}
    assert {d["name"] for d in stored.metric_definitions} == {"epoch", "acc", "loss"}


def test_a_provisional_sessions_own_last_value_wins_over_the_stored_one() -> None:
    # A session that started without the store (init(id=) with the server down) logs acc=0.4,
    # then meets the stored run, whose summary says last 0.7 from an earlier session: the
    # newer 0.4 is the last value, the stored max still counts.
    resume = {
        "initial_summary": {"acc": {"max": 0.9, "last": 0.7}, "loss": {"last": 2.0}},
        "stored_metric_defs": [
            {"name": "acc", "summary": ["max", "last"]},
            {"name": "loss", "summary": ["last"]},
        ],
    }
    tracker, _ = replay(
        [(1, "run", {}), (2, "row", {"_step": 0, "acc": 0.4}), (3, "resume", resume)]
    )
    summary = tracker.snapshot()
    assert summary["acc"] == {"max": 0.9, "last": 0.4}
    assert summary["loss"] == {"last": 2.0}  # not logged by this session: the stored one
