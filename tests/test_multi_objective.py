"""Multi-objective sweeps: the Pareto math, ``metrics`` in sweep.yaml, the controller's
ParEGO search on both stores, and the front a sweep reports."""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest

from runyard.integrations.hydra.sweeper import return_summary
from runyard.store import JournalBatch
from runyard.store.sql import SQLStore
from runyard.sweeps.config import SweepConfigError, load_sweep_config
from runyard.sweeps.controller import SweepController
from runyard.sweeps.front import sweep_front
from runyard.sweeps.pareto import (
    dominates,
    hypervolume,
    non_dominated_sort,
    orient,
    pareto_front,
    reference_point,
)
from runyard.sweeps.search import build_search
from runyard.sweeps.search.parego import ParEGOSearch, chebyshev
from tests.test_hydra_sweeper import App as HydraApp

# -- the math ----------------------------------------------------------------------------------


def _brute_hypervolume(points: list[list[float]], ref: list[float]) -> float:
    """Volume dominated by ``points`` inside ``ref``: the cells of the grid of every coordinate,
    each counted when some point dominates it (exact for a handful of points)."""
    m = len(ref)
    axes = [sorted({p[i] for p in points if p[i] < ref[i]} | {ref[i]}) for i in range(m)]
    total = 0.0
    for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
        low = [axes[i][c] for i, c in enumerate(cell)]
        if any(all(p[i] <= low[i] for i in range(m)) for p in points):
            total += math.prod(axes[i][c + 1] - axes[i][c] for i, c in enumerate(cell))
    return total


def test_hypervolume_of_known_fronts() -> None:
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == pytest.approx(6.0)
    # a dominated point and one beyond the reference add nothing
    assert hypervolume([[1, 3], [2, 2], [3, 1], [3, 3], [0, 5]], [4, 4]) == pytest.approx(6.0)
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == pytest.approx(6.0)
    # two boxes of 4 and 2 overlapping in 1
    assert hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]) == pytest.approx(5.0)
    assert hypervolume([], [1, 1]) == 0.0
    # ZDT1's true front f2 = 1 - sqrt(f1) against (1, 1): 1 - integral = 2/3, approached from below
    xs = [i / 2000 for i in range(2001)]
    hv = hypervolume([[x, 1 - math.sqrt(x)] for x in xs], [1.0, 1.0])
    assert 2 / 3 - 1e-3 < hv < 2 / 3
    with pytest.raises(ValueError, match="not finite"):
        hypervolume([[math.nan, 1.0]], [2.0, 2.0])


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_matches_brute_force(m: int) -> None:
    rng = random.Random(m)
    for _ in range(20):
        points = [[rng.randint(0, 6) / 2 for _ in range(m)] for _ in range(rng.randint(1, 7))]
        ref = [3.5] * m
        assert hypervolume(points, ref) == pytest.approx(_brute_hypervolume(points, ref))


def test_non_dominated_sort_and_orientation() -> None:
    pts = [[1, 5], [2, 2], [3, 3], [5, 1], [2, 2], [4, 4]]
    assert non_dominated_sort(pts) == [[0, 1, 3, 4], [2], [5]]
    assert pareto_front(pts) == [0, 1, 3, 4]
    assert dominates([1, 1], [1, 2]) and not dominates([1, 1], [1, 1])
    assert orient([0.3, 0.9], ["minimize", "maximize"]) == [0.3, -0.9]
    assert reference_point([[0, 10], [2, 10]]) == pytest.approx([2.2, 10.1])  # no range: 0.1


def test_chebyshev_scalarisation() -> None:
    rows: list[Any] = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], None, [0.2, None]]
    s = chebyshev(rows, ["minimize", "minimize"], [0.5, 0.5])
    assert s[3] is None and s[4] is None
    assert s[2] == pytest.approx(0.25 + 0.05 * 0.5)  # the knee wins with equal weights
    assert s[2] < s[0] and s[0] == pytest.approx(s[1])  # type: ignore[operator]
    # maximising the second objective flips its normalised values
    flipped = chebyshev(rows, ["minimize", "maximize"], [0.5, 0.5])
    assert flipped[0] == pytest.approx(0.0)
    w = ParEGOSearch(["minimize", "maximize", "minimize"]).weights(3, 10)
    assert len(w) == 3 and sum(w) == pytest.approx(1.0)


# -- sweep.yaml --------------------------------------------------------------------------------

MO = [{"name": "val/loss", "goal": "minimize"}, {"name": "val/acc", "goal": "maximize"}]
PARAMS = {"x": {"min": 0.0, "max": 1.0}, "y": {"min": 0.0, "max": 1.0}}


def _doc(**extra: Any) -> dict[str, Any]:
    return {"program": "train.py", "method": "bayes", "parameters": PARAMS, **extra}


