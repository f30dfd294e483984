"""Bayesian search: the GP optimiser of ``_gp`` over the encoded space of ``space``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from runyard.sweeps.search._gp import BayesOptimizer
from runyard.sweeps.search.base import SearchMethod, Trial
from runyard.sweeps.space import SearchSpace


class BayesSearch(SearchMethod):
    """Gaussian-process Bayesian optimisation of the sweep metric.

    Finished runs are observations; failed ones are observations without a value (the optimiser
    imputes them); pending ones are passed as pending so parallel agents get distinct points.
    """

    name = "bayes"

    def __init__(self, goal: Literal["minimize", "maximize"]) -> None:
        self.goal = goal

    def suggest(
        self, space: SearchSpace, trials: Sequence[Trial], seed: int
    ) -> dict[str, Any] | None:
        dims = space.dims()
        if not dims:  # only constants: nothing to optimise
            return space.decode([])
        observed, values, pending = [], [], []
        for trial in trials:
            try:
                point = space.encode(trial.params)
            except (KeyError, ValueError):
                continue  # a trial from an older version of the space: not comparable
            if trial.pending:
                pending.append(point)
            else:
                observed.append(point)
                values.append(trial.value)
        optimizer = BayesOptimizer(dims, goal=self.goal, seed=seed)
        (point,) = optimizer.suggest(observed, values, pending, n=1)
        return space.decode(point)
