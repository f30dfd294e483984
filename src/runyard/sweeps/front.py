"""The Pareto front of a multi-objective sweep, from its trials as stored.

:func:`sweep_front` is what the CLI (``runyard sweep show``), the Hydra sweeper's
``optimization_results.yaml`` and the server's ``GET /sweeps/{id}/front`` report: the trials
that no other trial dominates, with their objectives, and the hypervolume of the front
against a reference point (:func:`runyard.sweeps.pareto.reference_point` of every trial that
reported all objectives, unless one is given). The math is :mod:`runyard.sweeps.pareto`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runyard.store.base import TrialRecord
from runyard.sweeps.config import MetricSpec, SweepConfig
from runyard.sweeps.pareto import hypervolume, non_dominated_sort, orient, reference_point
from runyard.sweeps.search.base import ACTIVE_STATES

__all__ = ["Front", "objective_values", "ranked", "sweep_front"]


def objective_values(summary: dict[str, Any], metrics: Sequence[MetricSpec]) -> list[float | None]:
    """Each objective of a run, from its summary (see ``controller.objective``)."""
    from runyard.sweeps.controller import objective

    return [objective(summary, m.name, m.goal) for m in metrics]


@dataclass
class Front:
    """A sweep's Pareto front. ``points``: the trials that reported every objective (not
    pending or running), with their values; ``front``: the non-dominated ones among them,
    ordered by the first objective (best first). ``reference`` and ``hypervolume`` are None
    without points; the reference is in the objectives' own units and directions."""

    metrics: tuple[MetricSpec, ...]
    points: list[tuple[TrialRecord, list[float]]]
    front: list[tuple[TrialRecord, list[float]]]
    reference: list[float] | None
    hypervolume: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": [{"name": m.name, "goal": m.goal} for m in self.metrics],
            "n": len(self.points),
            "reference": self.reference,
            "hypervolume": self.hypervolume,
            "front": [
                {
                    "run_id": t.run_id,
                    "name": t.name,
                    "state": t.state,
                    "values": values,
                    "params": t.params,
                }
                for t, values in self.front
            ],
        }


def sweep_front(
    config: SweepConfig,
    trials: Sequence[TrialRecord],
    reference: Sequence[float] | None = None,
) -> Front:
    """The front of ``config.metrics`` over ``trials`` (any number of metrics; a single one
    gives the best trials, ties included). Runs with an infinite objective are left out."""
    metrics = tuple(config.metrics)
    goals = [m.goal for m in metrics]
    points: list[tuple[TrialRecord, list[float]]] = []
    for trial in trials:
        if trial.state in ACTIVE_STATES or not metrics:
            continue
        values = objective_values(trial.summary, metrics)
        if all(v is not None and math.isfinite(v) for v in values):
            points.append((trial, [float(v) for v in values if v is not None]))
    if not points:
        return Front(metrics, [], [], None, None)
    oriented = [orient(v, goals) for _, v in points]
    ref = orient(reference, goals) if reference is not None else reference_point(oriented)
    first = non_dominated_sort(oriented)[0]
    front = sorted((points[i] for i in first), key=lambda p: orient(p[1], goals))
    return Front(
        metrics,
        points,
        front,
        orient(ref, goals),  # back to the objectives' directions (orient is its own inverse)
        hypervolume(oriented, ref),
    )


def ranked(
    config: SweepConfig, trials: Sequence[TrialRecord]
) -> list[tuple[TrialRecord, list[float] | None, int | None]]:
    """Every trial with its objectives and its front (0: the Pareto front), best first:
    by front, then by the first objective; trials without every objective last."""
    metrics = tuple(config.metrics)
    goals = [m.goal for m in metrics]
    scored: list[tuple[TrialRecord, list[float]]] = []
    rest: list[tuple[TrialRecord, list[float] | None, int | None]] = []
    for trial in trials:
        values = objective_values(trial.summary, metrics) if metrics else []
        if (
            metrics
            and trial.state not in ACTIVE_STATES
            and all(v is not None and math.isfinite(v) for v in values)
        ):
            scored.append((trial, [float(v) for v in values if v is not None]))
        else:
            rest.append((trial, None, None))
    oriented = [orient(v, goals) for _, v in scored]
    out: list[tuple[TrialRecord, list[float] | None, int | None]] = []
    for rank, members in enumerate(non_dominated_sort(oriented)):
        for i in sorted(members, key=lambda i: oriented[i]):
            out.append((scored[i][0], scored[i][1], rank))
    return out + rest