def test_metrics_are_read() -> None:
    config = load_sweep_config(_doc(metrics=MO))
    assert config.multi_objective and config.metric is None
    assert [(m.name, m.goal) for m in config.metrics] == [
        ("val/loss", "minimize"),
        ("val/acc", "maximize"),
    ]
    assert isinstance(build_search("bayes", goals=["minimize", "maximize"]), ParEGOSearch)
    # one entry is a plain single-metric sweep; `metric:` still works
    one = load_sweep_config(_doc(metrics=MO[:1]))
    assert not one.multi_objective and one.metric is not None and one.metric.name == "val/loss"
    single = load_sweep_config(_doc(metric={"name": "loss"}))
    assert single.metrics == (single.metric,)
    for method in ("grid", "random"):
        grid = {"x": {"values": [1, 2]}}
        assert load_sweep_config({**_doc(metrics=MO), "method": method, "parameters": grid})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"metrics": MO, "metric": {"name": "loss"}}, "metrics: is given together with `metric`"),
        ({"metrics": {"name": "loss"}}, "metrics: must be a list of objectives, got a mapping"),
        ({"metrics": []}, "metrics: must be a non-empty list"),
        ({"metrics": [MO[0], {"name": "acc", "goal": "maximise"}]}, "metrics[1].goal: must be"),
        ({"metrics": [MO[0], {"goal": "maximize"}]}, "metrics[1].name: is missing"),
        ({"metrics": [MO[0], "val/acc"]}, "metrics[1]: must be a mapping"),
        ({"metrics": [MO[0], MO[0]]}, "metrics[1].name: 'val/loss' is already metrics[0]"),
        (
            {"metrics": [MO[0], {**MO[1], "target": 0.9}]},
            "metrics[1].target: applies to a single `metric` only",
        ),
        ({"metrics": [MO[0], {**MO[1], "nmae": 1}]}, "metrics[1].nmae: unknown key"),
        (
            {"metrics": MO, "early_terminate": {"type": "hyperband", "min_iter": 3}},
            "early_terminate: judges runs by one metric",
        ),
    ],
)
def test_metrics_errors_name_the_key_and_the_fix(extra: dict[str, Any], expected: str) -> None:
    with pytest.raises(SweepConfigError) as info:
        load_sweep_config(_doc(**extra))
    text = str(info.value)
    assert expected in text and "Fix:" in text, text


# -- the controller ----------------------------------------------------------------------------


def _finish(store: SQLStore, sweep_id: str, run_id: str, summary: dict[str, Any]) -> None:
    header = {
        "entity": "e",
        "project": "p",
        "run_id": run_id,
        "name": run_id,
        "journal_id": f"j-{run_id}",
        "join_sweep": True,
        "sweep_id": sweep_id,
        "start_time": time.time(),
    }
    finish = {"state": "finished", "exit_code": 0, "time": time.time(), "runtime": 1.0}
    store.apply(
        JournalBatch(
            f"j-{run_id}", header, [(1, "run", header), (2, "finish", finish)], summary=summary
        )
    )


def _objectives(x: float, y: float) -> dict[str, float]:
    # a convex trade-off: loss grows with x, accuracy with x too (y only hurts both)
    return {"val/loss": x + y, "val/acc": math.sqrt(x) - y}


def test_controller_suggests_with_several_metrics(store: SQLStore) -> None:
    config = _doc(metrics=MO, run_cap=14)
    store.create_sweep(
        sweep_id="mo1",
        entity="e",
        project="p",
        name=None,
        description=None,
        method="bayes",
        config=config,
        seed=5,
    )
    controller = SweepController(store, "mo1")
    seen = []
    while True:
        decision = controller.next_run("agent-1")
        if decision.kind != "run":
            break
        assert decision.run_id is not None
        x, y = decision.params["x"], decision.params["y"]
        seen.append((x, y))
        summary: dict[str, Any] = _objectives(x, y)
        if len(seen) == 4:
            summary = {"val/loss": 0.5}  # one objective missing: counted as failed
        _finish(store, "mo1", decision.run_id, summary)
    assert len(seen) == 14 and len(set(seen)) == 14
    # the model-based trials (after the 5 space-filling ones) learn that y only hurts
    assert sum(y for _, y in seen[-6:]) / 6 < sum(y for _, y in seen[:5]) / 5
    front = sweep_front(controller.config(), store.sweep_trials("mo1"))
    assert len(front.points) == 13 and front.front
    oriented = [orient(v, ["minimize", "maximize"]) for _, v in front.points]
    on_front = {t.run_id for t, _ in front.front}
    for (trial, _), point in zip(front.points, oriented, strict=True):
        beaten = any(dominates(other, point) for other in oriented)
        assert (trial.run_id in on_front) == (not beaten)
    assert front.hypervolume is not None and front.hypervolume > 0
    assert front.reference is not None
    losses = [v[0] for _, v in front.points]
    accs = [v[1] for _, v in front.points]
    assert front.reference[0] > max(losses) and front.reference[1] < min(accs)
    # best(): the front first, by the first metric
    best = controller.best(limit=len(front.front))
    assert {t.run_id for t, _ in best} == on_front
    assert [v for _, v in best] == sorted(v for _, v in best)


