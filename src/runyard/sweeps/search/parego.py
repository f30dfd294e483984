"""Multi-objective Bayesian search: ParEGO (Knowles, 2006) over runyard's GP optimiser.

Each suggestion draws a weight vector ``λ`` uniformly from the simplex (from the sweep's seed
and the number of trials, so it stays a pure function of its inputs), scalarises every
finished trial's objectives with the augmented Chebyshev function of their normalised values

    s(y) = max_i λ_i ŷ_i + rho Σ_i λ_i ŷ_i,    ŷ_i = (y_i - min_i) / (max_i - min_i)

(objectives oriented for minimisation, ``min_i``/``max_i`` over the finished trials,
``rho = 0.05``), and asks :class:`~runyard.sweeps.search._gp.BayesOptimizer` for the point
that minimises ``s``: its Gaussian process, log expected improvement, space-filling start,
failure imputation and pending-point handling are the single-objective search's. A new ``λ``
at every trial aims successive trials at different parts of the Pareto front; the max term
makes every Pareto-optimal point the optimum of some ``λ`` (also on non-convex fronts, where
a weighted sum cannot reach), the small sum term breaks the max's ties.

A trial with any objective missing (failed, or it did not log one of them) counts as failed
(imputed with the worst scalarised value). ``bench/multi_objective.py`` measures it against
Optuna's NSGA-II and TPE samplers by hypervolume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from runyard.sweeps.search._gp import BayesOptimizer
from runyard.sweeps.search.base import SearchMethod, Trial
from runyard.sweeps.space import SearchSpace

__all__ = ["RHO", "ParEGOSearch", "chebyshev"]

Goal = Literal["minimize", "maximize"]

#: weight of the sum term of the augmented Chebyshev scalarisation
RHO = 0.05


def chebyshev(
    rows: Sequence[Sequence[float | None] | None],
    goals: Sequence[Goal],
    weights: Sequence[float],
    rho: float = RHO,
) -> list[float | None]:
    """The augmented Chebyshev scalarisation of each row (``None`` where a row or one of its
    values is missing or not finite): lower is better."""
    m = len(goals)
    sign = np.array([-1.0 if g == "maximize" else 1.0 for g in goals])
    ok = [
        r is not None and len(r) == m and all(v is not None and math.isfinite(float(v)) for v in r)
        for r in rows
    ]
    good = [
        [float(v) if v is not None else math.nan for v in r]
        for r, k in zip(rows, ok, strict=True)
        if k and r is not None
    ]
    if not good:
        return [None] * len(rows)
    y = np.array(good) * sign
    low = y.min(axis=0)
    span = y.max(axis=0) - low
    span[span <= 0] = 1.0
    lam = np.asarray(weights, dtype=np.float64)
    scaled = (y - low) / span * lam
    scores = scaled.max(axis=1) + rho * scaled.sum(axis=1)
    out: list[float | None] = []
    it = iter(scores.tolist())
    for k in ok:
        out.append(next(it) if k else None)
    return out


class ParEGOSearch(SearchMethod):
    """``method: bayes`` with several ``metrics``: see the module docstring."""

    name = "bayes"

    def __init__(self, goals: Sequence[Goal]) -> None:
        if len(goals) < 2:
            raise ValueError("ParEGO needs at least two objectives")
        self.goals = tuple(goals)

    def weights(self, seed: int, n_trials: int) -> list[float]:
        """The weight vector of the suggestion after ``n_trials`` trials: uniform on the
        simplex (a flat Dirichlet), from the seed and the count."""
        rng = np.random.default_rng([seed, n_trials, 0x5EA])
        w = rng.dirichlet(np.ones(len(self.goals)))
        return [float(x) for x in w]

    def suggest(
        self, space: SearchSpace, trials: Sequence[Trial], seed: int
    ) -> dict[str, Any] | None:
        dims = space.dims()
        if not dims:
            return space.decode([])
        observed, rows, pending = [], [], []
        for trial in trials:
            try:
                point = space.encode(trial.params)
            except (KeyError, ValueError):
                continue
            if trial.pending:
                pending.append(point)
            else:
                observed.append(point)
                rows.append(trial.values)
        scores = chebyshev(rows, self.goals, self.weights(seed, len(trials)))
        optimizer = BayesOptimizer(dims, goal="minimize", seed=seed)
        (point,) = optimizer.suggest(observed, scores, pending, n=1)
        return space.decode(point)
