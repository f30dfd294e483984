"""The numeric encoding that model-based search works in.

A search space of sweep parameters is encoded as a list of :class:`Dim`. A point of the encoded
space is a list with one entry per dim:

* ``real``: a float in ``[0, 1]`` (the parameter's prior CDF, or its linear / log position
  between bounds — see ``runyard.sweeps.space``);
* ``discrete``: a float in ``[0, 1]`` that must be one of ``points`` (integer and quantized
  parameters: the encodings of their allowed values, sorted). Search must pick among ``points``
  during its own optimisation, not round a continuous choice afterwards;
* ``categorical``: an ``int`` in ``range(n_choices)``; the choices are unordered.

``space.py`` maps parameter values to and from this encoding; the Bayesian optimiser never sees
parameter values, only encoded points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

DimKind = Literal["real", "discrete", "categorical"]


@dataclass(frozen=True)
class Dim:
    """One dimension of the encoded space."""

    kind: DimKind
    #: discrete only: the allowed encoded values, sorted, within [0, 1]
    points: np.ndarray | None = field(default=None, compare=False)
    #: categorical only: number of choices
    n_choices: int | None = None
    #: categorical only: prior probability of each choice (None: uniform)
    probabilities: tuple[float, ...] | None = None
    #: a name for messages and debugging
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind == "discrete":
            if self.points is None or len(self.points) == 0:
                raise ValueError(f"discrete dim {self.name!r} needs points")
        elif self.kind == "categorical":
            if not self.n_choices or self.n_choices < 1:
                raise ValueError(f"categorical dim {self.name!r} needs n_choices >= 1")
        elif self.kind != "real":
            raise ValueError(f"unknown dim kind {self.kind!r}")


EncodedPoint = list[float | int]
