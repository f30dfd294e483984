"""Random search: independent draws from each parameter's distribution, reproducible by seed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from runyard.sweeps.search.base import SearchMethod, Trial
from runyard.sweeps.space import SearchSpace


class RandomSearch(SearchMethod):
    """The n-th suggestion of a sweep depends only on (seed, n): rerunning a sweep with the same
    seed reproduces its parameters, whichever agents asked in whichever order."""

    name = "random"

    def suggest(
        self, space: SearchSpace, trials: Sequence[Trial], seed: int
    ) -> dict[str, Any] | None:
        rng = np.random.default_rng([seed, len(trials)])
        return space.sample(rng)

    def suggest_next(
        self,
        space: SearchSpace,
        trials: Callable[[], Sequence[Trial]],
        count: int,
        seed: int,
        state: dict[str, Any],
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        rng = np.random.default_rng([seed, count])
        return space.sample(rng), state
