"""The search-method interface (like Optuna's ``BaseSampler``).

Contract
--------
A search method is a *pure function* of the search space, the sweep's trials so far and the
sweep's seed: ``suggest`` keeps no state between calls and draws its randomness from the seed
and the number of trials. That is what lets the controller run it in whichever process happens
to hold the sweep's lock (any agent, any host), one call at a time, and get the same answer as a
single long-lived optimiser would. Methods must be thread-safe (they are stateless).

``trials`` contains every run the sweep has handed out, oldest first: finished ones with their
objective value, failed/crashed ones with ``value=None``, and *pending* ones (handed out, not
finished) which a method should not duplicate.

The controller calls :meth:`SearchMethod.suggest_next`, which may also take and return a small
*state* that the sweep keeps for the method (``method_state``, e.g. the grid's cursor): still
a pure function, of (space, trials, seed, state), so whichever process holds the lock gets the
same answer. It reads the trials only if it needs them (a sweep of 10^5 runs is expensive to
read on every call).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runyard.sweeps.space import SearchSpace

#: the states of a trial still under way (``preempting``: it called ``mark_preempting()`` and
#: trains on); every other state has ended, with or without a metric
ACTIVE_STATES = ("pending", "running", "preempting")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep as a search method sees it."""

    params: dict[str, Any]  # flat dotted names
    value: float | None  # the objective; None while pending, or if the run failed
    state: str
    #: a multi-objective sweep's objectives, in the order of its ``metrics`` (each None when
    #: the run did not report it); None for a single-objective sweep
    values: tuple[float | None, ...] | None = None

    @property
    def pending(self) -> bool:
        return self.state in ACTIVE_STATES


class SearchMethod(abc.ABC):
    """Chooses the next parameters of a sweep. See the module docstring for the contract."""

    name: str = ""

    @abc.abstractmethod
    def suggest(
        self, space: SearchSpace, trials: Sequence[Trial], seed: int
    ) -> dict[str, Any] | None:
        """The next parameters (flat dotted names), or ``None`` when the method is exhausted."""

    def suggest_next(
        self,
        space: SearchSpace,
        trials: Callable[[], Sequence[Trial]],
        count: int,
        seed: int,
        state: dict[str, Any],
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """What the controller calls: the next parameters and the state to keep for the next
        call. ``trials()`` reads the trials (call it only when needed), ``count`` is their
        number, ``state`` what the previous call returned (``{}`` at first). By default:
        :meth:`suggest` over every trial, no state."""
        return self.suggest(space, trials(), seed), state
