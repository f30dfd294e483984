"""Grid search: every cell of the cartesian product, each handed out exactly once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from runyard.sweeps.search.base import SearchMethod, Trial
from runyard.sweeps.space import SearchSpace, value_key


def cell_key(params: dict[str, Any]) -> Any:
    """A canonical key for a cell: the same for the same values (``1`` and ``1.0``, mappings
    with their keys in another order), distinct for ``1`` and ``True`` (see ``value_key``)."""
    return tuple(sorted((k, value_key(v)) for k, v in params.items()))


def _fingerprint(space: SearchSpace) -> str:
    return hashlib.sha1(repr(space.parameters).encode()).hexdigest()[:16]


class GridSearch(SearchMethod):
    """Cells in a fixed order (the order of ``parameters``, last varying fastest; duplicate
    values of a parameter left out, see ``SearchSpace.grid``).

    A cell is never handed out twice by the grid, whatever happened to its run (a failed cell
    is a result; an interrupted one is re-run only when the sweep is asked to, see
    ``SweepControl.requeue``). ``None`` once every cell has been handed out.

    :meth:`suggest_next` keeps a cursor in the sweep's method state, so the next cell costs
    O(1) (computed by ``SearchSpace.grid_cell``), not a rescan of the grid against every
    trial; the trials are read once, when a sweep without a cursor (created by an older
    runyard, or whose space changed) gets its first suggestion.
    """

    name = "grid"

    def suggest(
        self, space: SearchSpace, trials: Sequence[Trial], seed: int
    ) -> dict[str, Any] | None:
        taken = {cell_key(t.params) for t in trials}
        for cell in space.grid():
            if cell_key(cell) not in taken:
                return cell
        return None

    def suggest_next(
        self,
        space: SearchSpace,
        trials: Callable[[], Sequence[Trial]],
        count: int,
        seed: int,
        state: dict[str, Any],
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        fingerprint = _fingerprint(space)
        size = space.grid_size()
        cursor = state.get("cursor")
        if state.get("space") != fingerprint or not isinstance(cursor, int):
            taken = {cell_key(t.params) for t in trials()} if count else set()
            cursor = 0
            while cursor < size and cell_key(space.grid_cell(cursor)) in taken:
                cursor += 1
        if cursor >= size:
            return None, {"space": fingerprint, "cursor": cursor}
        return space.grid_cell(cursor), {"space": fingerprint, "cursor": cursor + 1}
