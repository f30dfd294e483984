"""Grid search: every cell of the cartesian product, each handed out exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runyard._json import dumps
from runyard.sweeps.search.base import SearchMethod, Trial
from runyard.sweeps.space import SearchSpace


def cell_key(params: dict[str, Any]) -> bytes:
    """A canonical key for a cell (sorted keys; 1 and 1.0 and True stay distinct by type)."""
    return dumps(sorted((k, [type(v).__name__, v]) for k, v in params.items()))


class GridSearch(SearchMethod):
    """Cells in a fixed order (the order of ``parameters``, last varying fastest).

    A cell is never handed out twice, whatever happened to its run (failed or crashed cells are
    not retried: rerun them with a new sweep). ``None`` once every cell has been handed out.
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
