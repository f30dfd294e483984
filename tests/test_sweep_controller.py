"""The controller on both stores: atomic assignment, run_cap, target, dead agents, states."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from runyard.store import JournalBatch
from runyard.store.base import Store, StoreError, SweepTransaction
from runyard.store.sql import SQLStore
from runyard.sweeps.controller import SweepControl, SweepController, TrialResult


def _sweep(store: SQLStore, config: dict[str, Any], sweep_id: str = "sw1") -> SweepController:
    store.create_sweep(
        sweep_id=sweep_id,
        entity="e",
        project="p",
        name=None,
        description=None,
        method=config["method"],
        config={"program": "train.py", **config},
        seed=3,
    )
    return SweepController(store, sweep_id)


def _finish(store: SQLStore, run_id: str, summary: dict[str, Any]) -> None:
    """Play the part of the run's process: join the pending run and finish it."""
    header = {
        "entity": "e",
        "project": "p",
        "run_id": run_id,
        "name": run_id,
        "journal_id": f"j-{run_id}",
        "join_sweep": True,
        "sweep_id": "sw1",
        "start_time": time.time(),
    }
    store.apply(
        JournalBatch(
            f"j-{run_id}",
            header,
            [
                (1, "run", header),
                (
                    2,
                    "finish",
                    {"state": "finished", "exit_code": 0, "time": time.time(), "runtime": 1.0},
                ),
            ],
            summary=summary,
        )
    )


def test_parallel_controllers_never_duplicate_a_grid_cell(store: SQLStore) -> None:
    controller = _sweep(
        store,
        {
            "method": "grid",
            "parameters": {"a": {"values": list(range(10))}, "b": {"values": ["x", "y", "z"]}},
        },
    )
    got: list[tuple[Any, ...]] = []
    lock = threading.Lock()

    def agent(n: int) -> None:
        while True:
            decision = SweepController(store, "sw1").next_run(f"agent{n}")
            if decision.kind != "run":
                return
            with lock:
                got.append((decision.params["a"], decision.params["b"]))

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(got) == sorted((a, b) for a in range(10) for b in "xyz")
    assert controller.sweep().state == "finished" and controller.sweep().run_count == 30


def test_run_cap_and_target(store: SQLStore) -> None:
    controller = _sweep(
        store,
        {
            "method": "random",
            "run_cap": 5,
            "metric": {"name": "acc", "goal": "maximize", "target": 0.9},
            "parameters": {"lr": {"min": 0.0, "max": 1.0}},
        },
    )
    first = controller.next_run("a1")
    assert first.kind == "run" and first.run_id is not None
    _finish(store, first.run_id, {"acc": 0.5})
    second = controller.next_run("a1")
    assert second.kind == "run" and second.run_id is not None
    _finish(store, second.run_id, {"acc": {"max": 0.95, "last": 0.5}})
    done = controller.next_run("a1")
    assert done.kind == "done" and "target" in done.reason
    assert controller.sweep().state == "finished"


def test_run_cap_counts_every_run(store: SQLStore) -> None:
    controller = _sweep(
        store, {"method": "random", "run_cap": 3, "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    )
    decisions = [controller.next_run("a") for _ in range(5)]
    assert [d.kind for d in decisions] == ["run", "run", "run", "done", "done"]


def test_paused_and_canceled(store: SQLStore) -> None:
    controller = _sweep(store, {"method": "random", "parameters": {"lr": {"min": 0.0, "max": 1.0}}})
    store.set_sweep_state("sw1", "paused")
    assert controller.next_run("a").kind == "wait"
    store.set_sweep_state("sw1", "running")
    decision = controller.next_run("a")
    assert decision.kind == "run"
    store.set_sweep_state("sw1", "canceled")
    assert controller.stop_decisions(decision.run_id) == "the sweep was canceled"
    assert controller.next_run("a").kind == "done"


def test_a_dead_agents_run_is_crashed_and_not_reassigned(store: SQLStore) -> None:
    from runyard.store import schema

    controller = _sweep(store, {"method": "grid", "parameters": {"a": {"values": [1, 2]}}})
    store.register_agent("dead", "sw1", "h", 1)
    first = controller.next_run("dead")
    # Its last heartbeat is far older than the agent timeout (60 s).
    with store.engine.begin() as conn:
        conn.execute(
            schema.sweep_agents.update()
            .where(schema.sweep_agents.c.id == "dead")
            .values(heartbeat_at=time.time() - 3600)
        )
    store.register_agent("alive", "sw1", "h", 2)
    second = controller.next_run("alive")
    assert second.params == {"a": 2} and first.params == {"a": 1}
    states = {t.run_id: t.state for t in store.sweep_trials("sw1")}
    assert states[first.run_id] == "crashed"  # type: ignore[index]
    assert controller.next_run("alive").kind == "done"


def test_bayes_controller_uses_finished_runs(store: SQLStore) -> None:
    controller = _sweep(
        store,
        {
            "method": "bayes",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"min": -5.0, "max": 5.0}, "c": {"values": ["a", "b"]}},
        },
    )
    for _ in range(12):
        decision = controller.next_run("a")
        assert decision.kind == "run" and decision.run_id is not None
        x = decision.params["x"]
        _finish(
            store,
            decision.run_id,
            {"loss": (x - 1.0) ** 2 + (0 if decision.params["c"] == "b" else 3)},
        )
    best = controller.best(limit=1)[0]
    assert best[1] is not None and best[1] < 3.0 and best[0].params["c"] == "b"


