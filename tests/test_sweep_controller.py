"""The controller on both stores: atomic assignment, run_cap, target, dead agents, states."""

from __future__ import annotations

import threading
import time
from typing import Any

from runyard.store import JournalBatch
from runyard.store.sql import SQLStore
from runyard.sweeps.controller import SweepController


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
