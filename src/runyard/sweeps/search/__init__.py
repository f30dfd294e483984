"""Search methods behind one interface (grid, random, bayes), like Optuna's samplers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from runyard.sweeps.search.base import SearchMethod, Trial


def build_search(
    method: str,
    goal: Literal["minimize", "maximize"] = "minimize",
    goals: Sequence[Literal["minimize", "maximize"]] = (),
) -> SearchMethod:
    """The search method named in a sweep config; ``goals``: a multi-objective sweep's goals
    (two or more: ``bayes`` is then ParEGO, :mod:`.parego`; grid and random ignore them)."""
    if method == "grid":
        from runyard.sweeps.search.grid import GridSearch

        return GridSearch()
    if method == "random":
        from runyard.sweeps.search.random import RandomSearch

        return RandomSearch()
    if method == "bayes":
        if len(goals) > 1:
            from runyard.sweeps.search.parego import ParEGOSearch

            return ParEGOSearch(goals)
        from runyard.sweeps.search.bayes import BayesSearch

        return BayesSearch(goal)
    raise ValueError(f"unknown search method {method!r}; use grid, random or bayes")


__all__ = ["SearchMethod", "Trial", "build_search"]