def test_reclaim_hands_a_lost_answer_out_again(store: SQLStore) -> None:
    """An agent that repeats a request whose answer it lost gets the same pending run, so
    nothing orphaned counts against run_cap; a sweeper asking for a batch gets new runs."""
    controller = _sweep(
        store, {"method": "random", "run_cap": 2, "parameters": {"lr": {"values": [1, 2, 3]}}}
    )
    first = controller.next_run("agent", reclaim=True)
    again = controller.next_run("agent", reclaim=True)
    assert first.kind == again.kind == "run"
    assert again.run_id == first.run_id and again.params == first.params
    assert len(store.sweep_trials("sw1")) == 1
    assert first.run_id is not None
    _finish(store, first.run_id, {})
    second = controller.next_run("agent", reclaim=True)
    assert second.kind == "run" and second.run_id != first.run_id
    # Without reclaim (the Hydra sweeper's batches), each call is a new run.
    assert controller.next_run("other").kind == "done"  # run_cap 2 reached
    assert len(store.sweep_trials("sw1")) == 2


def _start(store: Store, run_id: str) -> None:
    """Play the part of the run's process: join the pending run (it becomes running)."""
    header = {
        "entity": "e",
        "project": "p",
        "run_id": run_id,
        "name": run_id,
        "journal_id": f"j-{run_id}",
        "join_sweep": True,
        "sweep_id": "sw1",
        "start_time": time.time(),
    }
    store.apply(JournalBatch(f"j-{run_id}", header, [(1, "run", header)], summary={"logged": 1}))


