"""The encoded space as arrays (private helper of :mod:`._gp`).

Points are held as two arrays: ``xc`` (m, n_cont) floats for the real and discrete dims, in
dim order, and ``xk`` (m, n_cat) ints for the categorical dims. Discrete columns only ever hold
one of their dim's points: every generator here snaps to them, and the acquisition optimiser
moves them only between points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from runyard.sweeps.search.encoding import Dim, EncodedPoint

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Space:
    """Index bookkeeping and sampling for a list of :class:`Dim`."""

    def __init__(self, dims: Sequence[Dim]) -> None:
        if not dims:
            raise ValueError("the search space needs at least one dim")
        self.dims = list(dims)
        self.cont = [i for i, d in enumerate(self.dims) if d.kind != "categorical"]
        self.cat = [i for i, d in enumerate(self.dims) if d.kind == "categorical"]
        self.real_mask: BoolArray = np.array(
            [self.dims[i].kind == "real" for i in self.cont], dtype=np.bool_
        )
        #: (column in xc, sorted points) of each discrete dim
        self.discrete: list[tuple[int, FloatArray]] = []
        for col, i in enumerate(self.cont):
            d = self.dims[i]
            if d.kind == "discrete":
                assert d.points is not None
                pts = np.unique(np.clip(np.asarray(d.points, dtype=np.float64).ravel(), 0, 1))
                self.discrete.append((col, pts))
        self.n_choices: IntArray = np.array(
            [int(self.dims[i].n_choices or 1) for i in self.cat], dtype=np.int64
        )
        self.cat_cdf: list[FloatArray] = []
        for j, i in enumerate(self.cat):
            probs = self.dims[i].probabilities
            k = int(self.n_choices[j])
            if probs is None or len(probs) != k or not np.all(np.isfinite(probs)):
                p = np.full(k, 1.0 / k)
            else:
                p = np.maximum(np.asarray(probs, dtype=np.float64), 0.0)
                p = p / p.sum() if p.sum() > 0 else np.full(k, 1.0 / k)
            self.cat_cdf.append(np.cumsum(p))

    @property
    def n_cont(self) -> int:
        return len(self.cont)

    @property
    def n_cat(self) -> int:
        return len(self.cat)

    def split(self, points: Sequence[EncodedPoint]) -> tuple[FloatArray, IntArray]:
        """Validate encoded points and split them into (xc, xk)."""
        m = len(points)
        d = len(self.dims)
        if m == 0:
            return np.zeros((0, self.n_cont)), np.zeros((0, self.n_cat), dtype=np.int64)
        try:
            arr = np.array(points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"encoded points must be lists of {d} numbers") from exc
        if arr.shape != (m, d):
            raise ValueError(f"encoded points must be lists of {d} numbers, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("encoded points must be finite")
        xc = np.clip(arr[:, self.cont], 0.0, 1.0)
        cats = arr[:, self.cat]
        xk = np.rint(cats).astype(np.int64)
        bad = (np.abs(cats - xk) > 1e-9) | (xk < 0) | (xk >= self.n_choices[None, :])
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            name = self.dims[self.cat[c]].name
            raise ValueError(f"invalid category {float(cats[r, c])!r} for dim {name!r}")
        return xc, xk

    def join(self, xc: FloatArray, xk: IntArray) -> EncodedPoint:
        """One (xc, xk) row pair back to an encoded point (python floats / ints)."""
        out: EncodedPoint = [0.0] * len(self.dims)
        for col, i in enumerate(self.cont):
            out[i] = float(xc[col])
        for col, i in enumerate(self.cat):
            out[i] = int(xk[col])
        return out

    def snap(self, xc: FloatArray) -> FloatArray:
        """Clip to [0, 1] and move discrete columns to their nearest allowed point."""
        xc = np.clip(xc, 0.0, 1.0)
        for col, pts in self.discrete:
            xc[:, col] = pts[nearest_index(pts, xc[:, col])]
        return xc

    def from_unit(self, u: FloatArray, prior: bool) -> tuple[FloatArray, IntArray]:
        """Map points of the unit cube (one column per dim) into the space.

        Real dims take the coordinate as is, discrete dims its nearest point, categorical dims
        the inverse CDF of their prior (``prior=True``) or of the uniform distribution.
        """
        xc = self.snap(u[:, self.cont]) if self.cont else np.zeros((len(u), 0))
        xk = np.zeros((len(u), self.n_cat), dtype=np.int64)
        for col, i in enumerate(self.cat):
            k = int(self.n_choices[col])
            if prior:
                idx = np.searchsorted(self.cat_cdf[col], u[:, i], side="right")
            else:
                idx = np.floor(u[:, i] * k).astype(np.int64)
            xk[:, col] = np.clip(idx, 0, k - 1)
        return xc, xk


def nearest_index(points: FloatArray, values: FloatArray) -> IntArray:
    """Index of the nearest of the sorted ``points`` for each value."""
    idx = np.clip(np.searchsorted(points, values), 1, max(len(points) - 1, 1))
    if len(points) == 1:
        return np.zeros(len(values), dtype=np.int64)
    left = points[idx - 1]
    right = points[idx]
    take_left = (values - left) <= (right - values)
    return np.asarray(np.where(take_left, idx - 1, idx), dtype=np.int64)
