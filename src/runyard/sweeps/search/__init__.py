"""Search methods behind one interface (grid, random, bayes), like Optuna's samplers."""

from __future__ import annotations

from typing import Literal

from runyard.sweeps.search.base import SearchMethod, Trial


def build_search(method: str, goal: Literal["minimize", "maximize"] = "minimize") -> SearchMethod:
    """The search method named in a sweep config."""
    if method == "grid":
        from runyard.sweeps.search.grid import GridSearch

        return GridSearch()
    if method == "random":
        from runyard.sweeps.search.random import RandomSearch

        return RandomSearch()
    if method == "bayes":
        from runyard.sweeps.search.bayes import BayesSearch

        return BayesSearch(goal)
    raise ValueError(f"unknown search method {method!r}; use grid, random or bayes")


__all__ = ["SearchMethod", "Trial", "build_search"]