def settle_scenario(store: Store, control: SweepControl) -> None:
    """reap / abandon / record_results / agents on sweep ``sw1`` (a grid of 6 cells, no runs
    yet): the same assertions for every implementation of :class:`SweepControl`."""
    for n, agent in enumerate(("a1", "a2", "a3"), 1):
        store.register_agent(agent, "sw1", "h", n)
    runs: list[str] = []
    for agent in ("a1", "a1", "a2", "a2", "a3", "a3"):
        decision = control.next_run(agent)
        assert decision.kind == "run" and decision.run_id is not None
        runs.append(decision.run_id)
    r0, r1, r2, r3, r4, r5 = runs
    _start(store, r1)
    _start(store, r3)

    def states() -> dict[str, str]:
        return {t.run_id: t.state for t in store.sweep_trials("sw1")}

    agents = control.agents()
    assert [a.id for a in agents] == ["a1", "a2", "a3"]
    assert {a.state for a in agents} == {"running"}
    seen = {a.id: a.heartbeat_at for a in agents}

    # reap: the caller's verdicts; a2 sent a heartbeat after the (older) one the caller saw.
    crashed = control.reap({"a1": seen["a1"], "a2": seen["a2"] - 10.0, "nobody": None})
    assert sorted(crashed) == sorted([r0, r1])
    assert {a.id: a.state for a in control.agents()} == {
        "a1": "dead",
        "a2": "running",
        "a3": "running",
    }
    assert states() == {
        r0: "crashed",
        r1: "crashed",
        r2: "pending",
        r3: "running",
        r4: "pending",
        r5: "pending",
    }
    failure = {t.run_id: t.failure for t in store.sweep_trials("sw1")}[r0]
    assert failure is not None and "a1" in failure
    assert control.reap({"a1": None}) == []  # already dead: a no-op
    assert control.reap({}) == []

    # abandon: a2's unstarted trial crashes, its running one is left to its process.
    assert control.abandon("a2", "the sweep stopped") == [r2]
    assert control.abandon("a2") == []
    assert states()[r2] == "crashed" and states()[r3] == "running"
    assert {t.run_id: t.failure for t in store.sweep_trials("sw1")}[r2] == "the sweep stopped"

    # record_results: refused as a whole when one result is malformed.
    with pytest.raises(StoreError, match="state"):
        control.record_results(
            [TrialResult(r3, "finished", {"loss": 1.0}), TrialResult(r4, "pending", {})]
        )
    with pytest.raises(StoreError, match="two results"):
        control.record_results([TrialResult(r4, "failed"), TrialResult(r4, "finished")])
    assert states()[r3] == "running" and states()[r4] == "pending"

    skipped = control.record_results(
        [
            TrialResult(r3, "finished", {"loss": 0.5}, expect_state="running"),
            TrialResult(
                r4,
                "failed",
                {"inf": math.inf},
                config={"a": 5, "nested": {"b": [1, 2]}},
                failure="the job raised ValueError: boom",
                expect_state="pending",
            ),
            TrialResult(r5, "finished", {"loss": 0.1}, expect_state="running"),  # it is pending
            TrialResult("not-in-the-sweep", "finished", {}),
        ]
    )
    assert skipped == [r5, "not-in-the-sweep"]
    trials = {t.run_id: t for t in store.sweep_trials("sw1")}
    assert trials[r3].state == "finished" and trials[r3].summary == {"logged": 1, "loss": 0.5}
    assert trials[r4].state == "failed" and trials[r4].failure == "the job raised ValueError: boom"
    assert trials[r4].summary == {"inf": math.inf}
    assert trials[r5].state == "pending" and trials[r5].summary == {}
    run4 = store.find_run("e", "p", r4)
    assert run4 is not None and run4.config == {"a": 5, "nested": {"b": [1, 2]}}
    assert run4.finished_at is not None
    # Repeating a result is harmless; its condition no longer holds, so it is skipped.
    assert control.record_results([TrialResult(r3, "finished", {}, expect_state="running")]) == [r3]
    assert control.record_results([TrialResult(r3, "finished", {"loss": 0.5})]) == []
    assert control.record_results([]) == []
    best = control.best(limit=1)[0]
    assert best[0].run_id == r3 and best[1] == 0.5


def test_reap_abandon_and_record_results(store: SQLStore) -> None:
    controller = _sweep(
        store,
        {
            "method": "grid",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"a": {"values": [1, 2, 3, 4, 5, 6]}},
        },
    )
    settle_scenario(store, controller)


def test_record_results_is_one_transaction(store: SQLStore) -> None:
    """A result that cannot be written (here: the run vanished mid-way in a fake) leaves no
    other result of the call applied."""
    controller = _sweep(store, {"method": "grid", "parameters": {"a": {"values": [1, 2]}}})
    first, second = controller.next_run("a"), controller.next_run("a")
    assert first.run_id is not None and second.run_id is not None
    original = store.sweep_transaction

    @contextmanager
    def failing(sweep_id: str) -> Iterator[SweepTransaction]:
        with original(sweep_id) as tx:
            real = tx.set_trial_result
            calls = []

            def set_trial_result(run_id: str, *args: Any, **kwargs: Any) -> None:
                calls.append(run_id)
                real(run_id, *args, **kwargs)
                if len(calls) == 2:
                    raise StoreError("the database went away")

            tx.set_trial_result = set_trial_result  # type: ignore[method-assign]
            yield tx

    store.sweep_transaction = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(StoreError, match="went away"):
            controller.record_results(
                [TrialResult(first.run_id, "finished"), TrialResult(second.run_id, "finished")]
            )
    finally:
        del store.sweep_transaction
    assert {t.state for t in store.sweep_trials("sw1")} == {"pending"}