# -- the Hydra sweeper -------------------------------------------------------------------------

MO_TRAIN = """
import math

import hydra


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    loss = cfg.x + cfg.y
    if cfg.named:
        import runyard

        with runyard.init() as run:
            run.log({"val/loss": loss, "val/acc": math.sqrt(cfg.x) - cfg.y})
        return None
    return loss, math.sqrt(cfg.x) - cfg.y  # hydra-optuna-sweeper's multi-objective return


if __name__ == "__main__":
    main()
"""


class MOApp(HydraApp):
    files = {
        "conf/config.yaml": "x: 0.5\ny: 0.5\nnamed: false\n",
        "train.py": MO_TRAIN,
    }


def test_return_summary_of_several_objectives() -> None:
    names = ["a", "b"]
    assert return_summary((0.5, 2), names) == {"a": 0.5, "b": 2}
    assert return_summary([0.5, 2, 3], names) == {}  # not one value per objective
    assert return_summary({"a": 1, "b": 2}, names) == {"a": 1, "b": 2}
    assert return_summary((0.5, 2), "loss") == {}  # one objective: not a number


def test_hydra_sweeper_with_a_tuple_returning_task(tmp_path: Path) -> None:
    app = MOApp(tmp_path / "app")
    out = app.run(
        "hydra.sweeper.direction=[minimize,maximize]",
        "hydra.sweeper.method=bayes",
        "hydra.sweeper.n_trials=7",
        "hydra.sweeper.seed=1",
        "x=interval(0,1)",
        "y=interval(0,1)",
    )
    sweep = app.sweep()
    assert sweep.config["metrics"] == [
        {"name": "return_value/0", "goal": "minimize"},
        {"name": "return_value/1", "goal": "maximize"},
    ]
    trials = app.trials(sweep.id)
    assert len(trials) == 7 and {t.state for t in trials} == {"finished"}
    for t in trials:  # each objective in the trial's summary
        x, y = t.params["x"], t.params["y"]
        assert t.summary["return_value/0"] == pytest.approx(x + y)
        assert t.summary["return_value/1"] == pytest.approx(math.sqrt(x) - y)
    doc = app.results_file()
    config = load_sweep_config(sweep.config, require_program=False)
    front = sweep_front(config, trials)
    assert [b["run"] for b in doc["best_trials"]] == [t.run_id for t, _ in front.front]
    assert doc["hypervolume"] == pytest.approx(front.hypervolume)
    assert doc["reference_point"] == pytest.approx(front.reference)
    first = doc["best_trials"][0]
    assert first["overrides"] == [f"x={first['params']['x']}", f"y={first['params']['y']}"]
    assert doc["solutions"][0] == {"params": first["params"], "values": first["values"]}
    assert f"Pareto front of {len(front.front)} trial(s)" in out
    # the CLI shows the front
    from click.testing import CliRunner

    from runyard.cli import main as cli

    runner = CliRunner()
    store = ["--dir", str(app.store_dir)]
    shown = runner.invoke(cli, ["sweep", "show", sweep.id, *store], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert f"Pareto front: {len(front.front)} run(s)" in shown.output
    assert "hypervolume" in shown.output and front.front[0][0].run_id in shown.output
    as_json = runner.invoke(cli, ["sweep", "show", sweep.id, "--format", "json", *store])
    doc_json = json.loads(as_json.output)
    assert [t["run_id"] for t in doc_json["front"]] == [t.run_id for t, _ in front.front]
    assert doc_json["hypervolume"] == pytest.approx(front.hypervolume)
    # named objectives logged by the task, and a mismatched direction refused before any job
    named = MOApp(tmp_path / "named")
    named.run(
        "hydra.sweeper.metrics=[{name:val/loss,goal:minimize},{name:val/acc,goal:maximize}]",
        "hydra.sweeper.method=random",
        "hydra.sweeper.n_trials=2",
        "named=true",
        "x=interval(0,1)",
    )
    done = named.trials(named.sweep().id)
    assert all({"val/loss", "val/acc"} <= set(t.summary) for t in done)
    assert len(named.results_file()["best_trials"]) >= 1
    bad = named.run("hydra.sweeper.direction=[minimize,maximise]", "x=interval(0,1)", ok=False)
    assert "'maximise' is not minimize or maximize" in bad