def test_grid_hands_out_distinct_cells_from_a_cursor(store: SQLStore) -> None:
    """Duplicates (1 and 1.0, a mapping with its keys in another order) run once; the next cell
    comes from a cursor in the sweep's method state, and a sweep whose trials predate the cursor
    (an older runyard) continues where they stopped."""
    grid = {
        "method": "grid",
        "parameters": {
            "a": {"values": [1, 1.0, 2]},
            "b": {"values": [{"k": 1, "j": 2}, {"j": 2, "k": 1}, "x"]},
        },
    }
    controller = _sweep(store, grid)
    cells = []
    while (decision := controller.next_run("ag")).kind == "run":
        cells.append(decision.params)
    assert cells == [
        {"a": 1, "b": {"k": 1, "j": 2}},
        {"a": 1, "b": "x"},
        {"a": 2, "b": {"k": 1, "j": 2}},
        {"a": 2, "b": "x"},
    ]
    sweep = store.get_sweep("sw1")
    assert sweep is not None and sweep.method_state["grid"]["cursor"] == 4
    older = _sweep(store, grid, sweep_id="sw2")
    with store.sweep_transaction("sw2") as tx:  # two cells handed out before cursors existed
        for i, params in enumerate(cells[:2]):
            tx.add_trial(f"old{i}", f"old{i}", params, {}, "ag")
    assert older.next_run("ag").params == cells[2]


def test_requeue_runs_interrupted_trials_again(store: SQLStore) -> None:
    """Crashed (never started, or its process died) and killed trials, and active trials of a
    stopped agent, are handed out again with the same parameters; they no longer count towards
    run_cap, are requeued once, and a finished grid reopens for them."""
    controller = _sweep(
        store, {"method": "grid", "run_cap": 3, "parameters": {"a": {"values": [1, 2, 3, 4]}}}
    )
    store.register_agent("ag1", "sw1", "h", 1)
    first, second, third = (controller.next_run("ag1") for _ in range(3))
    _finish(store, first.run_id or "", {"loss": 1.0})
    store.register_agent("live", "sw1", "h", 2)
    assert controller.next_run("live").kind == "done"  # run_cap 3 reached
    controller.abandon("ag1")  # second: crashed (never started)
    with store.sweep_transaction("sw1") as tx:
        tx.set_trial_state(third.run_id or "", "running")
    assert controller.requeue() == [second.run_id]  # third: its agent still runs it
    store.agent_heartbeat("ag1", None, 1, state="killed")
    assert controller.requeue() == [third.run_id]  # now its agent stopped: crashed, requeued
    assert controller.requeue() == []  # never twice
    sweep = store.get_sweep("sw1")
    assert sweep is not None and sweep.state == "running"  # reopened
    retries = [controller.next_run("live") for _ in range(3)]
    assert [d.kind for d in retries] == ["run", "run", "done"]
    assert [d.params for d in retries[:2]] == [{"a": 2}, {"a": 3}]
    assert {d.run_id for d in retries[:2]}.isdisjoint({second.run_id, third.run_id})
    states = {t.run_id: t.state for t in store.sweep_trials("sw1")}
    assert states[second.run_id or ""] == states[third.run_id or ""] == "crashed"  # kept
    assert len(states) == 5


def test_a_preempting_trial_is_still_under_way_for_the_search(store: SQLStore) -> None:
    # A run that called mark_preempting() is still training: the search must count it as
    # pending (bayes keeps its point as pending), not as a run that ended without a metric.
    controller = _sweep(
        store,
        {
            "method": "bayes",
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"min": -5.0, "max": 5.0}},
        },
    )
    decision = controller.next_run("a")
    assert decision.run_id is not None
    header = {
        "entity": "e",
        "project": "p",
        "run_id": decision.run_id,
        "name": decision.run_id,
        "journal_id": "j-p",
        "join_sweep": True,
        "sweep_id": "sw1",
        "start_time": time.time(),
    }
    store.apply(JournalBatch("j-p", header, [(1, "run", header), (2, "preempt", {})]))
    with store.sweep_transaction("sw1") as tx:
        trials = controller.trials(tx, controller.config())
    assert [(t.state, t.value, t.pending) for t in trials] == [("preempting", None, True)]
